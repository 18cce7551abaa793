package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/flint-run/flint/internal/cluster"
)

// slowPy sleeps as long as the event asks.
const slowPy = `import time
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"ok": True}
`

// listNodes is GET /flint/v1/nodes through url.
func listNodes(url string) (map[string]cluster.Node, error) {
	resp, err := http.Get(url + "/flint/v1/nodes")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct{ Nodes []cluster.Node }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	m := map[string]cluster.Node{}
	for _, n := range out.Nodes {
		m[n.Name] = n
	}
	return m, nil
}

// drainCall is POST /flint/v1/nodes/NAME/VERB (drain, undrain) through url: the node
// answered, or the error type and status.
func drainCall(t *testing.T, url, name, verb string) (cluster.Node, string, int) {
	t.Helper()
	resp, err := http.Post(url+"/flint/v1/nodes/"+name+"/"+verb, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var n cluster.Node
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&n); err != nil {
			t.Fatal(err)
		}
	}
	return n, resp.Header.Get("X-Amzn-Errortype"), resp.StatusCode
}

// metricSum scrapes url's /metrics and sums the samples of name whose labels contain every
// one of labels (`key="value"`); found is false when no sample matched.
func metricSum(t *testing.T, url, name string, labels ...string) (sum float64, found bool) {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
next:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue next
			}
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum, found = sum+v, true
	}
	return sum, found
}

func envCount(n *clusterNode) int {
	st := n.srv.Workers().Stats()
	return st.Starting + st.Idle + st.Busy
}

// waitFunction waits until every node runs fn's configuration (the watch brought it).
func waitFunction(t *testing.T, clients []*lambda.Client, fn string) {
	t.Helper()
	for i, c := range clients {
		eventually(t, 30*time.Second, fmt.Sprintf("node %d knows %s", i+1, fn), func() error {
			_, err := c.GetFunction(context.Background(), &lambda.GetFunctionInput{FunctionName: aws.String(fn)})
			return err
		})
	}
}

func invokeOK(c *lambda.Client, fn, payload string) error {
	out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(payload)})
	if err != nil {
		return err
	}
	if out.FunctionError != nil {
		return fmt.Errorf("function error %s: %s", *out.FunctionError, out.Payload)
	}
	return nil
}

