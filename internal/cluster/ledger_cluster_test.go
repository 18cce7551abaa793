// The ledger on three clustered stores (store.ClusterOptions):
//   go test -count=1 -v -run TestLedgerRealCluster ./internal/cluster/

package cluster

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/crypt"
	"github.com/flint-run/flint/internal/store"
)

func ledgerClusterPorts(t *testing.T, n int) []int {
	var out []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return out
}

// TestLedgerRealCluster: three clustered stores (embedded NATS servers joined by routes, R3
// buckets), one ledger per node on its own store: 12 attempts at once on a limit of 2 admit
// exactly 2, round after round; it logs what a lease change and a throttle cost through each
// node (the figures of docs/cluster-limits.md).
func TestLedgerRealCluster(t *testing.T) {
	b := make([]byte, crypt.KeySize)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	keys, err := crypt.LoadKeyring("", base64.StdEncoding.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	ports := ledgerClusterPorts(t, 3)
	addr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", ports[i]) }
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	stores := make([]*store.Store, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		var join []string
		for j := range 3 {
			if j != i {
				join = append(join, addr(j))
			}
		}
		wg.Go(func() {
			stores[i], errs[i] = store.Open(ctx, store.Options{Dir: t.TempDir(), Keyring: keys, Log: slog.New(slog.DiscardHandler),
				Cluster: &store.ClusterOptions{Node: fmt.Sprintf("n%d", i+1), Listen: addr(i), Join: join, Replicas: 3}})
		})
	}
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		t.Cleanup(s.Close)
	}
	var ledgers []*Ledger
	for i, s := range stores {
		recs, err := s.Leases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ledgers = append(ledgers, NewLedger(LedgerConfig{Node: fmt.Sprintf("n%d", i+1), Records: recs}))
	}
	// 12 attempts at once across the 3 nodes on a limit of 2.
	for round := range 3 {
		var admitted atomic.Int32
		start := make(chan struct{})
		for _, l := range ledgers {
			for range 4 {
				wg.Go(func() {
					<-start
					err := l.Slots(fmt.Sprintf("function.f%d", round)).Take(ctx, 2)
					if err == nil {
						admitted.Add(1)
					} else if !errors.Is(err, ErrLimit) {
						t.Error(err)
					}
				})
			}
		}
		close(start)
		wg.Wait()
		t.Logf("round %d: admitted %d of 12 across 3 R3 nodes", round, admitted.Load())
		if admitted.Load() != 2 {
			t.Errorf("admitted %d, want 2", admitted.Load())
		}
	}
	// One lease change through each node (get + CAS update), 300 each.
	for i, l := range ledgers {
		var d []time.Duration
		for k := range 300 {
			t0 := time.Now()
			if _, _, err := l.set(ctx, fmt.Sprintf("function.bench%d", i), 1000, 1+k%2, 0); err != nil {
				t.Fatal(err)
			}
			d = append(d, time.Since(t0))
		}
		slices.Sort(d)
		t.Logf("node n%d: lease change p50 %v p90 %v p99 %v", i+1, d[150], d[270], d[297])
	}
	// A throttle's cost: the get of a full limit.
	var d []time.Duration
	s := ledgers[0].Slots("function.full")
	if err := ledgers[1].Slots("function.full").Take(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for range 300 {
		t0 := time.Now()
		if err := s.Take(ctx, 1); !errors.Is(err, ErrLimit) {
			t.Fatal(err)
		}
		d = append(d, time.Since(t0))
	}
	slices.Sort(d)
	t.Logf("throttle (full limit, one get): p50 %v p90 %v", d[150], d[270])
}
