package worker_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/flint-run/flint/internal/runtimes"
	"github.com/flint-run/flint/internal/sandbox"
	"github.com/flint-run/flint/internal/sandbox/linux"
	"github.com/flint-run/flint/internal/sandbox/process"
	"github.com/flint-run/flint/internal/worker"
)

func TestMain(m *testing.M) {
	linux.Init() // a re-executed sandbox init runs here and never returns
	goleak.VerifyTestMain(m)
}

// tokenHeader is the header the Parameters and Secrets extension wants AWS_SESSION_TOKEN in.
const tokenHeader = "X-Aws-Parameters-Secrets-Token"

// bootstrap is a provided runtime that answers each event with what it sees of the service on
// its port: the answer with the environment's token, the status without it, and its variables.
const bootstrap = `#!/usr/bin/python3
import http.client, json, os
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
port = int(os.environ["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"])
def get(headers):
    c = http.client.HTTPConnection("localhost", port, timeout=30)
    c.request("GET", "/whoami", headers=headers)
    r = c.getresponse()
    return r.status, r.read().decode()
while True:
    c = http.client.HTTPConnection(api)
    c.request("GET", "/2018-06-01/runtime/invocation/next")
    r = c.getresponse()
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    r.read()
    status, body = get({"` + tokenHeader + `": os.environ["AWS_SESSION_TOKEN"]})
    bad, _ = get({"` + tokenHeader + `": "not-the-token"})
    out = {"status": status, "body": json.loads(body) if status == 200 else body, "without_token": bad,
        "port": port, "token": os.environ["AWS_SESSION_TOKEN"],
        "key": os.environ.get("AWS_ACCESS_KEY_ID"), "secret": os.environ.get("AWS_SECRET_ACCESS_KEY")}
    c.request("POST", "/2018-06-01/runtime/invocation/%s/response" % rid, body=json.dumps(out))
    c.getresponse().read()
`

// answer is what bootstrap returns.
type answer struct {
	Status       int             `json:"status"`
	Body         json.RawMessage `json:"body"`
	WithoutToken int             `json:"without_token"`
	Port         int             `json:"port"`
	Token        string          `json:"token"`
	Key          string          `json:"key"`
	Secret       string          `json:"secret"`
}

// whoami is the service's answer: the environment it was made for.
type whoami struct {
	Function, Version, ARN string
}

// services records the EnvInfo of every environment its Handler was made for.
type services struct {
	mu   sync.Mutex
	envs []worker.EnvInfo
}

func (s *services) handler(info worker.EnvInfo) http.Handler {
	s.mu.Lock()
	s.envs = append(s.envs, info)
	s.mu.Unlock()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(tokenHeader) != info.SessionToken {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(whoami{info.Function, info.Version, info.ARN})
	})
}

func (s *services) infos() []worker.EnvInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]worker.EnvInfo(nil), s.envs...)
}

// TestServices runs functions whose runtime calls a service on its loopback port, on each
// backend: the worker serves the handler made for the environment with its session token.
func TestServices(t *testing.T) {
	for _, tc := range []struct {
		name string
		new  func(t *testing.T) (sandbox.Backend, bool) // the backend, and whether its environments share the host's network
	}{
		{"process", func(t *testing.T) (sandbox.Backend, bool) { return process.New("127.0.0.1"), true }},
		{"linux", func(t *testing.T) (sandbox.Backend, bool) { return linuxBackend(t, "none"), false }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, shared := tc.new(t)
			testServices(t, b, shared)
		})
	}
}

