package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var errCut = errors.New("test: node cut off from the cluster")

// cuttable is the real store's lease records as one node reaches them; cut, every round trip
// fails, as on a node cut off from the cluster's quorum.
type cuttable struct {
	LeaseRecords
	cut atomic.Bool
}

func (c *cuttable) Get(ctx context.Context, key string) (json.RawMessage, uint64, error) {
	if c.cut.Load() {
		return nil, 0, errCut
	}
	return c.LeaseRecords.Get(ctx, key)
}

func (c *cuttable) Create(ctx context.Context, key string, doc json.RawMessage) (uint64, error) {
	if c.cut.Load() {
		return 0, errCut
	}
	return c.LeaseRecords.Create(ctx, key, doc)
}

func (c *cuttable) Update(ctx context.Context, key string, doc json.RawMessage, rev uint64) (uint64, error) {
	if c.cut.Load() {
		return 0, errCut
	}
	return c.LeaseRecords.Update(ctx, key, doc, rev)
}

// hanging is a node's lease records whose round trips, once hung, wait for their context.
type hanging struct {
	LeaseRecords
	hung atomic.Bool
}

func (h *hanging) Get(ctx context.Context, key string) (json.RawMessage, uint64, error) {
	if h.hung.Load() {
		<-ctx.Done()
		return nil, 0, ctx.Err()
	}
	return h.LeaseRecords.Get(ctx, key)
}

type testNode struct {
	*Ledger
	records *cuttable
}

// ledgerNodes returns one ledger per name, all on one real store's leases bucket (the nodes of
// a cluster share it), on the clock clk.
func ledgerNodes(t *testing.T, clk *clock, names ...string) []testNode {
	t.Helper()
	st := openStore(t)
	recs, err := st.Leases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []testNode
	for _, n := range names {
		c := &cuttable{LeaseRecords: recs}
		out = append(out, testNode{NewLedger(LedgerConfig{Node: n, Records: c, TTL: 10 * time.Second, Idle: time.Second, Now: clk.Now}), c})
	}
	return out
}

// leased is the sum of the live leases of key in the store, as a reader at now counts them.
func leased(t *testing.T, l *Ledger, key string, now time.Time) int {
	t.Helper()
	raw, _, err := l.cfg.Records.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	var d leaseDoc
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	sum := 0
	for _, ls := range d.Leases {
		if ls.Expires.After(now) {
			sum += ls.Slots
		}
	}
	return sum
}

func newClock() *clock { return &clock{now: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)} }

