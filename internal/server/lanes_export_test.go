package server

import "context"

// LaneHolder names the node holding stream mapping uuid's lease, as s reads the lane leases
// bucket ("" when released; an error when none was ever taken).
func LaneHolder(ctx context.Context, s *Server, uuid string) (string, error) {
	return s.lanes.Holder(ctx, uuid)
}

// Crash stops s's embedded NATS server at once, as s's death looks to the other nodes: its
// routes and copies vanish and it releases nothing. The Flint parts of s go on until Close.
func Crash(s *Server) { s.store.Crash() }

// DeleteStream deletes a JetStream stream as an operator of the NATS cluster could (outside
// clients of the embedded server may not).
func DeleteStream(ctx context.Context, s *Server, name string) error {
	return s.store.JetStream().DeleteStream(ctx, name)
}
