package worker

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flint-run/flint/internal/linger"
	"github.com/flint-run/flint/internal/sandbox"
)

// Manager owns every pool and environment.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	ports []sandbox.Port // of cfg.Services, for every Spec

	mu     sync.Mutex
	pools  map[*Pool]struct{}
	closed bool
	usedMB int            // memory budget taken by live environments
	wg     sync.WaitGroup // environment goroutines

	budgetWarned time.Time // when a memory-budget throttle was last logged
	hostsChecked sync.Once // whether the host names sandbox.localdomain (checkLocaldomain)

	spares *spares      // pre-initialized runtimes
	bound  atomic.Int64 // cold starts bound to one

	kick        chan struct{}        // provisioned concurrency changed
	records     *linger.Queue[*call] // finished invocations whose log record is still to be written
	quit        chan struct{}
	recordsDone chan struct{}

	// calls counts Pool.Invoke calls in progress: Close waits for them (their log records go
	// through records) before it stops the record writer. callsIdle is signalled when the count
	// drops to 0 once closing is set.
	calls     atomic.Int64
	closing   atomic.Bool
	callsIdle chan struct{}
	closeOnce sync.Once

	// provSlots bounds the provisioned environments starting at once (Config.ProvisionParallel).
	provSlots chan struct{}
}

// New returns a Manager; Run reaps idle environments and Close destroys them all (and stops the
// log-record writer New starts).
func New(cfg Config) *Manager {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Manager{cfg: cfg, log: cfg.Log, now: cfg.Now, pools: make(map[*Pool]struct{}),
		kick: make(chan struct{}, 1), records: linger.New[*call](recordLinger, 4096), quit: make(chan struct{}), recordsDone: make(chan struct{}),
		callsIdle: make(chan struct{}, 1), provSlots: make(chan struct{}, provisionParallel(cfg.ProvisionParallel))}
	m.spares = newSpares(m)
	for _, svc := range cfg.Services {
		m.ports = append(m.ports, svc.Port)
	}
	go m.writeRecords() // stopped by Close
	return m
}

// Pool returns a new pool for fn. The caller retires it when fn changes.
func (m *Manager) Pool(fn Function) *Pool {
	p := &Pool{m: m, fn: fn, all: make(map[*env]struct{}),
		log: m.log.With("function", fn.Name, "version", fn.Version)}
	m.mu.Lock()
	m.pools[p] = struct{}{}
	m.mu.Unlock()
	return p
}

// Run reaps environments idle longer than the keep-alive until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	every := min(m.cfg.KeepAlive/4, 15*time.Second)
	reap := time.NewTicker(max(every, 10*time.Millisecond))
	defer reap.Stop()
	// Provisioned environments that died are replaced within a couple of seconds.
	prov := time.NewTicker(2 * time.Second)
	defer prov.Stop()
	var freeze <-chan time.Time
	if m.cfg.FreezeAfter > 0 {
		t := time.NewTicker(max(m.cfg.FreezeAfter/2, 5*time.Millisecond))
		defer t.Stop()
		freeze = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-reap.C:
			m.Reap(m.now())
			m.spares.trim(m.now())
		case <-prov.C:
			m.provision()
		case <-freeze:
			m.freezeIdle(m.now())
		case <-m.kick:
			m.provision()
		}
	}
}

// Stats counts environments by state.
type Stats struct {
	Starting, Idle, Busy int
	Provisioned          int // of those, kept for provisioned concurrency
	Frozen               int // of the idle ones, suspended by their sandbox
	// MemoryMB is the memory budget the live environments take (their MemorySize), BudgetMB the
	// node's budget (0: unbounded).
	MemoryMB, BudgetMB int
	// EvictableMB is the part of MemoryMB that idle environments (not provisioned) hold: a cold
	// start evicts them to make room, so it is room for one.
	EvictableMB int
	// Spares are the pre-initialized runtimes waiting; Bound counts the cold starts (since the
	// Manager was made) that were bound to one instead of starting a runtime.
	Spares int
	Bound  int64
}