// TestLedgerLimitAcrossNodes: a limit of 2 shared by 3 nodes admits exactly 2 of 12 attempts
// made at once from all three (4 per node), round after round; slots given back between rounds
// go to whichever node asks next.
func TestLedgerLimitAcrossNodes(t *testing.T) {
	clk := newClock()
	nodes := ledgerNodes(t, clk, "n1", "n2", "n3")
	const key, limit, perNode = "function.f", 2, 4
	ctx := context.Background()
	for round := range 5 {
		var wg sync.WaitGroup
		var admitted atomic.Int32
		start := make(chan struct{})
		errs := make(chan error, len(nodes)*perNode)
		for _, n := range nodes {
			s := n.Slots(key)
			for range perNode {
				wg.Go(func() {
					<-start
					err := s.Take(ctx, limit)
					switch {
					case err == nil:
						admitted.Add(1)
					case !errors.Is(err, ErrLimit):
						errs <- err
					}
				})
			}
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
		if got := admitted.Load(); got != limit {
			t.Fatalf("round %d: %d of %d attempts admitted across 3 nodes, want %d", round, got, len(nodes)*perNode, limit)
		}
		held := 0
		for _, n := range nodes {
			h, r := n.Slots(key).Held()
			held += h
			for range r {
				n.Slots(key).Put()
			}
		}
		if held != limit || leased(t, nodes[0].Ledger, key, clk.Now()) != limit {
			t.Fatalf("round %d: nodes hold %d slots, the ledger %d; want %d", round, held, leased(t, nodes[0].Ledger, key, clk.Now()), limit)
		}
		// Two ticks later every idle slot is back in the ledger.
		for range 2 {
			clk.add(time.Second)
			for _, n := range nodes {
				n.tick(ctx)
			}
		}
		if got := leased(t, nodes[0].Ledger, key, clk.Now()); got != 0 {
			t.Fatalf("round %d: %d slots still leased after two idle ticks", round, got)
		}
	}
}

// TestLedgerNeverOverLimit: 3 nodes × 3 workers take and put slots of a limit of 2 in a loop
// while every node ticks (giving back, renewing): at no moment do more than 2 run.
func TestLedgerNeverOverLimit(t *testing.T) {
	clk := newClock()
	nodes := ledgerNodes(t, clk, "n1", "n2", "n3")
	const key, limit = "account", 2
	ctx := context.Background()
	var running, peak, admitted atomic.Int32
	var wg sync.WaitGroup
	stop := make(chan struct{})
	// One ticker for the cluster: at each second of the test clock every node ticks (gives
	// back, renews), as their Run loops would.
	var tickers sync.WaitGroup
	tickers.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			clk.add(time.Second)
			for _, n := range nodes {
				n.tick(ctx)
			}
		}
	})
	for _, n := range nodes {
		s := n.Slots(key)
		for range 3 {
			wg.Go(func() {
				for range 30 {
					if err := s.Take(ctx, limit); err != nil {
						if !errors.Is(err, ErrLimit) {
							t.Error(err)
							return
						}
						continue
					}
					admitted.Add(1)
					now := running.Add(1)
					for p := peak.Load(); now > p && !peak.CompareAndSwap(p, now); p = peak.Load() {
					}
					time.Sleep(time.Millisecond) // hold the slot while the others try
					running.Add(-1)
					s.Put()
				}
			})
		}
	}
	wg.Wait()
	close(stop)
	tickers.Wait()
	if p := peak.Load(); p > limit {
		t.Errorf("%d invocations ran at once, limit %d", p, limit)
	}
	if admitted.Load() == 0 {
		t.Error("nothing admitted")
	}
	t.Logf("admitted %d of 270, peak %d", admitted.Load(), peak.Load())
}

