package invoke

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flint-run/flint/internal/telemetry"
	"github.com/flint-run/flint/internal/worker"
)

// Placement across a cluster (docs/cluster-routing.md). Only a local miss gets here: when this
// node's pool has an idle environment, Invoke runs it as on a single node. Otherwise the
// invocation goes to a node that announced an idle environment of the same configuration, else
// to the node with the most free memory budget (this one on a tie) for a cold start.
//
// Each node announces its idle environments per function configuration and its free memory on
// idleSubject, when they change (looked at every RouteConfig.Every, so at most that often) and
// every RouteConfig.Refresh regardless; every node keeps the others' last announcement in memory
// and forgets a node it has not heard from for staleAfter announcements. A forward is a NATS
// request on the target's invokeSubject over Flint's own connection (the outside clients'
// account cannot reach these subjects). The target answers "ran" (the result), "not started"
// (the caller places it elsewhere) or "failed" (the platform stopped it after it may have run:
// the caller does not run it again). A forwarded invocation is never forwarded again.

const (
	idleSubject   = "flint.route.idle"
	invokePrefix  = "flint.route.invoke."
	staleAfter    = 3 // refresh periods without an announcement before a node is forgotten
	warmAttempts  = 2 // warm nodes tried before a cold start
	forwardMargin = 10 * time.Second
)

// Headers of a forwarded invocation and its answer.
const (
	hFunction   = "Flint-Function"
	hVersion    = "Flint-Version"
	hRevision   = "Flint-Revision"
	hRequestID  = "Flint-Request-Id"
	hInvokedARN = "Flint-Invoked-Arn"
	hClientCtx  = "Flint-Client-Context"
	hTraceID    = "Flint-Trace-Id"
	hSpan       = "Flint-Span" // the invocation's span ids (telemetry.Span.Encode), with OTLP export on
	hTail       = "Flint-Tail"
	hCold       = "Flint-Cold"
	hDeadline   = "Flint-Deadline" // unix nanoseconds
	hFrom       = "Flint-From"

	hStatus      = "Flint-Status" // statusRan, statusNotStarted, statusFailed
	hFuncError   = "Flint-Function-Error"
	hLogResult   = "Flint-Log-Result"
	hExecuted    = "Flint-Executed-Version"
	hContentType = "Content-Type"
	hError       = "Flint-Error"
	hNode        = "Flint-Node"
)

const (
	statusRan        = "ran"
	statusNotStarted = "not-started"
	statusFailed     = "failed"
)

// RouteConfig turns cluster placement on (Service.Route).
type RouteConfig struct {
	Node string     // this node's name, unique in the cluster
	Conn *nats.Conn // Flint's own connection (the store's)
	// Every is how often the node looks whether its idle environments changed (default 200 ms);
	// Refresh how often it announces them anyway (default 2 s).
	Every, Refresh time.Duration
	Now            func() time.Time
}

// RouteStats counts placements, for metrics and tests.
type RouteStats struct {
	Forwarded  int64 // invocations this node sent to another that ran them
	Served     int64 // invocations another node sent here that ran here
	Refused    int64 // forwards answered "not started" (here or by the target)
	ColdRemote int64 // of Forwarded, cold starts placed on another node
}

// announcement is what a node tells the others of its capacity.
type announcement struct {
	Node string `json:"node"`
	// FreeMB is the memory budget not taken by live environments; -1: unbounded.
	FreeMB int `json:"free_mb"`
	// Warm counts initialized environments by routeKey: [idle, busy]. A sample of a function
	// in steady use sees its environments idle or busy by chance, so the others go by both:
	// a node with busy ones only answers "not started" quickly.
	Warm map[string][2]int `json:"warm,omitempty"`
	Gone bool              `json:"gone,omitempty"` // the node stops routing
	// Draining: the node takes no new work (it announces no environments then); the others
	// send it nothing and leave it out of the provisioned-concurrency split.
	Draining bool `json:"draining,omitempty"`
	// Prov counts provisioned environments ready by routeKey (for the cluster's Allocated).
	Prov map[string]int `json:"prov,omitempty"`
}

type peer struct {
	announcement
	heard time.Time
}

