package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

const leasesBucket = "flint_concurrency_leases"

// Leases opens the bucket of the cluster's concurrency leases (cluster.Ledger owns their shape:
// "account" and "function.NAME", each the slots every node holds of that limit), creating it if
// needed. Only a node that is part of a cluster opens it: a single node keeps its limits in
// memory and never touches this bucket, so it is opened here on demand rather than with the
// buckets every node needs.
func (s *Store) Leases(ctx context.Context) (Records, error) {
	kv, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: leasesBucket,
		Description: "Flint cluster concurrency leases (account, function.NAME)", History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		return Records{}, fmt.Errorf("open %s bucket: %w", leasesBucket, err)
	}
	return Records{bucket[json.RawMessage]{kv: s.guardKV(kv), what: "concurrency lease", log: s.log}}, nil
}

const laneLeasesBucket = "flint_esm_leases"

// LaneLeases opens the bucket of the cluster's stream-mapping leases (cluster.Leases owns
// their shape: one document per mapping UUID naming the node that reads it), creating it if
// needed. Like Leases, only a clustered node opens it: a single node reads every mapping itself.
func (s *Store) LaneLeases(ctx context.Context) (Records, error) {
	kv, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: laneLeasesBucket,
		Description: "Flint stream event source mappings' owners (by UUID)", History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		return Records{}, fmt.Errorf("open %s bucket: %w", laneLeasesBucket, err)
	}
	return Records{bucket[json.RawMessage]{kv: kv, what: "lane lease", log: s.log}}, nil
}
