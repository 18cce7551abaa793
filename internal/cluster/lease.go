package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/flint-run/flint/internal/store"
)

// HolderRecords is where the leases are kept (store.Records over the lane leases bucket): one
// document per lease, written only by compare-and-set.
type HolderRecords interface {
	LeaseRecords
	Delete(ctx context.Context, key string) error
}

// LeaseConfig configures a node's Leases.
type LeaseConfig struct {
	Node    string // this node's name, unique in the cluster
	Records HolderRecords
	// TTL is how long a lease holds without renewal: another node takes a lease whose record it
	// has seen unchanged for TTL (by its own clock). Default 10 s.
	TTL time.Duration
	// Tick is how often a node looks at a lease it does not hold, and how often the holder
	// retries a renewal that failed. Default 1 s; at most TTL/5.
	Tick time.Duration
	// Wait bounds one round trip to the bucket. Default 2 s.
	Wait time.Duration
	Log  *slog.Logger
}

// Leases gives work that must run on one node at a time (a stream event source mapping's
// reader) to one node of the cluster, and moves it to another node when its holder dies or is
// cut off. Each lease is one KV document naming its holder, written only by compare-and-set:
// created to take a free lease, updated at the revision read to renew, release or take over.
//
// A lease's states, as one node sees it (Hold's loop):
//
//	following ── free (absent or released) ──────────────▶ holding
//	    ▲    └── its record unchanged for TTL ─ CAS ──────▶ holding
//	    │                                                      │ renewed by CAS every TTL/3
//	    └── lost (another node's record) | lapsed (not renewed for TTL−2·Tick) | run ended
//	holding ── ctx ends ──▶ released (holder "": the others take it at their next look)
//
// Expiry is judged without comparing clocks: a node takes a lease only after seeing the same
// revision of its record for TTL by its own clock, so at least TTL after the holder wrote it;
// the holder stops its work TTL − 2·Tick after the start of the round trip that wrote it (a
// timer, no I/O). Only the clocks' rates need agree, and the holder must not stall for more
// than 2·Tick between its timer firing and its work seeing the end of its context. A
// revision's CAS is decided by the bucket's stream leader, so stale reads (a replica behind)
// delay a takeover or make it fail, never give one lease to two nodes.
//
// Bound: a lease whose holder dies is taken by another node between TTL − TTL/3 and
// TTL + 2·Tick (+ one round trip) after the death (12 s with the defaults), once the bucket
// is writable (a JetStream leader election after the death overlaps that wait).
type Leases struct {
	cfg   LeaseConfig
	renew time.Duration // how often the holder renews: TTL/3
	guard time.Duration // the holder stops this long before the others may take its lease
	held  atomic.Int64  // leases this node holds, to spread new ones across the nodes

	warned atomic.Int64 // unix ns of the last rate-limited warning
}

// warn logs at most one warning every 10 s: a node cut off from the bucket would otherwise
// log one per lease per tick.
func (l *Leases) warn(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := l.warned.Load()
	if now-last < int64(10*time.Second) || !l.warned.CompareAndSwap(last, now) {
		return
	}
	l.cfg.Log.Warn(msg, args...)
}

