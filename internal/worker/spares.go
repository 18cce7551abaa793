package worker

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flint-run/flint/internal/runtimes"
	"github.com/flint-run/flint/internal/sandbox"
)

// Pre-initialized runtimes ("spares"): for the runtimes Flint ships (Python, Node) the
// interpreter and Flint's runtime client start ahead of demand, in a sandbox of their own, and
// wait; a cold start then only binds its function to one (sandbox.Bindable: code and layers
// mounted, limits applied, then the variables handed over) and the runtime imports the handler.
// A spare serves at most one environment: once bound it is that environment, and dies with it.
//
// How many: each runtime keeps as many spares as it had new environments at once at the most in
// the last spareWindow (at least one once it had any, none after spareIdle without), at most
// maxSparesPerRuntime, and all runtimes' spares together at most Config.SpareMemoryMB by
// spareMB's estimates. An environment counts as new from its cold start until its first
// invocation ends: cold starts one after another want one spare; a burst of fifty, fifty.
// Counting only the cold starts themselves (until INIT ended) measured the wrong thing: the
// spares made a burst's INITs short, so fewer of them overlapped, and each burst sized the pool
// smaller than the last (fifty cold starts at once: 37 spares kept). Spares are started one at a
// time, in the background, each once the one before waits (its start over): a burst of cold
// starts takes what is ready and starts the rest the ordinary way, and refilling never takes
// more than one CPU from warm work.

const (
	spareWindow         = 2 * time.Minute
	spareIdle           = 10 * time.Minute
	maxSparesPerRuntime = 64
)

// spareMB is what one waiting spare holds, measured on Linux x86_64: the interpreter with
// Flint's client loaded (RSS: Python 3.11 about 12.5 MB, Node 20 about 44 MB) and, in the linux
// sandbox, its init until the bind (about 6.5 MB of its own), with a little headroom.
func spareMB(f runtimes.Family) int {
	if f == runtimes.Node {
		return 52
	}
	return 20
}

// spare is one waiting runtime.
type spare struct {
	id     string
	inst   sandbox.Bindable
	out    *os.File // the read end of its output pipe
	cancel context.CancelFunc
}

// spareSet is one runtime's spares and demand.
type spareSet struct {
	rt       runtimes.Runtime
	argv     []string
	env      []string // the runtime's own variables: what every function of it shares
	ready    []*spare
	starting int
	inflight int           // cold starts of the runtime now (until INIT ends): refills wait for them
	fresh    int           // new environments: from the cold start until the first invocation ends
	peaks    []spareDemand // the most new environments at once, by when, within spareWindow
	lastCold time.Time
}

// spareDemand is a runtime's new environments at once at a moment.
type spareDemand struct {
	at    time.Time
	fresh int
}

// spares keeps every runtime's spareSet.
type spares struct {
	m  *Manager
	mu sync.Mutex
	// sets by runtime name
	sets      map[string]*spareSet
	heldMB    int // estimated, of ready and starting spares
	refilling bool
	deferred  time.Time // when a refill was first put off for cold starts in flight (zero: none)
	closed    bool
	wg        sync.WaitGroup // the refiller and the spares' watchers
	// ctx ends with close: the refill's wait for a spare's start (await) ends with it.
	ctx    context.Context
	cancel context.CancelFunc
}

func newSpares(m *Manager) *spares {
	ctx, cancel := context.WithCancel(context.Background())
	return &spares{m: m, sets: make(map[string]*spareSet), ctx: ctx, cancel: cancel}
}

// startEnv lists the variables a runtime reads when it starts, whose values a function must share
// with a spare to be bound to it; PYTHONPATH and NODE_PATH are re-read at the bind.
func startEnv(k string) bool {
	if k == "PYTHONPATH" || k == "NODE_PATH" {
		return false
	}
	for _, p := range []string{"PYTHON", "NODE_", "UV_", "LD_", "LC_", "MALLOC_", "GLIBC_", "OPENSSL_"} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return k == "LANG" || k == "LANGUAGE" || k == "AWS_LAMBDA_EXEC_WRAPPER" || k == "AWS_EXECUTION_ENV"
}

// compatible reports whether a function whose environment is environ can be bound to a spare
// started with env: every variable read at start has the same value in both.
func compatible(env, environ []string) bool {
	want := make(map[string]string)
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); startEnv(k) {
			want[k] = v
		}
	}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if !startEnv(k) {
			continue
		}
		if w, ok := want[k]; !ok || w != v {
			return false
		}
		delete(want, k)
	}
	return len(want) == 0
}

