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