// NewLeases returns the leases of the node cfg names.
func NewLeases(cfg LeaseConfig) *Leases {
	if cfg.TTL <= 0 {
		cfg.TTL = 10 * time.Second
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	cfg.Tick = min(cfg.Tick, cfg.TTL/5)
	if cfg.Wait <= 0 {
		cfg.Wait = 2 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Leases{cfg: cfg, renew: cfg.TTL / 3, guard: 2 * cfg.Tick}
}

// holderDoc is one lease's record.
type holderDoc struct {
	Holder string `json:"holder"` // "": released
	// Renewed (the writer's clock) and TTL are for people reading the bucket: no node compares
	// its clock with another's.
	Renewed time.Time     `json:"renewed"`
	TTL     time.Duration `json:"ttl_ns"`
}

// Holder returns the node named in lease key's record ("" when released), for tools and tests.
func (l *Leases) Holder(ctx context.Context, key string) (string, error) {
	raw, _, err := l.cfg.Records.Get(ctx, key)
	if err != nil {
		return "", err
	}
	var d holderDoc
	if err := json.Unmarshal(raw, &d); err != nil {
		return "", fmt.Errorf("decode lease %s: %w", key, err)
	}
	return d.Holder, nil
}

// Hold runs run while this node holds lease key, until ctx ends. run's context ends as soon as
// the lease is lost or was not renewed in time (before another node may take it); when run
// returns for that or any other reason, Hold goes back to following the lease and runs run
// again once it holds it again. When ctx ends Hold waits for run to return and releases the
// lease, so that another node takes it at once.
func (l *Leases) Hold(ctx context.Context, key string, run func(ctx context.Context)) {
	var seen observation
	for {
		if rev, since, ok := l.acquire(ctx, key, &seen); ok {
			l.held.Add(1)
			l.hold(ctx, key, rev, since, run)
			l.held.Add(-1)
			seen = observation{}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(l.cfg.Tick):
		}
	}
}

// observation is what a following node last saw of a lease: a revision and when it first saw
// it (its own clock), and since when the lease has been free.
type observation struct {
	rev  uint64
	at   time.Time
	free time.Time
}

func (l *Leases) doc(holder string) json.RawMessage {
	b, _ := json.Marshal(holderDoc{Holder: holder, Renewed: time.Now().UTC(), TTL: l.cfg.TTL})
	return b
}

// acquire looks at lease key once and takes it if it is free, this node's already (a lapse, or
// this node restarted under its name), or unchanged for TTL. It returns the revision written
// and the start of the round trip that wrote it (the holder's validity counts from there).
func (l *Leases) acquire(parent context.Context, key string, seen *observation) (uint64, time.Time, bool) {
	ctx, cancel := context.WithTimeout(parent, l.cfg.Wait)
	defer cancel()
	raw, rev, err := l.cfg.Records.Get(ctx, key)
	now := time.Now() // after the answer: never earlier than the revision's write
	var d holderDoc
	switch {
	case errors.Is(err, store.ErrNotFound):
		rev = 0
	case err != nil:
		if parent.Err() == nil {
			l.warn("cannot read a lease", "lease", key, "err", err)
		}
		return 0, time.Time{}, false
	default:
		if err := json.Unmarshal(raw, &d); err != nil {
			l.warn("undecodable lease; taking it over once it is unchanged for its TTL", "lease", key, "err", err)
			d.Holder = "?"
		}
	}
	takeover := ""
	switch {
	case rev == 0 || d.Holder == "":
		// Free: a node already holding leases waits for those holding none, which look every
		// tick, to take it first: new mappings spread across the nodes.
		if k := l.held.Load(); k > 0 {
			if seen.free.IsZero() {
				seen.free = now
			}
			if now.Sub(seen.free) < min(time.Duration(k)*2*l.cfg.Tick, l.cfg.TTL/4) {
				return 0, time.Time{}, false
			}
		}
	case d.Holder == l.cfg.Node:
	case rev != seen.rev:
		seen.rev, seen.at, seen.free = rev, now, time.Time{}
		return 0, time.Time{}, false
	case now.Sub(seen.at) < l.cfg.TTL:
		return 0, time.Time{}, false
	default:
		takeover = d.Holder
	}
	start := time.Now()
	var nrev uint64
	if rev == 0 {
		nrev, err = l.cfg.Records.Create(ctx, key, l.doc(l.cfg.Node))
	} else {
		nrev, err = l.cfg.Records.Update(ctx, key, l.doc(l.cfg.Node), rev)
	}
	switch {
	case errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrConflict):
		return 0, time.Time{}, false // another node wrote first: look again next tick
	case err != nil:
		l.warn("cannot take a lease", "lease", key, "err", err)
		return 0, time.Time{}, false
	}
	if takeover != "" {
		l.cfg.Log.Info("took over a lease its holder stopped renewing", "lease", key, "from", takeover,
			"unchanged_for", now.Sub(seen.at).Round(time.Millisecond))
	} else {
		l.cfg.Log.Debug("took a lease", "lease", key)
	}
	return nrev, start, true
}

// hold runs run while the lease (at rev, written by a round trip that started at since) is
// this node's: it renews it every TTL/3 and ends run's context when the lease is lost, or at
// TTL − guard after the last renewal that succeeded (a timer, so a round trip that hangs does
// not delay it). It returns once run has returned; when ctx ended, after releasing the lease.
func (l *Leases) hold(ctx context.Context, key string, rev uint64, since time.Time, run func(ctx context.Context)) {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var lapsed atomic.Bool
	valid := l.cfg.TTL - l.guard
	watchdog := time.AfterFunc(time.Until(since.Add(valid)), func() {
		lapsed.Store(true)
		cancel()
	})
	defer watchdog.Stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(rctx)
	}()
	next := time.NewTimer(max(time.Until(since.Add(l.renew)), 0))
	defer next.Stop()
	for {
		select {
		case <-done:
			if ctx.Err() != nil || !lapsed.Load() {
				// Stopping, or the work ended by itself: let another node (or this one, at its
				// next look) take it now rather than after the TTL.
				l.release(ctx, key, rev)
			}
			return
		case <-rctx.Done():
			if lapsed.Load() && ctx.Err() == nil {
				l.cfg.Log.Warn("lease not renewed in time: stopping its work before another node may take it", "lease", key)
			}
			<-done
			if ctx.Err() != nil && !lapsed.Load() {
				l.release(ctx, key, rev)
			}
			return
		case <-next.C:
			start := time.Now()
			nrev, err := l.write(rctx, key, rev, l.cfg.Node)
			switch {
			case err == nil:
				rev = nrev
				if watchdog.Stop() { // not fired: the lease holds until TTL − guard from start
					watchdog.Reset(time.Until(start.Add(valid)))
				}
				next.Reset(l.renew)
			case errors.Is(err, errLost):
				l.cfg.Log.Warn("lease taken by another node: stopping its work", "lease", key, "err", err)
				cancel()
			default:
				if rctx.Err() == nil {
					l.warn("cannot renew a lease; trying again every tick", "lease", key, "err", err)
				}
				next.Reset(l.cfg.Tick)
			}
		}
	}
}

