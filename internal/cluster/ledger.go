package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flint-run/flint/internal/store"
)

// ErrLimit means every slot of a limit is leased by nodes of the cluster (this one included).
var ErrLimit = errors.New("cluster: concurrency limit reached")

// ErrUnreachable means the ledger could not be reached a moment ago; Take does not try again
// for a tick.
var ErrUnreachable = errors.New("cluster: concurrency ledger unreachable")

// ErrNoQuorum (store.ErrNoQuorum) is in the chain of a Take that failed because this node
// lost the cluster's quorum: it can lease nothing until it reaches a majority again.
var ErrNoQuorum = store.ErrNoQuorum

// errUnreachableNoQuorum is Take's fast failure while the last round trip found no quorum
// (made once: the fast path allocates nothing).
var errUnreachableNoQuorum = fmt.Errorf("%w: %w", ErrUnreachable, ErrNoQuorum)

// LeaseRecords is where the leases are kept (store.Records over the leases bucket): one
// document per limit, written only by compare-and-set.
type LeaseRecords interface {
	Get(ctx context.Context, key string) (json.RawMessage, uint64, error)
	Create(ctx context.Context, key string, doc json.RawMessage) (uint64, error)
	Update(ctx context.Context, key string, doc json.RawMessage, rev uint64) (uint64, error)
}

// LedgerConfig configures a node's Ledger.
type LedgerConfig struct {
	Node    string // this node's name, unique in the cluster
	Records LeaseRecords
	// TTL is how long a lease holds without renewal: the slots of a node that died or was cut
	// off come back to the others after TTL. Default 10 s.
	TTL time.Duration
	// Idle is the ledger's tick: slots left unused for a whole tick are given back at the next
	// one (between 1 and 2 ticks after they went idle). Default 1 s. TTL must exceed 4 ticks.
	Idle time.Duration
	// Wait bounds one acquisition (its compare-and-set round trips), within the caller's
	// context: a node that cannot reach the ledger throttles instead of hanging. Default 2 s.
	Wait time.Duration
	Now  func() time.Time
	Log  *slog.Logger
}

// Ledger keeps Lambda's concurrency limits (the account's unreserved pool, each function's
// reserved concurrency) across the nodes of a cluster. Each limit is one KV document listing
// the slots every node leases of it, each lease with an expiry; a node changes its own lease by
// compare-and-set, never past the limit counting the others' live leases. On each node a limit
// is a Slots: the node admits invocations against the slots it holds with one atomic
// compare-and-swap, and asks the ledger for one more only when they are all busy. Run gives
// back slots left idle, renews the leases the node holds, and stops the node using a lease it
// could not renew before the others may take it.
//
// Bounds (clocks of the nodes within a second of each other): the slots leased never exceed a
// limit as each node sees it. A node that dies or is cut off keeps its slots for at most TTL
// from its last renewal; it stops admitting on them itself TTL-2·Idle after that renewal (so
// before the others may take them), while the invocations it already runs go on to their end.
// So the cluster runs at most limit + (what the cut-off node had running when cut off) at once,
// and only from TTL after its last renewal until those invocations end (at most the function's
// timeout later). Other nodes wait at most ~2·Idle for slots a busy node stopped using.
type Ledger struct {
	cfg   LedgerConfig
	renew time.Duration // how often a held lease is renewed: TTL/3
	guard time.Duration // a node stops using a lease this long before the others may take it

	mu    sync.Mutex
	slots map[string]*Slots

	warned   atomic.Int64 // unix ns of the last warning (warnings are rate-limited)
	failed   atomic.Int64 // when (the ledger's clock, unix ns) the last round trip failed; 0: it did not
	noQuorum atomic.Bool  // the last failed round trip failed for want of the cluster's quorum

	granted, denied atomic.Int64 // LedgerStats
}

