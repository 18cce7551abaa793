// Package worker owns execution environments: one pool per function version configuration, the
// environment lifecycle (cold start, warm reuse, timeout, crash, reaping), and the per-invocation
// log record (START/END/REPORT around the function's output). It runs environments through a
// sandbox.Backend and speaks to runtimes through runtimeapi; it serves the handlers it is given
// (Config.Services) on each environment's own ports, but never touches the store or HTTP API
// types.
package worker

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flint-run/flint/internal/logs"
	"github.com/flint-run/flint/internal/runtimeapi"
	"github.com/flint-run/flint/internal/runtimes"
	"github.com/flint-run/flint/internal/sandbox"
)

// Function is everything needed to start environments for one version of a function. Any change
// to it means a new Pool.
type Function struct {
	Name        string
	Version     string
	ARN         string // unqualified
	Runtime     runtimes.Runtime
	Handler     string
	MemoryMB    int
	Timeout     time.Duration
	EphemeralMB int
	// Env returns the user's variables (decrypted); called on cold starts only.
	Env func() (map[string]string, error)
	// Code returns the host directory holding the unpacked code; called on cold starts only.
	Code func(ctx context.Context) (string, error)
	// Opt returns the host directory of the function's layers, merged ("" for none); nil: none.
	Opt func(ctx context.Context) (string, error)
}

// Request is one synchronous invocation.
type Request struct {
	RequestID     string
	Payload       []byte
	InvokedARN    string
	ClientContext string // decoded JSON
	TraceID       string
	Tail          bool // return the last 4 KB of the log
}

// Response is what the caller gets.
type Response struct {
	Payload     []byte
	ContentType string
	// FunctionError is "Unhandled" when the function or its runtime failed.
	FunctionError string
	LogResult     string
}

// LogSink stores invocation log records; it must not block.
type LogSink interface {
	Append(function string, record []byte)
}

// Observer is told about every finished invocation (for metrics); it must not block.
type Observer interface {
	Invoked(function, version, outcome string, d time.Duration, cold bool)
}

// Config wires a Manager.
type Config struct {
	Backend     sandbox.Backend
	RuntimeDir  string // host directory of the installed runtime clients
	Region      string
	KeepAlive   time.Duration
	InitTimeout time.Duration
	// FreezeAfter is how long an idle environment waits before it is frozen (sandboxes that can
	// freeze); 0 never freezes. A short grace keeps environments reused under load from paying a
	// freeze and a thaw per invoke, while idle ones cost no CPU.
	FreezeAfter time.Duration
	// MemoryBudgetMB bounds the sum of MemorySize over live environments (0: unbounded).
	MemoryBudgetMB int
	// Services are HTTP interfaces served from the host to every environment, each on a port of
	// the environment's loopback, for the environment's life. Their ports must be valid
	// sandbox.Ports (sandbox.CheckPorts), or every cold start fails.
	Services []Service
	Logs     LogSink
	Observer Observer // may be nil
	Log      *slog.Logger
	Now      func() time.Time
	// Runtimes is this node's interpreter per Python and Node runtime; nil: runtimes.Default().
	Runtimes *runtimes.Table
}

// Service is an HTTP interface served to each environment on a loopback port of its own, in place
// of a Lambda extension that would run inside it (such as the Parameters and Secrets extension's
// localhost:2773): nothing extra runs in the sandbox, and the handler runs in the server. Handler
// is called once per environment, on its cold start, with what it needs to authorise callers.
type Service struct {
	Port    sandbox.Port
	Handler func(env EnvInfo) http.Handler
}

// EnvInfo is what a Service knows of the environment it serves.
type EnvInfo struct {
	ID string // the environment's id, for logs
	// SessionToken is the environment's AWS_SESSION_TOKEN, a secret of that environment alone:
	// a caller presenting it (the Parameters and Secrets extension's
	// X-Aws-Parameters-Secrets-Token) is code of this environment. Required where the port is
	// reachable by other processes of the host (the process backend, the linux one on the host's
	// network), and cheap everywhere.
	SessionToken string
	Function     string // the function's name
	Version      string // "$LATEST" or a version number
	ARN          string // the function's unqualified ARN
}

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

	kick        chan struct{} // provisioned concurrency changed
	records     chan *call    // finished invocations whose log record is still to be written
	quit        chan struct{}
	recordsDone chan struct{}

	// calls counts Pool.Invoke calls in progress: Close waits for them (their log records go
	// through records) before it stops the record writer. callsIdle is signalled when the count
	// drops to 0 once closing is set.
	calls     atomic.Int64
	closing   atomic.Bool
	callsIdle chan struct{}
	closeOnce sync.Once
}

