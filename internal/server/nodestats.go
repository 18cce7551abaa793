package server

import (
	"context"
	"time"

	"github.com/flint-run/flint/internal/cluster"
	"github.com/flint-run/flint/internal/telemetry"
)

// clusterStats reads this node's cluster figures for /metrics (telemetry.Cluster), at scrape
// time only: the invocation path only bumps counters. ledger is nil on a node that does not
// share its limits.
func (s *Server) clusterStats(nodes *cluster.Membership, ledger *cluster.Ledger) func() telemetry.Cluster {
	self := nodeName(s.cfg)
	return func() telemetry.Cluster {
		st := s.workers.Stats()
		rs := s.invoke.RouteStats()
		c := telemetry.Cluster{MemoryUsedMB: st.MemoryMB, MemoryBudgetMB: st.BudgetMB,
			ForwardsSent: rs.Forwarded, ForwardsReceived: rs.Served, ForwardsRefused: rs.Refused, Draining: s.invoke.Draining()}
		if ledger != nil {
			ls := ledger.Stats()
			c.LeasesGranted, c.LeasesDenied = ls.Granted, ls.Denied
		}
		if !s.cfg.Clustered() {
			return c
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		list, err := nodes.List(ctx)
		if err != nil {
			s.log.Warn("nodes for metrics", "err", err)
			return c
		}
		now := time.Now()
		for _, n := range list {
			if n.Name != self {
				c.Peers = append(c.Peers, telemetry.Peer{Name: n.Name, HeartbeatAge: now.Sub(n.Heartbeat)})
			}
		}
		return c
	}
}
