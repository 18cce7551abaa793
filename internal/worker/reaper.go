package worker

import (
	"time"
)

// Reap destroys environments idle since before now-KeepAlive and returns how many.
func (m *Manager) Reap(now time.Time) int {
	var victims []*env
	m.mu.Lock()
	for p := range m.pools {
		p.mu.Lock()
		keep := p.idle[:0]
		for _, e := range p.idle {
			if !e.provisioned && now.Sub(e.lastUsed) >= m.cfg.KeepAlive {
				e.markAborted("reaped")
				e.to(stateDead)
				victims = append(victims, e)
				continue
			}
			keep = append(keep, e)
		}
		p.idle = keep
		p.mu.Unlock()
	}
	m.mu.Unlock()
	for _, e := range victims {
		e.abort("reaped")
	}
	return len(victims)
}