// TestClusterDrain: node 2 drains (asked through node 1) while it runs a slow invocation: that
// one completes; invocations through node 2 are served by the other nodes and node 2 starts no
// environment and runs nothing more, not even on its own idle environment; the others send it
// nothing; `flint nodes` shows it draining with 0 busy. The last node able to take work cannot
// drain. Undrain restores; a drain outlives the drained node's restart.
func TestClusterDrain(t *testing.T) {
	nodes := startCluster(t, 3)
	clients := make([]*lambda.Client, len(nodes))
	for i, n := range nodes {
		clients[i] = newClusterClient(n.srv.URL())
	}
	ctx := context.Background()
	createFunction(t, clients[0], "slow", "python3.11", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: slowPy}}))
	waitFunction(t, clients, "slow")
	ranOn := func(i int) float64 {
		v, _ := metricSum(t, nodes[i].srv.URL(), "flint_invocations_total", `function="slow"`)
		return v
	}

	// No node has an environment and all have the same budget: the cold start stays on node 2.
	done := make(chan error, 1)
	go func() { done <- invokeOK(clients[1], "slow", `{"sleep": 4}`) }()
	eventually(t, 30*time.Second, "node 2 runs the slow invocation", func() error {
		if st := nodes[1].srv.Workers().Stats(); st.Busy != 1 {
			return fmt.Errorf("node 2: %+v", st)
		}
		return nil
	})

	n, errType, status := drainCall(t, nodes[0].srv.URL(), "node2", "drain")
	if status != http.StatusOK || n.Name != "node2" || n.State != cluster.StateDraining || !n.DrainApplied {
		t.Fatalf("drain node2 through node1: %d %s %+v; want node2 draining, applied", status, errType, n)
	}
	envs2 := envCount(nodes[1])
	for i := range 3 {
		if err := invokeOK(clients[1], "slow", `{}`); err != nil {
			t.Fatalf("invoke %d through draining node 2: %v", i, err)
		}
	}
	if got := envCount(nodes[1]); got != envs2 {
		t.Errorf("node 2 has %d environments after invokes through it while draining, had %d", got, envs2)
	}
	if envCount(nodes[0])+envCount(nodes[2]) == 0 {
		t.Error("nodes 1 and 3 have no environment: who ran node 2's invocations?")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the invocation in flight when node 2 began draining: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the invocation in flight when node 2 began draining did not end")
	}
	eventually(t, 10*time.Second, "node 2 listed draining with 0 busy", func() error {
		ls, err := listNodes(nodes[2].srv.URL())
		if err != nil {
			return err
		}
		if n := ls["node2"]; n.State != cluster.StateDraining || n.Busy != 0 {
			return fmt.Errorf("node2 listed %+v", n)
		}
		return nil
	})
	// Node 2 now has an idle environment; it still runs nothing, whoever is asked. (Its
	// metrics count an invocation once its record is written, just after the answer.)
	eventually(t, 10*time.Second, "node 2 counts the invocation that was in flight", func() error {
		if got := ranOn(1); got != 1 {
			return fmt.Errorf("node 2 ran %v invocations of slow, want 1", got)
		}
		return nil
	})
	before := ranOn(1)
	for i := range 3 {
		for j, c := range clients {
			if err := invokeOK(c, "slow", `{}`); err != nil {
				t.Fatalf("invoke %d through node %d: %v", i, j+1, err)
			}
		}
	}
	if got := ranOn(1); got != before {
		t.Errorf("draining node 2 ran %v invocations, want %v", got, before)
	}
	if got := envCount(nodes[1]); got != envs2 {
		t.Errorf("node 2 has %d environments, had %d", got, envs2)
	}

	// node 3 is the only node left to drain to: node 1 may drain, then node 3 may not.
	if _, errType, status := drainCall(t, nodes[2].srv.URL(), "node1", "drain"); status != http.StatusOK {
		t.Fatalf("drain node1 with node3 up: %d %s", status, errType)
	}
	if _, errType, status := drainCall(t, nodes[0].srv.URL(), "node3", "drain"); status != http.StatusConflict || errType != "ResourceConflictException" {
		t.Errorf("drain node3, the last node taking work: %d %q, want 409 ResourceConflictException", status, errType)
	}
	if _, errType, status := drainCall(t, nodes[0].srv.URL(), "nosuch", "drain"); status != http.StatusNotFound || errType != "ResourceNotFoundException" {
		t.Errorf("drain an unknown node: %d %q, want 404 ResourceNotFoundException", status, errType)
	}
	if n, errType, status := drainCall(t, nodes[0].srv.URL(), "node1", "undrain"); status != http.StatusOK || n.State != cluster.StateUp {
		t.Fatalf("undrain node1: %d %s %+v", status, errType, n)
	}

	// Undrained (through node 3), node 2 runs its callers' invocations on its own idle
	// environment again.
	if n, errType, status := drainCall(t, nodes[2].srv.URL(), "node2", "undrain"); status != http.StatusOK || n.State != cluster.StateUp || n.DrainApplied {
		t.Fatalf("undrain node2: %d %s %+v", status, errType, n)
	}
	if err := invokeOK(clients[1], "slow", `{}`); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "undrained node 2 runs its callers' invocation", func() error {
		if got := ranOn(1); got != before+1 {
			return fmt.Errorf("undrained node 2 ran %v invocations, want %v", got, before+1)
		}
		return nil
	})

	// Drained again, node 2 restarts: it drains from its first moment.
	if _, errType, status := drainCall(t, nodes[1].srv.URL(), "node2", "drain"); status != http.StatusOK {
		t.Fatalf("drain node2 through itself: %d %s", status, errType)
	}
	nodes[1].srv.Close()
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := nodes[1].start(sctx); err != nil {
		t.Fatalf("restart node 2: %v", err)
	}
	clients[1] = newClusterClient(nodes[1].srv.URL())
	for range 3 {
		if err := invokeOK(clients[1], "slow", `{}`); err != nil {
			t.Fatalf("invoke through restarted draining node 2: %v", err)
		}
	}
	if got := envCount(nodes[1]); got != 0 {
		t.Errorf("restarted draining node 2 started %d environments", got)
	}
	eventually(t, 10*time.Second, "restarted node 2 listed draining", func() error {
		ls, err := listNodes(nodes[0].srv.URL())
		if err != nil {
			return err
		}
		if n := ls["node2"]; n.State != cluster.StateDraining || !n.DrainApplied {
			return errors.New("not yet")
		}
		return nil
	})
}