type router struct {
	s       *Service
	cfg     RouteConfig
	subject string

	mu    sync.RWMutex
	peers map[string]*peer

	// hello is signalled when a node is heard for the first time: this node announces itself
	// at its next look instead of at its next refresh, so a node that just started learns the
	// others within RouteConfig.Every.
	hello   chan struct{}
	started time.Time

	forwarded, served, refused, coldRemote atomic.Int64
	observe                                func(time.Duration) // forward latency; nil: not measured

	// The nodes that share provisioned concurrency (spread.go), known once settled: one
	// Refresh after routing started, when every live node has announced itself.
	shares  []string
	settled bool

	wg      sync.WaitGroup // forwarded invocations being served here
	wgMu    sync.Mutex     // orders wg.Add after stopping against wg.Wait
	stopped bool
}

// routeKey names one function configuration across nodes: the same name, version and revision
// is the same configuration everywhere.
func routeKey(name, version, revision string) string {
	return name + ":" + version + ":" + revision
}

// subjectToken makes a node name one NATS subject token.
func subjectToken(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '\r', '\n':
			return '_'
		}
		return r
	}, s)
}

// Route places this node's invocations across the cluster and serves the others' until ctx
// ends (then the node announces it is gone and waits for the invocations it is serving). Only a
// clustered node calls it: a single node keeps no subscription and no map.
func (s *Service) Route(ctx context.Context, cfg RouteConfig) error {
	if cfg.Node == "" || cfg.Conn == nil {
		return errors.New("invoke: routing needs a node name and a NATS connection")
	}
	if cfg.Every <= 0 {
		cfg.Every = 200 * time.Millisecond
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &router{s: s, cfg: cfg, subject: invokePrefix + subjectToken(cfg.Node), peers: make(map[string]*peer),
		hello: make(chan struct{}, 1), started: cfg.Now()}
	if o, ok := s.metrics.(interface{ Forwarded(time.Duration) }); ok {
		r.observe = o.Forwarded
	}
	idle, err := cfg.Conn.Subscribe(idleSubject, r.heard)
	if err != nil {
		return fmt.Errorf("invoke: subscribe %s: %w", idleSubject, err)
	}
	defer func() { _ = idle.Unsubscribe() }()
	// What runs here for another node finishes when routing stops, as an invocation of this
	// node's own would (the server's shutdown stops environments after its grace).
	served := context.WithoutCancel(ctx)
	// Handlers of one subscription run one at a time: each forwarded invocation gets its own
	// goroutine (owned by r.wg) so that a slow one does not hold the others.
	serve, err := cfg.Conn.Subscribe(r.subject, func(m *nats.Msg) {
		r.wgMu.Lock()
		defer r.wgMu.Unlock()
		if r.stopped {
			answer := nats.NewMsg(m.Reply)
			answer.Header.Set(hStatus, statusNotStarted)
			_ = m.RespondMsg(answer)
			return
		}
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.serve(served, m) }()
	})
	if err != nil {
		return fmt.Errorf("invoke: subscribe %s: %w", r.subject, err)
	}
	// The default 64 MB of pending messages is ten forwarded 6 MB payloads: past it NATS drops
	// requests (their callers would wait for their deadline). The handler only starts goroutines.
	if err := serve.SetPendingLimits(-1, 1<<30); err != nil {
		_ = serve.Unsubscribe()
		return fmt.Errorf("invoke: subscribe %s: %w", r.subject, err)
	}
	if err := cfg.Conn.Flush(); err != nil {
		_ = serve.Unsubscribe()
		return fmt.Errorf("invoke: subscribe: %w", err)
	}
	s.router.Store(r)
	defer func() {
		s.router.CompareAndSwap(r, nil)
		_ = serve.Unsubscribe()
		r.wgMu.Lock()
		r.stopped = true
		r.wgMu.Unlock()
		r.wg.Wait()
	}()

	t := time.NewTicker(cfg.Every)
	defer t.Stop()
	var last announcement
	var sent time.Time
	settleAt := cfg.Now().Add(cfg.Refresh)
	for {
		a := r.snapshot()
		greet := false
		select {
		case <-r.hello:
			greet = true
		default:
		}
		if greet || !sameAnnouncement(a, last) || cfg.Now().Sub(sent) >= cfg.Refresh {
			if err := r.announce(a); err != nil {
				s.log.Warn("announce idle environments", "err", err)
			} else {
				last, sent = a, cfg.Now()
			}
		}
		if s.spread.Load() && !cfg.Now().Before(settleAt) {
			r.updateShares()
		}
		select {
		case <-ctx.Done():
			_ = r.announce(announcement{Node: cfg.Node, Gone: true})
			return nil
		case <-t.C:
		}
	}
}

// RouteStats reports this node's placements (zero when it does not route).
func (s *Service) RouteStats() RouteStats {
	r := s.router.Load()
	if r == nil {
		return RouteStats{}
	}
	return RouteStats{Forwarded: r.forwarded.Load(), Served: r.served.Load(), Refused: r.refused.Load(), ColdRemote: r.coldRemote.Load()}
}

