package server

import (
	"context"
	"fmt"

	"github.com/flint-run/flint/internal/cluster"
)

// ShareLimits makes this node's concurrency limits (the account's, each function's reserved
// concurrency) the cluster's, kept in the concurrency ledger under the name node (unique in
// the cluster); call it before Start, on a node that joins a cluster. A node that never calls
// it (a single node) keeps its limits in memory and never touches the ledger's bucket.
func (s *Server) ShareLimits(node string) { s.limitsNode = node }

// ledger opens the concurrency ledger and hands it to the invocation service, or returns nil
// on a node that does not share its limits.
func (s *Server) ledger(ctx context.Context) (*cluster.Ledger, error) {
	if s.limitsNode == "" && s.cfg.Clustered() {
		s.limitsNode = s.cfg.Node
	}
	if s.limitsNode == "" {
		return nil, nil
	}
	recs, err := s.store.Leases(ctx)
	if err != nil {
		return nil, fmt.Errorf("concurrency ledger: %w", err)
	}
	l := cluster.NewLedger(cluster.LedgerConfig{Node: s.limitsNode, Records: recs, Log: s.log.With("part", "limits")})
	s.invoke.UseLedger(l)
	return l, nil
}
