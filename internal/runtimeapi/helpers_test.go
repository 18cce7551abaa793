package runtimeapi_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/runtimeapi"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == helperGoRuntime {
		runGoRuntime() // a real aws-lambda-go runtime; never returns
	}
	goleak.VerifyTestMain(m)
}

const (
	nextPath     = "/2018-06-01/runtime/invocation/next"
	initErrPath  = "/2018-06-01/runtime/init/error"
	registerPath = "/2020-01-01/extension/register"
	extNextPath  = "/2020-01-01/extension/event/next"

	// wait bounds how long a test waits for something that should happen at once. It only turns
	// a hang into a failure; nothing asserts how long anything took.
	wait = 20 * time.Second
)

var (
	statusOK         = `{"status":"OK"}`
	invalidRequestID = `{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}`
	info             = runtimeapi.FunctionInfo{Name: "fn", Version: "$LATEST", Handler: "bootstrap"}
)

func invocationPath(id, verb string) string {
	return "/2018-06-01/runtime/invocation/" + id + "/" + verb
}

// fakeHooks records what the server reports to its environment.
type fakeHooks struct {
	ready  atomic.Int32
	readyc chan struct{} // one value per Ready call

	mu       sync.Mutex
	initErrs []result // InitError is called before the runtime gets its 202
}

func newHooks() *fakeHooks { return &fakeHooks{readyc: make(chan struct{}, 64)} }

func (h *fakeHooks) Ready() {
	h.ready.Add(1)
	select {
	case h.readyc <- struct{}{}:
	default:
	}
}

func (h *fakeHooks) InitError(r runtimeapi.Result) {
	h.mu.Lock()
	h.initErrs = append(h.initErrs, resultOf(r))
	h.mu.Unlock()
}

// waitReady waits for a Ready call. After the runtime's first /next it means that /next is
// parked and offered to Invoke.
func (h *fakeHooks) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-h.readyc:
	case <-time.After(wait):
		t.Fatal("Hooks.Ready was not called")
	}
}

var _ runtimeapi.Hooks = (*fakeHooks)(nil)

// result is runtimeapi.Result with strings, for readable diffs.
type result struct {
	Body, ContentType, ErrorType string
}

func resultOf(r runtimeapi.Result) result {
	return result{Body: string(r.Body), ContentType: r.ContentType, ErrorType: r.ErrorType}
}

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// watchListener counts accepted connections and records what the server reads from each.
type watchListener struct {
	net.Listener
	accepted atomic.Int32
	mu       sync.Mutex
	conns    []*watchConn
	readc    chan struct{} // signalled after reads
}

func (l *watchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.accepted.Add(1)
	wc := &watchConn{Conn: c, l: l}
	l.mu.Lock()
	l.conns = append(l.conns, wc)
	l.mu.Unlock()
	return wc, nil
}

// waitServed waits until the server has read s on n connections and gone back to reading
// them: net/http starts that background read just before it calls the handler.
func (l *watchListener) waitServed(t *testing.T, s string, n int) {
	t.Helper()
	timeout := time.After(wait)
	for {
		l.mu.Lock()
		seen := 0
		for _, c := range l.conns {
			if i := strings.Index(c.read.String(), s); i >= 0 && slices.ContainsFunc(c.calls, func(at int) bool { return at >= i+len(s) }) {
				seen++
			}
		}
		l.mu.Unlock()
		if seen >= n {
			return
		}
		select {
		case <-l.readc:
		case <-timeout:
			t.Fatalf("the server took %q on %d connections, want %d", s, seen, n)
		}
	}
}

type watchConn struct {
	net.Conn
	l     *watchListener
	read  bytes.Buffer // guarded by l.mu
	calls []int        // for every Read call, how much had been read before it; guarded by l.mu
}

func (c *watchConn) Read(p []byte) (int, error) {
	c.l.mu.Lock()
	c.calls = append(c.calls, c.read.Len())
	c.l.mu.Unlock()
	c.l.notify()
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.l.mu.Lock()
		c.read.Write(p[:n])
		c.l.mu.Unlock()
		c.l.notify()
	}
	return n, err
}

func (l *watchListener) notify() {
	select {
	case l.readc <- struct{}{}:
	default:
	}
}

