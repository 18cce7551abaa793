package worker

import (
	"context"
	"errors"
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
	have := p.provPending
	var extra []*env
	for e := range p.all {
		if e.provisioned && e.state != stateDead {
			have++
		}
	}
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
	p.mu.Unlock()
	for _, e := range extra {
		e.abort("provisioned concurrency lowered")
	}
	for range missing {
		p.m.wg.Add(1)
		go func() {
			defer p.m.wg.Done()
			p.prewarm()
		}()
	}
}

// prewarm cold-starts one provisioned environment and parks it idle.
func (p *Pool) prewarm() {
	defer func() {
		p.mu.Lock()
		p.provPending--
		p.mu.Unlock()
	}()
	e, failed, err := p.start(context.Background(), Request{RequestID: newID() + newID()}, true)
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
		if len(e.initOut) > 0 && p.m.cfg.Logs != nil {
			p.m.cfg.Logs.Append(p.fn.Name, e.initOut)
		}
		e.initDur, e.initOut = 0, nil
		e.release()
	}
}
