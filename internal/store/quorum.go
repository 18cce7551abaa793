package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrNoQuorum means this cluster node cannot reach a majority of the cluster: JetStream can
// commit nothing it writes, so the store refuses writes at once instead of letting them hang
// until they time out. The error returned is a *NoQuorumError.
var ErrNoQuorum = errors.New("store: this node has lost the cluster's quorum")

// NoQuorumError is a write refused because this node lost the cluster's quorum; nothing was
// written.
type NoQuorumError struct {
	Node               string
	Reach, Size, Needs int // nodes of the cluster this node reaches (itself included), of Size; Needs make a quorum
}

func (e *NoQuorumError) Error() string {
	return fmt.Sprintf("node %s has lost the cluster's quorum: it reaches %d of %d nodes, %d needed", e.Node, e.Reach, e.Size, e.Needs)
}

func (e *NoQuorumError) Is(target error) bool { return target == ErrNoQuorum }

// Quorum states (Quorum.State).
const (
	QuorumStandalone = "standalone" // not a cluster node: nothing to lose
	QuorumOK         = "ok"         // in contact with the meta group's leader (or leading a majority)
	QuorumElecting   = "electing"   // no leader in contact, but a majority is reachable: an election is under way
	QuorumLost       = "lost"       // a majority is out of reach: writes are refused
)

// Quorum is what this node knows of the cluster's quorum: whether the JetStream meta group has
// a leader this node is in contact with, and how many of the cluster's nodes it reaches.
type Quorum struct {
	Node   string    `json:"node"`
	State  string    `json:"state"`
	Reach  int       `json:"reach"` // nodes reached through live routes, this one included
	Size   int       `json:"size"`  // nodes in the meta group
	Needs  int       `json:"needs"` // a majority of Size
	Leader string    `json:"leader,omitempty"`
	Since  time.Time `json:"since"` // when this state began
}

// OK reports whether the node can make changes (a standalone node always can; a node in an
// election is let try: its writes go through once a leader is elected, or time out).
func (q Quorum) OK() bool { return q.State != QuorumLost }

// Quorum bounds. A Raft follower counts its leader current for 2 heartbeats (nats-server's
// okInterval); a leader hears from each follower every heartbeat (1 s). An election ends within
// the maximum election timeout (9 s) of the leader's loss; a node still without a leader it is in
// contact with after electionBound is cut off as far as its users can tell, even if a route
// still looks connected (a silent partition: routes notice only when their pings time out).
const (
	quorumTick    = 250 * time.Millisecond
	contactWindow = 3 * time.Second
	electionBound = 15 * time.Second
)

// quorumWatch keeps this node's Quorum fresh and logs one line when the node loses the
// cluster's quorum and one when it regains it.
type quorumWatch struct {
	ns  *server.Server
	log *slog.Logger
	now func() time.Time
	q   atomic.Pointer[Quorum]

	noContact time.Time // since when no leader was in contact; zero while one is
	lostAt    time.Time // when the loss was logged; zero until then, and again once ok

	stop     chan struct{}
	stopOnce sync.Once
	done     sync.WaitGroup
}

func newQuorumWatch(ns *server.Server, log *slog.Logger) *quorumWatch {
	w := &quorumWatch{ns: ns, log: log, now: time.Now, stop: make(chan struct{})}
	q := w.assess()
	if q.State == QuorumLost {
		// Just joined: the meta leader was there a moment ago (waitMeta); do not start lost.
		q.State = QuorumElecting
	}
	w.q.Store(&q)
	return w
}

// start runs the watch until close.
func (w *quorumWatch) start() {
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		t := time.NewTicker(quorumTick)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				w.update()
			}
		}
	}()
}

func (w *quorumWatch) close() {
	w.stopOnce.Do(func() { close(w.stop) })
	w.done.Wait()
}

func (w *quorumWatch) update() {
	q := w.assess()
	was := w.q.Load()
	if q.State == was.State {
		q.Since = was.Since
		w.q.Store(&q)
		return
	}
	w.q.Store(&q)
	// One line for the loss and one for the return to a leader in contact, whatever the node
	// went through between them (an election after the heal, say).
	switch {
	case q.State == QuorumLost && w.lostAt.IsZero():
		w.lostAt = q.Since
		w.log.Error("this node has lost the cluster's quorum: it refuses changes (AWS ServiceException) and admits invocations only on concurrency it already holds, until it reaches a majority again",
			"node", q.Node, "reaches", q.Reach, "of", q.Size, "needs", q.Needs)
	case q.State == QuorumOK && !w.lostAt.IsZero():
		w.log.Warn("this node has regained the cluster's quorum", "node", q.Node, "reaches", q.Reach, "of", q.Size,
			"leader", q.Leader, "lost_for", q.Since.Sub(w.lostAt).Round(time.Millisecond))
		w.lostAt = time.Time{}
	}
}

