package invoke

import (
	"context"
	"time"
)

// Draining (docs/CLUSTER.md, "Draining a node"): a draining node takes no new work. It
// announces no environments (so no node forwards to it or places a cold start on it), refuses
// the forwards that still reach it ("not started": the sender places them elsewhere), sends
// every invocation its own callers make to the other nodes (Invoke → place), and keeps no
// share of provisioned concurrency. What it runs when the drain starts finishes. Only a node
// that routes (a cluster node) drains: on a single node SetDraining changes nothing but the
// flag (the cluster refuses to drain a node no other node could replace).

// SetDraining turns draining on or off (cluster.Membership tells it, from the drain state
// kept in the nodes bucket). The change reaches the other nodes with this node's next
// announcement (RouteConfig.Every).
func (s *Service) SetDraining(on bool) {
	if s.draining.Swap(on) != on {
		s.log.Info("draining", "on", on)
	}
}

// Draining reports whether this node drains.
func (s *Service) Draining() bool { return s.draining.Load() }

// others returns every other node heard from lately that does not drain, the most free
// memory budget first: where a draining node sends what would be a cold start.
func (r *router) others() []string { return r.ranked(false, 0) }

// awaitPeer waits until another node that does not drain is heard, at most wait (within ctx).
func (r *router) awaitPeer(ctx context.Context, wait time.Duration) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for len(r.others()) == 0 {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
}