// New returns a Manager; Run reaps idle environments and Close destroys them all (and stops the
// log-record writer New starts).
func New(cfg Config) *Manager {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Manager{cfg: cfg, log: cfg.Log, now: cfg.Now, pools: make(map[*Pool]struct{}),
		kick: make(chan struct{}, 1), records: make(chan *call, 4096), quit: make(chan struct{}), recordsDone: make(chan struct{}),
		callsIdle: make(chan struct{}, 1)}
	for _, svc := range cfg.Services {
		m.ports = append(m.ports, svc.Port)
	}
	go m.writeRecords() // stopped by Close
	return m
}

// Sentinels callers branch on.
var (
	// ErrClosed is returned for invocations after Close.
	ErrClosed = errors.New("worker: closed")
	// ErrNoCapacity: the node's memory budget is taken by busy environments; nothing idle can be
	// evicted to make room. The caller throttles.
	ErrNoCapacity = errors.New("worker: no memory left for another environment")
	// ErrAborted: the platform stopped the environment under the invocation (shutdown), or could
	// not place it after several environments went away before taking it. It is not the
	// function's error: a synchronous caller gets a service error, an async event runs again.
	ErrAborted = errors.New("worker: the invocation's environment was stopped by the platform")
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
				victim.state = stateDead
				p.mu.Unlock()
				return victim
			}
		}
		p.mu.Unlock() // acquired meanwhile: look again
	}
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
		case <-prov.C:
			m.provision()
		case <-freeze:
			m.freezeIdle(m.now())
		case <-m.kick:
			m.provision()
		}
	}
}

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

