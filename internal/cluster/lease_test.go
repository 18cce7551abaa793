package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// severable is the real store's lane leases as one node reaches them: cut, every round trip
// fails at once (a node that lost the cluster's quorum); hung, every round trip waits for its
// context (a node whose requests go unanswered).
type severable struct {
	HolderRecords
	cut, hung atomic.Bool
}

func (s *severable) block(ctx context.Context) error {
	switch {
	case s.cut.Load():
		return errCut
	case s.hung.Load():
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (s *severable) Get(ctx context.Context, key string) (json.RawMessage, uint64, error) {
	if err := s.block(ctx); err != nil {
		return nil, 0, err
	}
	return s.HolderRecords.Get(ctx, key)
}

func (s *severable) Create(ctx context.Context, key string, doc json.RawMessage) (uint64, error) {
	if err := s.block(ctx); err != nil {
		return 0, err
	}
	return s.HolderRecords.Create(ctx, key, doc)
}

func (s *severable) Update(ctx context.Context, key string, doc json.RawMessage, rev uint64) (uint64, error) {
	if err := s.block(ctx); err != nil {
		return 0, err
	}
	return s.HolderRecords.Update(ctx, key, doc, rev)
}

// Short enough for a quick test, long enough for a loaded machine: a round trip to the
// embedded store takes well under a millisecond.
const (
	testTTL  = 2 * time.Second
	testTick = 100 * time.Millisecond
)

// leaseNode is one node of a lease test: its Leases on the shared bucket, reached through
// severable records.
type leaseNode struct {
	name    string
	leases  *Leases
	records *severable
}

func leaseNodes(t *testing.T, names ...string) []*leaseNode {
	t.Helper()
	st := openStore(t)
	recs, err := st.LaneLeases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []*leaseNode
	for _, n := range names {
		r := &severable{HolderRecords: recs}
		out = append(out, &leaseNode{name: n, records: r,
			leases: NewLeases(LeaseConfig{Node: n, Records: r, TTL: testTTL, Tick: testTick, Log: testLog(t, n)})})
	}
	return out
}

// span is one run of the held work on one node.
type span struct {
	node       string
	start, end time.Time
}

// work records every run of the work a lease guards, and how many run at once.
type work struct {
	mu      sync.Mutex
	spans   []span
	running map[string]bool
	overlap []string // runs that began while another node's was running
}

func (w *work) run(node string) func(ctx context.Context) {
	return func(ctx context.Context) {
		w.mu.Lock()
		if w.running == nil {
			w.running = map[string]bool{}
		}
		for other := range w.running {
			w.overlap = append(w.overlap, fmt.Sprintf("%s began while %s ran", node, other))
		}
		w.running[node] = true
		i := len(w.spans)
		w.spans = append(w.spans, span{node: node, start: time.Now()})
		w.mu.Unlock()
		<-ctx.Done()
		w.mu.Lock()
		delete(w.running, node)
		w.spans[i].end = time.Now()
		w.mu.Unlock()
	}
}

// holder returns the node whose run is running ("" when none) and how many runs began.
func (w *work) holder() (string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for n := range w.running {
		return n, len(w.spans)
	}
	return "", len(w.spans)
}

func (w *work) last() span {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.spans[len(w.spans)-1]
}

func (w *work) check(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.overlap) > 0 {
		t.Errorf("the work ran on two nodes at once: %v", w.overlap)
	}
}

func waitUntil(t *testing.T, bound time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, bound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// holdOn starts node's Hold of key with w's work; the returned function stops it and waits.
func holdOn(n *leaseNode, key string, w *work) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.leases.Hold(ctx, key, w.run(n.name))
	}()
	return func() { cancel(); <-done }
}

// TestLeaseOneHolder: three nodes hold one lease; exactly one runs the work, it keeps it for
// several TTLs (renewals), never two at once; a holder that stops cleanly releases it and
// another node takes it within a few ticks, not after the TTL.
func TestLeaseOneHolder(t *testing.T) {
	nodes := leaseNodes(t, "n1", "n2", "n3")
	var w work
	stops := map[string]func(){}
	for _, n := range nodes {
		stops[n.name] = holdOn(n, "m1", &w)
	}
	defer func() {
		for _, s := range stops {
			s()
		}
	}()
	waitUntil(t, 10*time.Second, "one node runs the work", func() bool { h, _ := w.holder(); return h != "" })
	first, _ := w.holder()
	time.Sleep(2*testTTL + testTTL/2)
	if h, runs := w.holder(); h != first || runs != 1 {
		t.Fatalf("after 2.5 TTLs: held by %q after %d runs; want %s's one run (renewals keep it)", h, runs, first)
	}
	if got, err := nodes[0].leases.Holder(context.Background(), "m1"); err != nil || got != first {
		t.Fatalf("the record names %q, %v; want %s", got, err, first)
	}

	t0 := time.Now()
	stops[first]()
	delete(stops, first)
	waitUntil(t, testTTL, "another node takes the released lease", func() bool { h, _ := w.holder(); return h != "" && h != first })
	second, _ := w.holder()
	t.Logf("%s released the lease; %s ran the work %v later", first, second, time.Since(t0).Round(time.Millisecond))
	w.check(t)
}

