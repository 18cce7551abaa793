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
		clients[i] = newClient(n.srv.URL())
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
	clients[1] = newClient(nodes[1].srv.URL())
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