// provisionedOn is how many environments node i keeps for provisioned concurrency.
func provisionedOn(nodes []*clusterNode, i int) int {
	return nodes[i].srv.Workers().Stats().Provisioned
}

// TestClusterProvisioned: provisioned concurrency 3 on 3 nodes is 1 environment per node (the
// cluster keeps 3, not 9), and GetProvisionedConcurrencyConfig through any node reports the
// cluster's 3 allocated; when a node stops, the other two take up its share; when it comes back
// the split is 1 each again.
func TestClusterProvisioned(t *testing.T) {
	nodes := startCluster(t, 3)
	clients := make([]*lambda.Client, len(nodes))
	for i, n := range nodes {
		clients[i] = newClusterClient(n.srv.URL())
	}
	ctx := context.Background()
	createFunction(t, clients[0], "prov", "python3.11", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: slowPy}}))
	if _, err := clients[0].PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("prov")}); err != nil {
		t.Fatal(err)
	}
	waitFunction(t, clients, "prov")
	if _, err := clients[0].PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String("prov"),
		Qualifier: aws.String("1"), ProvisionedConcurrentExecutions: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	allocated := func(c *lambda.Client, want int32) func() error {
		return func() error {
			out, err := c.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("prov"), Qualifier: aws.String("1")})
			if err != nil {
				return err
			}
			if aws.ToInt32(out.AllocatedProvisionedConcurrentExecutions) != want || aws.ToInt32(out.AvailableProvisionedConcurrentExecutions) != want || out.Status != "READY" {
				return fmt.Errorf("allocated %d, available %d, %s; want %d, READY", aws.ToInt32(out.AllocatedProvisionedConcurrentExecutions),
					aws.ToInt32(out.AvailableProvisionedConcurrentExecutions), out.Status, want)
			}
			return nil
		}
	}
	oneEach := func(live ...int) func() error {
		return func() error {
			for _, i := range live {
				if got := provisionedOn(nodes, i); got != 1 {
					return fmt.Errorf("node %d keeps %d provisioned environments, want 1", i+1, got)
				}
				if v, _ := metricSum(t, nodes[i].srv.URL(), "flint_provisioned_environments", fmt.Sprintf(`node="node%d"`, i+1)); v != 1 {
					return fmt.Errorf("node %d's metrics: %v provisioned environments", i+1, v)
				}
			}
			return nil
		}
	}
	eventually(t, time.Minute, "one provisioned environment per node", oneEach(0, 1, 2))
	for i, c := range clients {
		eventually(t, 30*time.Second, fmt.Sprintf("node %d reports the cluster's 3", i+1), allocated(c, 3))
	}
	// It stays so: nobody adds a whole count of its own.
	for range 10 {
		if err := oneEach(0, 1, 2)(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Node 3 stops (cleanly: it says so): nodes 1 and 2 keep the 3 between them.
	t0 := time.Now()
	nodes[2].srv.Close()
	t.Logf("node 3 closed in %v", time.Since(t0))
	eventually(t, time.Minute, "nodes 1 and 2 take up node 3's share", func() error {
		if a, b := provisionedOn(nodes, 0), provisionedOn(nodes, 1); a+b != 3 || a < 1 || b < 1 {
			return fmt.Errorf("node 1 keeps %d, node 2 %d", a, b)
		}
		return nil
	})
	t.Logf("nodes 1 and 2 kept 3 provisioned environments %v after node 3 began to stop", time.Since(t0))
	eventually(t, 30*time.Second, "node 1 reports 3 with node 3 stopped", allocated(clients[0], 3))

	// Node 3 returns: 1 each again (node 3 keeps none until it has heard the others).
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := nodes[2].start(sctx); err != nil {
		t.Fatalf("restart node 3: %v", err)
	}
	eventually(t, time.Minute, "one provisioned environment per node after node 3's return", oneEach(0, 1, 2))
}

// TestMetricsCluster: each node's /metrics carries its node's name and the cluster figures,
// and they move: environments by state, memory budget, forwards sent and received with their
// latency, leases granted and denied by the concurrency ledger, the draining flag, the age of
// the other nodes' heartbeats.
func TestMetricsCluster(t *testing.T) {
	nodes := startCluster(t, 3)
	clients := make([]*lambda.Client, len(nodes))
	for i, n := range nodes {
		clients[i] = newClusterClient(n.srv.URL())
	}
	ctx := context.Background()
	for i, n := range nodes {
		name := fmt.Sprintf(`node="node%d"`, i+1)
		if _, ok := metricSum(t, n.srv.URL(), "flint_environments", name, `state="idle"`); !ok {
			t.Errorf("node %d: no flint_environments with its node label", i+1)
		}
		if v, _ := metricSum(t, n.srv.URL(), "flint_memory_budget_bytes", name); v <= 0 {
			t.Errorf("node %d: memory budget %v", i+1, v)
		}
		for j := range nodes {
			if j == i {
				continue
			}
			eventually(t, 30*time.Second, fmt.Sprintf("node %d's view of node %d's heartbeat", i+1, j+1), func() error {
				age, ok := metricSum(t, n.srv.URL(), "flint_peer_heartbeat_age_seconds", name, fmt.Sprintf(`peer="node%d"`, j+1))
				if !ok || age < 0 || age > 10 {
					return fmt.Errorf("age %v (found %v)", age, ok)
				}
				return nil
			})
		}
	}

	createFunction(t, clients[0], "metered", "python3.11", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: slowPy}}))
	if _, err := clients[0].PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("metered"),
		ReservedConcurrentExecutions: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	waitFunction(t, clients, "metered")
	// Node 1 leases the one slot and holds it busy; node 3 is refused by the ledger.
	done := make(chan error, 1)
	go func() { done <- invokeOK(clients[0], "metered", `{"sleep": 3}`) }()
	eventually(t, 30*time.Second, "node 1 runs the slow invocation", func() error {
		if st := nodes[0].srv.Workers().Stats(); st.Busy != 1 {
			return fmt.Errorf("node 1: %+v", st)
		}
		return nil
	})
	if v, _ := metricSum(t, nodes[0].srv.URL(), "flint_ledger_leases_total", `node="node1"`, `result="granted"`); v < 1 {
		t.Errorf("node 1 leases granted: %v", v)
	}
	if v, _ := metricSum(t, nodes[0].srv.URL(), "flint_environments", `node="node1"`, `state="busy"`); v != 1 {
		t.Errorf("node 1 busy environments: %v", v)
	}
	if v, _ := metricSum(t, nodes[0].srv.URL(), "flint_memory_used_bytes", `node="node1"`); v != 128<<20 {
		t.Errorf("node 1 memory used: %v, want one 128 MB environment", v)
	}
	if err := invokeOK(clients[2], "metered", `{}`); apiErrorCode(err) != "TooManyRequestsException" {
		t.Fatalf("invoke through node 3 while node 1 holds the only slot: %v, want 429", err)
	}
	if v, _ := metricSum(t, nodes[2].srv.URL(), "flint_ledger_leases_total", `node="node3"`, `result="denied"`); v < 1 {
		t.Errorf("node 3 leases denied: %v", v)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Node 2 drains: what its callers invoke is forwarded, and counted on both sides.
	if _, errType, status := drainCall(t, nodes[0].srv.URL(), "node2", "drain"); status != http.StatusOK {
		t.Fatalf("drain node2: %d %s", status, errType)
	}
	if v, _ := metricSum(t, nodes[1].srv.URL(), "flint_node_draining", `node="node2"`); v != 1 {
		t.Errorf("node 2 draining: %v", v)
	}
	eventually(t, 30*time.Second, "an invocation through node 2 runs (once node 1 gave its slot back)", func() error {
		return invokeOK(clients[1], "metered", `{}`)
	})
	if v, _ := metricSum(t, nodes[1].srv.URL(), "flint_forwards_sent_total", `node="node2"`); v != 1 {
		t.Errorf("node 2 forwards sent: %v, want 1", v)
	}
	if v, _ := metricSum(t, nodes[1].srv.URL(), "flint_forward_duration_seconds_count", `node="node2"`); v != 1 {
		t.Errorf("node 2 forward latency observations: %v, want 1", v)
	}
	r1, _ := metricSum(t, nodes[0].srv.URL(), "flint_forwards_received_total", `node="node1"`)
	r3, _ := metricSum(t, nodes[2].srv.URL(), "flint_forwards_received_total", `node="node3"`)
	if r1+r3 != 1 {
		t.Errorf("forwards received: node 1 %v, node 3 %v; want 1 in all", r1, r3)
	}
}

