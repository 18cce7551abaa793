package worker

import (
	"time"
)

// budgetWarnEvery spaces the operator warnings about memory-budget throttles.
const budgetWarnEvery = 10 * time.Second

// reserve takes mb of the node's memory budget for a new environment, evicting idle
// environments least recently used first when the budget is full.
func (m *Manager) reserve(mb int) error {
	for {
		m.mu.Lock()
		if m.cfg.MemoryBudgetMB <= 0 || m.usedMB+mb <= m.cfg.MemoryBudgetMB {
			m.usedMB += mb
			m.mu.Unlock()
			return nil
		}
		victim := m.takeLRUIdleLocked()
		used := m.usedMB
		warn := victim == nil && m.now().Sub(m.budgetWarned) >= budgetWarnEvery
		if warn {
			m.budgetWarned = m.now()
		}
		m.mu.Unlock()
		if victim == nil {
			if warn {
				// The client only sees AWS's TooManyRequestsException "Rate Exceeded.": say here
				// which limit it was, at most every budgetWarnEvery.
				m.log.Warn("invocations throttled: the node's memory budget is taken by busy environments (raise --memory-budget)",
					"budget_mb", m.cfg.MemoryBudgetMB, "busy_mb", used, "asked_mb", mb)
			}
			return ErrNoCapacity
		}
		victim.abort("evicted")
	}
}

func (m *Manager) release(mb int) {
	m.mu.Lock()
	m.usedMB -= mb
	m.mu.Unlock()
}

// takeLRUIdleLocked removes the least recently used idle environment of any pool from its pool
// and marks it dead; the caller destroys it. Lock order: Manager.mu, then Pool.mu.
func (m *Manager) takeLRUIdleLocked() *env {
	for {
		var victim *env
		for p := range m.pools {
			p.mu.Lock()
			for _, e := range p.idle { // oldest first
				if !e.provisioned {
					if victim == nil || e.lastUsed.Before(victim.lastUsed) {
						victim = e
					}
					break
				}
			}
			p.mu.Unlock()
		}
		if victim == nil {
			return nil
		}
		p := victim.p
		p.mu.Lock()
		for i, e := range p.idle {
			if e == victim {
				p.idle = append(p.idle[:i], p.idle[i+1:]...)
				victim.markAborted("evicted")
				victim.to(stateDead)
				p.mu.Unlock()
				return victim
			}
		}
		p.mu.Unlock() // acquired meanwhile: look again
	}
}