// TestLedgerIdleSlotsMove: slots a node stops using go back to the ledger within two ticks and
// another node takes them; until then it is refused.
func TestLedgerIdleSlotsMove(t *testing.T) {
	clk := newClock()
	nodes := ledgerNodes(t, clk, "a", "b")
	a, b := nodes[0].Slots("function.f"), nodes[1].Slots("function.f")
	ctx := context.Background()
	for range 2 {
		if err := a.Take(ctx, 2); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Take(ctx, 2); !errors.Is(err, ErrLimit) {
		t.Fatalf("b took a slot of a full limit: %v", err)
	}
	a.Put()
	a.Put()
	clk.add(time.Second)
	nodes[0].tick(ctx) // the slots are seen idle
	if err := b.Take(ctx, 2); !errors.Is(err, ErrLimit) {
		t.Fatalf("b took a slot a had used a moment ago: %v", err)
	}
	clk.add(time.Second)
	nodes[0].tick(ctx) // still idle: given back
	if h, _ := a.Held(); h != 0 {
		t.Fatalf("a holds %d slots after two idle ticks", h)
	}
	for i := range 2 {
		if err := b.Take(ctx, 2); err != nil {
			t.Fatalf("b's take %d after a gave back: %v", i, err)
		}
	}
	if err := a.Take(ctx, 2); !errors.Is(err, ErrLimit) {
		t.Fatalf("a took a third slot: %v", err)
	}
}

// TestLedgerLapse: a node cut off from the ledger keeps using its slots only until shortly
// before its lease expires; the others get them once it has (TTL after its last renewal), not
// before; the cut-off node's invocations already running are the only overshoot, and once it
// is back it takes slots again only when there is room.
func TestLedgerLapse(t *testing.T) {
	clk := newClock()
	nodes := ledgerNodes(t, clk, "a", "b")
	a, b := nodes[0].Slots("function.f"), nodes[1].Slots("function.f")
	ctx := context.Background()
	t0 := clk.Now()
	for range 2 {
		if err := a.Take(ctx, 2); err != nil {
			t.Fatal(err)
		}
	}
	a.Put() // a: 2 slots, 1 invocation running
	nodes[0].records.cut.Store(true)

	clk.now = t0.Add(7 * time.Second) // a has not ticked: its lease still counts
	if !a.TryTake() {
		t.Fatal("a could not use a slot of its lease 7 s in")
	}
	a.Put()
	if err := b.Take(ctx, 2); !errors.Is(err, ErrLimit) {
		t.Fatalf("b took a slot of a's live lease: %v", err)
	}

	clk.now = t0.Add(8 * time.Second) // TTL - 2 ticks: a stops using what it cannot renew
	nodes[0].tick(ctx)
	if a.TryTake() {
		t.Fatal("a admitted on a lease it could not renew, 8 s after it was written")
	}
	if h, r := a.Held(); h != 0 || r != 1 {
		t.Fatalf("a holds %d slots with %d running, want 0 and its 1 invocation", h, r)
	}
	// Its renewal just failed: for a tick, an invocation that needs a slot is throttled at once.
	if err := a.Take(ctx, 2); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("a's take while cut off: %v, want ErrUnreachable", err)
	}
	clk.now = t0.Add(10*time.Second - time.Millisecond)
	if err := b.Take(ctx, 2); !errors.Is(err, ErrLimit) {
		t.Fatalf("b took a slot before a's lease expired: %v", err)
	}

	clk.now = t0.Add(10 * time.Second)
	for i := range 2 {
		if err := b.Take(ctx, 2); err != nil {
			t.Fatalf("b's take %d once a's lease expired: %v", i, err)
		}
	}
	// Running now: b's 2 and a's 1 started before the cut: the documented overshoot.

	nodes[0].records.cut.Store(false)
	clk.add(time.Second)
	nodes[0].tick(ctx) // back: a's running invocation is leased again only if there is room
	if h, _ := a.Held(); h != 0 {
		t.Fatalf("a holds %d slots of a limit b fills", h)
	}
	if err := a.Take(ctx, 2); !errors.Is(err, ErrLimit) {
		t.Fatalf("a took a slot of a limit b fills: %v", err)
	}
	if got := leased(t, nodes[0].Ledger, "function.f", clk.Now()); got != 2 {
		t.Fatalf("%d slots leased, want b's 2", got)
	}
}

// TestLedgerLimitLowered: when a limit is lowered below what the nodes lease, renewals trim the
// leases to it: the nodes then admit nothing new until their running invocations fit.
func TestLedgerLimitLowered(t *testing.T) {
	clk := newClock()
	nodes := ledgerNodes(t, clk, "a", "b")
	a, b := nodes[0].Slots("function.f"), nodes[1].Slots("function.f")
	ctx := context.Background()
	for i, s := range []*Slots{a, a, a, b} {
		if err := s.Take(ctx, 4); err != nil {
			t.Fatalf("take %d: %v", i, err)
		}
	}
	a.SetLimit(2)
	b.SetLimit(2)
	clk.add(4 * time.Second) // a renewal is due
	for _, n := range nodes {
		n.tick(ctx)
	}
	if got := leased(t, nodes[0].Ledger, "function.f", clk.Now()); got > 2 {
		t.Fatalf("%d slots leased after renewals, limit 2", got)
	}
	ha, ra := a.Held()
	hb, rb := b.Held()
	if ha+hb > 2 || ra != 3 || rb != 1 {
		t.Fatalf("a holds %d (%d running), b %d (%d running)", ha, ra, hb, rb)
	}
	if a.TryTake() {
		t.Fatal("a admitted with 3 running of a limit of 2")
	}
}

// TestLedgerLeave: a node that stops cleanly gives back at once every slot no invocation uses.
func TestLedgerLeave(t *testing.T) {
	clk := newClock()
	nodes := ledgerNodes(t, clk, "a", "b")
	a, b := nodes[0].Slots("function.f"), nodes[1].Slots("function.f")
	for range 2 {
		if err := a.Take(context.Background(), 2); err != nil {
			t.Fatal(err)
		}
	}
	a.Put() // one of a's two invocations ended
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- nodes[0].Run(ctx) }()
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := leased(t, nodes[0].Ledger, "function.f", clk.Now()); got != 1 {
		t.Fatalf("%d slots leased after a stopped with 1 invocation running, want 1", got)
	}
	if err := b.Take(context.Background(), 2); err != nil {
		t.Fatalf("b could not take the slot a gave back: %v", err)
	}
}

