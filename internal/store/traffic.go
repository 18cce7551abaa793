package store

// Traffic counts the NATS messages and bytes of this node: Client is Flint's own connection (the
// KV reads and writes, watch deliveries, JetStream API calls, forwards and announcements it sends
// and receives); Server is the embedded server's total (every connection and route, so in a
// cluster it includes what the server replicates and relays for the others). The figures only
// grow; the model of scale in docs/CLUSTER.md is measured as their differences.
type Traffic struct {
	Client, Server Counts
}

// Counts are messages and bytes in each direction.
type Counts struct {
	InMsgs, OutMsgs, InBytes, OutBytes uint64
}

// Traffic reports this node's NATS traffic so far.
func (s *Store) Traffic() Traffic {
	var t Traffic
	if s.nc != nil {
		st := s.nc.Stats()
		t.Client = Counts{st.InMsgs, st.OutMsgs, st.InBytes, st.OutBytes}
	}
	if s.ns != nil {
		if v, err := s.ns.Varz(nil); err == nil {
			t.Server = Counts{uint64(v.InMsgs), uint64(v.OutMsgs), uint64(v.InBytes), uint64(v.OutBytes)}
		}
	}
	return t
}