// env is one Runtime API server on 127.0.0.1:0 and the goroutines a test started against it.
type env struct {
	srv   *runtimeapi.Server
	hooks *fakeHooks
	ln    *watchListener
	addr  string

	wg         sync.WaitGroup
	mu         sync.Mutex
	invs       []*runtimeapi.Invocation
	transports []*http.Transport
}

// newEnv starts a server. At cleanup it closes the server, settles the invocations still
// pending (as the worker's process monitor would), waits for every goroutine the test started
// and checks that none leaked.
func newEnv(t *testing.T) *env {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{hooks: newHooks(), ln: &watchListener{Listener: ln, readc: make(chan struct{}, 1)}, addr: ln.Addr().String()}
	log := slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.srv = runtimeapi.New(e.hooks, info, log)
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(e.ln) }()
	t.Cleanup(func() {
		_ = e.srv.Close() // tests that close the server themselves check Close's error
		e.mu.Lock()
		for _, inv := range e.invs {
			inv.Complete(runtimeapi.Result{ErrorType: "Test.Cleanup"})
		}
		e.mu.Unlock()
		e.wg.Wait()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		for _, tr := range e.transports {
			tr.CloseIdleConnections()
		}
	})
	return e
}

type outcome struct {
	res result
	err error
}

// invoke runs Invoke on its own goroutine, as the worker does.
func (e *env) invoke(inv *runtimeapi.Invocation) <-chan outcome {
	e.mu.Lock()
	e.invs = append(e.invs, inv)
	e.mu.Unlock()
	ch := make(chan outcome, 1)
	e.wg.Go(func() {
		r, err := e.srv.Invoke(inv)
		ch <- outcome{resultOf(r), err}
	})
	return ch
}

// outcomeOf waits for an Invoke started by invoke.
func outcomeOf(t *testing.T, ch <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(wait):
		t.Fatalf("Invoke did not return")
		return outcome{}
	}
}

// client returns a net/http client whose idle connections are closed at cleanup. Runtimes set
// no client timeout (a /next blocks until there is an event); the test's context bounds it.
func (e *env) client(keepAlive bool) *http.Client {
	tr := &http.Transport{DisableKeepAlives: !keepAlive, ResponseHeaderTimeout: 0, MaxIdleConnsPerHost: 1}
	e.mu.Lock()
	e.transports = append(e.transports, tr)
	e.mu.Unlock()
	return &http.Client{Transport: tr, Timeout: 0}
}

func newInvocation(id, payload string) *runtimeapi.Invocation {
	inv := runtimeapi.NewInvocation()
	inv.RequestID = id
	inv.Payload = []byte(payload)
	inv.Deadline = time.Now().Add(time.Hour) // far away: these tests settle invocations themselves
	inv.InvokedARN = "arn:aws:lambda:us-east-1:123456789012:function:fn"
	return inv
}

// answer is one HTTP response as read off a raw connection.
type answer struct {
	raw    []byte
	status int
	header http.Header // without Connection, which net/http moves to close
	close  bool        // Connection: close
	body   string
}

// rawConn is a runtime's connection driven by hand, byte for byte.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (rc *rawConn) write(s string) {
	rc.t.Helper()
	_ = rc.c.SetWriteDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// read reads one response, exactly the bytes the server wrote for it.
func (rc *rawConn) read() answer {
	rc.t.Helper()
	a, err := rc.tryRead()
	if err != nil {
		rc.t.Fatal(err)
	}
	return a
}

