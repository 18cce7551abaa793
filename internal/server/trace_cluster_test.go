package server_test

import (
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/lambda"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flint-run/flint/internal/config"
)

// TestTracesForwarded: an invocation that the node it reached forwards to another node of the
// cluster has its spans, exported by the node that ran it, in the caller's trace: the invoke
// span a child of the caller's span, and the runtime span the Parent the function saw. Before,
// neither node exported anything for it.
func TestTracesForwarded(t *testing.T) {
	recv := startReceiver(t)
	nodes := startCluster(t, 2, func(c *config.Config) { c.OTLPEndpoint = recv.url })
	clients := []*lambda.Client{newClusterClient(nodes[0].srv.URL()), newClusterClient(nodes[1].srv.URL())}
	createFunction(t, clients[0], "hop", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: traceFn}}))
	waitFunction(t, clients, "hop")
	// Node 1 draining: what reaches it runs on node 2.
	if _, errType, status := drainCall(t, nodes[0].srv.URL(), "node1", "drain"); status != http.StatusOK {
		t.Fatalf("drain node1: %d %s", status, errType)
	}
	const caller = "53995c3f42cd8ad8"
	const h = "Root=1-5759e990-bd862e3fe1be46a994272793;Parent=" + caller + ";Sampled=1"
	const traceID = "5759e990bd862e3fe1be46a994272793"
	seen := functionTrace(t, clients[0], "hop", withTraceHeader(h))
	if rootOf(seen) != rootOf(h) || parentOf(seen) == caller {
		t.Fatalf("the function saw %q: want root %s, with the runtime's span as Parent", seen, rootOf(h))
	}
	if envCount(nodes[0]) != 0 || envCount(nodes[1]) == 0 {
		t.Fatalf("environments: node 1 %d, node 2 %d; want the invocation run on node 2", envCount(nodes[0]), envCount(nodes[1]))
	}
	byName := map[string][]*tracepb.Span{}
	waitFor(t, "the forwarded invocation's spans", 30*time.Second, func() bool {
		clear(byName)
		for _, sp := range recv.trace(traceID) {
			byName[sp.GetName()] = append(byName[sp.GetName()], sp)
		}
		return len(byName["invoke"]) > 0 && len(byName["runtime"]) > 0 && len(byName["cold start"]) > 0
	})
	time.Sleep(500 * time.Millisecond) // a second exporter's copy would have come by now
	clear(byName)
	for _, sp := range recv.trace(traceID) {
		byName[sp.GetName()] = append(byName[sp.GetName()], sp)
	}
	if n := len(recv.trace(traceID)); len(byName["invoke"]) != 1 || len(byName["runtime"]) != 1 {
		t.Fatalf("%d spans, invoke %d, runtime %d: want one of each", n, len(byName["invoke"]), len(byName["runtime"]))
	}
	id := func(b []byte) string { return hex.EncodeToString(b) }
	inv, rt := byName["invoke"][0], byName["runtime"][0]
	if got := id(inv.GetParentSpanId()); got != caller {
		t.Errorf("invoke's parent %s, want the caller's %s", got, caller)
	}
	if got := id(rt.GetParentSpanId()); got != id(inv.GetSpanId()) {
		t.Errorf("runtime's parent %s, want invoke %s", got, id(inv.GetSpanId()))
	}
	if id(rt.GetSpanId()) != parentOf(seen) {
		t.Errorf("runtime span %s, but the function's Parent is %s", id(rt.GetSpanId()), parentOf(seen))
	}
}
