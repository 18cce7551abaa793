package runtimes

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/sandbox"
)

// waitFor bounds every wait in these tests. It is generous on purpose: it only turns a hang
// into a failure and is never a performance assertion.
const waitFor = 60 * time.Second

// event is one invocation handed out on /next.
type event struct {
	ID              string
	Body            string
	Deadline        time.Time
	ARN             string
	TraceID         string
	ClientContext   string
	CognitoIdentity string
}

// post is one request the runtime made to /response, /error or /init/error.
type post struct {
	Kind   string // "response", "error" or "init/error"
	ID     string // request id; empty for init/error
	Header http.Header
	Body   string
}

// peer is a real Runtime API server (the subset a runtime client uses) on 127.0.0.1:0. It
// hands out queued events on /next and records every post.
type peer struct {
	addr   string
	events chan event
	posts  chan post
	done   chan struct{}
}

// startPeer starts a peer; configure, if given, adjusts its server before it starts.
func startPeer(t testing.TB, configure ...func(*http.Server)) *peer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{
		addr:   ln.Addr().String(),
		events: make(chan event, 16),
		posts:  make(chan post, 16),
		done:   make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", p.next)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", p.record("response"))
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", p.record("error"))
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", p.record("init/error"))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: waitFor,
		IdleTimeout:       10 * waitFor,
	}
	for _, c := range configure {
		c(srv)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		close(p.done)
		srv.Close()
		<-served
	})
	return p
}

func (p *peer) next(w http.ResponseWriter, r *http.Request) {
	var ev event
	select {
	case ev = <-p.events:
	case <-r.Context().Done():
		return
	case <-p.done:
		return
	}
	h := w.Header()
	h.Set("Lambda-Runtime-Aws-Request-Id", ev.ID)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(ev.Deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", ev.ARN)
	h.Set("Content-Type", "application/json")
	for k, v := range map[string]string{
		"Lambda-Runtime-Trace-Id":         ev.TraceID,
		"Lambda-Runtime-Client-Context":   ev.ClientContext,
		"Lambda-Runtime-Cognito-Identity": ev.CognitoIdentity,
	} {
		if v != "" {
			h.Set(k, v)
		}
	}
	io.WriteString(w, ev.Body)
}

func (p *peer) record(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"status":"OK"}`)
		select {
		case p.posts <- post{Kind: kind, ID: r.PathValue("id"), Header: r.Header.Clone(), Body: string(body)}:
		case <-p.done:
		}
	}
}

// invoke queues an event and waits for the runtime's post about it.
func (p *peer) invoke(t testing.TB, ev event) post {
	t.Helper()
	if ev.ID == "" {
		ev.ID = "req-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	if ev.Deadline.IsZero() {
		ev.Deadline = time.Now().Add(waitFor)
	}
	if ev.ARN == "" {
		ev.ARN = "arn:aws:lambda:us-east-1:123456789012:function:fn"
	}
	p.events <- ev
	got := p.wait(t)
	if got.ID != ev.ID {
		t.Errorf("post for request %q, want %q", got.ID, ev.ID)
	}
	return got
}

// wait returns the next post.
func (p *peer) wait(t testing.TB) post {
	t.Helper()
	select {
	case got := <-p.posts:
		return got
	case <-time.After(waitFor):
		t.Fatalf("no post from the runtime within %v", waitFor)
		return post{}
	}
}

// proc is one running runtime client.
type proc struct {
	cmd    *exec.Cmd
	output string // file holding merged stdout and stderr
	exited chan struct{}
	err    error // from Wait, valid once exited is closed
}

// Output returns everything the runtime has written so far. Because the runtime writes its
// logs before it posts, it holds an invocation's logs once its post has arrived.
func (p *proc) Output(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(p.output)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Wait waits for the process to exit and returns its exit code (-1 if killed by a signal).
func (p *proc) Wait(t testing.TB) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(waitFor):
		t.Fatalf("runtime did not exit within %v", waitFor)
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("wait: %v", p.err)
	return 0
}

// fnConfig is what the platform would know about the function.
type fnConfig struct {
	runtime string
	handler string
	files   map[string]string // task directory contents, by slash path
	env     []string          // extra variables
}

// start writes the function's files, installs the clients, and runs the runtime's Entrypoint
// as the process backend would: guest paths in argv and env mapped onto the host directories.
func start(t testing.TB, api *peer, cfg fnConfig) *proc {
	t.Helper()
	rt, ok := Lookup(cfg.runtime)
	if !ok {
		t.Fatalf("Lookup(%q) failed", cfg.runtime)
	}
	taskDir, optDir, runtimeDir := t.TempDir(), t.TempDir(), t.TempDir()
	writeFiles(t, taskDir, cfg.files)
	if err := Install(runtimeDir); err != nil {
		t.Fatalf("Install: %v", err)
	}
	argv, env, err := rt.Entrypoint(taskDir, optDir)
	if errors.Is(err, exec.ErrNotFound) {
		t.Skipf("%s: %v", cfg.runtime, err)
	}
	if err != nil {
		t.Fatalf("Entrypoint: %v", err)
	}
	guest := map[string]string{
		sandbox.GuestTaskRoot:   taskDir,
		sandbox.GuestOptRoot:    optDir,
		sandbox.GuestRuntimeDir: runtimeDir,
	}
	for i := 1; i < len(argv); i++ {
		argv[i] = hostPaths(argv[i], guest)
	}
	env = append(env,
		"AWS_LAMBDA_RUNTIME_API="+api.addr,
		"_HANDLER="+cfg.handler,
		"AWS_LAMBDA_FUNCTION_NAME=fn",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/fn",
		"AWS_LAMBDA_LOG_STREAM_NAME=2026/01/02/[$LATEST]0123456789abcdef",
		"AWS_REGION=us-east-1",
		"LAMBDA_TASK_ROOT="+sandbox.GuestTaskRoot,
		"LAMBDA_RUNTIME_DIR="+sandbox.GuestRuntimeDir,
		"TZ=:UTC",
		"LANG=en_US.UTF-8",
		"PATH=/usr/local/bin:/usr/bin/:/bin:/opt/bin",
	)
	env = append(env, cfg.env...)
	for i, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		env[i] = k + "=" + hostPaths(v, guest)
	}

	out, err := os.Create(filepath.Join(t.TempDir(), "output"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = taskDir
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	p := &proc{cmd: cmd, output: out.Name(), exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			b, _ := os.ReadFile(p.output)
			t.Logf("runtime output:\n%s", b)
		}
	})
	return p
}

// hostPaths rewrites each colon-separated element of v that lies under a guest path.
func hostPaths(v string, guest map[string]string) string {
	parts := strings.Split(v, ":")
	for i, part := range parts {
		for g, h := range guest {
			if part == g || strings.HasPrefix(part, g+"/") {
				parts[i] = h + strings.TrimPrefix(part, g)
				break
			}
		}
	}
	return strings.Join(parts, ":")
}

func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// lines returns the output's lines that contain substr.
func lines(out, substr string) []string {
	var got []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, substr) {
			got = append(got, l)
		}
	}
	return got
}

// largeJSON is a 1 MiB JSON string, which every client echoes byte for byte.
var largeJSON = `"` + strings.Repeat("0123456789abcdef", 1<<16) + `"`
