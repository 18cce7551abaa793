package worker

// Recycled is what Pool.Recycle did: how many idle environments it destroyed, and those it left
// alone (running or starting an invocation, or kept for provisioned concurrency).
type Recycled struct {
	Retired, Busy, Starting, Provisioned int
}

// Add sums two pools' counts (an alias may route to two versions).
func (r Recycled) Add(o Recycled) Recycled {
	return Recycled{r.Retired + o.Retired, r.Busy + o.Busy, r.Starting + o.Starting, r.Provisioned + o.Provisioned}
}

// Recycle destroys the pool's idle on-demand environments now, so that the next invocation
// starts a new one: `flint bench --cold` measures cold starts this way without changing the
// function's configuration (which would retire the pool and change its RevisionId). Busy and
// starting environments keep their invocations and stay; idle provisioned environments stay
// too (they are part of the configuration; the provisioner would only start them again).
func (p *Pool) Recycle() Recycled {
	var r Recycled
	p.mu.Lock()
	victims := make([]*env, 0, len(p.idle))
	keep := p.idle[:0]
	for _, e := range p.idle {
		if e.provisioned {
			keep = append(keep, e)
			continue
		}
		e.markAborted("recycled")
		e.to(stateDead)
		victims = append(victims, e)
	}
	clear(p.idle[len(keep):]) // no dead environment stays reachable from the backing array
	p.idle = keep
	for e := range p.all {
		switch {
		case e.state == stateBusy:
			r.Busy++
		case e.state == stateStarting:
			r.Starting++
		case e.provisioned && e.state.idle():
			r.Provisioned++
		}
	}
	p.mu.Unlock()
	// Destroyed before the answer: the caller's next invoke then cold-starts on a host that no
	// longer runs (or budgets memory for) the old environments.
	for _, e := range victims {
		e.abort("recycled")
	}
	r.Retired = len(victims)
	return r
}
