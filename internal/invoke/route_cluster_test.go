// Three real embedded NATS servers joined by cluster routes (store.ClusterOptions):
//   go test -race -count=1 ./internal/invoke/ -run TestRouteRealCluster -v
//   go test -count=1 ./internal/invoke/ -run "^$" -bench BenchmarkRouteRealCluster -benchtime 2000x -count 3

package invoke_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/artifact"
	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/crypt"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/sandbox/process"
	"github.com/flint-run/flint/internal/store"
	"github.com/flint-run/flint/internal/worker"
)

// freePorts returns n loopback addresses free a moment ago.
func freePorts(t testing.TB, n int) []string {
	var out []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

// newRealCluster: three embedded NATS servers joined by routes (store cluster mode), a node on each.
func newRealCluster(t testing.TB) *cluster {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	keys, err := crypt.LoadKeyring(filepath.Join(t.TempDir(), "master.key"), "")
	if err != nil {
		t.Fatal(err)
	}
	addrs := freePorts(t, 3)
	stores := make([]*store.Store, 3)
	errs := make([]error, 3)
	var owg sync.WaitGroup
	for i := range 3 {
		var join []string
		for j := range 3 {
			if j != i {
				join = append(join, addrs[j])
			}
		}
		owg.Add(1)
		go func() {
			defer owg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			stores[i], errs[i] = store.Open(ctx, store.Options{Dir: t.TempDir(), Log: log, Keyring: keys,
				Cluster: &store.ClusterOptions{Node: fmt.Sprintf("n%d", i+1), Listen: addrs[i], Join: join, Replicas: 3}})
		}()
	}
	owg.Wait()
	for i, st := range stores {
		if st != nil {
			t.Cleanup(st.Close)
		}
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
	}
	c := &cluster{st: stores[0]}
	ctx, cancel := context.WithCancel(context.Background())
	var first *artifact.Cache
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for i, st := range stores {
		workers := worker.New(worker.Config{Backend: process.New("127.0.0.1"), RuntimeDir: t.TempDir(), Region: "us-east-1",
			KeepAlive: time.Minute, InitTimeout: 10 * time.Second, Log: log})
		t.Cleanup(workers.Close)
		code, err := artifact.NewCache(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = code
		}
		svc := invoke.New(invoke.RegistryOf(st), workers, code, artifact.DefaultLimits(), 1000, nil, log)
		n := &node{name: string(rune('a' + i)), svc: svc, workers: workers}
		wg.Add(2)
		go func() { defer wg.Done(); _ = svc.Run(ctx) }()
		<-svc.Ready()
		go func() {
			defer wg.Done()
			if err := svc.Route(ctx, invoke.RouteConfig{Node: n.name, Conn: st.JetStream().Conn(),
				Every: 10 * time.Millisecond, Refresh: 200 * time.Millisecond}); err != nil {
				t.Error(err)
			}
		}()
		c.nodes = append(c.nodes, n)
	}
	c.plane = control.New(control.Config{Store: stores[0], View: c.nodes[0].svc, Account: lambda.Account{Region: "us-east-1", ID: "123456789012"},
		Log: log, Invoke: c.nodes[0].svc, Code: first, Limits: artifact.DefaultLimits()})
	return c
}

// TestRouteRealCluster: TestRouteToWarm's forward (5 MB each way, through two other nodes) and
// local cold start across real cluster routes, with the function's code in the R3 object store.
func TestRouteRealCluster(t *testing.T) {
	c := newRealCluster(t)
	a, b, cc := c.nodes[0], c.nodes[1], c.nodes[2]
	c.function(t, "fn")
	first, err := call(t, a, "fn", map[string]any{}, false)
	if err != nil || first.FunctionError != "" {
		t.Fatal(err, first.FunctionError)
	}
	c.warmOn(t, b, "fn", "a")
	c.warmOn(t, cc, "fn", "a")
	const big = 5 << 20
	for _, n := range []*node{b, cc} {
		start := time.Now()
		got, err := call(t, n, "fn", map[string]any{"pad": strings.Repeat("x", big), "want": big}, false)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("5 MB each way through %s: %v", n.name, time.Since(start))
		if got.answer.PID != first.answer.PID || got.answer.Got != big || len(got.answer.Pad) != big || n.envs() != 0 {
			t.Errorf("through %s: pid %d (a's %d), sizes %d/%d, envs %d", n.name, got.answer.PID, first.answer.PID, got.answer.Got, len(got.answer.Pad), n.envs())
		}
	}
	if st := a.svc.RouteStats(); st.Served != 2 {
		t.Errorf("a: %+v", st)
	}
	// a busy: b cold-starts (from the object store, through the routes) itself.
	busy := make(chan error, 1)
	go func() { _, err := call(t, a, "fn", map[string]any{"sleep": 3}, false); busy <- err }()
	waitFor(t, "a busy", func() bool { return a.workers.Stats().Busy == 1 })
	local, err := call(t, b, "fn", map[string]any{}, false)
	if err != nil || local.answer.PID == first.answer.PID || b.envs() != 1 {
		t.Errorf("b local: %v pid %d envs %d", err, local.answer.PID, b.envs())
	}
	if err := <-busy; err != nil {
		t.Fatal(err)
	}
}

// BenchmarkRouteRealCluster: BenchmarkRouteWarmInvoke's small event across real routes.
func BenchmarkRouteRealCluster(b *testing.B) {
	c := newRealCluster(b)
	a, bn := c.nodes[0], c.nodes[1]
	c.functionZip(b, "echo", goEcho(b))
	ctx := context.Background()
	respond := func(invoke.Response) {}
	if err := a.svc.Invoke(ctx, invoke.Request{Function: "echo", RequestID: "warm", Payload: []byte(`{}`)}, respond); err != nil {
		b.Fatal(err)
	}
	c.warmOn(b, bn, "echo", "a")
	for _, via := range []struct {
		name string
		n    *node
	}{{"local", a}, {"forwarded", bn}} {
		b.Run(via.name, func(b *testing.B) {
			ds := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				if err := via.n.svc.Invoke(ctx, invoke.Request{Function: "echo", RequestID: "bench", Payload: []byte(`{}`)}, respond); err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(start))
			}
			slices.Sort(ds)
			b.ReportMetric(float64(ds[len(ds)/2].Microseconds()), "p50-µs")
			if bn.envs() != 0 {
				b.Fatalf("b started %d environments", bn.envs())
			}
		})
	}
}
