package server_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	stypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/flint-run/flint/internal/clustertest"
	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/server"
)

// clusterNode is one node of a test cluster: its configuration and its running server.
type clusterNode struct {
	cfg config.Config
	srv *server.Server
	log *slog.Logger
}

// start starts (or restarts) the node's server.
func (n *clusterNode) start(ctx context.Context) error {
	s, err := server.New(n.cfg, n.log)
	if err != nil {
		return err
	}
	n.srv = s
	return s.Start(ctx)
}

// startCluster starts n real Flint nodes in-process, each with its own data directory, API
// port, cgroup parent and cluster address, joined to the others and sharing one master key,
// the way docs/CLUSTER.md starts them. They start together (as machines would), since each
// waits for the cluster before serving.
func startCluster(t testing.TB, n int, mutate ...func(*config.Config)) []*clusterNode {
	t.Helper()
	return startClusterWith(t, n, func(_ int, node *clusterNode) {
		for _, m := range mutate {
			m(&node.cfg)
		}
	})
}

// startClusterWith is startCluster with setup called on each node (its index, its default
// configuration and logger) before any starts.
func startClusterWith(t testing.TB, n int, setup func(i int, node *clusterNode)) []*clusterNode {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	addrs := clustertest.FreeAddrs(t, n)
	nodes := make([]*clusterNode, n)
	for i := range n {
		cfg := config.Default()
		cfg.Listen = "127.0.0.1:0"
		cfg.DataDir = t.TempDir()
		cfg.Sandbox = "process"
		cfg.CgroupParent = "flint-test-" + filepath.Base(cfg.DataDir)
		cfg.MasterKey = base64.StdEncoding.EncodeToString(key)
		cfg.Node = fmt.Sprintf("node%d", i+1)
		cfg.ClusterListen = addrs[i]
		for j, a := range addrs {
			if j != i {
				cfg.Join = append(cfg.Join, a)
			}
		}
		log := slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", cfg.Node)
		nodes[i] = &clusterNode{cfg: cfg, log: log}
		if setup != nil {
			setup(i, nodes[i])
		}
	}
	// Close together: a node closed last, after the others, has lost its quorum and waits out
	// its shutdown grace for JetStream answers that cannot come.
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, n := range nodes {
			if n.srv != nil {
				wg.Add(1)
				go func() { defer wg.Done(); n.srv.Close() }()
			}
		}
		wg.Wait()
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = n.start(ctx) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("start the cluster: %v", err)
	}
	return nodes
}

