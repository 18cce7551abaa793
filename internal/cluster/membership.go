// Package cluster is what Flint's nodes share besides the registry: each node's heartbeat in a
// KV bucket every node reads (Membership), so that any node can list the cluster (`flint nodes`,
// GET /flint/v1/nodes) with each node's address, memory budget, environments, version and the
// answering node's quorum, and drain a node (drain.go); the concurrency ledger that makes account
// and reserved concurrency the cluster's (Ledger); and work leases that let one node at a time
// read a stream event source mapping (Leases, lease.go).
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flint-run/flint/internal/store"
)

// Node states as List reports them.
const (
	StateUp      = "up"      // heartbeats arrive
	StateDown    = "down"    // heartbeats stopped without a goodbye: killed, hung or cut off
	StateStopped = "stopped" // shut down cleanly
	// StateDraining: up, and asked to drain (drain.go): it takes no new work and lets what it
	// runs finish.
	StateDraining = "draining"
)

// Node is one node's heartbeat record.
type Node struct {
	Name    string    `json:"name"`
	Address string    `json:"address"` // the node's API endpoint
	Version string    `json:"version"`
	Sandbox string    `json:"sandbox"`
	Started time.Time `json:"started"`
	// Heartbeat is when the record was written; Interval how often the node writes it, by which
	// readers judge it down.
	Heartbeat    time.Time     `json:"heartbeat"`
	Interval     time.Duration `json:"interval_ns"`
	BudgetMB     int           `json:"memory_budget_mb"` // 0: unbounded
	MemoryMB     int           `json:"memory_used_mb"`
	Environments int           `json:"environments"`
	Busy         int           `json:"busy"`
	Stopped      bool          `json:"stopped,omitempty"`
	// Draining is whether the node is asked to drain (its drain key is set; List fills it in);
	// DrainApplied whether the node itself reports, in its heartbeat, that it drains.
	Draining     bool `json:"draining,omitempty"`
	DrainApplied bool `json:"drain_applied,omitempty"`
	// State is computed by List from the record and the reader's clock.
	State string `json:"state"`
}

// Records is where heartbeats are kept (store.Records over the nodes bucket).
type Records interface {
	Put(ctx context.Context, key string, doc json.RawMessage) (uint64, error)
	Get(ctx context.Context, key string) (json.RawMessage, uint64, error)
	Keys(ctx context.Context, filter string) ([]string, error)
	Delete(ctx context.Context, key string) error
}

// Load is what a node reports of its environments (worker.Manager.Stats).
type Load struct {
	Environments, Busy int
	MemoryMB, BudgetMB int
}

// Config is a node's identity and how it reports.
type Config struct {
	Name     string
	Address  func() string // the node's API endpoint, known once it listens
	Sandbox  string
	Interval time.Duration // between heartbeats; default 2 s
	Load     func() Load
	Records  Records
	// Quorum is this node's view of the cluster's quorum (store.Store.Quorum); nil: a single
	// node, which has nothing to lose.
	Quorum func() store.Quorum
	Log    *slog.Logger
	Now    func() time.Time
	// OnDrain, when set, is told whether this node drains: when its drain key is first read
	// and whenever it changes (read at every heartbeat) or is changed through this node.
	OnDrain func(draining bool)
}

// Membership writes this node's heartbeat and reads everyone's.
type Membership struct {
	cfg     Config
	version string
	started time.Time

	drainMu  sync.Mutex // orders OnDrain calls
	drainSet bool       // drain state known (OnDrain told at least once)
	draining atomic.Bool
}

// missed is how many heartbeats a node may miss before readers call it down.
const missed = 3

// New returns the membership of the node cfg describes; Run starts its heartbeats.
func New(cfg Config) *Membership {
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	version := "(devel)"
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		version = info.Main.Version
	}
	return &Membership{cfg: cfg, version: version, started: cfg.Now()}
}

// Run writes a heartbeat every interval until ctx ends, then a last one saying the node stopped.
// The first is written before Run waits, so a node is listed as soon as it serves.
func (m *Membership) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		// A node without the quorum cannot write its heartbeat; the store logged the loss once.
		if err := m.beat(ctx, false); err != nil && ctx.Err() == nil && !errors.Is(err, store.ErrNoQuorum) {
			m.cfg.Log.Warn("heartbeat", "err", err)
		}
		select {
		case <-ctx.Done():
			// The goodbye must outlive ctx: readers would otherwise call a clean stop "down".
			bye, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			if err := m.beat(bye, true); err != nil {
				m.cfg.Log.Warn("last heartbeat", "err", err)
			}
			return nil
		case <-t.C:
		}
	}
}

// Announce writes a heartbeat now: the server calls it before its Start returns, so that the
// node is listed from then on (Run's first heartbeat comes from a goroutine, after).
func (m *Membership) Announce(ctx context.Context) error { return m.beat(ctx, false) }

