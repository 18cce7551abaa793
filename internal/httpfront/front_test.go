package httpfront

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testServer is a front door on a loopback listener whose handler says who served each request
// (X-Served-By: front or net/http) and echoes what it read.
type testServer struct {
	addr   string
	front  *Server
	served chan error
}

func echoHandler(w http.ResponseWriter, r *http.Request) {
	by := "net/http"
	if _, ok := w.(*response); ok {
		by = "front"
	}
	w.Header().Set("X-Served-By", by)
	switch r.URL.Query().Get("do") {
	case "unread": // answers without reading the body
		w.WriteHeader(http.StatusNotFound)
		return
	case "nocontent":
		w.WriteHeader(http.StatusNoContent)
		return
	case "stream": // no Content-Length, flushed in the middle: chunked
		_, _ = io.WriteString(w, "part1,")
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, "part2")
		return
	case "short": // declares more than it writes
		w.Header().Set("Content-Length", "10")
		_, _ = io.WriteString(w, "abc")
		return
	case "html": // no Content-Type: sniffed
		_, _ = io.WriteString(w, "<html><body>hi</body></html>")
		return
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("X-Host", r.Host)
	w.Header().Set("X-Path", r.URL.Path)
	w.Header().Set("X-Query", r.URL.RawQuery)
	w.Header().Set("X-Custom", strings.Join(r.Header.Values("X-Custom"), "|"))
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

func startServer(t *testing.T, handler http.Handler, cfg Config) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if handler == nil {
		handler = http.HandlerFunc(echoHandler)
	}
	cfg.Handler = handler
	cfg.Fallback = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	if cfg.Serves == nil {
		cfg.Serves = func(method, path string) bool { return method == http.MethodPost && strings.HasPrefix(path, "/fast") }
	}
	ts := &testServer{addr: ln.Addr().String(), front: New(cfg), served: make(chan error, 1)}
	go func() { ts.served <- ts.front.Serve(ln) }()
	t.Cleanup(func() {
		_ = ts.front.Close()
		if err := <-ts.served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

// rawConn sends raw bytes and reads responses with net/http's own client-side parser.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func (ts *testServer) dial(t *testing.T) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (rc *rawConn) send(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatal(err)
	}
}

type answer struct {
	status int
	header http.Header
	body   string
	chunks []string // Transfer-Encoding of the response, when chunked
	close  bool
}

func (rc *rawConn) read(method string) answer {
	rc.t.Helper()
	resp, err := http.ReadResponse(rc.br, &http.Request{Method: method})
	if err != nil {
		rc.t.Fatalf("read response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		rc.t.Fatalf("read body: %v", err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b), chunks: resp.TransferEncoding, close: resp.Close}
}

func post(path, body string, extra ...string) string {
	return "POST " + path + " HTTP/1.1\r\nHost: flint.test\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n" +
		strings.Join(extra, "") + "\r\n" + body
}

func TestFrontServesAndHandsOver(t *testing.T) {
	ts := startServer(t, nil, Config{IdleTimeout: time.Minute, HeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute})
	rc := ts.dial(t)

	// Two requests in one write (pipelined), both the front door's, on one connection.
	rc.send(post("/fast/a?x=1", `{"a":1}`, "X-Custom: one\r\nx-custom: two\r\n") + post("/fast/b", ""))
	a := rc.read("POST")
	if a.status != 200 || a.body != `{"a":1}` || a.header.Get("X-Served-By") != "front" || a.header.Get("X-Host") != "flint.test" ||
		a.header.Get("X-Path") != "/fast/a" || a.header.Get("X-Query") != "x=1" || a.header.Get("X-Custom") != "one|two" {
		t.Fatalf("first answer %+v", a)
	}
	if a.header.Get("Date") == "" || a.header.Get("Content-Length") != "7" {
		t.Fatalf("server headers missing: %v", a.header)
	}
	if b := rc.read("POST"); b.status != 200 || b.body != "" || b.header.Get("X-Served-By") != "front" {
		t.Fatalf("second answer %+v", b)
	}

	// A request the front door does not serve hands the connection over, with what it read:
	// net/http serves that one and the rest of the connection.
	rc.send("GET /other HTTP/1.1\r\nHost: flint.test\r\n\r\n" + post("/fast/c", "after"))
	if g := rc.read("GET"); g.status != 200 || g.header.Get("X-Served-By") != "net/http" || g.header.Get("X-Path") != "/other" {
		t.Fatalf("handed-over answer %+v", g)
	}
	if c := rc.read("POST"); c.body != "after" || c.header.Get("X-Served-By") != "net/http" {
		t.Fatalf("answer after the hand-over %+v", c)
	}

	// A head in pieces, with its body in pieces.
	rc2 := ts.dial(t)
	req := post("/fast/pieces", `{"pieces":true}`)
	for i := 0; i < len(req); i += 7 {
		rc2.send(req[i:min(i+7, len(req))])
		time.Sleep(time.Millisecond)
	}
	if p := rc2.read("POST"); p.body != `{"pieces":true}` || p.header.Get("X-Served-By") != "front" {
		t.Fatalf("answer to a request in pieces %+v", p)
	}
}

func TestFrontHandsOverWhatItDoesNotServe(t *testing.T) {
	ts := startServer(t, nil, Config{})
	big := strings.Repeat("x", bufferSize)
	// Each is answered as net/http answers it (the statuses are its own), not by the front door.
	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"HTTP/1.0", "POST /fast HTTP/1.0\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi", 200},
		{"chunked body", "POST /fast HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 200},
		{"Expect", "POST /fast HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", 100},
		{"head larger than the buffer", "POST /fast HTTP/1.1\r\nHost: h\r\nX-Big: " + big + "\r\nContent-Length: 2\r\n\r\nhi", 200},
		{"no Host", "POST /fast HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", 400},
		{"two Hosts", "POST /fast HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 2\r\n\r\nhi", 400},
		{"two Content-Lengths", "POST /fast HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi", 400},
		{"Content-Length and Transfer-Encoding", "POST /fast HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 200},
		{"signed Content-Length", "POST /fast HTTP/1.1\r\nHost: h\r\nContent-Length: +2\r\n\r\nhi", 400},
		{"invalid header name", "POST /fast HTTP/1.1\r\nHost: h\r\nBad Name: x\r\nContent-Length: 2\r\n\r\nhi", 400},
		{"control character in a value", "POST /fast HTTP/1.1\r\nHost: h\r\nX-A: a\x01b\r\nContent-Length: 2\r\n\r\nhi", 400},
		{"obsolete line fold", "POST /fast HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nhi", 200},
		{"lines ended by a bare LF", "POST /fast HTTP/1.1\nHost: h\nContent-Length: 2\n\nhi", 200},
		{"empty line ended by a bare LF", "POST /fast HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\nhi", 200},
		{"Connection: upgrade", "POST /fast HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nContent-Length: 2\r\n\r\nhi", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := ts.dial(t)
			rc.send(tc.req)
			a := rc.read("POST")
			if a.status == http.StatusContinue && tc.status == http.StatusContinue {
				a = rc.read("POST")
				tc.status = http.StatusOK
			}
			if a.status != tc.status {
				t.Fatalf("status %d, want %d (%+v)", a.status, tc.status, a)
			}
			if by := a.header.Get("X-Served-By"); a.status == 200 && by != "net/http" {
				t.Fatalf("served by %q, want net/http", by)
			}
		})
	}
}

func TestFrontResponses(t *testing.T) {
	ts := startServer(t, nil, Config{})
	rc := ts.dial(t)

	rc.send(post("/fast?do=nocontent", ""))
	if a := rc.read("POST"); a.status != 204 || a.body != "" || a.header.Get("Content-Length") != "" {
		t.Fatalf("204: %+v", a)
	}
	rc.send(post("/fast?do=stream", ""))
	if a := rc.read("POST"); a.body != "part1,part2" || len(a.chunks) != 1 || a.chunks[0] != "chunked" {
		t.Fatalf("flushed without Content-Length: %+v", a)
	}
	rc.send(post("/fast?do=html", ""))
	if a := rc.read("POST"); a.header.Get("Content-Type") != "text/html; charset=utf-8" || a.header.Get("Content-Length") != "28" {
		t.Fatalf("sniffed: %+v", a)
	}
	// A body the handler did not read is read past: the connection carries the next request.
	rc.send(post("/fast?do=unread", `{"not":"read"}`) + post("/fast", "next"))
	if a := rc.read("POST"); a.status != 404 {
		t.Fatalf("unread body: %+v", a)
	}
	if a := rc.read("POST"); a.body != "next" {
		t.Fatalf("after an unread body: %+v", a)
	}
	// Connection: close is honoured and said.
	rc.send(post("/fast", "bye", "Connection: close\r\n"))
	if a := rc.read("POST"); a.body != "bye" || !a.close {
		t.Fatalf("Connection: close: %+v", a)
	}
	if _, err := rc.br.ReadByte(); err != io.EOF {
		t.Fatalf("connection not closed after Connection: close: %v", err)
	}

	// Fewer bytes than the declared Content-Length: the connection cannot carry another answer.
	rc = ts.dial(t)
	rc.send(post("/fast?do=short", ""))
	_ = rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(rc.br, &http.Request{Method: "POST"})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(resp.Body); string(b) != "abc" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short body %q, %v; want abc and an unexpected EOF", b, err)
	}
}

func TestFrontThroughNetHTTPClient(t *testing.T) {
	ts := startServer(t, nil, Config{IdleTimeout: time.Minute})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 20 * time.Second}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				body := fmt.Sprintf(`{"i":%d,"j":%d,"pad":%q}`, i, j, strings.Repeat("p", j*300))
				resp, err := client.Post("http://"+ts.addr+"/fast/x", "application/json", strings.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if err != nil || string(b) != body || resp.Header.Get("X-Served-By") != "front" {
					errs <- fmt.Errorf("answer %q (%v) by %s, want %q", b, err, resp.Header.Get("X-Served-By"), body)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestFrontTimeouts(t *testing.T) {
	ts := startServer(t, nil, Config{IdleTimeout: 35 * time.Second, HeaderTimeout: 200 * time.Millisecond, ReadTimeout: 300 * time.Millisecond})
	// A head that stops halfway is dropped after HeaderTimeout.
	rc := ts.dial(t)
	rc.send("POST /fast HTTP/1.1\r\nHost: h\r\n")
	start := time.Now()
	if _, err := rc.br.ReadByte(); err != io.EOF {
		t.Fatalf("after a stalled head: %v, want the connection closed", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("stalled head dropped after %v", d)
	}
	// A body that stops halfway likewise, after ReadTimeout: the handler sees an error.
	rc = ts.dial(t)
	rc.send("POST /fast HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")
	if a := rc.read("POST"); a.status != http.StatusBadRequest {
		t.Fatalf("stalled body: %+v", a)
	}
}

func TestFrontRequestContextEndsWithRequest(t *testing.T) {
	ctxs := make(chan context.Context, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Err() != nil {
			w.WriteHeader(http.StatusInternalServerError)
		}
		ctxs <- r.Context()
	})
	ts := startServer(t, h, Config{})
	rc := ts.dial(t)
	rc.send(post("/fast", ""))
	if a := rc.read("POST"); a.status != 200 {
		t.Fatalf("answer %+v: the context had ended while the handler ran", a)
	}
	select {
	case <-(<-ctxs).Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the request's context did not end with the request")
	}
}

func TestFrontShutdown(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("do") == "slow" {
			started <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	})
	ts := startServer(t, h, Config{IdleTimeout: time.Minute})
	idle := ts.dial(t)
	idle.send(post("/fast", ""))
	idle.read("POST") // now waiting for its next request
	handed := ts.dial(t)
	handed.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	handed.read("GET") // a net/http connection, idle
	busy := ts.dial(t)
	busy.send(post("/fast?do=slow", ""))
	<-started

	shut := make(chan error, 1)
	go func() { shut <- ts.front.Shutdown(context.Background()) }()
	for _, rc := range []*rawConn{idle, handed} {
		if _, err := rc.br.ReadByte(); err != io.EOF {
			t.Fatalf("idle connection after Shutdown: %v, want closed", err)
		}
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) while a request ran", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if a := busy.read("POST"); a.body != "ok" {
		t.Fatalf("request running at Shutdown: %+v", a)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", ts.addr); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
}

// FuzzParseHead checks the front door against net/http's own parser: a head the front door
// takes, net/http must take too, and read as the same request (method, target, Host, header,
// body length, Connection: close). A head net/http refuses the front door must hand over.
func FuzzParseHead(f *testing.F) {
	for _, seed := range []string{
		"POST /fast HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n",
		"POST /fast/a?x=1&y=%20 HTTP/1.1\r\nHost: flint.test:9000\r\nX-A: a\r\nx-a: b\r\nContent-Length: 0\r\nConnection: keep-alive, close\r\n\r\n",
		"POST /fast HTTP/1.1\r\nHost: h\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKID/20261207/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc\r\nX-Amz-Date: 20261207T000000Z\r\n\r\n",
		"POST /fast HTTP/1.1\r\nHost: h\r\nContent-Length:  7 \r\nX-Empty:\r\n\r\n",
		"POST /fast HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
		"POST /fast HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST /fast HTTP/1.1\r\nHost: h\r\nX: \x7f\r\n\r\n",
		"POST /fast HTTP/1.1\r\nHost: h\r\n X: y\r\n\r\n",
		"POST /fast HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n",
		"POST http://h/fast HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /fast HTTP/1.1\r\nHost: a b\r\n\r\n",
		"POST /fast%zz HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /fast HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616\r\n\r\n",
		"POST /fast HTTP/1.1\nHost: h\n\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		end, found := headEnd(b)
		if !found || end < 0 {
			return // no head yet, or one for net/http
		}
		raw := b[:end+4]
		h, ok := parsePlain(raw[:end+2], nil)
		std, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if !ok {
			return // handed over: net/http decides
		}
		if err != nil {
			t.Fatalf("the front door took a head net/http refuses (%v): %q", err, raw)
		}
		if h.method != std.Method || h.uri != std.RequestURI || h.url.String() != std.URL.String() || h.host != std.Host ||
			h.contentLength != max(std.ContentLength, 0) || h.closeAfter != std.Close {
			t.Fatalf("read differently: front %+v, net/http %s %s host %q length %d close %v; head %q",
				h, std.Method, std.RequestURI, std.Host, std.ContentLength, std.Close, raw)
		}
		if len(std.TransferEncoding) > 0 {
			t.Fatalf("net/http sees a body in chunks the front door does not: %q", raw)
		}
		if !reflect.DeepEqual(map[string][]string(h.header), map[string][]string(std.Header)) {
			t.Fatalf("headers differ: front %v, net/http %v; head %q", h.header, std.Header, raw)
		}
	})
}

// TestFrontShutdownAtStart shuts down while Serve may still be starting, and before it started.
func TestFrontShutdownAtStart(t *testing.T) {
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		h := http.HandlerFunc(echoHandler)
		f := New(Config{Handler: h, Fallback: &http.Server{Handler: h, ReadHeaderTimeout: time.Second}})
		served := make(chan error, 1)
		go func() { served <- f.Serve(ln) }()
		if err := f.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("Serve after Shutdown: %v", err)
		}
		_ = ln.Close()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := New(Config{Handler: http.NotFoundHandler(), Fallback: &http.Server{ReadHeaderTimeout: time.Second}})
	if err := f.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown before Serve: %v", err)
	}
	if err := f.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

// flakyListener fails its first Accepts as a process out of file descriptors does.
type flakyListener struct {
	net.Listener
	fails int
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails > 0 {
		l.fails--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestFrontAcceptOutOfDescriptors: running out of file descriptors is waited out, as net/http
// does, not the end of serving.
func TestFrontAcceptOutOfDescriptors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(echoHandler)
	f := New(Config{Handler: h, Fallback: &http.Server{Handler: h, ReadHeaderTimeout: time.Second},
		Serves: func(string, string) bool { return true }})
	served := make(chan error, 1)
	go func() { served <- f.Serve(&flakyListener{Listener: ln, fails: 3}) }()
	ts := &testServer{addr: ln.Addr().String(), front: f}
	rc := ts.dial(t)
	rc.send(post("/fast", "still here"))
	if a := rc.read("POST"); a.body != "still here" {
		t.Fatalf("answer %+v", a)
	}
	_ = f.Close()
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
}
