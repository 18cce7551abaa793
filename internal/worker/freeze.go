package worker

import (
	"context"
	"time"

	"github.com/flint-run/flint/internal/sandbox"
)

// freezeIdle freezes environments idle for longer than FreezeAfter.
func (m *Manager) freezeIdle(now time.Time) {
	var candidates []*env
	m.mu.Lock()
	for p := range m.pools {
		p.mu.Lock()
		for _, e := range p.idle {
			// Not while telemetry waits to reach an extension in it: the delivery would wait
			// for the next invocation's thaw.
			if e.state == stateIdle && now.Sub(e.lastUsed) >= m.cfg.FreezeAfter && !e.api.TelemetryBusy() {
				candidates = append(candidates, e)
			}
		}
		p.mu.Unlock()
	}
	m.mu.Unlock()
	for _, e := range candidates {
		e.freeze()
	}
}

// freeze suspends an idle environment (if its sandbox can).
func (e *env) freeze() {
	fz, ok := e.inst.(sandbox.Freezer)
	if !ok {
		return
	}
	e.fmu.Lock()
	defer e.fmu.Unlock()
	// Marked Frozen and suspended before it is, under the pool's lock that acquire takes to make
	// it busy: an invocation that acquires it from now on sees it suspended, and its thaw waits
	// on fmu for the freeze to finish. (Marked after, an acquire in between would run the
	// invocation on an environment being frozen, stuck until its timeout.)
	e.p.mu.Lock()
	idle := e.state == stateIdle
	if idle {
		e.to(stateFrozen)
		e.suspended.Store(true)
	}
	e.p.mu.Unlock()
	if !idle {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := fz.Freeze(ctx); err != nil {
		e.p.log.Warn("freeze environment", "env", e.id, "err", err)
		if err := fz.Thaw(ctx); err != nil { // leave it runnable, or make it go
			e.p.log.Warn("thaw after a failed freeze", "env", e.id, "err", err)
			e.abort("freeze failed")
			return
		}
		e.suspended.Store(false)
		e.p.mu.Lock()
		if e.state == stateFrozen { // not acquired meanwhile
			e.to(stateIdle)
		}
		e.p.mu.Unlock()
	}
}

// thaw resumes a suspended environment before it gets an invocation. An environment acquired
// Frozen is Busy from then on, its sandbox suspended until this returns.
func (e *env) thaw() error {
	if !e.suspended.Load() {
		return nil
	}
	e.fmu.Lock()
	defer e.fmu.Unlock()
	if !e.suspended.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.inst.(sandbox.Freezer).Thaw(ctx); err != nil {
		return err
	}
	e.suspended.Store(false)
	return nil
}
