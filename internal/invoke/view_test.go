package invoke

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestWatermark: a writer waiting for its revision returns once the watch has applied that
// revision or a later one, and not before; a wait is bounded by its context.
func TestWatermark(t *testing.T) {
	tests := []struct {
		name     string
		applied  []uint64 // revisions the watch applies, in order, while the writer waits
		wait     uint64
		returned bool
	}{
		{name: "already applied", applied: nil, wait: 0, returned: true},
		{name: "exact revision", applied: []uint64{3, 4, 5}, wait: 5, returned: true},
		{name: "a later revision covers it", applied: []uint64{7}, wait: 5, returned: true},
		{name: "not yet", applied: []uint64{3, 4}, wait: 5, returned: false},
		{name: "old revisions do not move it back", applied: []uint64{6, 2}, wait: 6, returned: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w watermark
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- w.wait(ctx, tt.wait) }()
			for _, rev := range tt.applied {
				w.advance(rev)
			}
			// A wait that must return gets all the time a loaded machine needs; one that must
			// not is given a moment to prove it does not.
			patience := 10 * time.Second
			if !tt.returned {
				patience = 100 * time.Millisecond
			}
			select {
			case err := <-done:
				if !tt.returned || err != nil {
					t.Fatalf("wait(%d) after %v = %v; want it to keep waiting: %v", tt.wait, tt.applied, err, !tt.returned)
				}
			case <-time.After(patience):
				if tt.returned {
					t.Fatalf("wait(%d) after %v still waiting", tt.wait, tt.applied)
				}
				cancel()
				if err := <-done; !errors.Is(err, context.Canceled) {
					t.Fatalf("wait after cancel = %v, want context.Canceled", err)
				}
			}
		})
	}
}
