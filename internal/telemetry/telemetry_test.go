package telemetry

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, err := io.ReadAll(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestNodeLabelAndCluster: a cluster node's metrics all carry its name; a single server's
// carry none; the cluster figures are read at scrape time and forward latencies observed.
func TestNodeLabelAndCluster(t *testing.T) {
	envs := func() (int, int, int, int) { return 1, 2, 3, 1 }
	m := New("node7", envs, func() []Queue { return nil })
	c := Cluster{MemoryUsedMB: 256, MemoryBudgetMB: 1024, ForwardsSent: 4, ForwardsReceived: 5, ForwardsRefused: 6,
		LeasesGranted: 7, LeasesDenied: 8, Draining: true, Peers: []Peer{{Name: "node8", HeartbeatAge: 1500 * time.Millisecond}}}
	m.Cluster(func() Cluster { return c })
	m.Forwarded(3 * time.Millisecond)
	got := scrape(t, m)
	for _, want := range []string{
		`flint_environments{node="node7",state="idle"} 2`,
		`flint_provisioned_environments{node="node7"} 1`,
		`flint_memory_used_bytes{node="node7"} 2.68435456e+08`,
		`flint_memory_budget_bytes{node="node7"} 1.073741824e+09`,
		`flint_forwards_sent_total{node="node7"} 4`,
		`flint_forwards_received_total{node="node7"} 5`,
		`flint_forwards_refused_total{node="node7"} 6`,
		`flint_ledger_leases_total{node="node7",result="granted"} 7`,
		`flint_ledger_leases_total{node="node7",result="denied"} 8`,
		`flint_node_draining{node="node7"} 1`,
		`flint_peer_heartbeat_age_seconds{node="node7",peer="node8"} 1.5`,
		`flint_forward_duration_seconds_count{node="node7"} 1`,
		`go_goroutines{node="node7"}`,
	} {
		if !strings.Contains(got, want+"\n") && !strings.Contains(got, want+" ") {
			t.Errorf("metrics lack %s", want)
		}
	}
	c.ForwardsSent = 9
	if got := scrape(t, m); !strings.Contains(got, `flint_forwards_sent_total{node="node7"} 9`) {
		t.Error("the cluster figures did not move with the node")
	}

	single := New("", envs, func() []Queue { return nil })
	if got := scrape(t, single); strings.Contains(got, `node="`) || !strings.Contains(got, `flint_environments{state="idle"} 2`) {
		t.Errorf("a single server's metrics carry a node label, or lost theirs:\n%s", got)
	}
}

// TestForwardedAllocs: observing a forward's latency allocates nothing.
func TestForwardedAllocs(t *testing.T) {
	m := New("n", func() (int, int, int, int) { return 0, 0, 0, 0 }, func() []Queue { return nil })
	if a := testing.AllocsPerRun(1000, func() { m.Forwarded(time.Millisecond) }); a != 0 {
		t.Errorf("Forwarded allocates %v per call", a)
	}
}