func (rc *rawConn) tryRead() (answer, error) {
	_ = rc.c.SetReadDeadline(time.Now().Add(wait))
	var raw []byte
	readLine := func() (string, error) {
		line, err := rc.br.ReadBytes('\n')
		raw = append(raw, line...)
		if err != nil {
			return "", fmt.Errorf("read response: %w (read %q)", err, raw)
		}
		return string(line), nil
	}
	for {
		line, err := readLine()
		if err != nil {
			return answer{}, err
		}
		if line == "\r\n" {
			break
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		return answer{}, fmt.Errorf("parse response %q: %w", raw, err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, close: resp.Close}
	switch {
	case resp.StatusCode < 200:
	case resp.ContentLength >= 0:
		body := make([]byte, resp.ContentLength)
		if _, err := io.ReadFull(rc.br, body); err != nil {
			return answer{}, fmt.Errorf("read response body: %w", err)
		}
		raw = append(raw, body...)
	case slices.Contains(resp.TransferEncoding, "chunked"):
		for { // chunks, then the trailer section
			line, err := readLine()
			if err != nil {
				return answer{}, err
			}
			n, err := strconv.ParseInt(strings.TrimSpace(line), 16, 64)
			if err != nil {
				return answer{}, fmt.Errorf("chunk size %q: %w", line, err)
			}
			if n == 0 {
				break
			}
			chunk := make([]byte, n+2)
			if _, err := io.ReadFull(rc.br, chunk); err != nil {
				return answer{}, fmt.Errorf("read chunk: %w", err)
			}
			raw = append(raw, chunk...)
		}
		for {
			line, err := readLine()
			if err != nil {
				return answer{}, err
			}
			if line == "\r\n" {
				break
			}
		}
	default:
		return answer{}, fmt.Errorf("response without framing: %q", raw)
	}
	resp, err = http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err == nil {
		var body []byte
		body, err = io.ReadAll(resp.Body)
		a.body = string(body)
	}
	if err != nil {
		return answer{}, fmt.Errorf("parse response %q: %w", raw, err)
	}
	a.raw = raw
	return a, nil
}

// writeAsync writes s on its own goroutine, for bodies the server answers before reading them
// all. The connection is closed and the goroutine waited for at cleanup.
func (rc *rawConn) writeAsync(s string) <-chan error {
	done := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = rc.c.SetWriteDeadline(time.Now().Add(wait))
		_, err := io.WriteString(rc.c, s)
		done <- err
	})
	rc.t.Cleanup(func() {
		_ = rc.c.Close()
		wg.Wait()
	})
	return done
}

func (rc *rawConn) roundTrip(req string) answer {
	rc.t.Helper()
	rc.write(req)
	return rc.read()
}

// wantClosed checks that the server closed the connection (after anything already read).
func (rc *rawConn) wantClosed() {
	rc.t.Helper()
	_ = rc.c.SetReadDeadline(time.Now().Add(wait))
	b, err := rc.br.ReadByte()
	if err == nil {
		rc.t.Errorf("connection still open: read %q", b)
		return
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		rc.t.Errorf("connection still open: %v", err)
	}
}

// request renders an HTTP/1.1 request. A POST without framing headers gets a Content-Length.
func request(method, path string, hdr []string, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n", method, path)
	framed := false
	for _, h := range hdr {
		b.WriteString(h + "\r\n")
		l := strings.ToLower(h)
		framed = framed || strings.HasPrefix(l, "transfer-encoding:") || strings.HasPrefix(l, "content-length:")
	}
	if method == http.MethodPost && !framed {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return b.String()
}

// chunked renders a chunked body followed by its trailer section.
func chunked(trailers []string, chunks ...string) string {
	var b strings.Builder
	for _, c := range chunks {
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(c), c)
	}
	b.WriteString("0\r\n")
	for _, t := range trailers {
		b.WriteString(t + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// rawRuntime is a hand-written runtime: either one kept-alive connection for everything, or a
// new connection with Connection: close for every request.
type rawRuntime struct {
	t         *testing.T
	addr      string
	closeEach bool
	conn      *rawConn
}

func (e *env) rawRuntime(t *testing.T, closeEach bool) *rawRuntime {
	return &rawRuntime{t: t, addr: e.addr, closeEach: closeEach}
}

func (r *rawRuntime) do(method, path string, hdr []string, body string) answer {
	r.t.Helper()
	if r.closeEach {
		return dialRaw(r.t, r.addr).roundTrip(request(method, path, slices.Concat(hdr, []string{"Connection: close"}), body))
	}
	if r.conn == nil {
		r.conn = dialRaw(r.t, r.addr)
	}
	return r.conn.roundTrip(request(method, path, hdr, body))
}

// next asks for the next event and checks it is inv's.
func (r *rawRuntime) next(inv *runtimeapi.Invocation) answer {
	r.t.Helper()
	a := r.do(http.MethodGet, nextPath, nil, "")
	if a.status != http.StatusOK || a.header.Get("Lambda-Runtime-Aws-Request-Id") != inv.RequestID || a.body != string(inv.Payload) {
		r.t.Fatalf("/next = %d %q %q, want 200 with request %s and body %q", a.status, a.header.Get("Lambda-Runtime-Aws-Request-Id"), a.body, inv.RequestID, inv.Payload)
	}
	return a
}

var runtimeModes = []struct {
	name      string
	closeEach bool
}{
	{"kept connection", false},
	{"connection per request", true},
}
