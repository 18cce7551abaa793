package invoke_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/flint-run/flint/internal/artifact"
	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/crypt"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/sandbox/process"
	"github.com/flint-run/flint/internal/store"
	"github.com/flint-run/flint/internal/worker"
)

// bootstrap answers with its process id (which environment ran it), the size of the "pad" it
// got and a "pad" of the size asked; {"fail": true} is a function error, {"sleep": s} holds the
// environment busy.
const bootstrap = `#!/usr/bin/python3
import http.client, json, os, time
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
while True:
    c = http.client.HTTPConnection(api)
    c.request("GET", "/2018-06-01/runtime/invocation/next")
    r = c.getresponse()
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    arn = r.getheader("Lambda-Runtime-Invoked-Function-Arn")
    ev = json.loads(r.read() or b"{}")
    print("event in pid", os.getpid(), flush=True)
    time.sleep(ev.get("sleep", 0))
    if ev.get("fail"):
        c.request("POST", "/2018-06-01/runtime/invocation/%s/error" % rid,
            body=json.dumps({"errorMessage": "asked to fail", "errorType": "Boom"}))
    else:
        out = {"pid": os.getpid(), "got": len(ev.get("pad", "")), "pad": "y" * ev.get("want", 0), "arn": arn}
        c.request("POST", "/2018-06-01/runtime/invocation/%s/response" % rid, body=json.dumps(out))
    c.getresponse().read()
`

type answer struct {
	PID int    `json:"pid"`
	Got int    `json:"got"`
	Pad string `json:"pad"`
	ARN string `json:"arn"`
}

// node is one simulated cluster node: its own worker.Manager and invoke.Service on the shared
// store, routing under its own name.
type node struct {
	name    string
	svc     *invoke.Service
	workers *worker.Manager
}

func (n *node) envs() int {
	st := n.workers.Stats()
	return st.Starting + st.Idle + st.Busy
}

type cluster struct {
	st    *store.Store
	plane *control.Plane
	nodes []*node
	token string // outside NATS clients' token
}

// newCluster starts one store (the NATS every node shares) with outside clients allowed, and a
// node per memory budget (0: unbounded), each routing.
func newCluster(t testing.TB, budgets ...int) *cluster {
	t.Helper()
	return newClusterOpts(t, clusterOpts{every: 10 * time.Millisecond, refresh: 200 * time.Millisecond, route: true}, budgets...)
}

type clusterOpts struct {
	every, refresh time.Duration
	route          bool // false: the nodes do not route (single nodes on a shared store)
	spread         bool // the nodes split provisioned concurrency (SpreadProvisioned)
}

func newClusterOpts(t testing.TB, o clusterOpts, budgets ...int) *cluster {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	keys, err := crypt.LoadKeyring(filepath.Join(t.TempDir(), "master.key"), "")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{token: "outside-" + uuid.NewString()}
	c.st, err = store.Open(context.Background(), store.Options{Dir: t.TempDir(), Log: log, Keyring: keys,
		Listen: "127.0.0.1:0", Token: c.token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.st.Close)
	ctx, cancel := context.WithCancel(context.Background())
	var first *artifact.Cache // node a's, which the control plane fills
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for i, budget := range budgets {
		workers := worker.New(worker.Config{Backend: process.New("127.0.0.1"), RuntimeDir: t.TempDir(), Region: "us-east-1",
			MemoryBudgetMB: budget, KeepAlive: time.Minute, InitTimeout: 10 * time.Second, Log: log})
		t.Cleanup(workers.Close)
		code, err := artifact.NewCache(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = code
		}
		svc := invoke.New(invoke.RegistryOf(c.st), workers, code, artifact.DefaultLimits(), 1000, nil, log)
		n := &node{name: string(rune('a' + i)), svc: svc, workers: workers}
		if o.spread {
			svc.SpreadProvisioned()
		}
		wg.Add(2)
		go func() { defer wg.Done(); _ = svc.Run(ctx) }()
		<-svc.Ready()
		go func() {
			defer wg.Done()
			if !o.route {
				return
			}
			if err := svc.Route(ctx, invoke.RouteConfig{Node: n.name, Conn: c.st.JetStream().Conn(),
				Every: o.every, Refresh: o.refresh}); err != nil {
				t.Error(err)
			}
		}()
		c.nodes = append(c.nodes, n)
	}
	c.plane = control.New(control.Config{Store: c.st, View: c.nodes[0].svc, Account: lambda.Account{Region: "us-east-1", ID: "123456789012"},
		Log: log, Invoke: c.nodes[0].svc, Code: first, Limits: artifact.DefaultLimits()})
	return c
}

func codeZip(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755)
	w, err := z.CreateHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(bootstrap)); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// function creates fn (the bootstrap above) and waits until every node's view has it.
