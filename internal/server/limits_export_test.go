package server

import (
	"context"

	"github.com/flint-run/flint/internal/store"
)

// LeaseRecords is the server's concurrency ledger bucket, for tests that play another node.
func LeaseRecords(ctx context.Context, s *Server) (store.Records, error) { return s.store.Leases(ctx) }
