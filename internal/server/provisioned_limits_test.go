package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/flint-run/flint/internal/cluster"
	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/server"
)

// heldPy connects to the test's gate and waits there until the test releases it, so that the
// number of invocations running at once is the test's to decide, not a clock's. It answers
// how its environment was initialized.
const heldPy = `import os, socket
def handler(e, c):
    s = socket.create_connection(("127.0.0.1", e["port"]))
    s.sendall(b"x")
    s.recv(1)
    return os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"]
`

// gate holds the invocations of heldPy that reached it until release.
type gate struct {
	t       *testing.T
	ln      net.Listener
	arrived chan net.Conn
	mu      sync.Mutex
	held    []net.Conn
}

func newGate(t *testing.T) *gate {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{t: t, ln: ln, arrived: make(chan net.Conn, 16)}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				if _, err := bufio.NewReader(conn).ReadByte(); err != nil {
					conn.Close()
					return
				}
				g.arrived <- conn
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); g.release() })
	return g
}

func (g *gate) payload() []byte {
	return []byte(`{"port":` + strconv.Itoa(g.ln.Addr().(*net.TCPAddr).Port) + `}`)
}

// wait returns once n more invocations are running in the function (held at the gate).
func (g *gate) wait(n int) {
	g.t.Helper()
	for range n {
		select {
		case c := <-g.arrived:
			g.mu.Lock()
			g.held = append(g.held, c)
			g.mu.Unlock()
		case <-time.After(60 * time.Second): // a bound against a hang, not a timing assertion
			g.t.Fatalf("an invocation never reached the gate")
		}
	}
}

// release lets every held invocation return.
func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.held {
		c.Close()
	}
	g.held = nil
}

// call is one invocation started in the background.
type call struct {
	done chan struct{}
	out  *lambda.InvokeOutput
	err  error
}

func start(c *lambda.Client, fn, qualifier string, payload []byte) *call {
	k := &call{done: make(chan struct{})}
	go func() {
		defer close(k.done)
		in := &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: payload}
		if qualifier != "" {
			in.Qualifier = aws.String(qualifier)
		}
		k.out, k.err = c.Invoke(context.Background(), in)
	}()
	return k
}

// initType waits for a held invocation's answer: how its environment was initialized.
func (k *call) initType(t *testing.T) string {
	t.Helper()
	<-k.done
	if k.err != nil {
		t.Fatalf("invoke: %v", k.err)
	}
	var s string
	if err := json.Unmarshal(k.out.Payload, &s); err != nil || k.out.FunctionError != nil {
		t.Fatalf("invoke answered %s (%s)", k.out.Payload, aws.ToString(k.out.FunctionError))
	}
	return s
}

// throttled checks that an invocation is refused at once with AWS's TooManyRequestsException
// and reason; if it was admitted instead (it reaches the gate), the test fails and releases it.
func throttled(t *testing.T, g *gate, c *lambda.Client, fn, qualifier string, reason types.ThrottleReason, why string) {
	t.Helper()
	k := start(c, fn, qualifier, g.payload())
	select {
	case <-k.done:
		var tm *types.TooManyRequestsException
		if !errors.As(k.err, &tm) || tm.Reason != reason {
			t.Errorf("%s: %v, want TooManyRequestsException %s", why, k.err, reason)
		}
	case conn := <-g.arrived:
		t.Errorf("%s: admitted, want TooManyRequestsException %s", why, reason)
		conn.Close()
		<-k.done
	}
}

// provisionedFunction creates fn (heldPy), publishes version 1 under alias live and puts n
// provisioned environments on live, waiting until they are ready.
func provisionedFunction(t *testing.T, c *lambda.Client, fn string, reserved, n int32) {
	t.Helper()
	ctx := context.Background()
	createFunction(t, c, fn, "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: heldPy}}),
		func(in *lambda.CreateFunctionInput) { in.Publish = true; in.Timeout = aws.Int32(120) })
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(fn), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	if reserved >= 0 {
		if _, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String(fn), ReservedConcurrentExecutions: aws.Int32(reserved)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String(fn), Qualifier: aws.String("live"), ProvisionedConcurrentExecutions: aws.Int32(n)}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got, err := c.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String(fn), Qualifier: aws.String("live")})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == types.ProvisionedConcurrencyStatusEnumReady {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("provisioned concurrency of %s:live never READY: %+v", fn, got)
		}
	}
}