// BenchmarkLedgerSet is one change of a lease (what a Take that must ask the ledger, a renewal
// or a give-back costs): a read and a compare-and-set write of the limit's document.
func BenchmarkLedgerSet(b *testing.B) {
	st := openStore(b)
	recs, err := st.Leases(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	l := NewLedger(LedgerConfig{Node: "a", Records: recs})
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		if _, _, err := l.set(ctx, "function.f", 1000, 1+i%2, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// TestLedgerLapseWhileBlocked: a node stops using a lease it could not renew even while a
// round trip to the ledger hangs (the watchdog takes no lock a round trip holds).
func TestLedgerLapseWhileBlocked(t *testing.T) {
	clk := newClock()
	st := openStore(t)
	recs, err := st.Leases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h := &hanging{LeaseRecords: recs}
	l := NewLedger(LedgerConfig{Node: "a", Records: h, TTL: 10 * time.Second, Idle: time.Second, Wait: 3 * time.Second, Now: clk.Now})
	a := l.Slots("function.f")
	ctx := context.Background()
	if err := a.Take(ctx, 3); err != nil {
		t.Fatal(err)
	}
	h.hung.Store(true)
	blocked := make(chan error, 1)
	go func() { blocked <- a.Take(ctx, 3) }() // its one slot is busy: asks the ledger, which hangs
	for a.mu.TryLock() {                      // wait until the take holds the lock
		a.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	clk.add(8 * time.Second)
	l.lapse(clk.Now())
	if h, r := a.Held(); h != 0 || r != 1 {
		t.Errorf("while a round trip hangs, a holds %d slots (%d running) 8 s after its lease was written, want 0", h, r)
	}
	select {
	case err := <-blocked:
		t.Fatalf("the take returned before its round trip ended: %v", err)
	default:
	}
	if err := <-blocked; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the hung take: %v, want its deadline", err)
	}
}

// TestLedgerBurstLeasesTogether: Takes that queue behind a lease round trip are leased in the
// next one together: a burst on a node costs one round trip, not one each; near the limit it
// gets what the cluster has left, and the rest are refused.
func TestLedgerBurstLeasesTogether(t *testing.T) {
	clk := newClock()
	n := ledgerNodes(t, clk, "n1")[0]
	ctx := context.Background()
	const burst = 8
	for _, tc := range []struct {
		key          string
		limit, admit int
	}{{"function.roomy", 100, burst}, {"function.tight", 3, 3}} {
		s := n.Slots(tc.key)
		granted := n.granted.Load()
		s.mu.Lock() // a round trip in flight: the burst queues behind it
		errs := make(chan error, burst)
		var wg sync.WaitGroup
		for range burst {
			wg.Go(func() { errs <- s.Take(ctx, tc.limit) })
		}
		for s.waiting.Load() < burst {
			time.Sleep(time.Millisecond)
		}
		s.mu.Unlock()
		wg.Wait()
		close(errs)
		admitted := 0
		for err := range errs {
			switch {
			case err == nil:
				admitted++
			case !errors.Is(err, ErrLimit):
				t.Fatalf("%s: %v", tc.key, err)
			}
		}
		if admitted != tc.admit {
			t.Errorf("%s (limit %d): %d of a burst of %d admitted, want %d", tc.key, tc.limit, admitted, burst, tc.admit)
		}
		if g := n.granted.Load() - granted; g != 1 {
			t.Errorf("%s: %d lease round trips granted slots for a burst of %d, want 1", tc.key, g, burst)
		}
		if got := leased(t, n.Ledger, tc.key, clk.Now()); got != tc.admit {
			t.Errorf("%s: %d slots leased, want %d", tc.key, got, tc.admit)
		}
	}
}