// Stats reports environment counts across every pool.
func (m *Manager) Stats() Stats {
	s := Stats{Spares: m.spares.count(), Bound: m.bound.Load()}
	m.mu.Lock()
	defer m.mu.Unlock()
	s.MemoryMB, s.BudgetMB = m.usedMB, m.cfg.MemoryBudgetMB
	for p := range m.pools {
		p.mu.Lock()
		for e := range p.all {
			if e.provisioned && e.state != stateDead {
				s.Provisioned++
			}
			if e.suspended.Load() {
				s.Frozen++
			}
			switch e.state {
			case stateStarting:
				s.Starting++
			case stateIdle, stateFrozen:
				s.Idle++
				if !e.provisioned {
					s.EvictableMB += p.fn.MemoryMB
				}
			case stateBusy:
				s.Busy++
			}
		}
		p.mu.Unlock()
	}
	return s
}

// PoolStats counts one pool's environments by state (for metrics); a function version may
// have several pools for a moment (a retired one finishing its invocations).
type PoolStats struct {
	Function, Version                         string
	Starting, Idle, Busy, Frozen, Provisioned int
}

// Pools reports each pool's environments by state.
func (m *Manager) Pools() []PoolStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]PoolStats, 0, len(m.pools))
	for p := range m.pools {
		st := PoolStats{Function: p.fn.Name, Version: p.fn.Version}
		p.mu.Lock()
		for e := range p.all {
			if e.provisioned && e.state != stateDead {
				st.Provisioned++
			}
			switch e.state {
			case stateStarting:
				st.Starting++
			case stateIdle:
				st.Idle++
			case stateFrozen:
				st.Frozen++
			case stateBusy:
				st.Busy++
			}
		}
		p.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// closeCallsWait bounds how long Close waits for Invoke calls to return once every environment
// is destroyed (they return at once, unless a caller's respond blocks on a slow client).
const closeCallsWait = 5 * time.Second

// Close destroys every environment (invocations still running end with ErrAborted, their log
// records written), waits for their goroutines and for the Invoke calls in progress, then stops
// the record writer once it has handed every record to the LogSink. No environment starts after
// Close. The caller lets invocations finish first, if it wants them to (the server's shutdown
// grace). Calls after the first wait for it and do nothing.
func (m *Manager) Close() { m.closeOnce.Do(m.close) }

func (m *Manager) close() {
	m.closing.Store(true)
	m.mu.Lock()
	m.closed = true
	pools := make([]*Pool, 0, len(m.pools))
	for p := range m.pools {
		pools = append(pools, p)
	}
	m.mu.Unlock()
	m.spares.close()
	for _, p := range pools {
		p.retire(true)
	}
	// Once no Invoke is in progress no cold start is either (those of the provisioner are
	// counted in wg), so nothing adds to wg while it is waited for.
	t := time.NewTimer(closeCallsWait)
	defer t.Stop()
wait:
	for m.calls.Load() > 0 {
		select {
		case <-m.callsIdle:
		case <-t.C:
			m.log.Warn("invocations still returning after the environments were destroyed; their log records may be lost", "calls", m.calls.Load())
			break wait
		}
	}
	m.wg.Wait()
	close(m.quit)
	<-m.recordsDone
}

// endCall ends one Invoke call (see calls).
func (m *Manager) endCall() {
	if m.calls.Add(-1) == 0 && m.closing.Load() {
		select {
		case m.callsIdle <- struct{}{}:
		default:
		}
	}
}

// forget drops a retired pool from the Manager once its last environment is gone; until then
// the Manager still reaches its environments (Close, Stats).
func (m *Manager) forget(p *Pool) {
	m.mu.Lock()
	p.mu.Lock()
	if p.retired && len(p.all) == 0 {
		delete(m.pools, p)
	}
	p.mu.Unlock()
	m.mu.Unlock()
}