// take returns a spare for rt that can run a function with environ, or nil, and counts the cold
// start as demand either way; when counted, the caller calls done once the cold start is over
// and ran once the environment's first invocation is (or once it is known none will run).
func (s *spares) take(rt runtimes.Runtime, argv, environ []string) (got *spare, counted bool) {
	if s.m.cfg.SpareMemoryMB <= 0 || (rt.Family != runtimes.Python && rt.Family != runtimes.Node) {
		return nil, false
	}
	if _, ok := s.m.cfg.Backend.(sandbox.Prestarter); !ok {
		return nil, false
	}
	now := s.m.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false
	}
	set := s.sets[rt.Name]
	if set == nil || !slices.Equal(set.argv, argv) {
		// The interpreter changed (or this is the runtime's first cold start): new spares.
		if set != nil {
			s.dropLocked(set)
		}
		env, err := s.m.baseEnviron(rt)
		if err != nil {
			return nil, false
		}
		set = &spareSet{rt: rt, argv: argv, env: env}
		s.sets[rt.Name] = set
	}
	set.inflight++
	set.fresh++
	if n := len(set.peaks); n > 0 && set.peaks[n-1].fresh >= set.fresh && now.Sub(set.peaks[n-1].at) < time.Second {
		set.peaks[n-1].at = now // a second's cold starts, one entry
	} else {
		set.peaks = append(set.peaks, spareDemand{now, set.fresh})
	}
	set.lastCold = now
	if n := len(set.ready); n > 0 && compatible(set.env, environ) {
		got = set.ready[n-1] // the newest: the likeliest to be paged in
		set.ready = set.ready[:n-1]
		s.heldMB -= spareMB(rt.Family)
		got.cancel()
	}
	return got, true
}

// done ends a cold start take counted (whether it got a spare or not), and only then refills
// (refillPutOffLocked): a spare's start (an interpreter's, about its own cold start's CPU) would
// otherwise compete with the cold starts still going on, whose runtimes have their memory's CPU
// weight.
func (s *spares) done(rt runtimes.Runtime) {
	s.mu.Lock()
	if set := s.sets[rt.Name]; set != nil && set.inflight > 0 {
		set.inflight--
	}
	s.refillLocked()
	s.mu.Unlock()
}

// ran ends a counted cold start's demand: its environment's first invocation is over, or none
// will run.
func (s *spares) ran(rt runtimes.Runtime) {
	s.mu.Lock()
	if set := s.sets[rt.Name]; set != nil && set.fresh > 0 {
		set.fresh--
	}
	s.mu.Unlock()
}

// want is how many spares set should hold at now.
func (set *spareSet) want(now time.Time) int {
	if now.Sub(set.lastCold) > spareIdle {
		return 0
	}
	peak := 1
	keep := set.peaks[:0]
	for _, d := range set.peaks {
		if now.Sub(d.at) <= spareWindow {
			keep = append(keep, d)
			peak = max(peak, d.fresh)
		}
	}
	set.peaks = keep
	return min(peak, maxSparesPerRuntime)
}

// maxRefillDelay bounds how long cold starts in flight put off a refill: a host that is never
// without one still gets its spares.
const maxRefillDelay = time.Second

// refillPutOffLocked reports whether refilling waits for the cold starts in flight, of every
// runtime: a burst that refilled its spares as its first cold starts ended started interpreters
// beside the rest of itself (docs/PERFORMANCE.md, "Bursts"). The last cold start's done refills.
func (s *spares) refillPutOffLocked() bool {
	inflight := 0
	for _, set := range s.sets {
		inflight += set.inflight
	}
	if inflight == 0 {
		s.deferred = time.Time{}
		return false
	}
	now := s.m.now()
	if s.deferred.IsZero() {
		s.deferred = now
	}
	return now.Sub(s.deferred) < maxRefillDelay
}

// refillLocked starts the refiller unless it runs, or is put off (refillPutOffLocked).
func (s *spares) refillLocked() {
	if s.refilling || s.closed || s.refillPutOffLocked() {
		return
	}
	s.refilling = true
	s.wg.Add(1)
	go s.refill()
}

// refill starts spares one at a time while some runtime wants more and the budget allows.
func (s *spares) refill() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		var set *spareSet
		now := s.m.now()
		for _, c := range s.sets {
			if len(c.ready)+c.starting < c.want(now) && s.heldMB+spareMB(c.rt.Family) <= s.m.cfg.SpareMemoryMB {
				if set == nil || len(c.ready)+c.starting < len(set.ready)+set.starting {
					set = c
				}
			}
		}
		if set == nil || s.closed || s.refillPutOffLocked() {
			s.refilling = false
			s.mu.Unlock()
			return
		}
		set.starting++
		s.heldMB += spareMB(set.rt.Family)
		s.mu.Unlock()
		sp, err := s.start(set)
		if err == nil {
			s.await(sp)
		}
		s.mu.Lock()
		set.starting--
		if err != nil || s.closed || s.sets[set.rt.Name] != set {
			s.heldMB -= spareMB(set.rt.Family)
			s.mu.Unlock()
			if sp != nil {
				s.discard(sp)
			}
			if err != nil {
				s.m.log.Warn("pre-initialized runtime", "runtime", set.rt.Name, "err", err)
				s.mu.Lock()
				s.refilling = false
				s.mu.Unlock()
				return // tried again on the next cold start
			}
			continue
		}
		set.ready = append(set.ready, sp)
		s.mu.Unlock()
	}
}