var errLost = errors.New("cluster: lease held by another node")

// write rewrites this node's lease at rev, naming holder (this node to renew, "" to release).
// A conflict means a write changed the record since: this node's own whose answer was lost
// (written again from there), or another node's takeover (errLost).
func (l *Leases) write(ctx context.Context, key string, rev uint64, holder string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Wait)
	defer cancel()
	nrev, err := l.cfg.Records.Update(ctx, key, l.doc(holder), rev)
	if !errors.Is(err, store.ErrConflict) {
		return nrev, err
	}
	raw, rev, err := l.cfg.Records.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return 0, fmt.Errorf("lease %s deleted: %w", key, errLost)
	}
	if err != nil {
		return 0, err
	}
	var d holderDoc
	if err := json.Unmarshal(raw, &d); err != nil || d.Holder != l.cfg.Node {
		return 0, fmt.Errorf("lease %s now held by %q: %w", key, d.Holder, errLost)
	}
	return l.cfg.Records.Update(ctx, key, l.doc(holder), rev)
}

// release marks lease key free, if it is still this node's at rev.
func (l *Leases) release(ctx context.Context, key string, rev uint64) {
	if _, err := l.write(context.WithoutCancel(ctx), key, rev, ""); err != nil && !errors.Is(err, errLost) {
		l.cfg.Log.Warn("cannot release a lease; another node takes it after its TTL", "lease", key, "err", err)
	}
}

// Drop deletes lease key's record (its work is gone for good).
func (l *Leases) Drop(ctx context.Context, key string) error {
	if err := l.cfg.Records.Delete(ctx, key); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}