// NewLedger returns the ledger of the node cfg names; Run keeps its leases.
func NewLedger(cfg LedgerConfig) *Ledger {
	if cfg.TTL <= 0 {
		cfg.TTL = 10 * time.Second
	}
	if cfg.Idle <= 0 {
		cfg.Idle = time.Second
	}
	if cfg.Idle > cfg.TTL/4 {
		cfg.Idle = cfg.TTL / 4
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Ledger{cfg: cfg, renew: cfg.TTL / 3, guard: 2 * cfg.Idle, slots: make(map[string]*Slots)}
}

// Slots returns this node's hold on the limit stored under key ("account", "function.NAME"),
// creating it (nothing leased) on first use.
func (l *Ledger) Slots(key string) *Slots {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.slots[key]
	if s == nil {
		s = &Slots{l: l, key: key}
		l.slots[key] = s
	}
	return s
}

// Run gives back idle slots and renews leases every Idle until ctx ends; then it gives back
// every slot no invocation uses, so a node that stops cleanly frees them at once. Apart from
// that loop, whose round trips to the ledger may be slow when the cluster is not reachable, a
// watchdog that does no I/O stops the node using leases it could not renew in time.
func (l *Ledger) Run(ctx context.Context) error {
	watchdog := make(chan struct{})
	go func() {
		defer close(watchdog)
		t := time.NewTicker(l.cfg.Idle)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				l.lapse(l.cfg.Now())
			}
		}
	}()
	defer func() { <-watchdog }()
	t := time.NewTicker(l.cfg.Idle)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			bye, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.Wait)
			defer cancel()
			for _, s := range l.all() {
				s.leave(bye)
			}
			return nil
		case <-t.C:
			l.tick(ctx)
		}
	}
}

// tick is one round of the keeping loop: lapsed leases first (as the watchdog does), then each
// limit's give-back and renewal.
func (l *Ledger) tick(ctx context.Context) {
	now := l.cfg.Now()
	l.lapse(now)
	for _, s := range l.all() {
		s.tick(ctx, now)
	}
}

// lapse stops this node using every lease it could not renew in time (no I/O, no lock a
// round trip holds).
func (l *Ledger) lapse(now time.Time) {
	for _, s := range l.all() {
		s.lapse(now)
	}
}

// reachable reports whether the last round trip to the ledger, if it failed, failed long
// enough ago (Idle) to try again: while the cluster cannot be reached, an invocation that
// needs a slot is throttled at once instead of waiting for its own round trip to fail.
func (l *Ledger) reachable(now time.Time) bool {
	f := l.failed.Load()
	return f == 0 || now.UnixNano()-f >= int64(l.cfg.Idle)
}

// result records how a round trip to the ledger ended, for reachable.
func (l *Ledger) result(now time.Time, err error) {
	switch {
	case err == nil || errors.Is(err, ErrLimit):
		l.failed.Store(0)
	default:
		l.noQuorum.Store(errors.Is(err, ErrNoQuorum))
		l.failed.Store(now.UnixNano())
	}
}

func (l *Ledger) all() []*Slots {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*Slots, 0, len(l.slots))
	for _, s := range l.slots {
		out = append(out, s)
	}
	return out
}

// warn logs at most one warning every 10 s: a node cut off from the ledger would otherwise log
// once per throttled invocation.
func (l *Ledger) warn(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := l.warned.Load()
	if now-last < int64(10*time.Second) || !l.warned.CompareAndSwap(last, now) {
		return
	}
	l.cfg.Log.Warn(msg, args...)
}

// leaseDoc is one limit's document: every node's lease of it.
type leaseDoc struct {
	Leases map[string]lease `json:"leases"`
}

type lease struct {
	Slots   int       `json:"slots"`
	Expires time.Time `json:"expires"` // by the writer's clock
}

// maxConflicts bounds the compare-and-set retries of one change; each conflict is another
// node's change succeeding, so this is reached only under a storm of them.
const maxConflicts = 32

