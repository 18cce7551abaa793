package sandbox

import (
	"context"
	"errors"
	"sync"
)

// Guard is the part of an Instance that every backend keeps alike: whether it was started and
// destroyed, how it ended, and the rules that go with them. A backend embeds a Guard in its
// instance type (the zero value is ready) and gets Wait from it; its Start, Destroy and
// optional capabilities go through Lock, MarkStarted, MarkDestroyed and Exited. So that:
//   - calls that change the environment (Start, Freeze, Thaw, EndInit, …) run one at a time and
//     are refused with ErrDestroyed once Destroy has begun, however the worker's goroutines
//     interleave them;
//   - Destroy tears down once: later and concurrent calls return nil at once;
//   - Wait answers "not started" before Start, and afterwards the same Exit to every caller,
//     before and after Destroy.
//
// It is embedded rather than wrapped around an Instance: a wrapper would hide the instance's
// optional capabilities from type assertions (or claim them all), and would add an interface
// call to Freeze, Thaw and MaxMemoryUsed on the warm path.
type Guard struct {
	mu        sync.Mutex
	started   bool
	destroyed bool
	exited    bool
	exit      Exit          // valid once exited
	done      chan struct{} // closed by Exited; made on first use
}

// ErrNotStarted is Wait's error before Start.
var ErrNotStarted = errors.New("sandbox: instance not started")

// errStarted is Start's error the second time.
var errStarted = errors.New("already started")

// Lock begins a call that changes the instance: such calls are serialised with each other and
// with Destroy's start. Once Destroy has begun it returns ErrDestroyed and holds nothing;
// otherwise the caller must Unlock.
func (g *Guard) Lock() error {
	g.mu.Lock()
	if g.destroyed {
		g.mu.Unlock()
		return ErrDestroyed
	}
	return nil
}

// Unlock ends a call begun by Lock.
func (g *Guard) Unlock() { g.mu.Unlock() }

// MarkStarted records, between Lock and Unlock, that the environment's main process is
// started (or being started): from then on Wait waits for Exited, and the backend must call
// Exited once that process is gone. It refuses a second Start.
func (g *Guard) MarkStarted() error {
	if g.started {
		return errStarted
	}
	g.started = true
	return nil
}

// Started reports, between Lock and Unlock, whether MarkStarted was called.
func (g *Guard) Started() bool { return g.started }

// Exited records how the environment's main process ended and releases every Wait. The
// backend calls it once, from whatever reaps that process.
func (g *Guard) Exited(e Exit) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.exited {
		return
	}
	g.exit, g.exited = e, true
	if g.done == nil {
		g.done = make(chan struct{})
	}
	close(g.done)
}

// Done is closed once Exited has been called.
func (g *Guard) Done() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done == nil {
		g.done = make(chan struct{})
	}
	return g.done
}

// Exit is how the environment ended, valid once Done is closed.
func (g *Guard) Exit() Exit {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.exit
}

// Wait blocks until the environment's main process has exited (or ctx ends). It is
// Instance.Wait for every backend that embeds a Guard.
func (g *Guard) Wait(ctx context.Context) (Exit, error) {
	g.mu.Lock()
	if !g.started {
		g.mu.Unlock()
		return Exit{}, ErrNotStarted
	}
	if g.done == nil {
		g.done = make(chan struct{})
	}
	done := g.done
	g.mu.Unlock()
	select {
	case <-done:
		return g.Exit(), nil
	case <-ctx.Done():
		return Exit{}, ctx.Err()
	}
}

// MarkDestroyed begins Destroy. Only the first call gets first true: it alone tears down,
// every other Destroy returns nil at once. It waits for a call between Lock and Unlock to end,
// and refuses every later one. started says whether the environment was started (whether
// there is a process to kill and Exited will come).
func (g *Guard) MarkDestroyed() (first, started bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.destroyed {
		return false, g.started
	}
	g.destroyed = true
	return true, g.started
}