func testServices(t *testing.T, b sandbox.Backend, sharedNetwork bool) {
	task := t.TempDir()
	if err := os.WriteFile(filepath.Join(task, "bootstrap"), []byte(bootstrap), 0o755); err != nil {
		t.Fatal(err)
	}
	rt, _ := runtimes.Lookup("provided.al2023")
	svcs := &services{}
	m := worker.New(worker.Config{Backend: b, RuntimeDir: t.TempDir(), Region: "us-east-1",
		KeepAlive: time.Minute, InitTimeout: 30 * time.Second, Log: testLogger(t),
		Services: []worker.Service{{
			Port:    sandbox.Port{Number: 2773, EnvVar: "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"},
			Handler: svcs.handler,
		}}})
	closed := false
	defer func() {
		if !closed {
			m.Close()
		}
	}()
	ctx := context.Background()
	const arn = "arn:aws:lambda:us-east-1:123456789012:function:"
	fn := func(name string, user map[string]string) worker.Function {
		return worker.Function{Name: name, Version: "$LATEST", ARN: arn + name, Runtime: rt, Handler: "x",
			MemoryMB: 128, Timeout: 30 * time.Second, EphemeralMB: 512,
			Env:  func() (map[string]string, error) { return user, nil },
			Code: func(context.Context) (string, error) { return task, nil }}
	}
	var answers []answer
	for _, tc := range []struct {
		fn                 worker.Function
		wantKey, wantToken string // "" for the placeholder and the environment's own
	}{
		{fn: fn("plain", nil)},
		// A user's AWS_SESSION_TOKEN never replaces the environment's; a user's key does win.
		{fn: fn("own-key", map[string]string{"AWS_ACCESS_KEY_ID": "AKIAUSERKEY", "AWS_SESSION_TOKEN": "user-token"}),
			wantKey: "AKIAUSERKEY"},
	} {
		p := m.Pool(tc.fn)
		for n := range 2 { // the second invocation reuses the environment and its service
			var resp *worker.Response
			if err := p.Invoke(ctx, worker.Request{RequestID: fmt.Sprintf("%s-%d", tc.fn.Name, n), Payload: []byte("{}")},
				func(r *worker.Response) { resp = r }); err != nil {
				t.Fatalf("%s: Invoke: %v", tc.fn.Name, err)
			}
			if resp.FunctionError != "" {
				t.Fatalf("%s: function error: %s", tc.fn.Name, resp.Payload)
			}
			var a answer
			if err := json.Unmarshal(resp.Payload, &a); err != nil {
				t.Fatalf("%s: answer %q: %v", tc.fn.Name, resp.Payload, err)
			}
			if a.Status != http.StatusOK || a.WithoutToken != http.StatusUnauthorized {
				t.Fatalf("%s: service answered %d (%s) with the token and %d without, want 200 and 401", tc.fn.Name, a.Status, a.Body, a.WithoutToken)
			}
			var got whoami
			if err := json.Unmarshal(a.Body, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(whoami{tc.fn.Name, "$LATEST", arn + tc.fn.Name}, got); diff != "" {
				t.Errorf("%s: the service's environment (-want +got):\n%s", tc.fn.Name, diff)
			}
			if tok, err := base64.RawURLEncoding.DecodeString(a.Token); err != nil || len(tok) != 32 {
				t.Errorf("%s: AWS_SESSION_TOKEN %q: want 32 random bytes, base64url", tc.fn.Name, a.Token)
			}
			if wantKey := tc.wantKey; a.Key != wantKey && (wantKey != "" || !strings.HasPrefix(a.Key, "ASIA")) {
				t.Errorf("%s: AWS_ACCESS_KEY_ID = %q, want %q", tc.fn.Name, a.Key, wantKey)
			}
			if a.Secret == "" {
				t.Errorf("%s: no AWS_SECRET_ACCESS_KEY", tc.fn.Name)
			}
			if !sharedNetwork && a.Port != 2773 {
				t.Errorf("%s: port %d, want 2773 in a network namespace of its own", tc.fn.Name, a.Port)
			}
			answers = append(answers, a)
		}
	}
	infos := svcs.infos()
	if len(infos) != 2 {
		t.Fatalf("Handler made for %d environments, want 2 (one per function, reused when warm)", len(infos))
	}
	for n, info := range infos {
		if a := answers[2*n]; info.SessionToken != a.Token || answers[2*n+1].Token != a.Token {
			t.Errorf("%s: environment token %q, handler's %q", info.Function, a.Token, info.SessionToken)
		}
		if info.ID == "" {
			t.Errorf("%s: EnvInfo has no ID", info.Function)
		}
	}
	if infos[0].SessionToken == infos[1].SessionToken {
		t.Error("two environments have the same session token")
	}
	m.Close()
	closed = true
	if sharedNetwork { // the port is on the host's loopback: after Close nothing answers there
		for _, a := range answers {
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", a.Port), 5*time.Second); err == nil {
				c.Close()
				t.Errorf("port %d still accepts after Close", a.Port)
			}
		}
	}
}

