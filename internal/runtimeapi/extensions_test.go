package runtimeapi_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/runtimeapi"
)

// registerExt registers an extension and returns its identifier.
func registerExt(t *testing.T, e *env, name, events string) string {
	t.Helper()
	a := dialRaw(t, e.addr).roundTrip(request(http.MethodPost, registerPath, []string{"Lambda-Extension-Name: " + name}, events))
	id := a.header.Get("Lambda-Extension-Identifier")
	if a.status != http.StatusOK || id == "" {
		t.Fatalf("register %s = %d %s", name, a.status, a.body)
	}
	return id
}

// nextEvent is one extension's /event/next, sent now and read later.
func nextEvent(t *testing.T, e *env, id string) *rawConn {
	t.Helper()
	c := dialRaw(t, e.addr)
	c.write(request(http.MethodGet, extNextPath, []string{"Lambda-Extension-Identifier: " + id}, ""))
	return c
}

type extEvent struct {
	EventType          string
	RequestID          string
	InvokedFunctionArn string
	ShutdownReason     string
	DeadlineMs         int64
	Tracing            *struct{ Type, Value string }
}

func readEvent(t *testing.T, c *rawConn) extEvent {
	t.Helper()
	a := c.read()
	var ev extEvent
	if err := json.Unmarshal([]byte(a.body), &ev); a.status != http.StatusOK || err != nil {
		t.Fatalf("/event/next = %d %s", a.status, a.body)
	}
	if a.header.Get("Lambda-Extension-Event-Identifier") == "" {
		t.Errorf("/event/next has no Lambda-Extension-Event-Identifier")
	}
	return ev
}

// TestExtensionPhases: INIT ends when the runtime and every extension (an expected external one
// included) have called next; an INVOKE goes to each extension registered for it, and the
// invocation's extensions are not done until each asked for its next event; SHUTDOWN carries
// its reason and a deadline (2 s with an external extension); registration closes with INIT.
func TestExtensionPhases(t *testing.T) {
	e := newEnv(t)
	e.srv.ExpectExtensions([]string{"ext-a"})
	a := registerExt(t, e, "ext-a", `{"events":["INVOKE","SHUTDOWN"]}`)
	b := registerExt(t, e, "internal-b", `{"events":["INVOKE"]}`)
	na := nextEvent(t, e, a)
	rt := e.rawRuntime(t, false)
	inv := newInvocation("req-1", `{}`)
	inv.TraceID = "Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32;Sampled=1"
	e.srv.DispatchInvoke(inv) // queued: delivered at each one's next /event/next
	out := e.invoke(inv)
	e.ln.waitServed(t, "GET "+extNextPath, 1)
	rt.next(inv) // the runtime's first /next gets the invocation
	if e.hooks.ready.Load() != 0 {
		t.Fatal("INIT ended before internal-b called next")
	}
	nb := nextEvent(t, e, b)
	e.hooks.waitReady(t)
	if got := dialRaw(t, e.addr).roundTrip(request(http.MethodPost, registerPath, []string{"Lambda-Extension-Name: late"}, "")); got.status != http.StatusForbidden ||
		!strings.Contains(got.body, `"errorType":"Extension.RegistrationClosed"`) {
		t.Errorf("register after INIT = %d %s, want 403 Extension.RegistrationClosed", got.status, got.body)
	}
	for _, c := range []*rawConn{na, nb} {
		ev := readEvent(t, c)
		if ev.EventType != "INVOKE" || ev.RequestID != "req-1" || ev.InvokedFunctionArn != inv.InvokedARN ||
			ev.DeadlineMs != inv.Deadline.UnixMilli() || ev.Tracing == nil || ev.Tracing.Type != "X-Amzn-Trace-Id" || ev.Tracing.Value != inv.TraceID {
			t.Errorf("INVOKE = %+v", ev)
		}
	}
	if r := rt.do(http.MethodPost, invocationPath("req-1", "response"), nil, `"ok"`); r.status != http.StatusAccepted {
		t.Fatalf("/response = %d", r.status)
	}
	if o := outcomeOf(t, out); o.err != nil {
		t.Fatal(o.err)
	}
	// The extensions hold the invocation until they ask for their next event.
	done := make(chan error, 1)
	go func() { _, err := e.srv.AwaitExtensions(time.Now().Add(wait)); done <- err }()
	na = nextEvent(t, e, a)
	select {
	case <-done:
		t.Fatal("AwaitExtensions returned while internal-b still had its INVOKE")
	case <-time.After(50 * time.Millisecond):
	}
	nb = nextEvent(t, e, b)
	if err := <-done; err != nil {
		t.Errorf("AwaitExtensions = %v", err)
	}

	// SHUTDOWN goes to ext-a only (internal-b did not register for it), with its reason and a
	// deadline 2 s ahead (an external extension is there); Shutdown waits for its next call.
	start := time.Now()
	shut := make(chan struct{})
	go func() { e.srv.Shutdown(runtimeapi.ShutdownTimeout); close(shut) }()
	ev := readEvent(t, na)
	if ev.EventType != "SHUTDOWN" || ev.ShutdownReason != "timeout" {
		t.Errorf("SHUTDOWN = %+v", ev)
	}
	if d := time.UnixMilli(ev.DeadlineMs).Sub(start); d < 1900*time.Millisecond || d > 2100*time.Millisecond+time.Since(start) {
		t.Errorf("SHUTDOWN deadline %v after Shutdown, want 2 s", d)
	}
	na = nextEvent(t, e, a)
	select {
	case <-shut:
	case <-time.After(wait):
		t.Fatal("Shutdown did not return once the extension asked for its next event")
	}
	_ = e.srv.Close()
	for _, c := range []*rawConn{na, nb} {
		_, _ = c.tryRead()
	}
}