// start prestarts one spare of set's runtime and watches it: one that dies waiting is dropped.
func (s *spares) start(set *spareSet) (*spare, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer w.Close() // the environment holds its own copy
	ctx, cancel := context.WithTimeout(context.Background(), s.m.cfg.InitTimeout)
	defer cancel()
	id := newID()
	inst, err := s.m.cfg.Backend.(sandbox.Prestarter).Prestart(ctx, sandbox.Spec{ID: id, RuntimeDir: s.m.cfg.RuntimeDir,
		Argv: set.argv, Env: set.env, Ports: s.m.ports, Output: w})
	if err != nil {
		r.Close()
		return nil, err
	}
	wctx, stop := context.WithCancel(context.Background())
	sp := &spare{id: id, inst: inst, out: r, cancel: stop}
	s.wg.Add(1)
	go func() { // ends when the spare is taken or discarded, or dies
		defer s.wg.Done()
		if _, err := inst.Wait(wctx); err != nil {
			return // taken or discarded
		}
		s.mu.Lock()
		found := false
		for _, c := range s.sets {
			if i := slices.Index(c.ready, sp); i >= 0 {
				c.ready = slices.Delete(c.ready, i, i+1)
				s.heldMB -= spareMB(c.rt.Family)
				found = true
			}
		}
		s.mu.Unlock()
		if found {
			s.m.log.Warn("a pre-initialized runtime ended while waiting", "runtime", set.rt.Name, "env", id)
			s.discard(sp)
		}
	}()
	return sp, nil
}

// maxSpareWait bounds how long the refill waits for a spare to say it waits: a runtime that
// never does is still bound as any other, only the next spare's start is not held up longer.
const maxSpareWait = 5 * time.Second

// await returns once sp's runtime has started and waits (sandbox.Bindable.Waiting), so that the
// refill starts the next spare only then: spares started back to back, each an interpreter's
// start, took both CPUs of a 2-CPU host from warm invokes while a pool of fifty refilled.
func (s *spares) await(sp *spare) {
	ctx, cancel := context.WithTimeout(s.ctx, min(maxSpareWait, s.m.cfg.InitTimeout))
	defer cancel()
	if err := sp.inst.Waiting(ctx); err != nil {
		s.m.log.Debug("pre-initialized runtime not waiting yet", "env", sp.id, "err", err)
	}
}

// discard destroys a spare nobody took.
func (s *spares) discard(sp *spare) {
	sp.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = sp.inst.Destroy(ctx)
	sp.out.Close()
}

// dropLocked discards set's spares (in the background) and forgets set.
func (s *spares) dropLocked(set *spareSet) {
	for _, sp := range set.ready {
		s.heldMB -= spareMB(set.rt.Family)
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.discard(sp) }()
	}
	set.ready = nil
	delete(s.sets, set.rt.Name)
}

// trim discards the spares of runtimes that want fewer than they hold (no cold start for a
// while); the Manager's reaper calls it.
func (s *spares) trim(now time.Time) {
	var extra []*spare
	s.mu.Lock()
	for name, set := range s.sets {
		w := set.want(now)
		for len(set.ready) > w {
			n := len(set.ready)
			extra = append(extra, set.ready[0])
			set.ready = set.ready[1:n]
			s.heldMB -= spareMB(set.rt.Family)
		}
		if w == 0 && set.starting == 0 {
			delete(s.sets, name)
		}
	}
	s.mu.Unlock()
	for _, sp := range extra {
		s.discard(sp)
	}
}

// close discards every spare and waits for the refiller and the watchers.
func (s *spares) close() {
	s.cancel()
	s.mu.Lock()
	s.closed = true
	var all []*spare
	for _, set := range s.sets {
		all = append(all, set.ready...)
		set.ready = nil
	}
	s.sets = map[string]*spareSet{}
	s.heldMB = 0
	s.mu.Unlock()
	for _, sp := range all {
		s.discard(sp)
	}
	s.wg.Wait()
}

// count reports the ready spares, for Stats.
func (s *spares) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, set := range s.sets {
		n += len(set.ready)
	}
	return n
}