// linuxBackend returns a linux backend on a fresh state dir and a cgroup parent of its own, or
// skips when the host cannot run it.
func linuxBackend(t *testing.T, network string) *linux.Backend {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the linux sandbox needs root")
	}
	parent := fmt.Sprintf("flint-worker-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	b, err := linux.New(linux.Config{StateDir: t.TempDir(), CgroupParent: parent, Network: network, Prespawn: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Check(context.Background()); err != nil {
		t.Skipf("linux sandbox unavailable: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		removeCgroupParent(parent)
	})
	return b
}

// removeCgroupParent removes the (empty) cgroup directories named parent that the backend made
// below this process's cgroups, in every hierarchy.
func removeCgroupParent(parent string) {
	data, _ := os.ReadFile("/proc/self/cgroup")
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, root := range []string{"/sys/fs/cgroup/*", "/sys/fs/cgroup"} {
			dirs, _ := filepath.Glob(filepath.Join(root, parts[2], parent))
			for _, d := range dirs {
				_ = os.Remove(d)
			}
		}
	}
}

// testLogger routes operator logs to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// TestMemoryBudgetThrottleIsLogged: when the node's memory budget refuses an environment the
// caller gets ErrNoCapacity (AWS's "Rate Exceeded." on the wire), and the operator is told which
// limit it was, once however many invokes are refused.
func TestMemoryBudgetThrottleIsLogged(t *testing.T) {
	task := t.TempDir()
	const slow = `#!/usr/bin/python3
import http.client, os, time
c = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
while True:
    c.request("GET", "/2018-06-01/runtime/invocation/next")
    r = c.getresponse()
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    r.read()
    time.sleep(2)
    c.request("POST", "/2018-06-01/runtime/invocation/%s/response" % rid, body="{}")
    c.getresponse().read()
`
	if err := os.WriteFile(filepath.Join(task, "bootstrap"), []byte(slow), 0o755); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer // slog serialises its writes; it is read once the Manager is closed
	rt, _ := runtimes.Lookup("provided.al2023")
	m := worker.New(worker.Config{Backend: process.New("127.0.0.1"), RuntimeDir: t.TempDir(), Region: "us-east-1",
		KeepAlive: time.Minute, InitTimeout: 30 * time.Second, MemoryBudgetMB: 128,
		Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	var closeOnce sync.Once
	closeManager := func() { closeOnce.Do(m.Close) }
	defer closeManager()
	p := m.Pool(worker.Function{Name: "slow", Version: "$LATEST", ARN: "arn:aws:lambda:us-east-1:123456789012:function:slow",
		Runtime: rt, Handler: "x", MemoryMB: 128, Timeout: 30 * time.Second, EphemeralMB: 512,
		Env:  func() (map[string]string, error) { return nil, nil },
		Code: func(context.Context) (string, error) { return task, nil }})
	first := make(chan error, 1)
	go func() {
		first <- p.Invoke(context.Background(), worker.Request{RequestID: "holds-the-budget", Payload: []byte("{}")}, func(*worker.Response) {})
	}()
	for deadline := time.Now().Add(30 * time.Second); m.Stats().Busy == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first invoke never got an environment")
		}
	}
	for n := range 3 {
		err := p.Invoke(context.Background(), worker.Request{RequestID: fmt.Sprintf("refused-%d", n), Payload: []byte("{}")}, func(*worker.Response) {})
		if !errors.Is(err, worker.ErrNoCapacity) {
			t.Fatalf("invoke %d while the budget is taken: %v, want ErrNoCapacity", n, err)
		}
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	closeManager() // no goroutine of the Manager writes to logs after this
	if got := strings.Count(logs.String(), "memory budget"); got != 1 {
		t.Errorf("%d warnings about the memory budget for 3 refused invokes, want 1; logs:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "budget_mb=128 busy_mb=128 asked_mb=128") {
		t.Errorf("the warning does not give the figures:\n%s", logs.String())
	}
}

// recorder is a LogSink that keeps every record.
type recorder struct {
	mu   sync.Mutex
	recs []string
}

func (r *recorder) Append(_ string, rec []byte) {
	r.mu.Lock()
	r.recs = append(r.recs, string(rec))
	r.mu.Unlock()
}

func (r *recorder) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.recs, "")
}

