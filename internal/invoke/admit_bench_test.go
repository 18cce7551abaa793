package invoke

import (
	"context"
	"testing"

	"github.com/flint-run/flint/internal/artifact"
)

// BenchmarkAdmit is the warm path's admission of a function with a reservation and one
// without: on a single node (no ledger), and on a cluster node that already holds the slot it
// needs (leased by the first admission; no round trip after it).
func BenchmarkAdmit(b *testing.B) {
	single := New(Registry{}, nil, nil, artifact.Limits{}, 1000, nil, nil)
	reserved := &Entry{counters: single.newCounters("r")}
	reserved.counters.reserved.Store(10)
	unreserved := &Entry{counters: single.newCounters("u")}
	// A published version of a function without a reservation, without provisioned
	// concurrency: the provisioned slots are looked at and passed over.
	version := &Entry{counters: unreserved.counters, prov: &provSlots{}}
	provisioned := &Entry{counters: reserved.counters, prov: &provSlots{}} // on its provisioned slot
	provisioned.prov.limit.Store(1)
	clustered := clusterOf(b, 1, true)[0]
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		s    *Service
		e    *Entry
	}{
		{"single/reserved", single, reserved}, {"single/unreserved", single, unreserved},
		{"single/version", single, version}, {"single/provisioned", single, provisioned},
		{"ledger/reserved", clustered.svc, clustered.f}, {"ledger/unreserved", clustered.svc, clustered.g},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			before := clustered.records.ops.Load()
			for b.Loop() {
				a, th := tt.s.admit(ctx, tt.e)
				if th != nil {
					b.Fatal(th)
				}
				a.release()
			}
			if ops := clustered.records.ops.Load() - before; ops > 2 { // the first lease: a read and a write
				b.Fatalf("%d ledger round trips", ops)
			}
		})
	}
}
