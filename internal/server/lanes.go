package server

import (
	"context"
	"fmt"

	"github.com/flint-run/flint/internal/cluster"
	"github.com/flint-run/flint/internal/esm"
)

// laneOwner is what gives each stream event source mapping to one node at a time: leases in
// the cluster's lane leases bucket on a cluster node (docs/CLUSTER.md, "Stream mappings"), nil
// on a single node, which reads every mapping itself and never opens that bucket.
func (s *Server) laneOwner(ctx context.Context) (esm.Owner, error) {
	if !s.cfg.Clustered() {
		return nil, nil
	}
	recs, err := s.store.LaneLeases(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream mapping leases: %w", err)
	}
	s.lanes = cluster.NewLeases(cluster.LeaseConfig{Node: s.cfg.Node, Records: recs, Log: s.log.With("part", "esm-leases")})
	return s.lanes, nil
}