func sameAnnouncement(a, b announcement) bool {
	return a.Node == b.Node && a.FreeMB == b.FreeMB && a.Gone == b.Gone && a.Draining == b.Draining &&
		maps.Equal(a.Warm, b.Warm) && maps.Equal(a.Prov, b.Prov)
}

// snapshot is this node's capacity now.
func (r *router) snapshot() announcement {
	if r.s.draining.Load() {
		return announcement{Node: r.cfg.Node, Draining: true}
	}
	a := announcement{Node: r.cfg.Node, FreeMB: r.freeMB()}
	r.s.mu.RLock()
	for _, e := range r.s.entries {
		if e.Fn == nil || e.pool == nil {
			continue
		}
		c := &e.Fn.Config
		if idle, busy := e.pool.Warm(); idle+busy > 0 {
			if a.Warm == nil {
				a.Warm = make(map[string][2]int)
			}
			a.Warm[routeKey(c.FunctionName, c.Version, c.RevisionId)] = [2]int{idle, busy}
		}
		if _, ready := e.pool.Provisioned(); ready > 0 {
			if a.Prov == nil {
				a.Prov = make(map[string]int)
			}
			a.Prov[routeKey(c.FunctionName, c.Version, c.RevisionId)] = ready
		}
	}
	r.s.mu.RUnlock()
	return a
}

// freeMB is the memory budget a cold start here could take now: what no environment holds, and
// what idle ones hold (a cold start evicts them to make room).
func (r *router) freeMB() int {
	st := r.s.workers.Stats()
	if st.BudgetMB <= 0 {
		return -1
	}
	return st.BudgetMB - st.MemoryMB + st.EvictableMB
}

func (r *router) announce(a announcement) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return r.cfg.Conn.Publish(idleSubject, b)
}

// heard keeps another node's announcement.
func (r *router) heard(m *nats.Msg) {
	var a announcement
	if err := json.Unmarshal(m.Data, &a); err != nil || a.Node == "" {
		r.s.log.Warn("undecodable capacity announcement", "err", err)
		return
	}
	if a.Node == r.cfg.Node {
		return
	}
	r.mu.Lock()
	_, known := r.peers[a.Node]
	if a.Gone {
		delete(r.peers, a.Node)
	} else {
		r.peers[a.Node] = &peer{announcement: a, heard: r.cfg.Now()}
	}
	r.mu.Unlock()
	if !known && !a.Gone {
		select {
		case r.hello <- struct{}{}:
		default:
		}
	}
}

// warm returns the nodes that announced environments of key, most idle first, then most busy.
func (r *router) warm(key string) []string {
	now := r.cfg.Now()
	type cand struct {
		name string
		n    [2]int
	}
	var cs []cand
	r.mu.RLock()
	for name, p := range r.peers {
		if n := p.Warm[key]; n[0]+n[1] > 0 && !p.Draining && now.Sub(p.heard) <= staleAfter*r.cfg.Refresh {
			cs = append(cs, cand{name, n})
		}
	}
	r.mu.RUnlock()
	slices.SortFunc(cs, func(x, y cand) int {
		if c := cmp.Compare(y.n[0], x.n[0]); c != 0 {
			return c
		}
		return cmp.Compare(y.n[1], x.n[1])
	})
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.name
	}
	return out
}

// roomy returns the nodes whose free budget fits an environment of mb, the roomiest first ("" is
// this node, first on a tie: no network on the way). Others' budgets are as they last announced.
func (r *router) roomy(mb int) []string { return r.ranked(true, mb) }

// ranked returns the other nodes heard from lately that do not drain and whose free budget
// fits mb, with this node ("") when self is set and it fits, the most free budget first (then
// this node, then by name).
func (r *router) ranked(self bool, mb int) []string {
	type cand struct {
		name string
		free int
	}
	free := func(f int) int {
		if f < 0 {
			return math.MaxInt
		}
		return f
	}
	var cs []cand
	if f := free(r.freeMB()); self && f >= mb {
		cs = append(cs, cand{"", f})
	}
	now := r.cfg.Now()
	r.mu.RLock()
	for name, p := range r.peers {
		if p.Draining || now.Sub(p.heard) > staleAfter*r.cfg.Refresh {
			continue
		}
		if f := free(p.FreeMB); f >= mb {
			cs = append(cs, cand{name, f})
		}
	}
	r.mu.RUnlock()
	slices.SortFunc(cs, func(x, y cand) int {
		if c := cmp.Compare(y.free, x.free); c != 0 {
			return c
		}
		return cmp.Compare(x.name, y.name) // "" (this node) first
	})
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.name
	}
	return out
}

