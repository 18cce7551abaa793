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

// TestTraceHeaders: new roots are X-Ray's format; a header parses into its parts and formats
// back; malformed ones are refused; parsing allocates nothing (it runs on every warm invoke).
func TestTraceHeaders(t *testing.T) {
	at := time.Unix(0x5759e988, 0)
	h := NewTraceHeader(at, true)
	if len(h) != headerLen || !strings.HasPrefix(h, "Root=1-5759e988-") || !strings.HasSuffix(h, ";Sampled=1") {
		t.Fatalf("NewTraceHeader = %q", h)
	}
	if h2 := NewTraceHeader(at, false); TraceRoot(h2) == TraceRoot(h) || !strings.HasSuffix(h2, ";Sampled=0") {
		t.Errorf("two roots %q, %q", h, h2)
	}
	const aws = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	tc, ok := ParseTraceHeader(aws)
	if !ok || tc.Sampled != '1' || tc.Parent != [8]byte{0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0xd8} ||
		tc.TraceID[0] != 0x57 || tc.TraceID[15] != 0x93 {
		t.Fatalf("ParseTraceHeader(%q) = %+v, %v", aws, tc, ok)
	}
	if got := FormatTraceHeader(tc); got != aws {
		t.Errorf("FormatTraceHeader = %q, want %q", got, aws)
	}
	if tc, ok := ParseTraceHeader("Root=1-5759e988-bd862e3fe1be46a994272793;Lineage=a87bd80c:1|68fd508a:5"); !ok || tc.Parent != [8]byte{} || tc.Sampled != 0 {
		t.Errorf("root-only header: %+v, %v", tc, ok)
	}
	for _, bad := range []string{"", "Root=", "Root=1-5759e988-bd862e3fe1be46a99427279", "Root=2-5759e988-bd862e3fe1be46a994272793",
		"Root=1-5759e98g-bd862e3fe1be46a994272793", "Parent=53995c3f42cd8ad8", "Root=1-00000000-000000000000000000000000"} {
		if _, ok := ParseTraceHeader(bad); ok {
			t.Errorf("ParseTraceHeader(%q) accepted", bad)
		}
	}
	if a := testing.AllocsPerRun(1000, func() { _, _ = ParseTraceHeader(aws) }); a != 0 {
		t.Errorf("ParseTraceHeader allocates %v per call", a)
	}
	if a := testing.AllocsPerRun(1000, func() { _ = NewTraceHeader(at, false) }); a != 1 {
		t.Errorf("NewTraceHeader allocates %v per call, want 1 (the string)", a)
	}
}

// TestFunctionLabelsBounded: past the bound, new functions are counted under "_other" (gauges
// summed into it) and known ones keep their names.
func TestFunctionLabelsBounded(t *testing.T) {
	m := New("", func() (int, int, int, int) { return 0, 0, 0, 0 }, func() []Queue {
		return []Queue{{Function: "a", Depth: 1}, {Function: "c", Depth: 2}, {Function: "d", Depth: 3}}
	})
	m.names.max = 2
	for _, fn := range []string{"a", "b", "c", "d", "a"} {
		m.Invoked(Invocation{Function: fn, Version: "1", Outcome: "success", Duration: time.Millisecond})
	}
	m.Throttled("e", "$LATEST", "ConcurrentInvocationLimitExceeded")
	got := scrape(t, m)
	for _, want := range []string{
		`flint_invocations_total{function="a",outcome="success",version="1"} 2`,
		`flint_invocations_total{function="b",outcome="success",version="1"} 1`,
		`flint_invocations_total{function="_other",outcome="success",version="_other"} 2`,
		`flint_invocations_total{function="_other",outcome="throttle",version="_other"} 1`,
		`flint_throttles_total{function="_other",reason="ConcurrentInvocationLimitExceeded",version="_other"} 1`,
		`flint_async_queue_depth{function="a"} 1`,
		`flint_async_queue_depth{function="_other"} 5`,
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(got, `function="c"`) || strings.Contains(got, `function="d"`) {
		t.Errorf("functions past the bound have series of their own:\n%s", got)
	}
}

// BenchmarkTraceHeader: what a warm invocation pays for its trace header with OTLP off: a
// caller's parsed, or a new root made.
func BenchmarkTraceHeader(b *testing.B) {
	const h = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = ParseTraceHeader(h)
		}
	})
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = NewTraceHeader(time.Now(), false)
		}
	})
}

// A span forwarded to another node arrives as it was made; anything else is refused.
func TestSpanEncodeDecode(t *testing.T) {
	o := &OTLP{}
	now := time.Unix(1765000000, 123456789)
	sp, _ := o.Begin("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1", now, TriggerPubSub)
	sp.Enqueued = now.Add(-time.Second)
	got, ok := DecodeSpan(sp.Encode())
	if !ok {
		t.Fatalf("DecodeSpan(%q) refused", sp.Encode())
	}
	if got.TraceID != sp.TraceID || got.Parent != sp.Parent || got.Invoke != sp.Invoke || got.Runtime != sp.Runtime ||
		got.Sampled != sp.Sampled || !got.Received.Equal(sp.Received) || !got.Enqueued.Equal(sp.Enqueued) || got.Trigger != sp.Trigger {
		t.Fatalf("decoded %+v, want %+v", got, sp)
	}
	root, _ := o.Begin("", now, TriggerHTTP) // no caller: no parent, no queue wait
	if got, ok := DecodeSpan(root.Encode()); !ok || got.Parent != ([8]byte{}) || !got.Enqueued.IsZero() {
		t.Fatalf("root span decoded %+v %v", got, ok)
	}
	for _, bad := range []string{"", "x", strings.Replace(sp.Encode(), "-1-", "-2-", 1), strings.TrimSuffix(sp.Encode(), "pubsub") + "carrier",
		"00000000000000000000000000000000-0000000000000000-0000000000000000-0000000000000000-1-1-" + "-http"} {
		if _, ok := DecodeSpan(bad); ok {
			t.Errorf("DecodeSpan(%q) accepted", bad)
		}
	}
}
