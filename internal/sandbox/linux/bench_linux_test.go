package linux

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/sandbox"
)

// BenchmarkStart measures a cold start up to the runtime's exec (Create+Start), with a spare init
// ready (as between invokes of a steady server) and without spares (every init exec'd on demand).
// The runtime is /bin/true; Destroy is timed apart. The egress network's cases make veth pairs
// and nftables rules in the network namespace the benchmark runs in (and may turn IPv4
// forwarding on there): they run only with FLINT_BENCH_EGRESS=1, e.g. under unshare -n.
func BenchmarkStart(b *testing.B) {
	for _, bc := range []struct {
		name     string
		prespawn int
		network  string
	}{{"spare", 1, "none"}, {"no-spare", -1, "none"}, {"spare-egress", 1, "egress"}, {"no-spare-egress", -1, "egress"}} {
		b.Run(bc.name, func(b *testing.B) {
			if os.Geteuid() != 0 {
				b.Skip("needs root")
			}
			if bc.network == "egress" && os.Getenv("FLINT_BENCH_EGRESS") != "1" {
				b.Skip("FLINT_BENCH_EGRESS=1 runs it (it changes the network namespace it runs in)")
			}
			be := benchBackend(b, Config{Prespawn: bc.prespawn, Network: bc.network})
			ctx := context.Background()
			task := b.TempDir()
			waitSpare := func() {
				be.refill()
				for deadline := time.Now().Add(10 * time.Second); bc.prespawn > 0 && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
					be.mu.Lock()
					n := len(be.spares)
					be.mu.Unlock()
					if n > 0 {
						return
					}
				}
			}
			waitSpare()
			var create, start, destroy time.Duration
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				t0 := time.Now()
				inst, err := be.Create(ctx, sandbox.Spec{ID: fmt.Sprintf("b%d", n), TaskDir: task, RuntimeDir: task,
					Argv: []string{"/bin/true"}, MemoryMB: 128, EphemeralStorageMB: 512})
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := inst.Start(ctx); err != nil {
					b.Fatal(err)
				}
				t2 := time.Now()
				b.StopTimer()
				if err := inst.Destroy(ctx); err != nil {
					b.Fatal(err)
				}
				destroy += time.Since(t2)
				waitSpare()
				b.StartTimer()
				create += t1.Sub(t0)
				start += t2.Sub(t1)
			}
			b.ReportMetric(float64(create.Microseconds())/float64(b.N), "create-µs/op")
			b.ReportMetric(float64(start.Microseconds())/float64(b.N), "start-µs/op")
			b.ReportMetric(float64(destroy.Microseconds())/float64(b.N), "destroy-µs/op")
		})
	}
}

// BenchmarkBind measures what a cold start bound to a prestarted runtime pays in the sandbox:
// Bind (the function's limits, its code and layers mounted, the root entered, the variables
// handed over), up to the runtime's first read of them. The runtime is a shell waiting on its
// bind descriptor; prestarting and Destroy are not timed.
func BenchmarkBind(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	be := benchBackend(b, Config{Prespawn: -1})
	ctx := context.Background()
	task, opt := b.TempDir(), b.TempDir()
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	out := bufio.NewReader(r)
	line := func(want string) {
		if got, err := out.ReadString('\n'); err != nil || got != want+"\n" {
			b.Fatalf("runtime said %q (%v), want %q", got, err, want)
		}
	}
	var bind time.Duration
	for n := 0; n < b.N; n++ {
		inst, err := be.Prestart(ctx, sandbox.Spec{ID: fmt.Sprintf("b%d", n), RuntimeDir: task, Output: w,
			Argv: []string{"/bin/sh", "-c", "echo waiting; read -r line <&3; echo bound"}, MemoryMB: 128, EphemeralStorageMB: 512})
		if err != nil {
			b.Fatal(err)
		}
		line("waiting")
		t0 := time.Now()
		if err := inst.Bind(ctx, sandbox.Binding{TaskDir: task, OptDir: opt, MemoryMB: 256, EphemeralStorageMB: 512,
			Env: []string{"PATH=/usr/bin:/bin"}}); err != nil {
			b.Fatal(err)
		}
		line("bound")
		bind += time.Since(t0)
		if err := inst.Destroy(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(bind.Microseconds())/float64(b.N), "bind-µs/op")
}

// benchBackend returns a checked backend on a fresh state dir and cgroup parent of its own,
// closed (its cgroups removed) when the benchmark ends; a host that cannot run it skips.
func benchBackend(b *testing.B, cfg Config) *Backend {
	b.Helper()
	cfg.StateDir = b.TempDir()
	cfg.CgroupParent = fmt.Sprintf("flint-bench-%d-%d", os.Getpid(), time.Now().UnixNano())
	be, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = be.Close()
		for _, h := range be.cg.hier {
			_ = os.Remove(h.base)
		}
	})
	if err := be.Check(context.Background()); err != nil {
		b.Skip(err)
	}
	return be
}