// took counts mb of node's announced budget as taken by a cold start placed there, until its
// next announcement.
func (r *router) took(node string, mb int) {
	r.mu.Lock()
	if p := r.peers[node]; p != nil && p.FreeMB >= 0 {
		p.FreeMB = max(0, p.FreeMB-mb)
	}
	r.mu.Unlock()
}

// place runs an invocation this node has no idle environment for: on a warm node, else a cold
// start on the node with the most free memory budget, else (none has room) here, which
// throttles. e is admitted by the caller, which keeps its slot for the call.
func (r *router) place(ctx context.Context, e *Entry, wreq worker.Request, respond func(Response)) error {
	c := &e.Fn.Config
	tried := 0
	for _, node := range r.warm(routeKey(c.FunctionName, c.Version, c.RevisionId)) {
		if tried == warmAttempts {
			break
		}
		tried++
		if done, err := r.forward(ctx, node, e, wreq, false, respond); done {
			return err
		}
	}
	wreq.WarmOnly = false
	// A burst's placements run at once and see the same budgets: the room one saw may be taken
	// when its environment reserves it. It then goes on to the next roomiest node.
	cold := r.roomy(c.MemorySize)
	if r.s.draining.Load() {
		// A draining node starts nothing: every other node is asked before it runs it itself.
		// Just after it started it may not have heard the others yet: it waits for them, up
		// to one refresh after its start.
		cold = r.others()
		if len(cold) == 0 {
			if wait := r.started.Add(r.cfg.Refresh).Sub(r.cfg.Now()); wait > 0 {
				r.awaitPeer(ctx, wait)
				cold = r.others()
			}
		}
	}
	for _, node := range cold {
		if node == "" {
			if err := r.s.runHere(ctx, e, wreq, respond); !errors.Is(err, worker.ErrNoCapacity) {
				return err
			}
			continue
		}
		// Counted before the answer, so that the placements after this one spread.
		r.took(node, c.MemorySize)
		if done, err := r.forward(ctx, node, e, wreq, true, respond); done {
			if err == nil {
				r.coldRemote.Add(1)
			}
			return err
		}
	}
	// No node took it (or none is left): running it here beats failing it, on a draining node
	// too (a throttle when its budget has no room).
	return r.s.run(ctx, e, wreq, respond)
}

// forward sends the invocation to node. done is false when node did not start it (the caller
// places it elsewhere); otherwise err is the outcome (nil: respond was called).
func (r *router) forward(ctx context.Context, node string, e *Entry, wreq worker.Request, cold bool, respond func(Response)) (done bool, _ error) {
	c := &e.Fn.Config
	if _, ok := ctx.Deadline(); !ok {
		// The function's timeout bounds the run, INIT comes before it on a cold start.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(c.Timeout)*time.Second+forwardMargin)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	m := nats.NewMsg(invokePrefix + subjectToken(node))
	h := m.Header
	h.Set(hFunction, c.FunctionName)
	h.Set(hVersion, c.Version)
	h.Set(hRevision, c.RevisionId)
	h.Set(hRequestID, wreq.RequestID)
	h.Set(hInvokedARN, wreq.InvokedARN)
	h.Set(hDeadline, strconv.FormatInt(deadline.UnixNano(), 10))
	h.Set(hFrom, r.cfg.Node)
	if wreq.ClientContext != "" {
		h.Set(hClientCtx, wreq.ClientContext)
	}
	if wreq.TraceID != "" {
		h.Set(hTraceID, wreq.TraceID)
	}
	if wreq.Span != nil { // the node that runs it exports its spans, with the ids chosen here
		h.Set(hSpan, wreq.Span.Encode())
	}
	if wreq.Tail {
		h.Set(hTail, "1")
	}
	if cold {
		h.Set(hCold, "1")
	}
	m.Data = wreq.Payload
	start := time.Now()
	resp, err := r.cfg.Conn.RequestMsgWithContext(ctx, m)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		r.forget(node) // gone: its announcement is stale
		r.refused.Add(1)
		return false, nil
	case errors.Is(err, nats.ErrMaxPayload):
		return false, nil // cannot reach it with this payload: run here
	case err != nil:
		// Sent, no answer: it may have run. Never run it twice; the caller sees a platform
		// failure, as when a local environment is stopped under it.
		r.s.log.Warn("forwarded invocation got no answer", "node", node, "request_id", wreq.RequestID, "err", err)
		return true, fmt.Errorf("%w: forwarded to node %s: %w", ErrAborted, node, err)
	}
	switch resp.Header.Get(hStatus) {
	case statusRan:
		r.forwarded.Add(1)
		if r.observe != nil {
			r.observe(time.Since(start))
		}
		r.s.log.Debug("invocation ran on another node", "node", node, "cold_allowed", cold, "function", c.FunctionName, "version", c.Version, "request_id", wreq.RequestID)
		respond(Response{ExecutedVersion: resp.Header.Get(hExecuted), Payload: resp.Data, ContentType: resp.Header.Get(hContentType),
			FunctionError: resp.Header.Get(hFuncError), LogResult: resp.Header.Get(hLogResult)})
		return true, nil
	case statusNotStarted:
		r.refused.Add(1)
		return false, nil
	default:
		return true, fmt.Errorf("%w: on node %s: %s", ErrAborted, node, resp.Header.Get(hError))
	}
}