// TestProvisionedCountsAgainstReserved: provisioned concurrency is carved out of the function's
// reserved concurrency, as on AWS ("Provisioned concurrency counts towards a function's reserved
// concurrency ... This configuration also has the effect of throttling the unpublished version
// of the function ($LATEST)"). Reserved 3 with 2 provisioned on alias live: $LATEST has 1 on
// demand even while live runs nothing; live runs 2 on its provisioned environments and spills
// over into the 1 left; without the provisioned config $LATEST has all 3.
func TestProvisionedCountsAgainstReserved(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	g := newGate(t)
	const reason = types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded
	provisionedFunction(t, c, "carve", 3, 2)

	// $LATEST alone: 3 reserved - 2 provisioned = 1 on demand.
	latest := start(c, "carve", "", g.payload())
	g.wait(1)
	throttled(t, g, c, "carve", "", reason, "a 2nd $LATEST invoke with reserved 3, provisioned 2, live idle")
	// live runs on its 2 provisioned environments beside it; a 3rd live invoke would spill
	// over into the on-demand remainder, which $LATEST holds.
	live := []*call{start(c, "carve", "live", g.payload()), start(c, "carve", "live", g.payload())}
	g.wait(2)
	throttled(t, g, c, "carve", "live", reason, "a 3rd live invoke with the on-demand remainder taken")
	throttled(t, g, c, "carve", "$LATEST", reason, "$LATEST with the reservation used up")
	g.release()
	if got := latest.initType(t); got != "on-demand" {
		t.Errorf("$LATEST ran on a %s environment, want on-demand", got)
	}
	for _, k := range live {
		if got := k.initType(t); got != "provisioned-concurrency" {
			t.Errorf("live ran on a %s environment, want provisioned-concurrency", got)
		}
	}

	// Spill-over: 3 live invokes run (2 provisioned, 1 on demand), and then $LATEST has nothing.
	spill := []*call{start(c, "carve", "live", g.payload()), start(c, "carve", "live", g.payload()), start(c, "carve", "live", g.payload())}
	g.wait(3)
	throttled(t, g, c, "carve", "", reason, "$LATEST with live spilled over into the remainder")
	g.release()
	for _, k := range spill {
		k.initType(t)
	}

	// Without the provisioned config, $LATEST has the whole reservation.
	if _, err := c.DeleteProvisionedConcurrencyConfig(context.Background(), &lambda.DeleteProvisionedConcurrencyConfigInput{FunctionName: aws.String("carve"), Qualifier: aws.String("live")}); err != nil {
		t.Fatal(err)
	}
	all := []*call{start(c, "carve", "", g.payload()), start(c, "carve", "", g.payload()), start(c, "carve", "", g.payload())}
	g.wait(3)
	throttled(t, g, c, "carve", "", reason, "a 4th $LATEST invoke with reserved 3 and no provisioned config")
	g.release()
	for _, k := range all {
		k.initType(t)
	}
}

// TestProvisionedCountsAgainstAccountPool: the provisioned concurrency of a function without a
// reservation comes out of the account's unreserved pool (AWS counts it in
// ClaimedAccountConcurrency, unavailable to on-demand invocations). Account limit 102 with 2
// provisioned on alias live: on-demand invocations share 100. The node keeps its limits in the
// cluster's ledger, where another node holds 99 of the pool's slots, so the pool's edge is
// reached with one invocation instead of a hundred: $LATEST gets the 100th slot and not a
// 101st; live still runs on its provisioned environments; without the config the pool is 102.
func TestProvisionedCountsAgainstAccountPool(t *testing.T) {
	s := startSharing(t, "n1", func(c *config.Config) { c.AccountConcurrency = 102 })
	c := newClient(s.URL())
	g := newGate(t)
	ctx := context.Background()
	provisionedFunction(t, c, "pooled", -1, 2)

	recs, err := server.LeaseRecords(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	// n2 holds its slots for the whole test: a lease it never renews lasts its TTL.
	other := cluster.NewLedger(cluster.LedgerConfig{Node: "n2", Records: recs, TTL: 10 * time.Minute})
	for range 99 {
		if err := other.Slots("account").Take(ctx, 100); err != nil {
			t.Fatalf("n2 taking a slot of the account's pool: %v", err)
		}
	}
	const reason = types.ThrottleReasonConcurrentInvocationLimitExceeded
	latest := start(c, "pooled", "", g.payload())
	g.wait(1)
	throttled(t, g, c, "pooled", "", reason, "$LATEST past the account's 102 less 2 provisioned")
	live := []*call{start(c, "pooled", "live", g.payload()), start(c, "pooled", "live", g.payload())}
	g.wait(2)
	g.release()
	latest.initType(t)
	for _, k := range live {
		if got := k.initType(t); got != "provisioned-concurrency" {
			t.Errorf("live ran on a %s environment, want provisioned-concurrency", got)
		}
	}

	if _, err := c.DeleteProvisionedConcurrencyConfig(ctx, &lambda.DeleteProvisionedConcurrencyConfigInput{FunctionName: aws.String("pooled"), Qualifier: aws.String("live")}); err != nil {
		t.Fatal(err)
	}
	// n1 may still hold the slot its $LATEST invocation used (idle slots go back within 2 s),
	// so the pool of 102 has room for 2 more here whatever n1 kept.
	more := []*call{start(c, "pooled", "", g.payload()), start(c, "pooled", "", g.payload())}
	g.wait(2)
	g.release()
	for _, k := range more {
		k.initType(t)
	}
}