// TestExtensionErrors: /extension/init/error fails INIT with Extension.InitError; an extension
// whose connection drops while it waits has crashed (Extension.Crash); /exit/error marks it
// failed (Extension.ExitError); each refusal is Lambda's.
func TestExtensionErrors(t *testing.T) {
	t.Run("init error", func(t *testing.T) {
		e := newEnv(t)
		id := registerExt(t, e, "ext", `{"events":["INVOKE"]}`)
		if a := dialRaw(t, e.addr).roundTrip(request(http.MethodPost, "/2020-01-01/extension/init/error",
			[]string{"Lambda-Extension-Identifier: " + id}, `{}`)); a.status != http.StatusForbidden || !strings.Contains(a.body, "Extension.MissingHeader") {
			t.Errorf("init/error without its type = %d %s, want 403 Extension.MissingHeader", a.status, a.body)
		}
		a := dialRaw(t, e.addr).roundTrip(request(http.MethodPost, "/2020-01-01/extension/init/error",
			[]string{"Lambda-Extension-Identifier: " + id, "Lambda-Extension-Function-Error-Type: Extension.ConfigMissing"}, `{"errorMessage":"x"}`))
		if a.status != http.StatusAccepted {
			t.Fatalf("init/error = %d %s", a.status, a.body)
		}
		e.hooks.mu.Lock()
		errs := e.hooks.initErrs
		e.hooks.mu.Unlock()
		if len(errs) != 1 || errs[0].ErrorType != runtimeapi.ExtensionInitError {
			t.Errorf("InitError hook = %+v, want one Extension.InitError", errs)
		}
	})
	t.Run("crash while waiting", func(t *testing.T) {
		e := newEnv(t)
		id := registerExt(t, e, "ext", `{"events":["INVOKE"]}`)
		c := nextEvent(t, e, id)
		e.ln.waitServed(t, "GET "+extNextPath, 1)
		c.c.Close() // the process ended
		deadline := time.Now().Add(wait)
		for e.srv.ExtensionFailed() == "" && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if got := e.srv.ExtensionFailed(); got != runtimeapi.ExtensionCrash {
			t.Errorf("ExtensionFailed = %q, want Extension.Crash", got)
		}
		if typ, err := e.srv.AwaitExtensions(time.Now().Add(wait)); typ != runtimeapi.ExtensionCrash || err != nil {
			t.Errorf("AwaitExtensions = %q, %v; want Extension.Crash", typ, err)
		}
	})
	t.Run("exit error", func(t *testing.T) {
		e := newEnv(t)
		id := registerExt(t, e, "ext", `{"events":["INVOKE"]}`)
		a := dialRaw(t, e.addr).roundTrip(request(http.MethodPost, "/2020-01-01/extension/exit/error",
			[]string{"Lambda-Extension-Identifier: " + id, "Lambda-Extension-Function-Error-Type: Extension.Lost"}, `{}`))
		if a.status != http.StatusAccepted || e.srv.ExtensionFailed() != runtimeapi.ExtensionExitError {
			t.Errorf("exit/error = %d %s, failed %q; want 202 and Extension.ExitError", a.status, a.body, e.srv.ExtensionFailed())
		}
	})
	t.Run("unknown identifier", func(t *testing.T) {
		e := newEnv(t)
		a := dialRaw(t, e.addr).roundTrip(request(http.MethodPost, "/2020-01-01/extension/exit/error",
			[]string{"Lambda-Extension-Identifier: nope", "Lambda-Extension-Function-Error-Type: X.Y"}, `{}`))
		if a.status != http.StatusForbidden || !strings.Contains(a.body, `"errorType":"Extension.UnknownExtensionIdentifier"`) {
			t.Errorf("exit/error with an unknown identifier = %d %s", a.status, a.body)
		}
	})
}

