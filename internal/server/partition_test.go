package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/flint-run/flint/internal/cluster"
)

// routeProxy forwards TCP connections to one node's cluster address; cut closes every
// connection it carries and refuses new ones (accepts and closes them at once) until heal.
type routeProxy struct {
	ln     net.Listener
	target func() string // where it forwards; nil: nowhere (every connection is closed at once)

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newRouteProxy(t *testing.T, target func() string) *routeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &routeProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *routeProxy) addr() string { return p.ln.Addr().String() }

func (p *routeProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut || p.target == nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.forward(c)
	}
}

func (p *routeProxy) forward(c net.Conn) {
	defer p.wg.Done()
	defer p.drop(c)
	up, err := net.DialTimeout("tcp", p.target(), 2*time.Second)
	if err != nil {
		return
	}
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		up.Close()
		return
	}
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	defer p.drop(up)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done // one side ended: end both (the other copy then ends too)
	c.Close()
	up.Close()
	<-done
}

func (p *routeProxy) drop(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// setCut cuts (true) or heals (false) the link.
func (p *routeProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
	}
}

func (p *routeProxy) close() {
	p.ln.Close()
	p.setCut(true)
	p.wg.Wait()
}

// logTee keeps a node's log lines for the test to count, and passes them to t.Log.
type logTee struct {
	t  *testing.T
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logTee) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.b.Write(p)
	l.mu.Unlock()
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (l *logTee) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// nodesListing is GET /flint/v1/nodes of one node.
func nodesListing(url string) (cluster.Listing, error) {
	var out cluster.Listing
	resp, err := http.Get(url + "/flint/v1/nodes")
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return out, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

const (
	lostLine     = "this node has lost the cluster's quorum"
	regainedLine = "this node has regained the cluster's quorum"
)

// TestPartition cuts node 3 of three off the others (every route between them goes through a
// TCP proxy of the test's, and the proxies to and from node 3 are cut) and checks what
// docs/CLUSTER.md says of partitions on both sides, then heals the cut.
//
// Each node dials each other node through a proxy of its own (its Join lists the proxies), and
// advertises an address that closes every connection: nats-server dials the advertised address
// for routes it learns of by gossip and to retry routes it accepted, which would otherwise go
// around the proxies (to the nodes' real cluster addresses). So every route is one of the
// proxied ones, which the test checks through the nodes' quorum (node 3 reaches no other node).
func TestPartition(t *testing.T) {
	t0 := time.Now()
	nowhere := newRouteProxy(t, nil)
	var (
		mu      sync.Mutex
		real    = map[int]string{}
		proxies = map[[2]int]*routeProxy{} // [from, to]
		logs    = map[int]*logTee{}
	)
	const n = 3
	for from := range n {
		for to := range n {
			if from != to {
				proxies[[2]int{from, to}] = newRouteProxy(t, func() string { mu.Lock(); defer mu.Unlock(); return real[to] })
			}
		}
	}
	nodes := startClusterWith(t, n, func(i int, node *clusterNode) {
		mu.Lock()
		real[i] = node.cfg.ClusterListen
		mu.Unlock()
		node.cfg.Join = nil
		for to := range n {
			if to != i {
				node.cfg.Join = append(node.cfg.Join, proxies[[2]int{i, to}].addr())
			}
		}
		node.cfg.ClusterAdvertise = nowhere.addr()
		logs[i] = &logTee{t: t}
		node.log = slog.New(slog.NewTextHandler(logs[i], &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", node.cfg.Node)
	})
	t.Logf("3 nodes serving %v after starting together", time.Since(t0))
	clients := make([]*lambda.Client, n)
	for i, nd := range nodes {
		clients[i] = newClient(nd.srv.URL())
	}
	ctx := context.Background()
	greeting := func(c *lambda.Client) (string, error) { return greetingOf(ctx, c, "greeter") }
	setGreeting := func(c *lambda.Client, g string) error {
		_, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("greeter"),
			Environment: &types.Environment{Variables: map[string]string{"GREETING": g}}})
		return err
	}
	quorum := func(i int) (cluster.Quorum, error) {
		l, err := nodesListing(nodes[i].srv.URL())
		return l.Quorum, err
	}

	createFunction(t, clients[0], "greeter", "python3.11", "app.handler",
		mustZip(t, map[string]zipEntry{"app.py": {body: greeterPy}}), func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"GREETING": "before"}}
		})
	for i, c := range clients {
		eventually(t, 30*time.Second, fmt.Sprintf("node %d runs greeter", i+1), func() error {
			got, err := greeting(c)
			if err == nil && got != "before" {
				return fmt.Errorf("greeting %q", got)
			}
			return err
		})
		eventually(t, 10*time.Second, fmt.Sprintf("node %d has the quorum", i+1), func() error {
			q, err := quorum(i)
			if err == nil && (q.State != "ok" || q.Reach != 3 || q.Size != 3) {
				return fmt.Errorf("quorum %+v", q)
			}
			return err
		})
	}

	// The cut.
	cut := func(on bool) {
		for k, p := range proxies {
			if k[0] == 2 || k[1] == 2 {
				p.setCut(on)
			}
		}
	}
	cut(true)
	tCut := time.Now()

	t.Run("node 3 knows at once that it lost the quorum, and says so once", func(t *testing.T) {
		eventually(t, 15*time.Second, "node 3 reports the quorum lost", func() error {
			q, err := quorum(2)
			if err != nil {
				return err
			}
			if q.State != "lost" {
				return fmt.Errorf("quorum %+v", q)
			}
			// The cut is real: node 3 has no route to either other node.
			if q.Reach != 1 || q.Size != 3 || q.Needs != 2 || q.Node != "node3" {
				t.Fatalf("node 3's quorum %+v, want it to reach only itself of 3", q)
			}
			return nil
		})
		l, err := nodesListing(nodes[2].srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("node 3 knew it lost the quorum %v after the cut, answered by `flint nodes` %v after it",
			l.Quorum.Since.Sub(tCut).Round(time.Millisecond), time.Since(tCut).Round(time.Millisecond))
		if d := l.Quorum.Since.Sub(tCut); d > 5*time.Second {
			t.Errorf("node 3 knew it lost the quorum %v after the cut", d)
		}
		if l.Quorum.State != "lost" || (len(l.Nodes) == 0) != (l.Unlisted != "") {
			t.Errorf("node 3 lists %+v", l)
		}
		eventually(t, 5*time.Second, "node 3's log line", func() error {
			if got := logs[2].count(lostLine); got != 1 {
				return fmt.Errorf("%d lines %q", got, lostLine)
			}
			return nil
		})
	})

	t.Run("the majority serves reads, writes and invokes", func(t *testing.T) {
		// If node 3 led the function bucket's stream (or the meta group), the other two elect a
		// new leader first: bounded by Raft's election timeout (4-9 s) after they stop hearing
		// from it.
		t1 := time.Now()
		eventually(t, 30*time.Second, "an update through node 1", func() error { return setGreeting(clients[0], "majority") })
		t.Logf("node 1 took its first write %v after the cut (%v of retries)", time.Since(tCut).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
		// What needs JetStream's meta leader (listings, new consumers) waits for it, if node 3
		// led the meta group: the others elect one within Raft's election timeout.
		eventually(t, 30*time.Second, "nodes 1 and 2 in contact with a meta leader", func() error {
			for i := range 2 {
				if q, err := quorum(i); err != nil || q.State != "ok" || q.Reach != 2 {
					return fmt.Errorf("node %d: %+v, %v", i+1, q, err)
				}
			}
			return nil
		})
		t.Logf("nodes 1 and 2 in contact with a meta leader %v after the cut", time.Since(tCut).Round(time.Millisecond))
		for i := range 2 {
			eventually(t, 30*time.Second, fmt.Sprintf("node %d runs the update", i+1), func() error {
				if got, err := greeting(clients[i]); err != nil || got != "majority" {
					return fmt.Errorf("greeting %q, %v", got, err)
				}
				return nil
			})
			t.Logf("node %d runs the update %v after the cut", i+1, time.Since(tCut).Round(time.Millisecond))
			out, err := clients[i].GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("greeter")})
			if err != nil || out.Configuration.Environment.Variables["GREETING"] != "majority" {
				t.Fatalf("node %d reads greeter: %v", i+1, err)
			}
		}
		// The code goes to the object store, whose stream may still be electing a leader when
		// the functions bucket has one (seen once: "no responders"): retried like the others.
		during := mustZip(t, map[string]zipEntry{"app.py": {body: greeterPy}})
		eventually(t, 30*time.Second, "CreateFunction through node 2", func() error {
			_, err := clients[1].CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("during"),
				Runtime: types.RuntimePython311, Handler: aws.String("app.handler"), Role: aws.String(role),
				Code: &types.FunctionCode{ZipFile: during}})
			var exists *types.ResourceConflictException
			if errors.As(err, &exists) {
				return nil // an earlier attempt's answer was lost, not its write
			}
			return err
		})
		// A JetStream API request sent during an election gets no answer (5 s), hence retries.
		eventually(t, 30*time.Second, "PutFunctionConcurrency through node 1", func() error {
			_, err := clients[0].PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("during"),
				ReservedConcurrentExecutions: aws.Int32(5)})
			return err
		})
		if _, err := clients[0].ListFunctions(ctx, &lambda.ListFunctionsInput{}); err != nil {
			t.Errorf("ListFunctions through node 1: %v", err)
		}
		// Its first invocation leases a slot of its reservation: if node 3 led the leases
		// bucket's stream, that waits for the majority's election (429 until then).
		eventually(t, 30*time.Second, "invoke of the function created during the partition", func() error {
			_, err := clients[1].Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("during")})
			return err
		})
		for i := range 2 {
			q, err := quorum(i)
			if err != nil || q.State == "lost" || q.Reach != 2 {
				t.Errorf("node %d's quorum: %+v, %v", i+1, q, err)
			}
			if c := logs[i].count(lostLine); c != 0 {
				t.Errorf("node %d logged %d times that it lost the quorum", i+1, c)
			}
		}
		eventually(t, 20*time.Second, "node 1 lists node 3 down", func() error {
			l, err := nodesListing(nodes[0].srv.URL())
			if err != nil {
				return err
			}
			for _, nd := range l.Nodes {
				if nd.Name == "node3" && nd.State == cluster.StateDown {
					return nil
				}
			}
			return fmt.Errorf("nodes %+v", l.Nodes)
		})
	})

	t.Run("node 3 refuses writes with ServiceException and changes nothing", func(t *testing.T) {
		noQuorum := func(what string, err error, took time.Duration) {
			t.Helper()
			var ae smithy.APIError
			var re interface{ HTTPStatusCode() int }
			if !errors.As(err, &ae) || ae.ErrorCode() != "ServiceException" || !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusInternalServerError ||
				!strings.Contains(ae.ErrorMessage(), "Flint node node3 has lost the cluster's quorum (it reaches 1 of 3 nodes, 2 needed)") {
				t.Errorf("%s through node 3: %v, want ServiceException (500) saying it lost the quorum", what, err)
			}
			// Refused at once: no JetStream round trip is waited for.
			if took > 2*time.Second {
				t.Errorf("%s through node 3 took %v", what, took)
			}
		}
		t1 := time.Now()
		err := setGreeting(clients[2], "isolated")
		noQuorum("UpdateFunctionConfiguration", err, time.Since(t1))
		t1 = time.Now()
		_, err = clients[2].PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("greeter"),
			ReservedConcurrentExecutions: aws.Int32(3)})
		noQuorum("PutFunctionConcurrency", err, time.Since(t1))
		t1 = time.Now()
		_, err = clients[2].CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("isolated"), Runtime: types.RuntimePython311,
			Handler: aws.String("app.handler"), Role: aws.String(role), Code: &types.FunctionCode{ZipFile: mustZip(t, map[string]zipEntry{"app.py": {body: greeterPy}})}})
		noQuorum("CreateFunction", err, time.Since(t1))
		t1 = time.Now()
		_, err = clients[2].DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("greeter")})
		noQuorum("DeleteFunction", err, time.Since(t1))
		// An async invoke is a write too (the event is stored in the replicated queue).
		t1 = time.Now()
		_, err = clients[2].Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("greeter"), InvocationType: types.InvocationTypeEvent})
		noQuorum("Invoke (Event)", err, time.Since(t1))
		// A listing needs the cluster (a JetStream consumer): refused the same way.
		t1 = time.Now()
		_, err = clients[2].ListFunctions(ctx, &lambda.ListFunctionsInput{})
		noQuorum("ListFunctions", err, time.Since(t1))
		// A read of one resource is answered from node 3's own copy, as it was at the cut, while
		// that copy answers; JetStream may stop its answers (a copy cut off from its leader),
		// and then the read is refused like the rest. Never the majority's newer data.
		t1 = time.Now()
		got, err := clients[2].GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("greeter")})
		if err != nil {
			noQuorum("GetFunctionConfiguration", err, time.Since(t1))
		} else if got.Environment.Variables["GREETING"] != "before" {
			t.Errorf("node 3 reads greeter during the partition: %+v; want its copy from before the cut", got.Environment)
		}
		// Nothing of them is seen by the majority (checked again on node 3 after the heal).
		out, err := clients[0].GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("greeter")})
		if err != nil || out.Configuration.Environment.Variables["GREETING"] != "majority" || out.Concurrency != nil {
			t.Errorf("node 1 reads greeter after node 3's refused writes: %+v, %v", out, err)
		}
	})

	t.Run("node 3 throttles invocations it cannot lease concurrency for, saying why", func(t *testing.T) {
		// It admits nothing it has no concurrency lease for (docs/cluster-limits.md): an idle
		// node holds none, a busy one stops using its lease 8 s after its last renewal.
		eventually(t, 15*time.Second, "node 3 throttles greeter", func() error {
			t1 := time.Now()
			_, err := greeting(clients[2])
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != "TooManyRequestsException" ||
				!strings.Contains(ae.ErrorMessage(), "This Flint node has lost the cluster's quorum") {
				return fmt.Errorf("invoke through node 3: %v", err)
			}
			var te *types.TooManyRequestsException
			if !errors.As(err, &te) || te.Reason != types.ThrottleReasonConcurrentInvocationLimitExceeded {
				t.Errorf("throttle %+v, want Reason ConcurrentInvocationLimitExceeded", te)
			}
			if d := time.Since(t1); d > 3*time.Second {
				t.Errorf("the throttle took %v", d)
			}
			return nil
		})
	})

	// The heal.
	cut(false)
	tHeal := time.Now()

	t.Run("healed, node 3 catches up and serves again", func(t *testing.T) {
		eventually(t, 30*time.Second, "node 3 has the quorum again", func() error {
			q, err := quorum(2)
			if err == nil && (q.State != "ok" || q.Reach != 3) {
				return fmt.Errorf("quorum %+v", q)
			}
			return err
		})
		t.Logf("node 3 had the quorum again %v after the heal", time.Since(tHeal).Round(time.Millisecond))
		if got := logs[2].count(regainedLine); got != 1 {
			t.Errorf("node 3 logged %q %d times, want once", regainedLine, got)
		}
		if got := logs[2].count(lostLine); got != 1 {
			t.Errorf("node 3 logged %q %d times, want once", lostLine, got)
		}
		eventually(t, 30*time.Second, "node 3 runs the majority's update", func() error {
			if got, err := greeting(clients[2]); err != nil || got != "majority" {
				return fmt.Errorf("greeting %q, %v", got, err)
			}
			return nil
		})
		// Its copy of the registry catches up through Raft: until then a read of one resource
		// through it can still answer from before the heal.
		eventually(t, 30*time.Second, "node 3 reads the majority's update", func() error {
			out, err := clients[2].GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("greeter")})
			if err != nil {
				return err
			}
			if g := out.Configuration.Environment.Variables["GREETING"]; g != "majority" || out.Concurrency != nil {
				return fmt.Errorf("greeting %q, concurrency %+v", g, out.Concurrency)
			}
			return nil
		})
		t.Logf("node 3 reads the majority's update %v after the heal", time.Since(tHeal).Round(time.Millisecond))
		eventually(t, 30*time.Second, "node 3 lists what the majority created", func() error {
			out, err := clients[2].ListFunctions(ctx, &lambda.ListFunctionsInput{})
			if err != nil {
				return err
			}
			var names []string
			for _, f := range out.Functions {
				names = append(names, aws.ToString(f.FunctionName))
			}
			slices.Sort(names)
			if !slices.Equal(names, []string{"during", "greeter"}) {
				return fmt.Errorf("functions %v, want during and greeter (nothing of node 3's refused create)", names)
			}
			return nil
		})
		eventually(t, 30*time.Second, "node 3 reads the reservation made during the partition", func() error {
			c, err := clients[2].GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("during")})
			if err == nil && aws.ToInt32(c.ReservedConcurrentExecutions) != 5 {
				return fmt.Errorf("reserved %v", c.ReservedConcurrentExecutions)
			}
			return err
		})
		// And it takes writes again, which the others see.
		eventually(t, 30*time.Second, "an update through node 3", func() error { return setGreeting(clients[2], "healed") })
		eventually(t, 30*time.Second, "node 1 runs node 3's update", func() error {
			if got, err := greeting(clients[0]); err != nil || got != "healed" {
				return fmt.Errorf("greeting %q, %v", got, err)
			}
			return nil
		})
		t.Logf("healed and caught up %v after the heal", time.Since(tHeal).Round(time.Millisecond))
	})
	t.Logf("TestPartition took %v", time.Since(t0).Round(time.Millisecond))
}
