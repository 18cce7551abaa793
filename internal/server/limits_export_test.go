package server

import (
	"context"

	"github.com/flint-run/flint/internal/store"
)

// LeaseRecords is the server's concurrency ledger bucket, for tests that play another node.
func LeaseRecords(ctx context.Context, s *Server) (store.Records, error) { return s.store.Leases(ctx) }

// Traffic is the node's NATS traffic so far, for the cost figures of the cluster benchmark.
func Traffic(s *Server) store.Traffic { return s.store.Traffic() }
