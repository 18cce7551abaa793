package sandbox

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestGuard(t *testing.T) {
	ctx := context.Background()
	t.Run("Wait before Start", func(t *testing.T) {
		var g Guard
		if _, err := g.Wait(ctx); !errors.Is(err, ErrNotStarted) {
			t.Errorf("Wait = %v, want ErrNotStarted", err)
		}
	})

	t.Run("one Start; Wait gets the exit, before and after Destroy", func(t *testing.T) {
		var g Guard
		if err := g.Lock(); err != nil {
			t.Fatal(err)
		}
		if err := g.MarkStarted(); err != nil {
			t.Fatal(err)
		}
		if err := g.MarkStarted(); err == nil {
			t.Error("second MarkStarted succeeded")
		}
		g.Unlock()
		short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		defer cancel()
		if _, err := g.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Wait before the exit = %v, want the context's error", err)
		}
		got := make(chan Exit)
		go func() { e, _ := g.Wait(ctx); got <- e }()
		want := Exit{Code: -1, Signal: "killed", At: time.Unix(1, 0)}
		g.Exited(want)
		g.Exited(Exit{Code: 3}) // a second report changes nothing
		if e := <-got; e != want {
			t.Errorf("Wait = %+v, want %+v", e, want)
		}
		first, started := g.MarkDestroyed()
		if !first || !started {
			t.Errorf("MarkDestroyed = %v, %v; want true, true", first, started)
		}
		if e, err := g.Wait(ctx); err != nil || e != want {
			t.Errorf("Wait after Destroy = %+v, %v; want %+v", e, err, want)
		}
	})

	t.Run("Destroy once; nothing changes the instance after it", func(t *testing.T) {
		var g Guard
		if first, started := g.MarkDestroyed(); !first || started {
			t.Errorf("MarkDestroyed = %v, %v; want true, false", first, started)
		}
		if first, _ := g.MarkDestroyed(); first {
			t.Error("second MarkDestroyed was first")
		}
		if err := g.Lock(); !errors.Is(err, ErrDestroyed) {
			t.Errorf("Lock after Destroy = %v, want ErrDestroyed", err)
		}
	})

	t.Run("Destroy waits for a call in progress", func(t *testing.T) {
		var g Guard
		if err := g.Lock(); err != nil {
			t.Fatal(err)
		}
		marked := make(chan struct{})
		go func() { g.MarkDestroyed(); close(marked) }()
		select {
		case <-marked:
			t.Fatal("MarkDestroyed returned while a call held the instance")
		case <-time.After(20 * time.Millisecond):
		}
		g.Unlock()
		<-marked
	})
}