// platformStopBootstrap sleeps a second in INIT, then answers each event after sleeping the
// event's "sleep" seconds; it creates the file $MARK once it holds an event.
const platformStopBootstrap = `#!/usr/bin/python3
import http.client, json, os, time
time.sleep(1)
c = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
while True:
    c.request("GET", "/2018-06-01/runtime/invocation/next")
    r = c.getresponse()
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    ev = json.loads(r.read())
    print("working on", rid, flush=True)  # before the mark, which tells the test it was written
    open(os.environ["MARK"], "w").close()
    time.sleep(ev.get("sleep", 0))
    c.request("POST", "/2018-06-01/runtime/invocation/%s/response" % rid, body='{"ok":true}')
    c.getresponse().read()
`

// TestPlatformStopsAreNotFunctionErrors: the environment transitions the platform causes. A
// pool retired while its environment is in INIT lets that environment serve the invocation
// waiting on it; Close during INIT aborts the invocation (a platform error, not Unhandled);
// Close while the runtime holds the event aborts it too, and its log record, with the reason, is
// in the LogSink when Close returns.
func TestPlatformStopsAreNotFunctionErrors(t *testing.T) {
	task := t.TempDir()
	if err := os.WriteFile(filepath.Join(task, "bootstrap"), []byte(platformStopBootstrap), 0o755); err != nil {
		t.Fatal(err)
	}
	rt, _ := runtimes.Lookup("provided.al2023")
	setupOn := func(t *testing.T, backend sandbox.Backend) (*worker.Manager, *worker.Pool, *recorder, string) {
		mark := filepath.Join(t.TempDir(), "mark")
		rec := &recorder{}
		m := worker.New(worker.Config{Backend: backend, RuntimeDir: t.TempDir(), Region: "us-east-1",
			KeepAlive: time.Minute, InitTimeout: 30 * time.Second, Logs: rec, Log: testLogger(t)})
		t.Cleanup(m.Close)
		p := m.Pool(worker.Function{Name: "stop", Version: "$LATEST", ARN: "arn:aws:lambda:us-east-1:123456789012:function:stop",
			Runtime: rt, Handler: "x", MemoryMB: 128, Timeout: time.Minute, EphemeralMB: 512,
			Env:  func() (map[string]string, error) { return map[string]string{"MARK": mark}, nil },
			Code: func(context.Context) (string, error) { return task, nil }})
		return m, p, rec, mark
	}
	setup := func(t *testing.T) (*worker.Manager, *worker.Pool, *recorder, string) {
		return setupOn(t, process.New("127.0.0.1"))
	}
	type outcome struct {
		resp *worker.Response
		err  error
	}
	show := func(o outcome) string {
		if o.resp == nil {
			return fmt.Sprintf("error %v, no response", o.err)
		}
		return fmt.Sprintf("error %v, response FunctionError %q: %s", o.err, o.resp.FunctionError, o.resp.Payload)
	}
	invoke := func(p *worker.Pool, id, payload string) chan outcome {
		ch := make(chan outcome, 1)
		go func() {
			var o outcome
			o.err = p.Invoke(context.Background(), worker.Request{RequestID: id, Payload: []byte(payload)}, func(r *worker.Response) { o.resp = r })
			ch <- o
		}()
		return ch
	}
	waitFor := func(t *testing.T, what string, cond func() bool) {
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s did not happen within 30 s", what)
			}
		}
	}

	t.Run("retired during INIT", func(t *testing.T) {
		m, p, _, _ := setup(t)
		done := invoke(p, "retired-1", `{}`)
		waitFor(t, "a cold start", func() bool { return m.Stats().Starting == 1 })
		p.Retire()
		o := <-done
		if o.err != nil || o.resp == nil || o.resp.FunctionError != "" || string(o.resp.Payload) != `{"ok":true}` {
			t.Fatalf("invoke whose environment's pool was retired during INIT: %s; want the function's answer", show(o))
		}
		waitFor(t, "the retired environment's end", func() bool { s := m.Stats(); return s.Starting+s.Idle+s.Busy == 0 })
	})
	// Close during INIT: while the runtime starts, and (the gate holding Start until the
	// Destroy has happened) after the environment is registered but before its sandbox is told
	// to exec the runtime, a window a loaded CI run hit. Either way the invocation is the
	// platform's to retry, not the function's error.
	for _, tc := range []struct {
		name    string
		backend func() sandbox.Backend
	}{
		{"closed during INIT", func() sandbox.Backend { return process.New("127.0.0.1") }},
		{"closed before the runtime's exec", func() sandbox.Backend {
			return &gatedBackend{Backend: process.New("127.0.0.1"), destroyed: make(chan struct{})}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, p, _, _ := setupOn(t, tc.backend())
			done := invoke(p, "closed-init-1", `{}`)
			waitFor(t, "a cold start", func() bool { return m.Stats().Starting == 1 })
			m.Close()
			o := <-done
			if o.resp != nil || !errors.Is(o.err, worker.ErrAborted) && !errors.Is(o.err, worker.ErrClosed) {
				t.Fatalf("invoke whose environment was in INIT at Close: %s; want ErrAborted or ErrClosed", show(o))
			}
		})
	}
	t.Run("closed while running", func(t *testing.T) {
		m, p, rec, mark := setup(t)
		done := invoke(p, "closed-run-1", `{"sleep":60}`)
		waitFor(t, "the event's delivery", func() bool { _, err := os.Stat(mark); return err == nil })
		m.Close()
		o := <-done
		if o.resp != nil || !errors.Is(o.err, worker.ErrAborted) {
			t.Fatalf("invoke running at Close: %s; want ErrAborted", show(o))
		}
		got := rec.all()
		for _, want := range []string{"START RequestId: closed-run-1", "working on closed-run-1", " closed-run-1 Invocation stopped by the platform: shutdown\n",
			"END RequestId: closed-run-1", "REPORT RequestId: closed-run-1", "Status: error\t"} {
			if !strings.Contains(got, want) {
				t.Errorf("the record of the invocation stopped at Close lacks %q:\n%s", want, got)
			}
		}
		if strings.Contains(got, "Error Type") {
			t.Errorf("the record of the invocation stopped at Close names an error type (the function had none):\n%s", got)
		}
	})
}

// gatedBackend's instances start only once one of them was destroyed, so that a test can put a
// Destroy between an environment's creation and its Start.
type gatedBackend struct {
	sandbox.Backend
	once      sync.Once
	destroyed chan struct{}
}

func (b *gatedBackend) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Instance, error) {
	inst, err := b.Backend.Create(ctx, spec)
	if err != nil {
		return nil, err
	}
	return &gatedInstance{Instance: inst, b: b}, nil
}

type gatedInstance struct {
	sandbox.Instance
	b *gatedBackend
}

func (i *gatedInstance) Start(ctx context.Context) error {
	select {
	case <-i.b.destroyed:
	case <-time.After(30 * time.Second):
		return errors.New("gatedBackend: no Destroy within 30 s")
	}
	return i.Instance.Start(ctx)
}

func (i *gatedInstance) Destroy(ctx context.Context) error {
	i.b.once.Do(func() { close(i.b.destroyed) })
	return i.Instance.Destroy(ctx)
}
