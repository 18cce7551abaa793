package invoke

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/flint-run/flint/internal/artifact"
	"github.com/flint-run/flint/internal/cluster"
	"github.com/flint-run/flint/internal/crypt"
	"github.com/flint-run/flint/internal/store"
)

// countedRecords is the real store's lease bucket, counting the round trips a node makes.
type countedRecords struct {
	cluster.LeaseRecords
	ops atomic.Int64
}

func (c *countedRecords) Get(ctx context.Context, key string) (json.RawMessage, uint64, error) {
	c.ops.Add(1)
	return c.LeaseRecords.Get(ctx, key)
}

func (c *countedRecords) Create(ctx context.Context, key string, doc json.RawMessage) (uint64, error) {
	c.ops.Add(1)
	return c.LeaseRecords.Create(ctx, key, doc)
}

func (c *countedRecords) Update(ctx context.Context, key string, doc json.RawMessage, rev uint64) (uint64, error) {
	c.ops.Add(1)
	return c.LeaseRecords.Update(ctx, key, doc, rev)
}

type node struct {
	svc     *Service
	records *countedRecords
	f, g    *Entry // f reserves 2; g has no reservation
}

// clusterOf returns n invocation services (the nodes of a cluster) whose ledgers share one
// real store's lease bucket, with an account limit of 5: function f reserves 2, so functions
// without a reservation share 3.
func clusterOf(t testing.TB, n int, ledger bool) []node {
	t.Helper()
	keys, err := crypt.LoadKeyring(filepath.Join(t.TempDir(), "master.key"), "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), store.Options{Dir: t.TempDir(), Keyring: keys, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	recs, err := st.Leases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []node
	for i := range n {
		svc := New(Registry{}, nil, nil, artifact.Limits{}, 5, nil, slog.New(slog.DiscardHandler))
		c := &countedRecords{LeaseRecords: recs}
		if ledger {
			svc.UseLedger(cluster.NewLedger(cluster.LedgerConfig{Node: string(rune('a' + i)), Records: c}))
		}
		// What apply does when the watch brings f (reserved 2) and g.
		svc.mu.Lock()
		fc, gc := svc.newCounters("f"), svc.newCounters("g")
		fc.reserved.Store(2)
		svc.counters["f"], svc.counters["g"] = fc, gc
		svc.recountLocked()
		svc.limitsChanged(fc)
		svc.mu.Unlock()
		out = append(out, node{svc: svc, records: c, f: &Entry{counters: fc}, g: &Entry{counters: gc}})
	}
	return out
}

// admitAll admits perNode invocations of the entry pick chooses on every node at once and
// returns the admissions and the throttles' reasons.
func admitAll(nodes []node, perNode int, pick func(node) *Entry) (admitted []admission, reasons map[string]int) {
	var mu sync.Mutex
	reasons = map[string]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, n := range nodes {
		for range perNode {
			wg.Go(func() {
				<-start
				a, th := n.svc.admit(context.Background(), pick(n))
				mu.Lock()
				defer mu.Unlock()
				if th != nil {
					reasons[th.Reason]++
					return
				}
				admitted = append(admitted, a)
			})
		}
	}
	close(start)
	wg.Wait()
	return admitted, reasons
}

// TestAdmitClusterWide: with a ledger, the limits are the cluster's: reserved concurrency 2
// admits 2 of 12 invocations tried at once on 3 nodes, and the account's unreserved pool of 3
// admits 3, each throttle with Lambda's reason. A node that holds the slots it needs admits
// again without a round trip to the ledger. Without the ledger (single-node admission on each)
// the same attempts admit 2 and 3 per node.
func TestAdmitClusterWide(t *testing.T) {
	for _, tt := range []struct {
		name   string
		ledger bool
		fWant  int
		gWant  int
	}{
		{name: "ledger", ledger: true, fWant: 2, gWant: 3},
		{name: "per node", ledger: false, fWant: 6, gWant: 9},
	} {
		t.Run(tt.name, func(t *testing.T) {
			nodes := clusterOf(t, 3, tt.ledger)
			for _, c := range []struct {
				fn     string
				pick   func(node) *Entry
				want   int
				reason string
			}{
				{"f", func(n node) *Entry { return n.f }, tt.fWant, ReasonReserved},
				{"g", func(n node) *Entry { return n.g }, tt.gWant, ReasonAccount},
			} {
				admitted, reasons := admitAll(nodes, 4, c.pick)
				if len(admitted) != c.want || reasons[c.reason] != 12-c.want || len(reasons) > 1 {
					t.Errorf("%s: %d of 12 admitted across 3 nodes, throttles %v; want %d admitted, the rest %s",
						c.fn, len(admitted), reasons, c.want, c.reason)
				}
				if !tt.ledger {
					for _, a := range admitted {
						a.release()
					}
					continue
				}
				// Every node that holds slots admits again on them without asking the ledger.
				before := int64(0)
				for _, n := range nodes {
					before += n.records.ops.Load()
				}
				for _, a := range admitted {
					a.release()
					again, th := a.owner(nodes).svc.admit(context.Background(), c.pick(a.owner(nodes)))
					if th != nil {
						t.Fatalf("%s: a node holding a free slot was throttled: %v", c.fn, th)
					}
					again.release()
				}
				after := int64(0)
				for _, n := range nodes {
					after += n.records.ops.Load()
				}
				if after != before {
					t.Errorf("%s: %d ledger round trips re-admitting on held slots, want 0", c.fn, after-before)
				}
			}
		})
	}
}

// owner is the node whose counters a is on.
func (a admission) owner(nodes []node) node {
	for _, n := range nodes {
		if a.c == n.f.counters || a.c == n.g.counters {
			return n
		}
	}
	panic("admission of no node")
}

// TestAdmitSingleNodeNoLedger: a node without a ledger creates no ledger slots and keeps its
// limits in memory, as before clusters.
func TestAdmitSingleNodeNoLedger(t *testing.T) {
	n := clusterOf(t, 1, false)[0]
	if n.f.counters.slots != nil || n.svc.account != nil {
		t.Fatal("a single node has ledger slots")
	}
	admitted, reasons := admitAll([]node{n}, 3, func(n node) *Entry { return n.f })
	if len(admitted) != 2 || reasons[ReasonReserved] != 1 {
		t.Fatalf("%d of 3 admitted, throttles %v; want 2 and 1 %s", len(admitted), reasons, ReasonReserved)
	}
	if n.records.ops.Load() != 0 {
		t.Fatalf("%d ledger round trips on a single node", n.records.ops.Load())
	}
}