// subscribe sends a Telemetry (or Logs) API subscription and returns the answer.
func subscribe(t *testing.T, e *env, path, id, body string) answer {
	t.Helper()
	return dialRaw(t, e.addr).roundTrip(request(http.MethodPut, path,
		[]string{"Lambda-Extension-Identifier: " + id, "Content-Type: application/json", "Content-Length: " + strconv.Itoa(len(body))}, body))
}

// TestTelemetryDelivery: events emitted before a subscription made during INIT reach it; a
// batch goes out when maxItems is reached without waiting for timeoutMs; HTTP destinations get
// a JSON array by POST, TCP ones one event per line; the Logs API gets its own event names.
func TestTelemetryDelivery(t *testing.T) {
	t.Run("HTTP, backlog and maxItems", func(t *testing.T) {
		e := newEnv(t)
		id := registerExt(t, e, "tel", `{"events":["INVOKE"]}`)
		e.srv.Emit("platform.initStart", runtimeapi.KindPlatform, map[string]string{"initializationType": "on-demand", "phase": "init"})
		batches := make(chan []map[string]any, 16)
		srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var b []map[string]any
			if err := json.NewDecoder(r.Body).Decode(&b); err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("delivery %s %s: %v", r.Method, r.Header.Get("Content-Type"), err)
			}
			batches <- b
		})}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		a := subscribe(t, e, "/2022-07-01/telemetry", id, fmt.Sprintf(`{"schemaVersion":"2025-01-29","types":["platform","function"],
			"buffering":{"maxItems":1000,"maxBytes":1048576,"timeoutMs":30000},"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:%d/t"}}`, port))
		if a.status != http.StatusOK || a.body != `"OK"` {
			t.Fatalf("subscribe = %d %s", a.status, a.body)
		}
		// 998 more events make 1,000 with the backlog's and the subscription's own: one batch,
		// long before the 30 s timeout.
		for i := range 998 {
			e.srv.Emit("function", runtimeapi.KindFunction, fmt.Sprintf("line %d", i))
		}
		e.srv.Emit("extension", runtimeapi.KindExtension, "not subscribed")
		select {
		case b := <-batches:
			if len(b) != 1000 || b[0]["type"] != "platform.initStart" || b[1]["type"] != "platform.telemetrySubscription" || b[999]["record"] != "line 997" {
				t.Errorf("batch of %d: first %v, %v; last %v", len(b), b[0], b[1], b[len(b)-1])
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no delivery at maxItems")
		}
		if again := subscribe(t, e, "/2022-07-01/telemetry", id, fmt.Sprintf(`{"schemaVersion":"2022-07-01","types":["platform"],
			"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:%d/t"}}`, port)); again.status != http.StatusOK {
			t.Errorf("second subscription = %d %s", again.status, again.body)
		}
		_ = e.srv.Close()
	})
	t.Run("dropped", func(t *testing.T) {
		e := newEnv(t)
		id := registerExt(t, e, "tel", `{"events":["INVOKE"]}`)
		e.srv.EndBacklog()
		batches := make(chan []map[string]any, 16)
		refused := make(chan struct{}) // closed once the first batch was refused
		srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var b []map[string]any
			_ = json.NewDecoder(r.Body).Decode(&b)
			select {
			case <-refused:
			default: // the listener is not ready for the first batch
				w.WriteHeader(http.StatusServiceUnavailable)
				close(refused)
				return
			}
			batches <- b
		})}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		if a := subscribe(t, e, "/2022-07-01/telemetry", id, fmt.Sprintf(`{"schemaVersion":"2022-12-13","types":["function"],
			"buffering":{"timeoutMs":25},"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:%d/"}}`, ln.Addr().(*net.TCPAddr).Port)); a.status != http.StatusOK {
			t.Fatalf("subscribe = %d %s", a.status, a.body)
		}
		e.srv.Emit("function", runtimeapi.KindFunction, "lost")
		select {
		case <-refused:
		case <-time.After(wait):
			t.Fatal("the first batch was never delivered")
		}
		e.srv.Emit("function", runtimeapi.KindFunction, "kept")
		select {
		case b := <-batches:
			if len(b) != 2 || b[0]["type"] != "platform.logsDropped" || b[1]["record"] != "kept" {
				t.Fatalf("batch after a refused one = %v", b)
			}
			rec := b[0]["record"].(map[string]any)
			if rec["droppedRecords"] != float64(1) || rec["droppedBytes"].(float64) <= 0 || rec["reason"] == "" {
				t.Errorf("platform.logsDropped = %v", rec)
			}
		case <-time.After(wait):
			t.Fatal("no delivery after a refused one")
		}
		_ = e.srv.Close()
	})
	t.Run("TCP and the Logs API", func(t *testing.T) {
		e := newEnv(t)
		id := registerExt(t, e, "logs", `{"events":["INVOKE"]}`)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		a := subscribe(t, e, "/2020-08-15/logs", id, fmt.Sprintf(`{"types":["platform","function"],
			"buffering":{"timeoutMs":25},"destination":{"protocol":"TCP","URI":"sandbox.localdomain:%d"}}`, ln.Addr().(*net.TCPAddr).Port))
		if a.status != http.StatusOK {
			t.Fatalf("logs subscribe = %d %s", a.status, a.body)
		}
		e.srv.EndBacklog()
		e.srv.Emit("platform.initReport", runtimeapi.KindPlatform, map[string]any{"phase": "init"}) // not a Logs API event
		e.srv.Emit("platform.runtimeDone", runtimeapi.KindPlatform, map[string]any{"requestId": "r1", "status": "success"})
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(wait))
		sc := bufio.NewScanner(c)
		var types []string
		for len(types) < 2 && sc.Scan() {
			var ev struct {
				Type   string
				Record json.RawMessage
			}
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("TCP line %q: %v", sc.Text(), err)
			}
			types = append(types, ev.Type+" "+string(ev.Record))
		}
		want := []string{`platform.logsSubscription {"name":"logs","state":"Subscribed","types":["platform","function"]}`, `platform.end {"requestId":"r1"}`}
		if strings.Join(types, "\n") != strings.Join(want, "\n") {
			t.Errorf("Logs API events over TCP:\n%s\nwant:\n%s", strings.Join(types, "\n"), strings.Join(want, "\n"))
		}
		_ = e.srv.Close()
		_, _ = io.Copy(io.Discard, c)
	})
}