func (c *cluster) function(t testing.TB, fn string) { t.Helper(); c.functionZip(t, fn, codeZip(t)) }

// functionZip creates fn with the code in zip and waits until every node's view has it.
func (c *cluster) functionZip(t testing.TB, fn string, zip []byte) {
	t.Helper()
	role, mem, timeout := "arn:aws:iam::123456789012:role/r", 128, 30
	if _, err := c.plane.Functions.Create(context.Background(), control.FunctionInput{FunctionName: fn, Runtime: "provided.al2023",
		Role: &role, Handler: "bootstrap", MemorySize: &mem, Timeout: &timeout, Code: &control.CodeInput{ZipFile: zip}}); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		waitFor(t, "node "+n.name+" to know "+fn, func() bool {
			_, err := n.svc.Lookup(context.Background(), fn, "")
			return err == nil
		})
	}
}

func waitFor(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// warmOn waits until from believes node to has an idle environment of fn.
func (c *cluster) warmOn(t testing.TB, from *node, fn, to string) {
	t.Helper()
	waitFor(t, from.name+" to hear that "+to+" is warm", func() bool {
		e, err := from.svc.Lookup(context.Background(), fn, "")
		return err == nil && slices.Contains(from.svc.WarmNodes(e), to)
	})
}

type result struct {
	invoke.Response
	answer answer
}

func call(t testing.TB, n *node, fn string, event any, tail bool) (result, error) {
	t.Helper()
	payload, err := json.Marshal(event)
	if err != nil {
		t.Fatal(err)
	}
	var out result
	err = n.svc.Invoke(context.Background(), invoke.Request{Function: fn, RequestID: uuid.NewString(), Payload: payload, Tail: tail},
		func(r invoke.Response) {
			out.Response = r
			out.Payload = append([]byte(nil), r.Payload...)
		})
	if err == nil && out.FunctionError == "" {
		if err := json.Unmarshal(out.Payload, &out.answer); err != nil {
			t.Fatalf("answer %.200q: %v", out.Payload, err)
		}
	}
	return out, err
}

// TestRouteToWarm: node a has a warm environment for fn, node b none. An invocation through b
// runs on a's environment (same process id, no environment started on b), with a 5 MB payload
// each way, the function's error and log tail intact; a forwarded invocation a cannot place
// warm is answered "not started" and never forwarded again; when a has no idle environment, b
// cold-starts locally.
func TestRouteToWarm(t *testing.T) {
	c := newCluster(t, 0, 0)
	a, b := c.nodes[0], c.nodes[1]
	c.function(t, "fn")

	first, err := call(t, a, "fn", map[string]any{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if first.FunctionError != "" {
		t.Fatalf("first call: %s %s", first.FunctionError, first.Payload)
	}
	if a.envs() != 1 || b.envs() != 0 {
		t.Fatalf("environments after the first call: a %d, b %d; want 1, 0", a.envs(), b.envs())
	}
	c.warmOn(t, b, "fn", "a")

	const big = 5 << 20
	got, err := call(t, b, "fn", map[string]any{"pad": strings.Repeat("x", big), "want": big}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got.answer.PID != first.answer.PID {
		t.Errorf("forwarded invocation ran in pid %d, want a's warm environment %d", got.answer.PID, first.answer.PID)
	}
	if got.answer.Got != big || len(got.answer.Pad) != big {
		t.Errorf("payload sizes: function got %d, returned %d; want %d each", got.answer.Got, len(got.answer.Pad), big)
	}
	if got.ExecutedVersion != "$LATEST" || !strings.HasSuffix(got.answer.ARN, ":function:fn") {
		t.Errorf("executed version %q, invoked ARN %q", got.ExecutedVersion, got.answer.ARN)
	}
	if b.envs() != 0 {
		t.Errorf("b started %d environments for a forwarded invocation", b.envs())
	}

	failed, err := call(t, b, "fn", map[string]any{"fail": true}, true)
	if err != nil {
		t.Fatal(err)
	}
	if failed.FunctionError != "Unhandled" || !strings.Contains(string(failed.Payload), "asked to fail") {
		t.Errorf("function error %q, payload %s", failed.FunctionError, failed.Payload)
	}
	tail, _ := base64.StdEncoding.DecodeString(failed.LogResult)
	if want := "event in pid " + itoa(first.answer.PID); !strings.Contains(string(tail), want) || !strings.Contains(string(tail), "REPORT RequestId") {
		t.Errorf("log tail %q, want it to contain %q and a REPORT line", tail, want)
	}
	if b.envs() != 0 {
		t.Errorf("b started %d environments", b.envs())
	}
	if st := b.svc.RouteStats(); st.Forwarded != 2 {
		t.Errorf("b forwarded %d invocations, want 2 (%+v)", st.Forwarded, st)
	}
	if st := a.svc.RouteStats(); st.Served != 2 || st.Forwarded != 0 {
		t.Errorf("a served %d, forwarded %d; want 2, 0 (%+v)", st.Served, st.Forwarded, st)
	}

	// a's only environment busy: b's next invocation finds nothing idle on a, whatever b last
	// heard, and starts its own.
	busy := make(chan error, 1)
	go func() { _, err := call(t, a, "fn", map[string]any{"sleep": 3}, false); busy <- err }()
	waitFor(t, "a's environment to be busy", func() bool { return a.workers.Stats().Busy == 1 })
	refusedBefore := a.svc.RouteStats().Refused
	local, err := call(t, b, "fn", map[string]any{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if local.answer.PID == first.answer.PID || b.envs() != 1 {
		t.Errorf("with a busy, b's invocation ran in pid %d (a's is %d); b has %d environments, want 1", local.answer.PID, first.answer.PID, b.envs())
	}
	if st := a.svc.RouteStats(); st.Forwarded != 0 || st.Served != 2 {
		t.Errorf("a forwarded %d, served %d; want 0, 2 (%+v)", st.Forwarded, st.Served, st)
	}
	t.Logf("a refused %d forwards while busy (0: b already knew)", a.svc.RouteStats().Refused-refusedBefore)
	if err := <-busy; err != nil {
		t.Fatal(err)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestRouteColdToRoomiest: no node has an environment of fn; an invocation through b (little
// free budget) cold-starts on c (the most free budget), not on b or a.
func TestRouteColdToRoomiest(t *testing.T) {
	c := newCluster(t, 512, 256, 2048)
	a, b, cc := c.nodes[0], c.nodes[1], c.nodes[2]
	c.function(t, "fn")
	waitFor(t, "b to hear every node's budget", func() bool { return len(b.svc.KnownNodes()) == 2 })
	got, err := call(t, b, "fn", map[string]any{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if a.envs() != 0 || b.envs() != 0 || cc.envs() != 1 {
		t.Errorf("environments: a %d, b %d, c %d; want 0, 0, 1", a.envs(), b.envs(), cc.envs())
	}
	if st := b.svc.RouteStats(); st.ColdRemote != 1 || st.Forwarded != 1 {
		t.Errorf("b: %+v, want one cold placement elsewhere", st)
	}
	// c is warm now: a's invocation goes there too.
	c.warmOn(t, a, "fn", "c")
	again, err := call(t, a, "fn", map[string]any{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if again.answer.PID != got.answer.PID || a.envs() != 0 {
		t.Errorf("a's invocation ran in pid %d, want c's %d; a has %d environments", again.answer.PID, got.answer.PID, a.envs())
	}
}

// TestRouteOutsideClients: an outside NATS client (another account) can neither reach a node's
// invoke subject nor feed the capacity announcements.
func TestRouteOutsideClients(t *testing.T) {
	c := newCluster(t, 0, 0)
	a, b := c.nodes[0], c.nodes[1]
	c.function(t, "fn")
	if _, err := call(t, a, "fn", map[string]any{}, false); err != nil {
		t.Fatal(err)
	}
	c.warmOn(t, b, "fn", "a")
	e, err := b.svc.Lookup(context.Background(), "fn", "")
	if err != nil {
		t.Fatal(err)
	}
	var denied []error
	var mu sync.Mutex
	nc, err := nats.Connect(c.st.ClientURL(), nats.Token(c.token), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		mu.Lock()
		denied = append(denied, err)
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	m := nats.NewMsg("flint.route.invoke.a")
	m.Header.Set("Flint-Function", "fn")
	m.Header.Set("Flint-Version", "$LATEST")
	m.Header.Set("Flint-Revision", e.Fn.Config.RevisionId)
	m.Header.Set("Flint-Deadline", itoa(int(time.Now().Add(time.Minute).UnixNano())))
	m.Data = []byte(`{}`)
	if _, err := nc.RequestMsg(m, 2*time.Second); err == nil {
		t.Error("an outside client's request to a node's invoke subject was answered")
	}
	fake, _ := json.Marshal(map[string]any{"node": "evil", "free_mb": -1, "warm": map[string][2]int{"fn:$LATEST:" + e.Fn.Config.RevisionId: {99, 0}}})
	if err := nc.Publish("flint.route.idle", fake); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.SubscribeSync("flint.route.idle"); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	// The server refuses the request's publish, the announcement and the subscription, each
	// with an error to the client: once all three came back, nothing of them can still arrive.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := len(denied)
		mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the outside client heard %d refusals, want 3", n)
		}
	}
	if st := a.svc.RouteStats(); st.Served != 0 || st.Refused != 0 {
		t.Errorf("a served or refused an outside client's request: %+v", st)
	}
	if slices.Contains(b.svc.WarmNodes(e), "evil") {
		t.Error("an outside client's announcement reached b")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(denied) == 0 || !errors.Is(denied[0], nats.ErrPermissionViolation) && !strings.Contains(denied[0].Error(), "Permissions Violation") {
		t.Errorf("outside client errors %v, want permission violations", denied)
	}
}

// goEcho builds examples/go-echo (aws-lambda-go, returns its event) into a zip.
func goEcho(t testing.TB) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-tags", "lambda.norpc", "-trimpath", "-o", out, "../../examples/go-echo")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build go-echo: %v\n%s", err, b)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755)
	w, err := z.CreateHeader(h)
	if err == nil {
		_, err = w.Write(bin)
	}
	if err == nil {
		err = z.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkRouteWarmInvoke: a warm invocation of examples/go-echo on the node that has the
// environment (local) beside the same invocation through a node that forwards it there
// (forwarded), in one sitting, on one environment, with a small event and a 1 MB one (echoed:
// 1 MB each way). Reports each one's p50 besides the mean.
func BenchmarkRouteWarmInvoke(b *testing.B) {
	c := newCluster(b, 0, 0)
	a, bn := c.nodes[0], c.nodes[1]
	c.functionZip(b, "echo", goEcho(b))
	ctx := context.Background()
	respond := func(invoke.Response) {}
	if err := a.svc.Invoke(ctx, invoke.Request{Function: "echo", RequestID: "warm", Payload: []byte(`{}`)}, respond); err != nil {
		b.Fatal(err)
	}
	c.warmOn(b, bn, "echo", "a")
	mb, _ := json.Marshal(strings.Repeat("x", 1<<20-2))
	for _, size := range []struct {
		name    string
		payload []byte
	}{{"2B", []byte(`{}`)}, {"1MB", mb}} {
		for _, via := range []struct {
			name string
			n    *node
		}{{"local", a}, {"forwarded", bn}} {
			b.Run(size.name+"/"+via.name, func(b *testing.B) {
				ds := make([]time.Duration, 0, b.N)
				for b.Loop() {
					start := time.Now()
					if err := via.n.svc.Invoke(ctx, invoke.Request{Function: "echo", RequestID: "bench", Payload: size.payload}, respond); err != nil {
						b.Fatal(err)
					}
					ds = append(ds, time.Since(start))
				}
				slices.Sort(ds)
				b.ReportMetric(float64(ds[len(ds)/2].Microseconds()), "p50-µs")
				if bn.envs() != 0 {
					b.Fatalf("b started %d environments", bn.envs())
				}
			})
		}
	}
}

// TestRouteGoneNode: a node that announced warm environments and then vanished (no goodbye)
// gets no request through: the forward finds no responder at once, the caller forgets that
// node and cold-starts locally.
func TestRouteGoneNode(t *testing.T) {
	c := newCluster(t, 0)
	b := c.nodes[0]
	c.function(t, "fn")
	e, err := b.svc.Lookup(context.Background(), "fn", "")
	if err != nil {
		t.Fatal(err)
	}
	ghost, _ := json.Marshal(map[string]any{"node": "ghost", "free_mb": -1,
		"warm": map[string][2]int{"fn:$LATEST:" + e.Fn.Config.RevisionId: {5, 0}}})
	if err := c.st.JetStream().Conn().Publish("flint.route.idle", ghost); err != nil {
		t.Fatal(err)
	}
	c.warmOn(t, b, "fn", "ghost")
	start := time.Now()
	got, err := call(t, b, "fn", map[string]any{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got.answer.PID == 0 || b.envs() != 1 {
		t.Errorf("answer %+v, b has %d environments; want b's own cold start", got.answer, b.envs())
	}
	if st := b.svc.RouteStats(); st.Refused != 1 || st.Forwarded != 0 {
		t.Errorf("b: %+v, want one refused forward", st)
	}
	if slices.Contains(b.svc.KnownNodes(), "ghost") {
		t.Error("b still counts on the vanished node")
	}
	t.Logf("cold start after a forward to a vanished node: %v", time.Since(start))
}

// TestRouteDeadline: a forwarded invocation that outlives the caller's deadline is reported as
// a platform failure (ErrAborted) and is not run again anywhere: it ran once, on the warm node.
func TestRouteDeadline(t *testing.T) {
	c := newCluster(t, 0, 0)
	a, b := c.nodes[0], c.nodes[1]
	c.function(t, "fn")
	if _, err := call(t, a, "fn", map[string]any{}, false); err != nil {
		t.Fatal(err)
	}
	c.warmOn(t, b, "fn", "a")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := b.svc.Invoke(ctx, invoke.Request{Function: "fn", RequestID: uuid.NewString(), Payload: []byte(`{"sleep": 2}`)},
		func(invoke.Response) { t.Error("answered after the caller's deadline") })
	if !errors.Is(err, invoke.ErrAborted) {
		t.Fatalf("Invoke past the deadline = %v, want ErrAborted", err)
	}
	waitFor(t, "a to finish the forwarded invocation", func() bool { return a.svc.RouteStats().Served == 1 })
	if b.envs() != 0 || a.envs() != 1 {
		t.Errorf("environments: a %d, b %d; want 1, 0 (it ran once, on a)", a.envs(), b.envs())
	}
}

// TestRouteServeRefuses: what a node answers a forward it must not run, quickly and without
// starting anything: another configuration than it knows, an environment-only forward with no
// idle environment, a request without a deadline.
func TestRouteServeRefuses(t *testing.T) {
	c := newCluster(t, 0)
	a := c.nodes[0]
	c.function(t, "fn")
	e, err := a.svc.Lookup(context.Background(), "fn", "")
	if err != nil {
		t.Fatal(err)
	}
	deadline := itoa(int(time.Now().Add(time.Minute).UnixNano()))
	for _, tc := range []struct {
		name               string
		revision, deadline string
		cold               bool
	}{
		{"unknown revision, cold allowed", "not-" + e.Fn.Config.RevisionId, deadline, true},
		{"warm only, nothing idle", e.Fn.Config.RevisionId, deadline, false},
		{"no deadline", e.Fn.Config.RevisionId, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := nats.NewMsg("flint.route.invoke.a")
			m.Header.Set("Flint-Function", "fn")
			m.Header.Set("Flint-Version", "$LATEST")
			m.Header.Set("Flint-Revision", tc.revision)
			if tc.deadline != "" {
				m.Header.Set("Flint-Deadline", tc.deadline)
			}
			if tc.cold {
				m.Header.Set("Flint-Cold", "1")
			}
			m.Data = []byte(`{}`)
			resp, err := c.st.JetStream().Conn().RequestMsg(m, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Header.Get("Flint-Status"); got != "not-started" {
				t.Errorf("status %q (%s), want not-started", got, resp.Header.Get("Flint-Error"))
			}
			if a.envs() != 0 {
				t.Errorf("a started %d environments", a.envs())
			}
		})
	}
}

// TestRouteLocalWarmAllocs: on a routing node, a warm invocation with a local idle environment
// allocates what it allocates on a node that does not route (nothing of routing runs).
func TestRouteLocalWarmAllocs(t *testing.T) {
	allocs := func(route bool) float64 {
		// Announcements every minute: none is built while allocations are counted.
		c := newClusterOpts(t, clusterOpts{every: time.Minute, refresh: time.Minute, route: route}, 0)
		n := c.nodes[0]
		c.functionZip(t, "echo", goEcho(t))
		ctx := context.Background()
		req := invoke.Request{Function: "echo", RequestID: "allocs", Payload: []byte(`{}`)}
		respond := func(invoke.Response) {}
		if err := n.svc.Invoke(ctx, req, respond); err != nil {
			t.Fatal(err)
		}
		// The fewest of several rounds: the process's other goroutines (JetStream heartbeats,
		// the race detector) only ever add to a round's count. Counted as a fraction (not
		// testing.AllocsPerRun's whole number, which rounded 42.9 and 43.0 apart now and then).
		least := math.Inf(1)
		for range 3 {
			least = min(least, mallocsPerRun(1000, func() {
				if err := n.svc.Invoke(ctx, req, respond); err != nil {
					t.Fatal(err)
				}
			}))
		}
		return least
	}
	single, routed := allocs(false), allocs(true)
	t.Logf("allocations per warm invoke: single node %.2f, routing node %.2f", single, routed)
	if routed > single+0.5 {
		t.Errorf("a routing node's local warm invoke allocates %.2f, a single node's %.2f", routed, single)
	}
}

// mallocsPerRun is the mean number of heap allocations of f, run runs times on one P (as
// testing.AllocsPerRun does), as a fraction.
func mallocsPerRun(runs int, f func()) float64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f() // warm-up
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.Mallocs
	for range runs {
		f()
	}
	runtime.ReadMemStats(&ms)
	return float64(ms.Mallocs-before) / float64(runs)
}
