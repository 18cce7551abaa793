package worker

import (
	"context"
	"errors"
	"runtime"
)

func (m *Manager) provision() {
	m.mu.Lock()
	pools := make([]*Pool, 0, len(m.pools))
	for p := range m.pools {
		pools = append(pools, p)
	}
	m.mu.Unlock()
	for _, p := range pools {
		p.provision()
	}
}

// SetProvisioned sets how many environments the pool keeps initialized ahead of demand.
func (p *Pool) SetProvisioned(n int) {
	p.mu.Lock()
	p.provisioned = n
	p.mu.Unlock()
	select {
	case p.m.kick <- struct{}{}:
	default:
	}
}

// Provisioned reports the desired count and how many provisioned environments are ready.
func (p *Pool) Provisioned() (desired, ready int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for e := range p.all {
		if e.provisioned && (e.state.idle() || e.state == stateBusy) {
			ready++
		}
	}
	return p.provisioned, ready
}

// provision starts the provisioned environments a pool lacks and retires the extra idle ones.
func (p *Pool) provision() {
	p.mu.Lock()
	if p.retired {
		p.mu.Unlock()
		return
	}
	have := p.provisionedHave()
	var extra []*env
	for i := 0; have > p.provisioned && i < len(p.idle); {
		if e := p.idle[i]; e.provisioned {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			e.markAborted("provisioned concurrency lowered")
			e.to(stateDead)
			extra = append(extra, e)
			have--
			continue
		}
		i++
	}
	missing := p.provisioned - have
	p.provPending += max(missing, 0)
	target := p.provisioned
	p.mu.Unlock()
	for _, e := range extra {
		e.abort("provisioned concurrency lowered")
	}
	for range missing {
		p.m.wg.Add(1)
		go func() {
			defer p.m.wg.Done()
			p.prewarm(target)
		}()
	}
}

// prewarm cold-starts one provisioned environment and parks it idle, once one of the
// manager's provisioning slots is free and if it is still wanted then; target is the pool's
// provisioned count when the start was decided.
func (p *Pool) prewarm(target int) {
	p.m.provSlots <- struct{}{}
	defer func() { <-p.m.provSlots }()
	// No longer pending once started, in the same step as the environment starts counting as
	// live (onLive, under p.mu: a provisioner run in between counted it twice and retired
	// another), or once given up, before the slot goes to the next: provisionedHave counts each
	// environment once.
	live := false
	onLive := func() { p.provPending--; live = true }
	done := func() {
		p.mu.Lock()
		if !live {
			p.provPending--
		}
		live = true
		p.mu.Unlock()
	}
	if !p.stillWanted(target) {
		done()
		p.log.Debug("provisioned environment no longer wanted")
		return
	}
	e, failed, err := p.start(context.Background(), Request{RequestID: newID() + newID()}, onLive)
	done()
	switch {
	case err != nil:
		if !errors.Is(err, ErrClosed) && !errors.Is(err, ErrAborted) { // not the platform's own stop
			p.log.Warn("provisioned environment did not start", "err", err)
		}
	case failed != nil:
		p.log.Warn("provisioned environment failed its init", "error_type", failed.result.ErrorType)
		p.store(failed, failed.initOut)
	default:
		// Init happened ahead of demand: its output is logged now and no invocation reports an
		// Init Duration (as with Lambda's provisioned concurrency).
		if len(e.initOut) > 0 {
			p.store(&call{e: e, start: p.m.now()}, e.initOut)
		}
		e.initDur, e.initOut = 0, nil
		e.release()
	}
}

// stillWanted reports whether a provisioned start that waited for its slot is still wanted: the
// pool may have been retired or its provisioned concurrency lowered below target meanwhile (the
// caller counts in provPending). Only after a lowering are the environments counted: while the
// count only rises, each queued start costs O(1), not O(environments).
func (p *Pool) stillWanted(target int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.retired:
		return false
	case p.provisioned >= target:
		return true // every start provision decided is still part of the count
	}
	return p.provisionedHave() <= p.provisioned
}

// provisionedHave counts the pool's provisioned environments, live or on their way: the
// pending starts (which include those starting now) and the started ones not dead. Callers
// hold p.mu.
func (p *Pool) provisionedHave() int {
	have := p.provPending
	for e := range p.all {
		if e.provisioned && e.state != stateDead && e.state != stateStarting {
			have++
		}
	}
	return have
}

// provisionParallel is how many provisioned environments may start at once: n, or by default a
// few per CPU, so that functions whose INIT waits (on the network, say) still provision in
// parallel while the sandboxes' own start-up work cannot crowd out the server.
func provisionParallel(n int) int {
	if n > 0 {
		return n
	}
	return 4 * runtime.GOMAXPROCS(0)
}