// TestClusterDrainAuth: the drain endpoints are signed like every /flint/v1 endpoint: an
// unsigned call is refused before anything happens; a signed one reaches the cluster, which
// refuses to drain a single server (nothing would take its work) and stores nothing.
func TestClusterDrainAuth(t *testing.T) {
	data := t.TempDir()
	key := createAccessKey(t, data, "test")
	s := startServer(t, data)
	var ls map[string]cluster.Node
	eventually(t, 10*time.Second, "the server's first heartbeat", func() error {
		var err error
		if ls, err = listNodesSigned(t, s.URL(), key.AccessKeyID, key.SecretAccessKey); err == nil && len(ls) != 1 {
			err = fmt.Errorf("nodes %v", ls)
		}
		return err
	})
	var name string
	for n := range ls {
		name = n
	}
	for _, verb := range []string{"drain", "undrain"} {
		url := s.URL() + "/flint/v1/nodes/" + name + "/" + verb
		if status, code, body := signed(t, "POST", url, "", "", nil, time.Now(), nil); status != http.StatusForbidden || code != "MissingAuthenticationTokenException" {
			t.Errorf("unsigned %s: %d %s %s", verb, status, code, body)
		}
	}
	status, code, body := signed(t, "POST", s.URL()+"/flint/v1/nodes/"+name+"/drain", key.AccessKeyID, key.SecretAccessKey, nil, time.Now(), nil)
	if status != http.StatusConflict || code != "ResourceConflictException" {
		t.Errorf("signed drain of a single server: %d %s %s; want 409 ResourceConflictException", status, code, body)
	}
	ls, err := listNodesSigned(t, s.URL(), key.AccessKeyID, key.SecretAccessKey)
	if err != nil || ls[name].Draining || ls[name].State != cluster.StateUp {
		t.Errorf("after the refused drain: %+v, %v", ls[name], err)
	}
}

func listNodesSigned(t *testing.T, url, id, secret string) (map[string]cluster.Node, error) {
	t.Helper()
	status, code, body := signed(t, "GET", url+"/flint/v1/nodes", id, secret, nil, time.Now(), nil)
	if status != http.StatusOK {
		return nil, fmt.Errorf("GET /flint/v1/nodes: %d %s %s", status, code, body)
	}
	var out struct{ Nodes []cluster.Node }
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, err
	}
	m := map[string]cluster.Node{}
	for _, n := range out.Nodes {
		m[n.Name] = n
	}
	return m, nil
}
