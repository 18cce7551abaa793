package invoke

import (
	"context"
	"testing"

	"github.com/flint-run/flint/internal/artifact"
)

// BenchmarkAdmit is the warm path's admission: a function with a reservation and one without,
// on a single node (no ledger).
func BenchmarkAdmit(b *testing.B) {
	s := New(Registry{}, nil, nil, artifact.Limits{}, 1000, nil, nil)
	reserved := &Entry{counters: s.newCounters("r")}
	reserved.counters.reserved.Store(10)
	unreserved := &Entry{counters: s.newCounters("u")}
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		e    *Entry
	}{{"reserved", reserved}, {"unreserved", unreserved}} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				a, th := s.admit(ctx, tt.e)
				if th != nil {
					b.Fatal(th)
				}
				a.release()
			}
		})
	}
}