func (r *router) forget(node string) {
	r.mu.Lock()
	delete(r.peers, node)
	r.mu.Unlock()
}

// serve runs an invocation another node forwarded here. It is never forwarded again, and the
// caller admitted it (its slot is held there).
func (r *router) serve(ctx context.Context, m *nats.Msg) {
	h := m.Header
	answer := nats.NewMsg(m.Reply)
	answer.Header.Set(hNode, r.cfg.Node)
	reply := func(status, reason string) {
		answer.Header.Set(hStatus, status)
		if reason != "" {
			answer.Header.Set(hError, reason)
		}
		if err := m.RespondMsg(answer); err != nil {
			r.s.log.Warn("answer forwarded invocation", "from", h.Get(hFrom), "err", err)
		}
	}
	if m.Reply == "" || h == nil {
		return
	}
	if r.s.draining.Load() {
		r.refused.Add(1)
		reply(statusNotStarted, "node draining")
		return
	}
	ns, err := strconv.ParseInt(h.Get(hDeadline), 10, 64)
	if err != nil {
		reply(statusNotStarted, "no deadline")
		return
	}
	ctx, cancel := context.WithDeadline(ctx, time.Unix(0, ns))
	defer cancel()
	e, err := r.s.Lookup(ctx, h.Get(hFunction), h.Get(hVersion))
	if err != nil || e.Fn == nil || e.Fn.Config.RevisionId != h.Get(hRevision) {
		// Not this configuration here (yet, or any more): the caller runs it elsewhere.
		r.refused.Add(1)
		reply(statusNotStarted, "configuration not known here")
		return
	}
	wreq := worker.Request{RequestID: h.Get(hRequestID), Payload: m.Data, InvokedARN: h.Get(hInvokedARN),
		ClientContext: h.Get(hClientCtx), TraceID: h.Get(hTraceID), Tail: h.Get(hTail) == "1", WarmOnly: h.Get(hCold) != "1"}
	if r.s.tracer != nil {
		if sp, ok := telemetry.DecodeSpan(h.Get(hSpan)); ok {
			wreq.Span = sp
		} else { // the sender exports nothing: this node begins the trace as it would its own
			r.s.trace(&wreq, &Request{TraceID: wreq.TraceID})
		}
	}
	version := e.Fn.Config.Version
	err = e.pool.Invoke(ctx, wreq, func(res *worker.Response) {
		answer.Header.Set(hStatus, statusRan)
		answer.Header.Set(hExecuted, version)
		if res.ContentType != "" {
			answer.Header.Set(hContentType, res.ContentType)
		}
		if res.FunctionError != "" {
			answer.Header.Set(hFuncError, res.FunctionError)
		}
		if res.LogResult != "" {
			answer.Header.Set(hLogResult, res.LogResult)
		}
		answer.Data = res.Payload // lent for this call: RespondMsg copies it out before returning
		// Counted before the answer leaves: the sender may look at the figures as soon as it
		// has it.
		r.served.Add(1)
		if err := m.RespondMsg(answer); err != nil {
			r.s.log.Warn("answer forwarded invocation", "from", h.Get(hFrom), "err", err)
		}
		answer.Data = nil
	})
	switch {
	case err == nil:
	case errors.Is(err, worker.ErrNoWarm), errors.Is(err, worker.ErrNoCapacity), errors.Is(err, worker.ErrClosed):
		r.refused.Add(1)
		reply(statusNotStarted, err.Error())
	default:
		reply(statusFailed, err.Error())
	}
}