// assess computes the node's quorum from its meta group and its routes.
func (w *quorumWatch) assess() Quorum {
	now := w.now()
	me := w.ns.Name()
	q := Quorum{Node: me, State: QuorumLost, Reach: 1, Size: 1, Needs: 1, Since: now}
	jsz, err := w.ns.Jsz(nil)
	if err != nil || jsz.Meta == nil {
		return q
	}
	m := jsz.Meta
	q.Size = max(m.Size, 1)
	q.Needs = q.Size/2 + 1
	q.Leader = m.Leader
	routed := map[string]bool{}
	if rz, err := w.ns.Routez(nil); err == nil {
		for _, r := range rz.Routes {
			routed[r.RemoteName] = true
		}
	}
	inContact := 1 // this node
	contact := false
	for _, p := range m.Replicas {
		if p == nil || p.Name == me {
			continue
		}
		if routed[p.Name] {
			q.Reach++
		}
		switch {
		case m.Leader == me:
			// The leader hears from each follower every heartbeat.
			if routed[p.Name] && p.Active <= contactWindow {
				inContact++
			}
		case p.Name == m.Leader:
			// A follower's PeerInfo of its leader is current when heard within two heartbeats.
			contact = p.Current && routed[p.Name]
		}
	}
	if m.Leader == me {
		contact = inContact >= q.Needs
	}
	switch {
	case contact:
		w.noContact = time.Time{}
		q.State = QuorumOK
	default:
		if w.noContact.IsZero() {
			w.noContact = now
		}
		if q.Reach >= q.Needs && now.Sub(w.noContact) < electionBound {
			q.State = QuorumElecting
		}
	}
	return q
}

// Quorum is this node's view of the cluster's quorum (QuorumStandalone on a single node).
func (s *Store) Quorum() Quorum {
	if s.quorum == nil {
		return Quorum{State: QuorumStandalone, Reach: 1, Size: 1, Needs: 1}
	}
	return *s.quorum.q.Load()
}

// refuse returns the error a write gets while this node has lost the quorum (nil otherwise).
func (s *Store) refuse() error {
	if s.quorum == nil {
		return nil
	}
	if q := s.quorum.q.Load(); q.State == QuorumLost {
		return &NoQuorumError{Node: q.Node, Reach: q.Reach, Size: q.Size, Needs: q.Needs}
	}
	return nil
}

// quorumLost reports whether js is a store's whose node has lost the quorum.
func quorumLost(js jetstream.JetStream) bool {
	r, ok := js.(*replicated)
	return ok && r.s != nil && r.s.refuse() != nil
}

// failed turns a write that got no answer into the quorum error if the node has lost its
// quorum meanwhile (the write was sent before the loss was known): the caller then gets one
// clear error, whenever the loss happened.
func (s *Store) failed(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) {
		if r := s.refuse(); r != nil {
			return r
		}
	}
	return err
}

// guardedKV refuses writes and listings while the node has lost the quorum; a read of one key
// goes through (this node's copy answers it, as of the loss).
type guardedKV struct {
	jetstream.KeyValue
	s *Store
}

// guardKV wraps every bucket the store opens: reads from the leader on replicated streams
// (leaderread.go), and the quorum's guard on a cluster node.
func (s *Store) guardKV(kv jetstream.KeyValue) jetstream.KeyValue {
	kv = s.leaderReadKV(kv)
	if s.quorum == nil {
		return kv
	}
	return guardedKV{KeyValue: kv, s: s}
}

// Get maps a read that got no answer while the quorum is lost to the quorum error (a copy
// that answers is read as it is: possibly stale).
func (g guardedKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	e, err := g.KeyValue.Get(ctx, key)
	return e, g.s.failed(err)
}

// ListKeysFiltered needs a consumer, which the JetStream API cannot make without the quorum:
// refused at once while it is lost.
func (g guardedKV) ListKeysFiltered(ctx context.Context, filters ...string) (jetstream.KeyLister, error) {
	if err := g.s.refuse(); err != nil {
		return nil, err
	}
	l, err := g.KeyValue.ListKeysFiltered(ctx, filters...)
	return l, g.s.failed(err)
}

func (g guardedKV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := g.s.refuse(); err != nil {
		return 0, err
	}
	rev, err := g.KeyValue.Put(ctx, key, value)
	return rev, g.s.failed(err)
}

func (g guardedKV) PutString(ctx context.Context, key string, value string) (uint64, error) {
	return g.Put(ctx, key, []byte(value))
}

func (g guardedKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	if err := g.s.refuse(); err != nil {
		return 0, err
	}
	rev, err := g.KeyValue.Create(ctx, key, value, opts...)
	return rev, g.s.failed(err)
}

func (g guardedKV) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	if err := g.s.refuse(); err != nil {
		return 0, err
	}
	rev, err := g.KeyValue.Update(ctx, key, value, revision)
	return rev, g.s.failed(err)
}

func (g guardedKV) Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	if err := g.s.refuse(); err != nil {
		return err
	}
	return g.s.failed(g.KeyValue.Delete(ctx, key, opts...))
}

func (g guardedKV) Purge(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	if err := g.s.refuse(); err != nil {
		return err
	}
	return g.s.failed(g.KeyValue.Purge(ctx, key, opts...))
}

// guardedObjects refuses the code store's writes while the node has lost the quorum.
type guardedObjects struct {
	jetstream.ObjectStore
	s *Store
}

func (s *Store) guardObjects(o jetstream.ObjectStore) jetstream.ObjectStore {
	if s.quorum == nil {
		return o
	}
	return guardedObjects{ObjectStore: o, s: s}
}

func (g guardedObjects) PutBytes(ctx context.Context, name string, data []byte) (*jetstream.ObjectInfo, error) {
	if err := g.s.refuse(); err != nil {
		return nil, err
	}
	info, err := g.ObjectStore.PutBytes(ctx, name, data)
	return info, g.s.failed(err)
}

func (g guardedObjects) Delete(ctx context.Context, name string) error {
	if err := g.s.refuse(); err != nil {
		return err
	}
	return g.s.failed(g.ObjectStore.Delete(ctx, name))
}