func (m *Membership) beat(ctx context.Context, stopped bool) error {
	n := Node{Name: m.cfg.Name, Address: m.cfg.Address(), Version: m.version, Sandbox: m.cfg.Sandbox,
		Started: m.started, Heartbeat: m.cfg.Now(), Interval: m.cfg.Interval, Stopped: stopped}
	if !stopped {
		m.pollDrain(ctx)
	}
	n.DrainApplied = m.draining.Load()
	if m.cfg.Load != nil {
		l := m.cfg.Load()
		n.Environments, n.Busy, n.MemoryMB, n.BudgetMB = l.Environments, l.Busy, l.MemoryMB, l.BudgetMB
	}
	doc, err := json.Marshal(n)
	if err != nil {
		return err
	}
	if _, err := m.cfg.Records.Put(ctx, n.Name, doc); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	return nil
}

// List returns every node that has ever written a heartbeat, by name (Keys sorts), each with
// its state.
func (m *Membership) List(ctx context.Context) ([]Node, error) {
	keys, err := m.cfg.Records.Keys(ctx, ">")
	if err != nil {
		return nil, err
	}
	now := m.cfg.Now()
	out := make([]Node, 0, len(keys))
	drains := map[string]bool{} // drain keys sort anywhere among the names: read them first
	for _, k := range keys {
		if name, ok := strings.CutPrefix(k, drainPrefix); ok {
			drains[name] = true
		}
	}
	for _, k := range keys {
		if strings.HasPrefix(k, drainPrefix) {
			continue
		}
		doc, _, err := m.cfg.Records.Get(ctx, k)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue // removed since listed
			}
			return nil, err
		}
		var n Node
		if err := json.Unmarshal(doc, &n); err != nil {
			m.cfg.Log.Warn("undecodable node record", "node", k, "err", err)
			continue
		}
		n.Draining = drains[n.Name]
		n.State = state(n, now)
		out = append(out, n)
	}
	return out, nil
}

// Quorum is what the node answering knows of the cluster's quorum.
type Quorum struct {
	Node string `json:"node"`
	// State: standalone (a single node), ok, electing (no leader yet, a majority in reach) or
	// lost (a majority out of reach: the node refuses changes).
	State  string    `json:"state"`
	Reach  int       `json:"reach"` // nodes this one reaches, itself included
	Size   int       `json:"size"`
	Needs  int       `json:"needs"` // a majority of Size
	Leader string    `json:"leader,omitempty"`
	Since  time.Time `json:"since,omitzero"`
}

// Listing is what GET /flint/v1/nodes answers: the nodes, and the answering node's quorum.
type Listing struct {
	Nodes  []Node `json:"nodes"`
	Quorum Quorum `json:"quorum"`
	// Unlisted says why the nodes could not be read (the answering node lost the quorum).
	Unlisted string `json:"unlisted,omitempty"`
}

// listBound bounds reading the nodes on a cluster node: one that lost the quorum (or loses it
// meanwhile) gets no answer, and still answers with its own state.
const listBound = 5 * time.Second

// Status lists the nodes with the answering node's quorum. A node that lost the quorum answers
// with its quorum even when it cannot read the nodes.
func (m *Membership) Status(ctx context.Context) (Listing, error) {
	q := m.quorum()
	if q.State != store.QuorumStandalone {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, listBound)
		// A read sent just before the loss gets no answer: stop waiting for it once the loss
		// is known (the store knows within a quarter second).
		stopped := make(chan struct{})
		defer func() { cancel(); <-stopped }()
		go func() {
			defer close(stopped)
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if m.quorum().State == store.QuorumLost {
						cancel()
						return
					}
				}
			}
		}()
	}
	nodes, err := m.List(ctx)
	if err != nil {
		// The quorum may have been lost while the nodes were read.
		if q = m.quorum(); q.State != store.QuorumLost {
			return Listing{}, err
		}
		m.cfg.Log.Debug("listing the nodes without the quorum", "err", err)
		return Listing{Nodes: []Node{}, Quorum: q, Unlisted: "this node has lost the cluster's quorum and cannot read the other nodes' heartbeats"}, nil
	}
	return Listing{Nodes: nodes, Quorum: q}, nil
}

// quorum is this node's view of the cluster's quorum.
func (m *Membership) quorum() Quorum {
	if m.cfg.Quorum == nil {
		return Quorum{Node: m.cfg.Name, State: store.QuorumStandalone, Reach: 1, Size: 1, Needs: 1}
	}
	q := m.cfg.Quorum()
	if q.Node == "" {
		q.Node = m.cfg.Name // a single node
	}
	return Quorum{Node: q.Node, State: q.State, Reach: q.Reach, Size: q.Size, Needs: q.Needs, Leader: q.Leader, Since: q.Since}
}

func state(n Node, now time.Time) string {
	switch {
	case n.Stopped:
		return StateStopped
	case now.Sub(n.Heartbeat) > missed*n.Interval:
		return StateDown
	case n.Draining:
		return StateDraining
	}
	return StateUp
}