// set makes this node's lease of key want slots for TTL from now, within limit: the other
// nodes' live leases count, expired ones are dropped, and this node gets at most what they
// leave. Less than need is refused (ErrLimit, nothing written). It returns the slots leased
// and until when (local clock) this node may use them.
func (l *Ledger) set(ctx context.Context, key string, limit, want, need int) (int, int64, error) {
	for range maxConflicts {
		now := l.cfg.Now() // before the round trip: the expiry written is never later than the one used locally
		raw, rev, err := l.cfg.Records.Get(ctx, key)
		var d leaseDoc
		switch {
		case errors.Is(err, store.ErrNotFound):
			rev = 0
		case err != nil:
			return 0, 0, err
		default:
			if err := json.Unmarshal(raw, &d); err != nil {
				return 0, 0, fmt.Errorf("decode concurrency lease %s: %w", key, err)
			}
		}
		if d.Leases == nil {
			d.Leases = make(map[string]lease)
		}
		_, had := d.Leases[l.cfg.Node]
		changed := had
		others := 0
		for node, ls := range d.Leases {
			switch {
			case !ls.Expires.After(now):
				delete(d.Leases, node)
				changed = true
			case node != l.cfg.Node:
				others += ls.Slots
			}
		}
		got := min(want, max(0, limit-others))
		if got < need {
			return 0, 0, fmt.Errorf("%s: %d of %d slots leased: %w", key, others, limit, ErrLimit)
		}
		if got > 0 {
			d.Leases[l.cfg.Node] = lease{Slots: got, Expires: now.Add(l.cfg.TTL)}
		} else {
			delete(d.Leases, l.cfg.Node)
		}
		if got == 0 && !changed {
			return 0, 0, nil
		}
		doc, err := json.Marshal(d)
		if err != nil {
			return 0, 0, fmt.Errorf("encode concurrency lease %s: %w", key, err)
		}
		if rev == 0 {
			_, err = l.cfg.Records.Create(ctx, key, doc)
		} else {
			_, err = l.cfg.Records.Update(ctx, key, doc, rev)
		}
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrExists) {
			continue // another node changed it first: count again
		}
		if err != nil {
			return 0, 0, err
		}
		var valid int64
		if got > 0 {
			valid = now.Add(l.cfg.TTL - l.guard).UnixNano()
		}
		return got, valid, nil
	}
	return 0, 0, fmt.Errorf("concurrency lease %s: %d conflicting writes in a row", key, maxConflicts)
}

// Slots is this node's hold on one limit: the slots it leases and the invocations using them.
type Slots struct {
	l   *Ledger
	key string
	// state packs the slots held (high 32 bits) and the invocations using them (low 32 bits),
	// so that taking a slot checks and counts in one compare-and-swap, and giving slots back can
	// never strand an invocation admitted a moment earlier.
	state atomic.Uint64
	limit atomic.Int64 // the limit as this node last saw it (SetLimit, Take)

	// valid is until when (the ledger's clock, unix ns) this node may use its lease; 0: no
	// lease. Written after a lease is written and before its slots are added to state, so
	// that lapse, which clears it, never strands slots of a newer lease.
	valid atomic.Int64

	// waiting counts the Takes that found no free slot, the one leasing among them: a lease
	// grows by all of them in one round trip, not one slot per round trip each waits its turn
	// for (a burst of N cold invocations on a node took N round trips in a row, and on a loaded
	// cluster the last of them ran out of the ledger's Wait and were throttled).
	waiting atomic.Int32

	mu      sync.Mutex // one ledger round trip at a time for this limit on this node
	leased  int        // the slots of this node's lease as last written (≥ held)
	renewed time.Time  // when the lease was last written
	spare   int        // slots found idle at the last tick
}

func unpack(v uint64) (held, running int) { return int(v >> 32), int(uint32(v)) }

