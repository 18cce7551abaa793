package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/flint-run/flint/internal/store"
)

// Draining a node (docs/CLUSTER.md, "Draining a node"). An operator asks any node to drain any
// node; the request is a key in the nodes bucket (replicated like every bucket), so every node
// can read it and it outlives the drained node's restarts until it is undrained. The drained
// node reads its key at every heartbeat (and once at start, before it takes work: Drained) and
// tells its invocation service (Config.OnDrain), which stops taking new work there.

// drainPrefix starts a drain key: "=drain.NAME". '=' is in no node name (letters, digits, - and
// _) nor host name, so a drain key is never a heartbeat's.
const drainPrefix = "=drain."

var (
	// ErrUnknownNode: no node of that name ever wrote a heartbeat.
	ErrUnknownNode = errors.New("cluster: no such node")
	// ErrLastNode: draining the node would leave no node to take its work.
	ErrLastNode = errors.New("cluster: no other node is up and not draining")
)

// drainDoc is what a drain key holds: who asked, when (for operators reading the bucket).
type drainDoc struct {
	Since time.Time `json:"since"`
	By    string    `json:"by"` // the node that took the request
}

// Drained reads whether node name is asked to drain. A node calls it at start, before it takes
// work, so a drained node that restarts never takes any.
func Drained(ctx context.Context, recs Records, name string) (bool, error) {
	_, _, err := recs.Get(ctx, drainPrefix+name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read the drain state of node %s: %w", name, err)
	}
	return true, nil
}

// Drain asks node name to drain: it takes no new work (no cold starts placed on it, no
// forwards to it, no idle environments announced, its own callers' invocations forwarded to
// other nodes) and lets what it runs finish. Refused with ErrUnknownNode for a node never
// seen, ErrLastNode when no other node is up and not draining. Draining a draining node
// changes nothing. When the node is up, Drain waits (within ctx, at most three of the node's
// heartbeat intervals) until its heartbeat says it drains, and returns the node as listed then.
func (m *Membership) Drain(ctx context.Context, name string) (Node, error) {
	nodes, err := m.List(ctx)
	if err != nil {
		return Node{}, err
	}
	target, ok := find(nodes, name)
	if !ok {
		return Node{}, fmt.Errorf("%w: %s", ErrUnknownNode, name)
	}
	if !target.Draining {
		others := 0
		for _, n := range nodes {
			if n.Name != name && n.State == StateUp {
				others++
			}
		}
		if others == 0 {
			return Node{}, fmt.Errorf("drain node %s: %w", name, ErrLastNode)
		}
		doc, err := json.Marshal(drainDoc{Since: m.cfg.Now().UTC(), By: m.cfg.Name})
		if err != nil {
			return Node{}, err
		}
		if _, err := m.cfg.Records.Put(ctx, drainPrefix+name, doc); err != nil {
			return Node{}, fmt.Errorf("drain node %s: %w", name, err)
		}
		m.cfg.Log.Info("node asked to drain", "node", name)
	}
	return m.settle(ctx, target, true)
}

// Undrain ends node name's drain: it takes work again. Undraining a node that does not drain
// changes nothing; ErrUnknownNode for a node never seen. It waits like Drain.
func (m *Membership) Undrain(ctx context.Context, name string) (Node, error) {
	nodes, err := m.List(ctx)
	if err != nil {
		return Node{}, err
	}
	target, ok := find(nodes, name)
	if !ok {
		return Node{}, fmt.Errorf("%w: %s", ErrUnknownNode, name)
	}
	if err := m.cfg.Records.Delete(ctx, drainPrefix+name); err != nil && !errors.Is(err, store.ErrNotFound) {
		return Node{}, fmt.Errorf("undrain node %s: %w", name, err)
	}
	if target.Draining {
		m.cfg.Log.Info("node drain ended", "node", name)
	}
	return m.settle(ctx, target, false)
}

// settle applies a drain change at once when target is this node, else waits for target's
// heartbeat to report it (a node that is not up applies it when it starts again).
func (m *Membership) settle(ctx context.Context, target Node, on bool) (Node, error) {
	if target.Name == m.cfg.Name {
		m.applyDrain(on)
		if err := m.beat(ctx, false); err != nil {
			return Node{}, err
		}
	} else if target.State == StateUp || target.State == StateDraining {
		deadline := time.NewTimer(missed * target.Interval)
		defer deadline.Stop()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
	wait:
		for {
			doc, _, err := m.cfg.Records.Get(ctx, target.Name)
			var n Node
			if err == nil && json.Unmarshal(doc, &n) == nil && n.DrainApplied == on {
				break
			}
			select {
			case <-ctx.Done():
				return Node{}, ctx.Err()
			case <-deadline.C:
				break wait // it may be hung: List shows whether it applied it
			case <-tick.C:
			}
		}
	}
	nodes, err := m.List(ctx)
	if err != nil {
		return Node{}, err
	}
	n, _ := find(nodes, target.Name)
	return n, nil
}

func find(nodes []Node, name string) (Node, bool) {
	for _, n := range nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// pollDrain reads this node's drain key and applies a change. A failed read keeps the state
// as it was: a node cut off from the bucket goes on as it was told last.
func (m *Membership) pollDrain(ctx context.Context) {
	on, err := Drained(ctx, m.cfg.Records, m.cfg.Name)
	if err != nil {
		if ctx.Err() == nil {
			m.cfg.Log.Warn("read drain state", "err", err)
		}
		return
	}
	m.applyDrain(on)
}

// applyDrain tells OnDrain when the drain state is first known or changes.
func (m *Membership) applyDrain(on bool) {
	m.drainMu.Lock()
	defer m.drainMu.Unlock()
	if m.drainSet && m.draining.Load() == on {
		return
	}
	first := !m.drainSet
	m.drainSet = true
	m.draining.Store(on)
	if on || !first {
		m.cfg.Log.Info("drain state", "node", m.cfg.Name, "draining", on)
	}
	if m.cfg.OnDrain != nil {
		m.cfg.OnDrain(on)
	}
}

// Draining reports whether this node drains, as it last read or was told.
func (m *Membership) Draining() bool { return m.draining.Load() }