// eventually retries f until it succeeds or the bound passes: what another node learns
// through its watch arrives a little later, and a test must not guess by how much.
func eventually(t *testing.T, bound time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, bound, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const greeterPy = `import os
def handler(event, context):
    return {"greeting": os.environ.get("GREETING", "")}
`

// TestCluster runs three nodes and checks that every node serves the whole API: what is created,
// changed and invoked through one node is what the others list and run.
func TestCluster(t *testing.T) {
	t0 := time.Now()
	nodes := startCluster(t, 3, func(c *config.Config) { c.NATSListen = "127.0.0.1:0" }) // a stream's records come from a NATS client
	t.Logf("3 nodes serving %v after starting together", time.Since(t0))
	clients := make([]*lambda.Client, len(nodes))
	for i, n := range nodes {
		clients[i] = newClusterClient(n.srv.URL())
	}
	ctx := context.Background()
	greeting := func(c *lambda.Client) (string, error) { return greetingOf(ctx, c, "greeter") }

	t.Run("created on node 1, listed and invoked on nodes 2 and 3", func(t *testing.T) {
		// The environment variable is sealed with the master key every node shares.
		createFunction(t, clients[0], "greeter", "python3.11", "app.handler",
			mustZip(t, map[string]zipEntry{"app.py": {body: greeterPy}}), func(in *lambda.CreateFunctionInput) {
				in.Environment = &types.Environment{Variables: map[string]string{"GREETING": "from node 1"}}
			})
		if got, err := greeting(clients[0]); err != nil || got != "from node 1" {
			t.Fatalf("invoke through node 1 = %q, %v", got, err)
		}
		for i := 1; i < 3; i++ {
			eventually(t, 30*time.Second, fmt.Sprintf("node %d lists greeter", i+1), func() error {
				out, err := clients[i].ListFunctions(ctx, &lambda.ListFunctionsInput{})
				if err != nil {
					return err
				}
				if !slices.ContainsFunc(out.Functions, func(f types.FunctionConfiguration) bool { return aws.ToString(f.FunctionName) == "greeter" }) {
					return fmt.Errorf("%d functions, no greeter", len(out.Functions))
				}
				return nil
			})
			eventually(t, 30*time.Second, fmt.Sprintf("node %d invokes greeter", i+1), func() error {
				got, err := greeting(clients[i])
				if err == nil && got != "from node 1" {
					t.Fatalf("node %d runs greeting %q, want node 1's", i+1, got)
				}
				return err
			})
			// Where it ran is placement's choice (another node's warm environment, or a cold
			// start on the roomiest node, which fetches the code from the replicated object
			// store): the route tests (internal/invoke) check placement.
		}
	})

	t.Run("an update through node 3 is what node 1 runs next", func(t *testing.T) {
		if _, err := clients[2].UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String("greeter"),
			Environment:  &types.Environment{Variables: map[string]string{"GREETING": "from node 3"}},
		}); err != nil {
			t.Fatal(err)
		}
		// Read-your-writes on the node that wrote.
		out, err := clients[2].GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("greeter")})
		if err != nil || out.Environment == nil || out.Environment.Variables["GREETING"] != "from node 3" {
			t.Fatalf("node 3 reads back %+v, %v", out, err)
		}
		if got, err := greeting(clients[2]); err != nil || got != "from node 3" {
			t.Fatalf("invoke through node 3 right after its update = %q, %v", got, err)
		}
		// Node 1 runs the old configuration until its watch brings the new one, then the new.
		eventually(t, 30*time.Second, "node 1 runs node 3's update", func() error {
			got, err := greeting(clients[0])
			switch {
			case err != nil:
				return err
			case got == "from node 1":
				return errors.New("still the old configuration")
			case got != "from node 3":
				t.Fatalf("node 1 runs greeting %q", got)
			}
			return nil
		})
	})
	t.Run("every node lists the three nodes by their names", func(t *testing.T) {
		for i, n := range nodes {
			eventually(t, 30*time.Second, fmt.Sprintf("node %d lists the cluster", i+1), func() error {
				up, err := upNodes(n.srv.URL())
				if err != nil {
					return err
				}
				if want := []string{"node1", "node2", "node3"}; !slices.Equal(up, want) {
					return fmt.Errorf("up: %v, want %v", up, want)
				}
				return nil
			})
		}
	})

	t.Run("async events sent to any node run", func(t *testing.T) {
		// Every node consumes the one replicated async queue; an event runs on whichever
		// node fetched it. (The process sandbox lets the function write this host file.)
		out := filepath.Join(t.TempDir(), "events")
		createFunction(t, clients[0], "recorder", "python3.11", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: `
def handler(event, context):
    with open(event["file"], "a") as f:
        f.write(event["id"] + "\n")
`}}))
		for i, c := range clients {
			payload := fmt.Sprintf(`{"file":%q,"id":"via-node%d"}`, out, i+1)
			eventually(t, 30*time.Second, fmt.Sprintf("node %d accepts an async event", i+1), func() error {
				_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("recorder"),
					InvocationType: types.InvocationTypeEvent, Payload: []byte(payload)})
				return err
			})
		}
		eventually(t, 30*time.Second, "the three events run", func() error {
			b, err := os.ReadFile(out)
			if err != nil {
				return err
			}
			got := strings.Fields(string(b))
			slices.Sort(got)
			if want := []string{"via-node1", "via-node2", "via-node3"}; !slices.Equal(got, want) {
				return fmt.Errorf("ran %v, want %v", got, want)
			}
			return nil
		})
	})

	t.Run("an at() schedule fires once across the nodes", func(t *testing.T) {
		// Every node's scheduler fires a due occurrence; the queue keeps one event per
		// occurrence (its request id is derived from the schedule and the occurrence).
		out := filepath.Join(t.TempDir(), "fired")
		at := time.Now().UTC().Add(3 * time.Second).Format("2006-01-02T15:04:05")
		sc := newSchedulerClient(nodes[0].srv.URL())
		if _, err := sc.CreateSchedule(ctx, &scheduler.CreateScheduleInput{Name: aws.String("once-in-cluster"),
			ScheduleExpression: aws.String("at(" + at + ")"),
			FlexibleTimeWindow: &stypes.FlexibleTimeWindow{Mode: stypes.FlexibleTimeWindowModeOff},
			Target: &stypes.Target{Arn: aws.String("arn:aws:lambda:us-east-1:000000000000:function:recorder"), RoleArn: aws.String(role),
				Input: aws.String(fmt.Sprintf(`{"file":%q,"id":"fired"}`, out))}}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "the schedule fires", func() error {
			if got := firings(t, out); len(got) == 0 {
				return errors.New("not yet")
			}
			return nil
		})
		// Every node fires the occurrence when it comes: give the copies of the other two the
		// time to run, were they not dropped.
		time.Sleep(3 * time.Second)
		if got := firings(t, out); len(got) != 1 {
			t.Errorf("the at() schedule ran %d times across 3 nodes: %v", len(got), got)
		}
	})

	t.Run("a stream mapping made through one node is read by one node", func(t *testing.T) {
		// One node at a time holds the mapping's lease and reads the stream: each record runs
		// once, not once per node, in each key's order.
		dir := t.TempDir()
		createFunction(t, clients[0], "lanes", "python3.11", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: laneWorker}}),
			func(in *lambda.CreateFunctionInput) {
				in.Environment = &types.Environment{Variables: map[string]string{"DIR": dir}}
			})
		m, err := clients[1].CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("lanes"),
			EventSourceArn: aws.String(streamArn + "cluster-orders"), StartingPosition: types.EventSourcePositionTrimHorizon,
			BatchSize: aws.Int32(10), ParallelizationFactor: aws.Int32(2)})
		if err != nil {
			t.Fatalf("CreateEventSourceMapping of a stream through node 2: %v", err)
		}
		const keys, perKey = 4, 50
		publishRecords(t, nodes[2].srv, "cluster-orders", keys, perKey)
		waitFor(t, "every record", time.Minute, func() bool { return uniqueRecords(t, dir) >= keys*perKey })
		time.Sleep(2 * time.Second) // were every node reading, the others' copies would come now
		if dups := checkStreamOrder(t, dir, keys, perKey); dups != 0 {
			t.Errorf("%d records run more than once across 3 nodes; want each once", dups)
		}
		// Deleted through another node: its lease goes with it.
		if _, err := clients[0].DeleteEventSourceMapping(ctx, &lambda.DeleteEventSourceMappingInput{UUID: m.UUID}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "the deleted mapping's lease is gone", func() error {
			if h, err := server.LaneHolder(ctx, nodes[2].srv, aws.ToString(m.UUID)); err == nil {
				return fmt.Errorf("still held by %q", h)
			}
			return nil
		})
	})

	t.Run("a node restarted after others wrote rejoins and serves their writes", func(t *testing.T) {
		node2 := nodes[1]
		node2.srv.Close()
		// With one of three down, writes and invokes go on through the other two (R3: a
		// quorum of two).
		t0 := time.Now()
		if _, err := clients[0].UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String("greeter"),
			Environment:  &types.Environment{Variables: map[string]string{"GREETING": "while node 2 was down"}},
		}); err != nil {
			t.Fatalf("update through node 1 with node 2 down: %v", err)
		}
		// The update answers once node 1's own view holds it, or after the view's 10 s
		// timeout: taking that long means node 1's watch stalled when node 2 left (as nats.go's
		// KV watch does for ~20 s when its consumer lived on the node that left).
		if d := time.Since(t0); d > 9*time.Second {
			t.Errorf("update through node 1 took %v: its view stalled after node 2 left", d)
		}
		eventually(t, 30*time.Second, "node 3 runs node 1's update", func() error {
			if got, err := greeting(clients[2]); err != nil || got != "while node 2 was down" {
				return fmt.Errorf("greeting %q, %v", got, err)
			}
			return nil
		})
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		t0 = time.Now()
		if err := node2.start(sctx); err != nil {
			t.Fatalf("restart node 2: %v", err)
		}
		t.Logf("node 2 serving again %v after its restart", time.Since(t0))
		c := newClusterClient(node2.srv.URL())
		if got, err := greeting(c); err != nil || got != "while node 2 was down" {
			t.Fatalf("restarted node 2 runs %q, %v; want the update made while it was down", got, err)
		}
	})
}

// upNodes is the sorted names of the nodes GET /flint/v1/nodes at url lists up.
func upNodes(url string) ([]string, error) {
	resp, err := http.Get(url + "/flint/v1/nodes")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Nodes []struct{ Name, State string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	var up []string
	for _, nd := range out.Nodes {
		if nd.State == "up" {
			up = append(up, nd.Name)
		}
	}
	slices.Sort(up)
	return up, nil
}

// newClusterClient is newClient with the SDK's standard retries of 5xx answers, as real clients
// have: a cluster test starts three servers beside the suite's other processes on two cores, and
// a write that meets a stream leader's election answers ServiceException ("no response from
// stream") until the election is over, which a retry rides out.
// Only a 500 is retried: throttles (429) and the other refusals are what the tests count.
func newClusterClient(url string) *lambda.Client {
	c := newClient(url)
	return lambda.New(c.Options(), func(o *lambda.Options) {
		o.RetryMaxAttempts = 0
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 5
			so.Retryables = []retry.IsErrorRetryable{retry.RetryableHTTPStatusCode{Codes: map[int]struct{}{http.StatusInternalServerError: {}}}}
		})
	})
}