// TryTake takes a slot this node already holds, if one is free: the warm path (no allocation,
// no round trip). The caller gives it back with Put.
func (s *Slots) TryTake() bool {
	for {
		v := s.state.Load()
		if uint32(v) >= uint32(v>>32) {
			return false
		}
		if s.state.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// Put gives back a slot taken by TryTake or Take.
func (s *Slots) Put() { s.state.Add(^uint64(0)) }

// SetLimit tells the slots the limit as this node now sees it (a reservation changed): the
// next renewal trims this node's lease if the cluster's leases exceed it.
func (s *Slots) SetLimit(limit int) { s.limit.Store(int64(max(limit, 0))) }

// Held returns the slots this node holds and how many are in use.
func (s *Slots) Held() (held, running int) { return unpack(s.state.Load()) }

// Take takes a slot, leasing more from the cluster when this node's are all busy: one for each
// Take waiting, at least one (one compare-and-set, retried on conflict, bounded by ctx and the
// ledger's Wait). ErrLimit: the cluster's slots are all leased.
func (s *Slots) Take(ctx context.Context, limit int) error {
	s.SetLimit(limit)
	if s.TryTake() {
		return nil
	}
	if !s.l.reachable(s.l.cfg.Now()) {
		s.l.denied.Add(1)
		if s.l.noQuorum.Load() {
			return errUnreachableNoQuorum
		}
		return ErrUnreachable
	}
	ctx, cancel := context.WithTimeout(ctx, s.l.cfg.Wait)
	defer cancel()
	s.waiting.Add(1)
	defer s.waiting.Add(-1)
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.TryTake() { // a slot came free, or another taker leased more
			return nil
		}
		held, running := unpack(s.state.Load()) // grows only under s.mu (lapse may lower it)
		base := max(held, running)              // after a lapse, the invocations still running count again
		now := s.l.cfg.Now()
		got, valid, err := s.l.set(ctx, s.key, limit, base+max(int(s.waiting.Load()), 1), base+1)
		s.l.result(now, err)
		if err != nil {
			s.l.denied.Add(1)
			if !errors.Is(err, ErrLimit) && !errors.Is(err, ErrNoQuorum) {
				s.l.warn("cannot lease concurrency from the cluster; throttling", "limit", s.key, "err", err)
			}
			return err
		}
		s.leased, s.renewed = got, now
		s.valid.Store(valid)
		s.state.Add(uint64(got-held) << 32)
		if got > held {
			s.l.granted.Add(1)
		}
	}
}

// shrink lowers the slots held to n, or to the invocations running if keepBusy and more are;
// it returns the slots now held.
func (s *Slots) shrink(n int, keepBusy bool) int {
	for {
		v := s.state.Load()
		held, running := unpack(v)
		if keepBusy {
			n = max(n, running)
		}
		if n >= held {
			return held
		}
		if s.state.CompareAndSwap(v, uint64(n)<<32|uint64(uint32(v))) {
			return n
		}
	}
}

// tick gives back the slots idle since the last tick and renews the lease when due (or when
// it lapsed: what still runs is leased again if there is room).
func (s *Slots) tick(ctx context.Context, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	held, running := unpack(s.state.Load())
	if s.leased == 0 && held == 0 && running == 0 {
		s.spare = 0
		return
	}
	spare := max(held-running, 0)
	give := min(spare, s.spare)
	if give > 0 {
		held = s.shrink(held-give, true)
	}
	s.spare = spare - give
	if give == 0 && held == s.leased && s.valid.Load() != 0 && now.Sub(s.renewed) < s.l.renew {
		return
	}
	_, running = unpack(s.state.Load())
	want := max(held, running) // after a lapse, what still runs is leased again if there is room
	rctx, cancel := context.WithTimeout(ctx, s.l.cfg.Wait)
	got, valid, err := s.l.set(rctx, s.key, int(s.limit.Load()), want, 0)
	cancel()
	s.l.result(now, err)
	if err != nil {
		if !errors.Is(err, ErrNoQuorum) { // the store logged the loss once
			s.l.warn("cannot renew a concurrency lease", "limit", s.key, "err", err)
		}
		return
	}
	s.leased, s.renewed = got, now
	s.valid.Store(valid)
	switch held, _ = unpack(s.state.Load()); {
	case got < held: // the limit was lowered, or the others took slots while this lease had lapsed
		s.shrink(got, false)
	case got > held:
		s.state.Add(uint64(got-held) << 32)
	}
}

// lapse stops this node admitting on its lease if the lease was not renewed in time: the
// other nodes may soon count it expired and take its slots. What runs goes on.
func (s *Slots) lapse(now time.Time) {
	v := s.valid.Load()
	if v == 0 || now.UnixNano() < v || !s.valid.CompareAndSwap(v, 0) {
		return // valid, none, or renewed meanwhile
	}
	s.shrink(0, false)
	_, running := s.Held()
	s.l.cfg.Log.Warn("concurrency lease not renewed in time: this node admits no more invocations on it until it is renewed",
		"limit", s.key, "running", running)
}

// leave gives back every slot no invocation uses (the node is stopping).
func (s *Slots) leave(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leased == 0 {
		return
	}
	held := s.shrink(0, true)
	got, valid, err := s.l.set(ctx, s.key, int(s.limit.Load()), held, 0)
	if err != nil {
		s.l.cfg.Log.Warn("giving back concurrency leases", "limit", s.key, "err", err)
		return
	}
	s.leased = got
	s.valid.Store(valid)
}

// LedgerStats counts a node's round trips to the ledger for slots (metrics).
type LedgerStats struct {
	Granted int64 // slots leased from the cluster when this node's were all busy
	Denied  int64 // admissions refused: every slot leased, or the ledger unreachable
}

// Stats returns what the node asked of the ledger so far.
func (l *Ledger) Stats() LedgerStats {
	return LedgerStats{Granted: l.granted.Load(), Denied: l.denied.Load()}
}
