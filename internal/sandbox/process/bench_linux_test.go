package process

import (
	"context"
	"os"
	"testing"

	"github.com/flint-run/flint/internal/sandbox"
)

// BenchmarkMaxMemoryUsed times what every REPORT line costs the process sandbox: reading the
// runtime's VmHWM from /proc/PID/status (one pread, which makes the kernel generate the file).
func BenchmarkMaxMemoryUsed(b *testing.B) {
	_, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	inst, err := New("127.0.0.1").Create(context.Background(), sandbox.Spec{ID: "bench", TaskDir: b.TempDir(),
		RuntimeDir: b.TempDir(), Argv: []string{"/bin/sh", "-c", "exec sleep 60"}, Env: []string{"PATH=/usr/bin:/bin"},
		MemoryMB: 128, EphemeralStorageMB: 512, Output: w})
	if err != nil {
		b.Fatal(err)
	}
	defer inst.Destroy(context.Background())
	if err := inst.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	mr := inst.(sandbox.MemoryReporter)
	if peak, err := mr.MaxMemoryUsed(); err != nil || peak == 0 {
		b.Fatalf("MaxMemoryUsed = %d, %v; want a peak", peak, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mr.MaxMemoryUsed(); err != nil {
			b.Fatal(err)
		}
	}
}
