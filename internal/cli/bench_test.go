package cli

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestBenchRun: exactly n invokes from c clients; failures and function errors are counted
// apart, the first failure is returned, and the percentiles come from the successful ones.
func TestBenchRun(t *testing.T) {
	var calls atomic.Int64
	boom := errors.New("boom")
	r, err := benchRun(100, 7, func() (time.Duration, bool, error) {
		k := calls.Add(1)
		switch {
		case k%10 == 0:
			return 0, false, boom
		case k%5 == 0:
			return time.Duration(k) * time.Millisecond, true, nil
		}
		return time.Duration(k) * time.Millisecond, false, nil
	})
	if calls.Load() != 100 {
		t.Errorf("%d invokes, want 100", calls.Load())
	}
	if !errors.Is(err, boom) || r.Failed != 10 || r.FunctionErrors != 10 || r.Invokes != 90 || r.Concurrency != 7 {
		t.Errorf("benchRun = %+v, %v; want 90 invokes, 10 failed, 10 function errors, error boom", r, err)
	}
	if !(r.P50us <= r.P90us && r.P90us <= r.P99us && r.P99us <= r.MaxUs) || r.MaxUs != 99_000 || r.PerSecond <= 0 {
		t.Errorf("percentiles p50 %d p90 %d p99 %d max %d (want ordered, max 99000 µs), %.0f/s", r.P50us, r.P90us, r.P99us, r.MaxUs, r.PerSecond)
	}
	if r, err := benchRun(0, 3, nil); err != nil || r.Invokes != 0 {
		t.Errorf("no invokes: %+v, %v", r, err)
	}
}
