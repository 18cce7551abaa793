package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// TestScheduleStateOnlyMovesForward: schedulers on several nodes record the occurrences they
// fired; a slow one recording an older occurrence after a newer one must not move the record
// back, whatever the interleaving.
func TestScheduleStateOnlyMovesForward(t *testing.T) {
	s, err := openStore(t, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st := s.Schedules()
	base := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	at := func(min int) lambda.ScheduleState {
		return lambda.ScheduleState{LastFire: base.Add(time.Duration(min) * time.Minute)}
	}

	if err := st.AdvanceState(ctx, "default", "s", at(2)); err != nil {
		t.Fatal(err)
	}
	if err := st.AdvanceState(ctx, "default", "s", at(1)); err != nil {
		t.Fatal(err)
	}
	if got, err := st.State(ctx, "default", "s"); err != nil || !got.LastFire.Equal(at(2).LastFire) {
		t.Fatalf("after an older write: %v, %v; want %v", got.LastFire, err, at(2).LastFire)
	}

	// Many writers at once, each with its own occurrence: the newest stands.
	var wg sync.WaitGroup
	for i := 3; i <= 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := st.AdvanceState(ctx, "default", "s", at(i)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got, err := st.State(ctx, "default", "s"); err != nil || !got.LastFire.Equal(at(20).LastFire) {
		t.Fatalf("after concurrent writes: %v, %v; want %v", got.LastFire, err, at(20).LastFire)
	}
}