// TestShutdownWhileExtensionHoldsInvoke: an environment that ends while an extension still
// works on its INVOKE (the runtime crashed, or the invocation timed out) gives it SHUTDOWN at its
// next /event/next, and Shutdown then waits for the extension to finish SHUTDOWN too: the /next
// that finishes INVOKE and takes SHUTDOWN does not count as done with SHUTDOWN.
func TestShutdownWhileExtensionHoldsInvoke(t *testing.T) {
	e := newEnv(t)
	e.srv.ExpectExtensions([]string{"ext-a"})
	a := registerExt(t, e, "ext-a", `{"events":["INVOKE","SHUTDOWN"]}`)
	na := nextEvent(t, e, a)
	rt := e.rawRuntime(t, false)
	inv := newInvocation("req-1", `{}`)
	e.srv.DispatchInvoke(inv)
	out := e.invoke(inv)
	e.ln.waitServed(t, "GET "+extNextPath, 1)
	rt.next(inv)
	if ev := readEvent(t, na); ev.EventType != "INVOKE" {
		t.Fatalf("first event %+v, want INVOKE", ev)
	}
	if r := rt.do(http.MethodPost, invocationPath("req-1", "response"), nil, `"ok"`); r.status != http.StatusAccepted {
		t.Fatalf("/response = %d", r.status)
	}
	if o := outcomeOf(t, out); o.err != nil {
		t.Fatal(o.err)
	}
	// The extension still holds INVOKE when the environment ends.
	shut := make(chan struct{})
	go func() { e.srv.Shutdown(runtimeapi.ShutdownFailure); close(shut) }()
	for deadline := time.Now().Add(wait); !runtimeapi.ShutdownQueued(e.srv, "ext-a"); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Shutdown did not queue SHUTDOWN")
		}
	}
	na = nextEvent(t, e, a)
	if ev := readEvent(t, na); ev.EventType != "SHUTDOWN" || ev.ShutdownReason != "failure" {
		t.Fatalf("second event %+v, want SHUTDOWN (failure)", ev)
	}
	select {
	case <-shut:
		t.Fatal("Shutdown returned while the extension was still handling SHUTDOWN")
	case <-time.After(100 * time.Millisecond):
	}
	na = nextEvent(t, e, a)
	select {
	case <-shut:
	case <-time.After(wait):
		t.Fatal("Shutdown did not return once the extension asked for its next event after SHUTDOWN")
	}
	_ = e.srv.Close()
	_, _ = na.tryRead()
}