// TestLeaseTakeover: a holder cut off from the bucket (every round trip failing, or hanging)
// stops its work before the TTL is over, and another node takes the lease once it has seen
// its record unchanged for the TTL, never while the first still runs. When the first node
// reaches the bucket again it follows: the lease stays with the new holder.
func TestLeaseTakeover(t *testing.T) {
	for _, mode := range []string{"cut", "hung"} {
		t.Run(mode, func(t *testing.T) {
			nodes := leaseNodes(t, "n1", "n2", "n3")
			var w work
			byName := map[string]*leaseNode{}
			for _, n := range nodes {
				byName[n.name] = n
				defer holdOn(n, "m1", &w)()
			}
			waitUntil(t, 10*time.Second, "one node runs the work", func() bool { h, _ := w.holder(); return h != "" })
			old, _ := w.holder()
			time.Sleep(testTTL / 2) // some renewals
			t0 := time.Now()
			if mode == "cut" {
				byName[old].records.cut.Store(true)
			} else {
				byName[old].records.hung.Store(true)
			}
			waitUntil(t, 3*testTTL, "another node runs the work", func() bool { h, _ := w.holder(); return h != "" && h != old })
			moved := time.Since(t0)
			next, _ := w.holder()
			w.mu.Lock()
			stopped := w.spans[0].end
			w.mu.Unlock()
			started := w.last().start
			t.Logf("%s %s: its work stopped %v after, %s took over %v after (TTL %v, tick %v)", old, mode,
				stopped.Sub(t0).Round(time.Millisecond), next, moved.Round(time.Millisecond), testTTL, testTick)
			if !stopped.Before(started) {
				t.Errorf("the old holder's work ended %v, after the new holder's began %v", stopped, started)
			}
			// It stops TTL − 2·tick after its last renewal, before t0; only a miss by far fails
			// here (the ordering above is what matters).
			if stopped.Sub(t0) > 2*testTTL {
				t.Errorf("the cut-off holder ran %v after it was cut off; it must stop within TTL − 2·tick of its last renewal", stopped.Sub(t0))
			}
			// Taking over needs the record unchanged for a whole TTL.
			if moved < testTTL-testTTL/3 {
				t.Errorf("taken over %v after the holder was cut off: sooner than TTL − TTL/3 after its last renewal", moved)
			}

			byName[old].records.cut.Store(false)
			byName[old].records.hung.Store(false)
			time.Sleep(testTTL + testTTL/2)
			if h, _ := w.holder(); h != next {
				t.Errorf("after %s came back the work runs on %q, want %s", old, h, next)
			}
			w.check(t)
		})
	}
}

// TestLeaseSpread: leases created one after another go to nodes holding none first.
func TestLeaseSpread(t *testing.T) {
	nodes := leaseNodes(t, "n1", "n2", "n3")
	works := make([]*work, 3)
	for i := range works {
		works[i] = &work{}
		key := fmt.Sprintf("m%d", i)
		for _, n := range nodes {
			defer holdOn(n, key, works[i])()
		}
		waitUntil(t, 10*time.Second, key+" held", func() bool { h, _ := works[i].holder(); return h != "" })
	}
	var holders []string
	for _, w := range works {
		h, _ := w.holder()
		holders = append(holders, h)
	}
	sorted := slices.Clone(holders)
	slices.Sort(sorted)
	if !slices.Equal(sorted, []string{"n1", "n2", "n3"}) {
		t.Errorf("3 leases taken one after another by %v; want one per node", holders)
	}
}

// TestLeaseDrop: a dropped lease's record is gone.
func TestLeaseDrop(t *testing.T) {
	n := leaseNodes(t, "n1")[0]
	var w work
	stop := holdOn(n, "m1", &w)
	waitUntil(t, 10*time.Second, "held", func() bool { h, _ := w.holder(); return h != "" })
	stop()
	if got, err := n.leases.Holder(context.Background(), "m1"); err != nil || got != "" {
		t.Fatalf("after a clean stop the record names %q, %v; want released", got, err)
	}
	if err := n.leases.Drop(context.Background(), "m1"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.leases.Holder(context.Background(), "m1"); err == nil {
		t.Fatal("the dropped lease is still there")
	}
}

// testLog routes a node's log lines to the test's output.
func testLog(t *testing.T, node string) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", node)
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