// freezeIdle freezes environments idle for longer than FreezeAfter.
func (m *Manager) freezeIdle(now time.Time) {
	var candidates []*env
	m.mu.Lock()
	for p := range m.pools {
		p.mu.Lock()
		for _, e := range p.idle {
			if !e.frozen.Load() && now.Sub(e.lastUsed) >= m.cfg.FreezeAfter {
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
				e.state = stateDead
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

// Stats counts environments by state.
type Stats struct {
	Starting, Idle, Busy int
	Provisioned          int // of those, kept for provisioned concurrency
	Frozen               int // of the idle ones, suspended by their sandbox
}

// Stats reports environment counts across every pool.
func (m *Manager) Stats() Stats {
	var s Stats
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := range m.pools {
		p.mu.Lock()
		for e := range p.all {
			if e.provisioned && e.state != stateDead {
				s.Provisioned++
			}
			if e.frozen.Load() {
				s.Frozen++
			}
			switch e.state {
			case stateStarting:
				s.Starting++
			case stateIdle:
				s.Idle++
			case stateBusy:
				s.Busy++
			}
		}
		p.mu.Unlock()
	}
	return s
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

// Pool holds the environments of one function configuration.
type Pool struct {
	m   *Manager
	fn  Function
	log *slog.Logger

	mu          sync.Mutex
	idle        []*env // most recently used last
	all         map[*env]struct{}
	retired     bool
	provisioned int // environments to keep initialized ahead of demand
	provPending int // provisioned cold starts under way
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
		if e.provisioned && (e.state == stateIdle || e.state == stateBusy) {
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
			e.state = stateDead
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

// Function returns the configuration this pool runs.
func (p *Pool) Function() Function { return p.fn }

// Retire stops the pool (its configuration changed or was deleted): idle environments are
// destroyed now; busy ones, and those still in INIT for an invocation waiting on them, serve
// that invocation on the configuration it started with and are destroyed when it ends, as on
// Lambda. An invocation that reaches a retired pool after it was retired (it looked the
// function up just before the change) cold-starts there the same way. Provisioned environments
// still in INIT have no invocation waiting and are stopped.
func (p *Pool) Retire() { p.retire(false) }

// retire stops the pool; with all (shutdown), environments running or starting are destroyed
// too, their invocations aborted.
func (p *Pool) retire(all bool) {
	reason := "retired"
	if all {
		reason = "shutdown"
	}
	p.mu.Lock()
	p.retired = true
	victims := make([]*env, 0, len(p.all))
	for e := range p.all {
		if all || e.state == stateIdle || e.state == stateStarting && e.provisioned {
			e.markAborted(reason)
			e.state = stateDead
			victims = append(victims, e)
		}
	}
	p.idle = nil
	p.mu.Unlock()
	for _, e := range victims {
		e.abort(reason)
	}
	p.m.forget(p)
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

type envState int

const (
	stateStarting envState = iota
	stateIdle
	stateBusy
	stateDead
)

// retryType marks an invocation handed to an environment that died before the runtime took it;
// abortedType one the runtime had taken when the platform stopped its environment.
const (
	retryType   = "flint.Retry"
	abortedType = "flint.Aborted"
)

// acquire takes the most recently used idle environment.
func (p *Pool) acquire() *env {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.idle)
	if n == 0 {
		return nil
	}
	at := n - 1
	if p.provisioned > 0 { // provisioned environments serve first; on-demand ones take the spill-over
		for i := n - 1; i >= 0; i-- {
			if p.idle[i].provisioned {
				at = i
				break
			}
		}
	}
	e := p.idle[at]
	p.idle = append(p.idle[:at], p.idle[at+1:]...)
	e.state = stateBusy
	return e
}

// maxPlacements bounds how many environments one invocation is offered to when they go away
// before taking it.
const maxPlacements = 4

// Invoke runs one invocation. respond is called once with the result as soon as it is known;
// log bookkeeping that the caller does not wait for happens after it, before Invoke returns.
// A non-nil error means the platform failed (not the function) and respond was not called:
// ErrAborted when the platform stopped the environment under the invocation (its log record is
// written if the runtime had taken it), ErrClosed after Close, ErrNoCapacity to throttle.
func (p *Pool) Invoke(ctx context.Context, req Request, respond func(*Response)) error {
	p.m.calls.Add(1)
	defer p.m.endCall()
	for attempt := 1; ; attempt++ {
		e := p.acquire()
		if e == nil {
			var initFail *call
			var err error
			e, initFail, err = p.start(ctx, req, false)
			if errors.Is(err, ErrAborted) && attempt < maxPlacements {
				continue // stopped by the platform during INIT, before the event was delivered
			}
			if err != nil {
				return err
			}
			if initFail != nil {
				p.finish(initFail, respond)
				return nil
			}
		}
		if err := e.thaw(); err != nil {
			p.log.Warn("thaw environment", "env", e.id, "err", err)
			e.abort("thaw failed")
			if attempt < maxPlacements {
				continue
			}
			return fmt.Errorf("%w: thaw: %w", ErrAborted, err)
		}
		c := e.run(req)
		switch {
		case c.result.ErrorType == retryType: // the environment went away before taking it
			if attempt < maxPlacements {
				continue
			}
			return ErrAborted
		case c.aborted != "": // taken, then stopped by the platform: it ran, so it has a record
			c.status = "error"
			p.queueRecord(c)
			return ErrAborted
		}
		p.finish(c, respond)
		return nil
	}
}

// call is one invocation's bookkeeping.
type call struct {
	e        *env
	req      Request
	start    time.Time
	duration time.Duration
	initDur  time.Duration
	initOut  []byte
	output   []byte
	result   runtimeapi.Result
	status   string // "", "timeout", "error"
	aborted  string // why the platform stopped the environment under the invocation, "" if it did not
}

// finish answers the caller and writes the log record.
func (p *Pool) finish(c *call, respond func(*Response)) {
	resp := &Response{Payload: c.result.Body, ContentType: c.result.ContentType}
	if c.result.ErrorType != "" {
		resp.FunctionError = "Unhandled"
		if c.status == "" {
			c.status = "error"
		}
	}
	if !c.req.Tail {
		respond(resp)
		// The log record (and Max Memory Used, a /proc or cgroup read) is built off the
		// request's goroutine: on a keep-alive connection the client's next request waits for it.
		p.queueRecord(c)
		return
	}
	rec := p.record(c)
	resp.LogResult = logs.Tail(rec)
	respond(resp)
	p.done(c, rec)
}

// queueRecord hands c to the record writer (or, when its queue is full, writes the record here).
func (p *Pool) queueRecord(c *call) {
	select {
	case p.m.records <- c:
	default:
		p.done(c, p.record(c))
	}
}

// done stores an invocation's log record and reports it to the observer.
func (p *Pool) done(c *call, rec []byte) {
	p.store(c, rec)
	if o := p.m.cfg.Observer; o != nil {
		outcome := "success"
		switch c.status {
		case "timeout":
			outcome = "timeout"
		case "error":
			outcome = "error"
		}
		o.Invoked(p.fn.Name, p.fn.Version, outcome, c.duration, c.initDur > 0)
	}
}

func (p *Pool) store(c *call, rec []byte) {
	if p.m.cfg.Logs != nil {
		p.m.cfg.Logs.Append(p.fn.Name, rec)
	}
}

// writeRecords builds and stores the log records queued by finish until quit.
func (m *Manager) writeRecords() {
	defer close(m.recordsDone)
	for {
		select {
		case c := <-m.records:
			c.e.p.done(c, c.e.p.record(c))
		case <-m.quit:
			for {
				select {
				case c := <-m.records:
					c.e.p.done(c, c.e.p.record(c))
				default:
					return
				}
			}
		}
	}
}

func (p *Pool) record(c *call) []byte {
	b := make([]byte, 0, len(c.initOut)+len(c.output)+320)
	b = append(b, c.initOut...)
	b = logs.AppendStart(b, c.req.RequestID, p.fn.Version)
	b = append(b, c.output...)
	if c.status == "timeout" {
		b = logs.AppendTimeout(b, c.start.Add(c.duration), c.req.RequestID, p.fn.Timeout)
	}
	if c.aborted != "" {
		b = logs.AppendAborted(b, c.start.Add(c.duration), c.req.RequestID, c.aborted)
	}
	b = logs.AppendEnd(b, c.req.RequestID)
	rep := logs.Report{RequestID: c.req.RequestID, Duration: c.duration, MemorySizeMB: p.fn.MemoryMB,
		InitDuration: c.initDur, Status: c.status}
	if c.status == "error" || c.status == "timeout" {
		rep.ErrorType = c.result.ErrorType
	}
	if c.status == "timeout" {
		rep.ErrorType = ""
	}
	rep.MaxMemoryUsedMB = c.e.maxMemoryMB()
	return logs.AppendReport(b, rep)
}

// start cold-starts an environment for req. It returns either a ready, busy environment, or a
// finished call describing an init failure (reported on this invocation, as Lambda does).
func (p *Pool) start(ctx context.Context, req Request, provisioned bool) (*env, *call, error) {
	ctx = context.WithoutCancel(ctx)
	p.m.mu.Lock()
	closed := p.m.closed
	p.m.mu.Unlock()
	if closed {
		return nil, nil, ErrClosed
	}
	if err := p.m.reserve(p.fn.MemoryMB); err != nil {
		return nil, nil, err
	}
	registered := false // from then on the environment's destroy gives the memory back
	defer func() {
		if !registered {
			p.m.release(p.fn.MemoryMB)
		}
	}()
	begin := p.m.now()
	e := &env{p: p, id: newID(), state: stateStarting, ready: make(chan struct{}), provisioned: provisioned,
		initErr: make(chan runtimeapi.Result, 1), exited: make(chan struct{})}
	fail := func(typ, msg string) (*env, *call, error) {
		c := &call{e: e, req: req, start: begin, duration: p.m.now().Sub(begin), status: "error",
			result: runtimeapi.Result{ErrorType: typ, ContentType: "application/json",
				Body: runtimeapi.ErrorBody(typ, "RequestId: "+req.RequestID+" Error: "+msg)}}
		return nil, c, nil
	}
	codeDir, err := p.fn.Code(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("code for %s: %w", p.fn.Name, err)
	}
	optDir := ""
	if p.fn.Opt != nil {
		if optDir, err = p.fn.Opt(ctx); err != nil {
			return nil, nil, fmt.Errorf("layers for %s: %w", p.fn.Name, err)
		}
	}
	argv, renv, err := p.m.cfg.Runtimes.Entrypoint(p.fn.Runtime, codeDir, optDir)
	if errors.Is(err, runtimes.ErrNoBootstrap) {
		return fail("Runtime.InvalidEntrypoint", err.Error())
	}
	if err != nil {
		return nil, nil, fmt.Errorf("entrypoint for %s: %w", p.fn.Name, err)
	}
	token := newSessionToken()
	environ, err := p.environ(renv, provisioned, token)
	if err != nil {
		return nil, nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("output pipe: %w", err)
	}
	if e.out, err = newCapture(r); err != nil {
		r.Close()
		w.Close()
		return nil, nil, fmt.Errorf("output pipe: %w", err)
	}
	spec := sandbox.Spec{ID: e.id, TaskDir: codeDir, OptDir: optDir, RuntimeDir: p.m.cfg.RuntimeDir, Argv: argv,
		Env: environ, Ports: p.m.ports, MemoryMB: p.fn.MemoryMB, EphemeralStorageMB: p.fn.EphemeralMB, Output: w}
	inst, err := p.m.cfg.Backend.Create(ctx, spec)
	if err != nil {
		r.Close()
		w.Close()
		return nil, nil, fmt.Errorf("create environment for %s: %w", p.fn.Name, err)
	}
	e.inst = inst
	// The services' servers are made before the environment is registered (from then on a
	// concurrent destroy may read e.services), and serve once it is.
	if e.services, err = p.services(inst, EnvInfo{ID: e.id, SessionToken: token, Function: p.fn.Name,
		Version: p.fn.Version, ARN: p.fn.ARN}); err != nil {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_ = inst.Destroy(dctx)
		cancel()
		r.Close()
		w.Close()
		return nil, nil, fmt.Errorf("services for %s: %w", p.fn.Name, err)
	}
	e.api = runtimeapi.New(e, runtimeapi.FunctionInfo{Name: p.fn.Name, Version: p.fn.Version, Handler: p.fn.Handler},
		p.log.With("env", e.id))
	// Registered under the Manager's lock, so that Close (which sets closed under it, then
	// destroys what its pools hold) either sees this environment or this start sees closed; and
	// a retired pool whose environments were all gone is the Manager's again.
	p.m.mu.Lock()
	if p.m.closed {
		p.m.mu.Unlock()
		_ = e.api.Close()
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_ = inst.Destroy(dctx)
		cancel()
		r.Close()
		w.Close()
		return nil, nil, ErrClosed
	}
	p.m.pools[p] = struct{}{}
	p.mu.Lock()
	p.all[e] = struct{}{}
	p.mu.Unlock()
	p.m.mu.Unlock()
	registered = true
	p.m.wg.Add(2)
	go func() { defer p.m.wg.Done(); e.out.run() }()
	go func() {
		defer p.m.wg.Done()
		if err := e.api.Serve(inst.RuntimeAPI()); err != nil {
			p.log.Warn("runtime api stopped", "env", e.id, "err", err)
		}
	}()
	for n, srv := range e.services {
		ln := inst.Listener(p.m.ports[n].Number)
		p.m.wg.Add(1)
		go func() { // ends when destroy shuts srv down or the backend closes ln
			defer p.m.wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				p.log.Warn("service stopped", "env", e.id, "port", p.m.ports[n].Number, "err", err)
			}
		}()
	}
	err = inst.Start(ctx)
	execAt := p.m.now()
	w.Close() // the environment holds its own copy
	if ee, ok := errors.AsType[*sandbox.ExecError](err); ok {
		// The package's entrypoint cannot be executed: the function's error, as on Lambda.
		e.destroy("entrypoint not executable")
		return fail("Runtime.InvalidEntrypoint", ee.Error())
	}
	if err != nil {
		e.destroy("start failed")
		return nil, nil, fmt.Errorf("start environment for %s: %w", p.fn.Name, err)
	}
	p.m.wg.Add(1)
	go func() { defer p.m.wg.Done(); e.monitor() }()

	timer := time.NewTimer(p.m.cfg.InitTimeout)
	defer timer.Stop()
	select {
	case <-e.ready:
		p.mu.Lock()
		if e.state == stateStarting {
			e.state = stateBusy
		}
		dead := e.state == stateDead
		p.mu.Unlock()
		if why := e.aborted.Load(); dead && why != nil {
			return nil, nil, fmt.Errorf("%w during INIT (%s)", ErrAborted, *why)
		}
		if dead {
			return fail("Runtime.ExitError", "Runtime exited without providing a reason")
		}
		// Like Lambda's Init Duration: the runtime's own start, from exec to its first /next.
		e.initDur = p.m.now().Sub(execAt)
		if ib, ok := inst.(sandbox.InitBooster); ok {
			if err := ib.EndInit(ctx); err != nil {
				e.destroy("end init")
				return nil, nil, fmt.Errorf("end init of %s: %w", p.fn.Name, err)
			}
		}
		e.initOut = e.out.take()
		return e, nil, nil
	case res := <-e.initErr:
		e.destroy("init error")
		c := &call{e: e, req: req, start: begin, duration: p.m.now().Sub(begin), status: "error",
			result: res, initOut: e.out.take()}
		if c.result.ErrorType == "" {
			c.result.ErrorType = "Runtime.Unknown"
		}
		return nil, c, nil
	case <-e.exited:
		if why := e.aborted.Load(); why != nil {
			return nil, nil, fmt.Errorf("%w during INIT (%s)", ErrAborted, *why)
		}
		_, c, _ := fail("Runtime.ExitError", "Runtime exited with error: "+e.exit.String())
		c.initOut = e.out.take()
		return nil, c, nil
	case <-timer.C:
		e.destroy("init timeout")
		_, c, _ := fail("Sandbox.Timedout", fmt.Sprintf("Task timed out after %.2f seconds", p.m.cfg.InitTimeout.Seconds()))
		c.status = "timeout"
		c.initOut = e.out.take()
		return nil, c, nil
	}
}

// services returns an HTTP server, not yet serving, for each of the Manager's services on inst.
func (p *Pool) services(inst sandbox.Instance, info EnvInfo) ([]*http.Server, error) {
	if len(p.m.cfg.Services) == 0 {
		return nil, nil
	}
	errLog := slog.NewLogLogger(p.log.With("env", info.ID).Handler(), slog.LevelDebug)
	srvs := make([]*http.Server, 0, len(p.m.cfg.Services))
	for _, svc := range p.m.cfg.Services {
		if inst.Listener(svc.Port.Number) == nil {
			return nil, fmt.Errorf("the %s sandbox has no listener for port %d", p.m.cfg.Backend.Name(), svc.Port.Number)
		}
		if svc.Handler == nil {
			return nil, fmt.Errorf("service on port %d has no handler", svc.Port.Number)
		}
		srvs = append(srvs, &http.Server{
			Handler: svc.Handler(info),
			// Clients are the function's SDK calls on loopback: anything slower is stuck.
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          errLog,
		})
	}
	return srvs, nil
}

// stopServices shuts the environment's service servers down once it is destroyed (its sandbox
// has closed their listeners), letting requests in flight finish for a few seconds.
func (e *env) stopServices() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range e.services {
		if err := srv.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
			_ = srv.Close()
		}
	}
}

// Placeholder credentials for environments whose user variables set none. Lambda gives every
// environment its role's temporary credentials; Flint has no roles. Without a key pair the AWS
// SDKs skip the environment's variables (AWS_SESSION_TOKEN alone is not credentials) and probe
// the EC2 instance metadata service, which takes seconds to fail. Not secrets: they grant nothing.
const (
	placeholderAccessKeyID     = "ASIAFLINTPLACEHOLDER"
	placeholderSecretAccessKey = "flint-placeholder-secret-access-key-none"
)

// newSessionToken returns an environment's AWS_SESSION_TOKEN: 32 random bytes, base64url.
func newSessionToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails: crypto/rand crashes the program rather than return short
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// environ is the environment's variables: the user's, then Lambda's reserved ones.
func (p *Pool) environ(runtimeEnv []string, provisioned bool, sessionToken string) ([]string, error) {
	initType := "on-demand"
	if provisioned {
		initType = "provisioned-concurrency"
	}
	fn := p.fn
	var user map[string]string
	if fn.Env != nil {
		var err error
		if user, err = fn.Env(); err != nil {
			return nil, fmt.Errorf("environment variables of %s: %w", fn.Name, err)
		}
	}
	env := make([]string, 0, len(user)+27+len(runtimeEnv))
	keys := make([]string, 0, len(user))
	for k := range user {
		if k != "AWS_SESSION_TOKEN" { // always the environment's own (below): its services trust it
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+user[k])
	}
	now := p.m.now().UTC()
	env = append(env,
		"PATH=/usr/local/bin:/usr/bin/:/bin:/opt/bin",
		"LD_LIBRARY_PATH=/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
		"LANG=en_US.UTF-8",
		"TZ=:UTC",
		"_HANDLER="+fn.Handler,
		"LAMBDA_TASK_ROOT="+sandbox.GuestTaskRoot,
		"LAMBDA_RUNTIME_DIR="+sandbox.GuestRuntimeDir,
		"AWS_REGION="+p.m.cfg.Region,
		"AWS_DEFAULT_REGION="+p.m.cfg.Region,
		"AWS_LAMBDA_FUNCTION_NAME="+fn.Name,
		"AWS_LAMBDA_FUNCTION_VERSION="+fn.Version,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(fn.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/"+fn.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME="+now.Format("2006/01/02")+"/["+fn.Version+"]"+newID()+newID(),
		"AWS_LAMBDA_INITIALIZATION_TYPE="+initType,
		"AWS_XRAY_CONTEXT_MISSING=LOG_ERROR",
		"AWS_SESSION_TOKEN="+sessionToken,
	)
	// The API refuses these keys in a function's configuration, as Lambda does; should a user's
	// value get here anyway, it wins and no placeholder is added (runtimes disagree on which of
	// two duplicates counts).
	if _, ok := user["AWS_ACCESS_KEY_ID"]; !ok {
		env = append(env, "AWS_ACCESS_KEY_ID="+placeholderAccessKeyID)
	}
	if _, ok := user["AWS_SECRET_ACCESS_KEY"]; !ok {
		env = append(env, "AWS_SECRET_ACCESS_KEY="+placeholderSecretAccessKey)
	}
	return append(env, runtimeEnv...), nil
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// env is one execution environment.
type env struct {
	p        *Pool
	id       string
	inst     sandbox.Instance
	api      *runtimeapi.Server
	out      *capture
	services []*http.Server // one per Config.Services; set before the environment is registered

	// Guarded by p.mu.
	state    envState
	lastUsed time.Time

	provisioned bool // kept ready for provisioned concurrency: never reaped or evicted

	fmu    sync.Mutex  // serialises Freeze and Thaw
	frozen atomic.Bool // frozen or being frozen; written under fmu

	initDur time.Duration
	initOut []byte

	// aborted says why the platform destroys the environment for its own reasons (shutdown,
	// retirement, eviction, reaping), nil if it does not: an invocation it had is not the
	// function's failure. Set before the environment is marked dead.
	aborted atomic.Pointer[string]

	readyOnce   sync.Once
	ready       chan struct{}
	initErr     chan runtimeapi.Result
	exited      chan struct{}
	exit        sandbox.Exit
	destroyOnce sync.Once
}

// freeze suspends an idle environment (if its sandbox can).
func (e *env) freeze() {
	fz, ok := e.inst.(sandbox.Freezer)
	if !ok {
		return
	}
	e.fmu.Lock()
	defer e.fmu.Unlock()
	// Marked frozen before it is, under the pool's lock that acquire takes to make it busy: an
	// invocation that acquires it from now on sees frozen, and its thaw waits on fmu for the
	// freeze to finish. (Marked after, an acquire in between would run the invocation on an
	// environment being frozen, stuck until its timeout.)
	e.p.mu.Lock()
	idle := e.state == stateIdle && !e.frozen.Load()
	if idle {
		e.frozen.Store(true)
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
		e.frozen.Store(false)
	}
}

// thaw resumes a frozen environment before it gets an invocation.
func (e *env) thaw() error {
	if !e.frozen.Load() {
		return nil
	}
	e.fmu.Lock()
	defer e.fmu.Unlock()
	if !e.frozen.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.inst.(sandbox.Freezer).Thaw(ctx); err != nil {
		return err
	}
	e.frozen.Store(false)
	return nil
}

// run delivers one invocation to a busy environment and waits for its result.
func (e *env) run(req Request) *call {
	p := e.p
	now := p.m.now()
	c := &call{e: e, req: req, start: now, initDur: e.initDur, initOut: e.initOut}
	e.initDur, e.initOut = 0, nil
	inv := runtimeapi.NewInvocation()
	inv.RequestID = req.RequestID
	inv.Payload = req.Payload
	inv.Deadline = now.Add(p.fn.Timeout)
	inv.InvokedARN = req.InvokedARN
	inv.ClientContext = req.ClientContext
	inv.TraceID = req.TraceID
	res, err := e.api.Invoke(inv)
	c.duration = p.m.now().Sub(now)
	switch {
	case errors.Is(err, runtimeapi.ErrNotDelivered):
		c.result.ErrorType = retryType
	case res.ErrorType == abortedType:
		c.aborted = *e.aborted.Load()
		c.output = e.out.take()
	case errors.Is(err, runtimeapi.ErrTimedOut):
		c.status = "timeout"
		c.result = runtimeapi.Result{ErrorType: "Sandbox.Timedout", ContentType: "application/json",
			Body: runtimeapi.ErrorBody("Sandbox.Timedout", fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds",
				req.RequestID, p.fn.Timeout.Seconds()))}
		e.destroy("timeout") // Lambda resets the environment after a timeout
		c.output = e.out.take()
	default:
		c.result = res
		c.output = e.out.take()
		e.release()
	}
	return c
}

// release makes a busy environment idle again (or destroys it if its pool was retired). It runs
// before the caller is answered, so back-to-back invocations reuse the environment.
func (e *env) release() {
	p := e.p
	p.mu.Lock()
	retired := p.retired
	if e.state == stateBusy && !retired {
		e.state = stateIdle
		e.lastUsed = p.m.now()
		p.idle = append(p.idle, e)
	}
	p.mu.Unlock()
	if retired {
		e.destroy("retired")
	}
}

// Ready implements runtimeapi.Hooks: the first /next ends INIT.
func (e *env) Ready() { e.readyOnce.Do(func() { close(e.ready) }) }

// InitError implements runtimeapi.Hooks.
func (e *env) InitError(r runtimeapi.Result) {
	select {
	case e.initErr <- r:
	default:
	}
}

// monitor waits for the environment's process to end and fails the invocation it was running.
func (e *env) monitor() {
	exit, _ := e.inst.Wait(context.Background())
	e.exit = exit
	p := e.p
	p.mu.Lock()
	e.state = stateDead
	for i, x := range p.idle {
		if x == e {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			break
		}
	}
	p.mu.Unlock()
	close(e.exited)
	if inv := e.api.Current(); inv != nil && e.aborted.Load() != nil {
		inv.Complete(runtimeapi.Result{ErrorType: abortedType})
	} else if inv != nil {
		typ, reason := "Runtime.ExitError", exit.String()
		if exit.OOMKilled {
			typ, reason = "Runtime.OutOfMemory", "signal: killed"
		}
		inv.Complete(runtimeapi.Result{ErrorType: typ, ContentType: "application/json",
			Body: runtimeapi.ErrorBody(typ, "RequestId: "+inv.RequestID+" Error: Runtime exited with error: "+reason)})
	}
	e.destroy("exited")
}

// abort destroys the environment for the platform's own reasons: an invocation it is running
// or starting for is aborted (ErrAborted, placed again if not yet delivered), never reported as
// the function's error.
func (e *env) abort(reason string) {
	e.markAborted(reason)
	e.destroy(reason)
}

// markAborted records that the platform is about to destroy the environment (the first reason
// wins); callers that mark it dead under the pool's lock call it first, so that an invocation
// seeing it dead also sees why.
func (e *env) markAborted(reason string) { e.aborted.CompareAndSwap(nil, &reason) }

// destroy releases the environment; safe to call from any goroutine, any number of times.
func (e *env) destroy(reason string) {
	e.destroyOnce.Do(func() { e.teardown(reason) })
}

func (e *env) teardown(reason string) {
	p := e.p
	p.mu.Lock()
	e.state = stateDead
	delete(p.all, e)
	empty := p.retired && len(p.all) == 0
	p.mu.Unlock()
	if empty {
		p.m.forget(p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.inst.Destroy(ctx); err != nil {
		p.log.Warn("destroy environment", "env", e.id, "reason", reason, "err", err)
	}
	_ = e.api.Close()
	p.m.release(p.fn.MemoryMB)
	p.m.wg.Add(1)
	go func() { defer p.m.wg.Done(); e.out.close() }()
	if len(e.services) > 0 {
		p.m.wg.Add(1)
		go func() { defer p.m.wg.Done(); e.stopServices() }()
	}
	p.log.Debug("environment destroyed", "env", e.id, "reason", reason)
}

func (e *env) maxMemoryMB() int {
	if mr, ok := e.inst.(sandbox.MemoryReporter); ok {
		if b, err := mr.MaxMemoryUsed(); err == nil {
			return int((b + (1<<20 - 1)) >> 20)
		}
	}
	return 0
}
