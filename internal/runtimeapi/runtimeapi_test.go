package runtimeapi_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/runtimeapi"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

const lambdaTrailers = "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body"

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestResult covers what a runtime posts to /response and /error, on the connection Invoke
// reads (kept connection) and through the net/http handlers (connection per request).
func TestResult(t *testing.T) {
	streamErr := `{"errorMessage":"stream broke","errorType":"errorString"}`
	tests := []struct {
		name       string
		verb       string // response or error
		hdr        []string
		body       string
		wantStatus int
		wantAnswer string
		want       result
	}{
		{
			name: "response", verb: "response",
			hdr: []string{"Content-Type: text/plain"}, body: "hello",
			wantStatus: 202, wantAnswer: statusOK,
			want: result{Body: "hello", ContentType: "text/plain"},
		},
		{
			name: "empty response", verb: "response",
			wantStatus: 202, wantAnswer: statusOK,
			want: result{},
		},
		{
			// What aws-lambda-go sends for every result: chunked, trailers declared, none set.
			name: "chunked without trailers", verb: "response",
			hdr:  []string{"Content-Type: application/octet-stream", "Transfer-Encoding: chunked", lambdaTrailers},
			body: chunked(nil, `{"a":`, `1}`), wantStatus: 202, wantAnswer: statusOK,
			want: result{Body: `{"a":1}`, ContentType: "application/octet-stream"},
		},
		{
			// aws-lambda-go when the handler's io.Reader fails midway.
			name: "chunked with error trailers", verb: "response",
			hdr: []string{"Content-Type: application/octet-stream", "Transfer-Encoding: chunked", lambdaTrailers},
			body: chunked([]string{"Lambda-Runtime-Function-Error-Type: errorString",
				"Lambda-Runtime-Function-Error-Body: " + b64(streamErr)}, "partial"),
			wantStatus: 202, wantAnswer: statusOK,
			want: result{Body: streamErr, ContentType: "application/json", ErrorType: "errorString"},
		},
		{
			name: "streaming mode with error trailers", verb: "response",
			hdr: []string{"Lambda-Runtime-Function-Response-Mode: streaming", "Transfer-Encoding: chunked", lambdaTrailers},
			body: chunked([]string{"Lambda-Runtime-Function-Error-Type: Runtime.StreamError",
				"Lambda-Runtime-Function-Error-Body: " + b64(streamErr)}, "par", "tial"),
			wantStatus: 202, wantAnswer: statusOK,
			want: result{Body: streamErr, ContentType: "application/json", ErrorType: "Runtime.StreamError"},
		},
		{
			name: "error trailer without body", verb: "response",
			hdr:        []string{"Transfer-Encoding: chunked", lambdaTrailers},
			body:       chunked([]string{"Lambda-Runtime-Function-Error-Type: Runtime.StreamError"}, "x"),
			wantStatus: 202, wantAnswer: statusOK,
			want: result{Body: `{"errorMessage":"","errorType":"Runtime.StreamError"}`, ContentType: "application/json", ErrorType: "Runtime.StreamError"},
		},
		{
			name: "invalid response mode", verb: "response",
			hdr: []string{"Lambda-Runtime-Function-Response-Mode: buffered"}, body: "x",
			wantStatus: 400, wantAnswer: `{"errorMessage":"Invalid function response mode","errorType":"InvalidFunctionResponseMode"}`,
			want: result{Body: `{"errorMessage":"RequestId: req-1 Error: Invalid function response mode","errorType":"Runtime.InvalidResponseModeHeader"}`,
				ErrorType: "Runtime.InvalidResponseModeHeader"},
		},
		{
			name: "error with type and body", verb: "error",
			hdr:  []string{"Lambda-Runtime-Function-Error-Type: Runtime.NoSuchHandler", "Content-Type: application/json"},
			body: `{"errorMessage":"no handler","errorType":"Runtime.NoSuchHandler"}`, wantStatus: 202, wantAnswer: statusOK,
			want: result{Body: `{"errorMessage":"no handler","errorType":"Runtime.NoSuchHandler"}`, ContentType: "application/json", ErrorType: "Runtime.NoSuchHandler"},
		},
		{
			name: "error with type and empty body", verb: "error",
			hdr:        []string{"Lambda-Runtime-Function-Error-Type: Runtime.UnknownReason"},
			wantStatus: 202, wantAnswer: statusOK,
			want: result{Body: `{"errorMessage":"","errorType":"Runtime.UnknownReason"}`, ContentType: "application/json", ErrorType: "Runtime.UnknownReason"},
		},
		{
			// aws-lambda-go: no type header, chunked body, trailers declared.
			name: "error without type", verb: "error",
			hdr:  []string{"Content-Type: application/json", "Transfer-Encoding: chunked", lambdaTrailers},
			body: chunked(nil, `{"errorMessage":"boom","errorType":"errorString"}`), wantStatus: 202, wantAnswer: statusOK,
			want: result{Body: `{"errorMessage":"boom","errorType":"errorString"}`, ContentType: "application/json", ErrorType: "Unhandled"},
		},
		{
			name: "empty error", verb: "error",
			wantStatus: 202, wantAnswer: statusOK,
			want: result{Body: `{"errorMessage":"","errorType":"Unhandled"}`, ContentType: "application/json", ErrorType: "Unhandled"},
		},
	}
	for _, mode := range runtimeModes {
		for _, tc := range tests {
			t.Run(mode.name+"/"+tc.name, func(t *testing.T) {
				e := newEnv(t)
				inv := newInvocation("req-1", `{"k":"v"}`)
				out := e.invoke(inv)
				rt := e.rawRuntime(t, mode.closeEach)
				rt.next(inv)
				a := rt.do(http.MethodPost, invocationPath("req-1", tc.verb), tc.hdr, tc.body)
				if a.status != tc.wantStatus || a.body != tc.wantAnswer {
					t.Errorf("POST /%s = %d %s, want %d %s", tc.verb, a.status, a.body, tc.wantStatus, tc.wantAnswer)
				}
				o := outcomeOf(t, out)
				if o.err != nil {
					t.Fatalf("Invoke: %v", o.err)
				}
				if diff := cmp.Diff(tc.want, o.res); diff != "" {
					t.Errorf("Invoke result (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestWrongRequestID: an answer for another invocation is refused and leaves the invocation
// pending; the right one then settles it, and a second answer for it is refused too.
func TestWrongRequestID(t *testing.T) {
	tests := []struct {
		name, id, verb string
	}{
		{"other id response", "req-other", "response"},
		{"other id error", "req-other", "error"},
		{"empty id", "", "response"},
		{"id prefix", "req", "response"},
	}
	for _, mode := range runtimeModes {
		for _, tc := range tests {
			t.Run(mode.name+"/"+tc.name, func(t *testing.T) {
				e := newEnv(t)
				inv := newInvocation("req-1", `{}`)
				out := e.invoke(inv)
				rt := e.rawRuntime(t, mode.closeEach)
				rt.next(inv)

				a := rt.do(http.MethodPost, invocationPath(tc.id, tc.verb), nil, "wrong")
				if a.status != http.StatusBadRequest || a.body != invalidRequestID {
					t.Errorf("POST for %q = %d %s, want 400 %s", tc.id, a.status, a.body, invalidRequestID)
				}
				if got := e.srv.Current(); got != inv || inv.Completed() {
					t.Errorf("after a wrong id: Current() = %p (want %p), Completed() = %v (want false)", got, inv, inv.Completed())
				}

				a = rt.do(http.MethodPost, invocationPath("req-1", "response"), nil, "right")
				if a.status != http.StatusAccepted || a.body != statusOK {
					t.Errorf("POST for req-1 = %d %s, want 202", a.status, a.body)
				}
				o := outcomeOf(t, out)
				if want := (result{Body: "right"}); o.err != nil || o.res != want {
					t.Errorf("Invoke = %+v, %v; want %+v", o.res, o.err, want)
				}

				// A duplicate answer, on a connection of its own.
				a = dialRaw(t, e.addr).roundTrip(request(http.MethodPost, invocationPath("req-1", "response"), []string{"Connection: close"}, "again"))
				if a.status != http.StatusBadRequest || a.body != invalidRequestID {
					t.Errorf("second POST for req-1 = %d %s, want 400 %s", a.status, a.body, invalidRequestID)
				}
			})
		}
	}
}

// TestResponseTooLarge: a response over MaxResponse is refused with 413 RequestEntityTooLarge
// and the caller gets Function.ResponseSizeTooLarge; exactly MaxResponse is accepted. Either way
// the server reads the whole body, so the runtime's connection stays usable for its next /next
// (as in Lambda's own server, which reads the payload before refusing it).
func TestResponseTooLarge(t *testing.T) {
	tests := []struct {
		name      string
		size      int
		chunked   bool
		wantError string // "" for accepted
	}{
		{"exactly max", runtimeapi.MaxResponse, false, ""},
		{"one byte over", runtimeapi.MaxResponse + 1, false, "Function.ResponseSizeTooLarge"},
		{"chunked exactly max", runtimeapi.MaxResponse, true, ""},
		{"chunked one byte over", runtimeapi.MaxResponse + 1, true, "Function.ResponseSizeTooLarge"},
		{"chunked far over", 2 * runtimeapi.MaxResponse, true, "Function.ResponseSizeTooLarge"},
	}
	modes := []struct {
		name    string
		another bool // answer on another kept-alive connection (net/http handlers)
	}{
		{"kept connection", false},
		{"another connection", true},
	}
	for _, mode := range modes {
		for _, tc := range tests {
			t.Run(mode.name+"/"+tc.name, func(t *testing.T) {
				e := newEnv(t)
				inv := newInvocation("req-1", `{}`)
				out := e.invoke(inv)
				rt := e.rawRuntime(t, false)
				rt.next(inv)
				conn := rt.conn
				if mode.another {
					conn = dialRaw(t, e.addr)
				}
				payload := strings.Repeat("x", tc.size)
				var req string
				if tc.chunked {
					half := tc.size / 2
					req = request(http.MethodPost, invocationPath("req-1", "response"),
						[]string{"Transfer-Encoding: chunked"}, chunked(nil, payload[:half], payload[half:]))
				} else {
					req = request(http.MethodPost, invocationPath("req-1", "response"), nil, payload)
				}
				written := conn.writeAsync(req)
				a := conn.read()

				wantStatus, wantType := http.StatusAccepted, ""
				if tc.wantError != "" {
					wantStatus, wantType = http.StatusRequestEntityTooLarge, "RequestEntityTooLarge"
				}
				var refusal struct{ ErrorType string }
				_ = json.Unmarshal([]byte(a.body), &refusal)
				if a.status != wantStatus || refusal.ErrorType != wantType {
					t.Errorf("POST /response = %d %s, want %d %s", a.status, a.body, wantStatus, wantType)
				}
				if a.close {
					t.Fatalf("the server answered %d with Connection: close: it did not read the body, and the runtime's kept connection is lost", a.status)
				}
				if err := <-written; err != nil {
					t.Fatalf("the server did not read the whole body: %v", err)
				}

				if mode.another {
					conn.write(request(http.MethodGet, nextPath, nil, "")) // the runtime goes on here
				}
				o := outcomeOf(t, out)
				if o.err != nil {
					t.Fatalf("Invoke: %v", o.err)
				}
				if o.res.ErrorType != tc.wantError {
					t.Errorf("Invoke result error type = %q, want %q", o.res.ErrorType, tc.wantError)
				}
				switch {
				case tc.wantError == "" && o.res.Body != payload:
					t.Errorf("Invoke result body has %d bytes, want the %d posted", len(o.res.Body), len(payload))
				case tc.wantError != "":
					var got struct{ ErrorType, ErrorMessage string }
					if err := json.Unmarshal([]byte(o.res.Body), &got); err != nil || got.ErrorType != tc.wantError || got.ErrorMessage == "" {
						t.Errorf("Invoke result body %s, want a Lambda error object of type %s", o.res.Body, tc.wantError)
					}
				}

				// The runtime's connection still works.
				inv2 := newInvocation("req-2", `{"n":2}`)
				out = e.invoke(inv2)
				if !mode.another {
					conn.write(request(http.MethodGet, nextPath, nil, ""))
				}
				if a := conn.read(); a.status != http.StatusOK || a.header.Get("Lambda-Runtime-Aws-Request-Id") != "req-2" {
					t.Fatalf("/next after the large response = %d %s, want the event of req-2", a.status, a.body)
				}
				conn.write(request(http.MethodPost, invocationPath("req-2", "response"), nil, "two"))
				if a := conn.read(); a.status != http.StatusAccepted {
					t.Errorf("/response = %d %s", a.status, a.body)
				}
				if o := outcomeOf(t, out); o.err != nil || o.res.Body != "two" {
					t.Errorf("Invoke 2 = %+v, %v", o.res, o.err)
				}
			})
		}
	}
}

// TestNetHTTPRuntime runs net/http's client as the runtime loop, as aws-lambda-go does, for
// several invocations in a row: on one kept-alive connection, then with a new connection per
// request (DisableKeepAlives, Connection: close).
func TestNetHTTPRuntime(t *testing.T) {
	tests := []struct {
		name            string
		keepAlive       bool
		wantConnections func(invocations int) int32
	}{
		{"keep-alive", true, func(int) int32 { return 1 }},
		// Per invocation a /next and a /response, plus the /next left waiting at the end.
		{"connection per request", false, func(n int) int32 { return int32(2*n + 1) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			startEchoRuntime(t, e, e.client(tc.keepAlive))
			const n = 5
			for i := range n {
				inv := newInvocation(fmt.Sprintf("req-%d", i), fmt.Sprintf(`{"i":%d}`, i))
				o := outcomeOf(t, e.invoke(inv))
				want := result{Body: fmt.Sprintf(`echo {"i":%d}`, i), ContentType: "text/plain"}
				if o.err != nil || o.res != want {
					t.Fatalf("invocation %d = %+v, %v; want %+v", i, o.res, o.err, want)
				}
			}
			// The runtime's next /next is on its way: wait until the server has read it.
			if !tc.keepAlive {
				e.ln.waitServed(t, "GET "+nextPath, n+1)
			}
			if got, want := e.ln.accepted.Load(), tc.wantConnections(n); got != want {
				t.Errorf("runtime used %d connections, want %d", got, want)
			}
		})
	}
}

// startEchoRuntime runs a runtime loop on c that answers every event with "echo <event>".
// It ends when the server goes away or the test ends.
func startEchoRuntime(t *testing.T, e *env, c *http.Client) {
	ctx := t.Context()
	base := "http://" + e.addr
	e.wg.Go(func() {
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+nextPath, nil)
			resp, err := c.Do(req)
			if err != nil {
				return // closed
			}
			event, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("runtime: /next = %d, %v", resp.StatusCode, err)
				return
			}
			id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
			req, _ = http.NewRequestWithContext(ctx, http.MethodPost, base+invocationPath(id, "response"), strings.NewReader("echo "+string(event)))
			req.Header.Set("Content-Type", "text/plain")
			resp, err = c.Do(req)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Errorf("runtime: /response = %d", resp.StatusCode)
				return
			}
		}
	})
}

// TestReadyOnce: INIT ends at the runtime's first /next; Hooks.Ready is called then and never
// again, however the runtime connects.
func TestReadyOnce(t *testing.T) {
	for _, keepAlive := range []bool{true, false} {
		t.Run(fmt.Sprintf("keepalive=%v", keepAlive), func(t *testing.T) {
			e := newEnv(t)
			if got := e.hooks.ready.Load(); got != 0 {
				t.Fatalf("Ready called %d times before any /next", got)
			}
			startEchoRuntime(t, e, e.client(keepAlive))
			e.hooks.waitReady(t)
			for i := range 3 {
				inv := newInvocation(fmt.Sprintf("req-%d", i), `{}`)
				if o := outcomeOf(t, e.invoke(inv)); o.err != nil {
					t.Fatalf("invocation %d: %v", i, o.err)
				}
			}
			// Settle with one more: the runtime's /next after the third is then surely served.
			inv := newInvocation("req-last", `{}`)
			if o := outcomeOf(t, e.invoke(inv)); o.err != nil {
				t.Fatalf("last invocation: %v", o.err)
			}
			if got := e.hooks.ready.Load(); got != 1 {
				t.Errorf("Ready called %d times over 4 invocations, want 1", got)
			}
		})
	}
}

// TestTimeoutAndClose covers Invoke's two errors.
func TestTimeoutAndClose(t *testing.T) {
	t.Run("deadline passes while the runtime holds the event", func(t *testing.T) {
		e := newEnv(t)
		rc := dialRaw(t, e.addr)
		rc.write(request(http.MethodGet, nextPath, nil, ""))
		e.hooks.waitReady(t) // parked: the event is delivered at once
		inv := newInvocation("req-1", `{}`)
		inv.Deadline = time.Now().Add(100 * time.Millisecond) // must pass; nothing measures it
		out := e.invoke(inv)
		if a := rc.read(); a.status != http.StatusOK || a.header.Get("Lambda-Runtime-Aws-Request-Id") != "req-1" {
			t.Fatalf("/next = %d %v", a.status, a.header)
		}
		o := outcomeOf(t, out)
		if !errors.Is(o.err, runtimeapi.ErrTimedOut) {
			t.Fatalf("Invoke = %+v, %v; want ErrTimedOut", o.res, o.err)
		}
		if inv.Complete(runtimeapi.Result{Body: []byte("late")}) {
			t.Error("Complete after ErrTimedOut succeeded: the invocation was not claimed")
		}
		rc.wantClosed()
		a := dialRaw(t, e.addr).roundTrip(request(http.MethodPost, invocationPath("req-1", "response"), []string{"Connection: close"}, "late"))
		if a.status != http.StatusBadRequest || a.body != invalidRequestID {
			t.Errorf("late /response = %d %s, want 400 %s", a.status, a.body, invalidRequestID)
		}
	})
	t.Run("deadline passes before the runtime asks", func(t *testing.T) {
		e := newEnv(t)
		inv := newInvocation("req-1", `{}`)
		inv.Deadline = time.Now().Add(100 * time.Millisecond)
		if o := outcomeOf(t, e.invoke(inv)); !errors.Is(o.err, runtimeapi.ErrTimedOut) {
			t.Fatalf("Invoke = %+v, %v; want ErrTimedOut", o.res, o.err)
		}
	})
	t.Run("close before the runtime asks", func(t *testing.T) {
		e := newEnv(t)
		out := e.invoke(newInvocation("req-1", `{}`))
		if err := e.srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if o := outcomeOf(t, out); !errors.Is(o.err, runtimeapi.ErrNotDelivered) {
			t.Fatalf("Invoke = %+v, %v; want ErrNotDelivered", o.res, o.err)
		}
	})
	t.Run("close with the runtime parked", func(t *testing.T) {
		e := newEnv(t)
		rc := dialRaw(t, e.addr)
		rc.write(request(http.MethodGet, nextPath, nil, ""))
		e.hooks.waitReady(t)
		if err := e.srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if o := outcomeOf(t, e.invoke(newInvocation("req-1", `{}`))); !errors.Is(o.err, runtimeapi.ErrNotDelivered) {
			t.Fatalf("Invoke = %+v, %v; want ErrNotDelivered", o.res, o.err)
		}
		rc.wantClosed()
	})
}

// TestInitError: /runtime/init/error reaches Hooks.InitError and is answered 202.
func TestInitError(t *testing.T) {
	tests := []struct {
		name string
		hdr  []string
		body string
		want result
	}{
		{
			name: "type and JSON body",
			hdr:  []string{"Lambda-Runtime-Function-Error-Type: Runtime.ImportModuleError", "Content-Type: application/json"},
			body: `{"errorMessage":"no module","errorType":"Runtime.ImportModuleError"}`,
			want: result{Body: `{"errorMessage":"no module","errorType":"Runtime.ImportModuleError"}`, ContentType: "application/json", ErrorType: "Runtime.ImportModuleError"},
		},
		{
			name: "no type",
			body: `{"errorMessage":"x"}`,
			want: result{Body: `{"errorMessage":"x"}`, ContentType: "application/json", ErrorType: "Runtime.Unknown"},
		},
		{
			name: "text body",
			hdr:  []string{"Lambda-Runtime-Function-Error-Type: Runtime.ExitError"},
			body: "exit status 2",
			want: result{Body: "exit status 2", ContentType: "application/octet-stream", ErrorType: "Runtime.ExitError"},
		},
		{
			name: "empty body",
			hdr:  []string{"Lambda-Runtime-Function-Error-Type: Runtime.ConfigInvalid"},
			want: result{Body: `{"errorMessage":"","errorType":"Runtime.ConfigInvalid"}`, ContentType: "application/json", ErrorType: "Runtime.ConfigInvalid"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			a := dialRaw(t, e.addr).roundTrip(request(http.MethodPost, initErrPath, tc.hdr, tc.body))
			if a.status != http.StatusAccepted || a.body != statusOK {
				t.Errorf("POST /init/error = %d %s, want 202 %s", a.status, a.body, statusOK)
			}
			e.hooks.mu.Lock()
			got := e.hooks.initErrs
			e.hooks.mu.Unlock()
			if diff := cmp.Diff([]result{tc.want}, got); diff != "" {
				t.Errorf("InitError calls (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExtensionRegister covers POST /2020-01-01/extension/register.
func TestExtensionRegister(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		hdr        []string
		body       string
		wantStatus int
		wantType   string // errorType of a refusal
	}{
		{"no events (aws-lambda-go WithEnableSIGTERM)", "POST", []string{"Lambda-Extension-Name: GoLangEnableSIGTERM"}, `{"events":null}`, 200, ""},
		{"INVOKE and SHUTDOWN", "POST", []string{"Lambda-Extension-Name: ext"}, `{"events":["INVOKE","SHUTDOWN"]}`, 200, ""},
		{"no body", "POST", []string{"Lambda-Extension-Name: ext"}, "", 200, ""},
		{"missing name", "POST", nil, `{"events":["SHUTDOWN"]}`, 403, "Extension.InvalidExtensionName"},
		{"unknown event", "POST", []string{"Lambda-Extension-Name: ext"}, `{"events":["RESTART"]}`, 403, "Extension.InvalidEventType"},
		{"not JSON", "POST", []string{"Lambda-Extension-Name: ext"}, `{`, 403, "InvalidRequestFormat"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			a := dialRaw(t, e.addr).roundTrip(request(tc.method, registerPath, tc.hdr, tc.body))
			if a.status != tc.wantStatus {
				t.Fatalf("register = %d %s, want %d", a.status, a.body, tc.wantStatus)
			}
			if tc.wantStatus != 200 {
				var got struct{ ErrorType, ErrorMessage string }
				if err := json.Unmarshal([]byte(a.body), &got); err != nil || got.ErrorType != tc.wantType || got.ErrorMessage == "" {
					t.Errorf("refusal body %s, want errorType %s with a message", a.body, tc.wantType)
				}
				return
			}
			if _, err := uuid.Parse(a.header.Get("Lambda-Extension-Identifier")); err != nil {
				t.Errorf("Lambda-Extension-Identifier = %q: %v", a.header.Get("Lambda-Extension-Identifier"), err)
			}
			var got map[string]string
			if err := json.Unmarshal([]byte(a.body), &got); err != nil {
				t.Fatalf("register body %s: %v", a.body, err)
			}
			want := map[string]string{"functionName": "fn", "functionVersion": "$LATEST", "handler": "bootstrap"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("register body (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExtensionEventNext: an extension's /event/next waits while the environment lives (and
// does not hold up invocations), and gets a SHUTDOWN event when the server closes. This is what
// aws-lambda-go's lambda.WithEnableSIGTERM relies on.
func TestExtensionEventNext(t *testing.T) {
	t.Run("missing identifier", func(t *testing.T) {
		e := newEnv(t)
		a := dialRaw(t, e.addr).roundTrip(request(http.MethodGet, extNextPath, nil, ""))
		if a.status != http.StatusForbidden || !strings.Contains(a.body, `"errorType":"Extension.MissingExtensionIdentifier"`) {
			t.Errorf("/event/next = %d %s, want 403 Extension.MissingExtensionIdentifier", a.status, a.body)
		}
	})
	// As many extensions as Lambda allows, each waiting on its own connection. Every one of
	// them must get the event, every time: Close must not depend on the handlers it wakes
	// winning a race with it, so the scenario runs a number of rounds.
	t.Run("shutdown on close", func(t *testing.T) {
		for round := range 50 {
			if !t.Run(fmt.Sprintf("round %d", round), testExtensionShutdown) {
				break
			}
		}
	})
}

func testExtensionShutdown(t *testing.T) {
	const extensions = 10
	e := newEnv(t)
	var conns []*rawConn
	for i := range extensions {
		reg := dialRaw(t, e.addr).roundTrip(request(http.MethodPost, registerPath,
			[]string{fmt.Sprintf("Lambda-Extension-Name: ext-%d", i)}, `{"events":["SHUTDOWN"]}`))
		id := reg.header.Get("Lambda-Extension-Identifier")
		if reg.status != http.StatusOK || id == "" {
			t.Fatalf("register = %d %v", reg.status, reg.header)
		}
		ext := dialRaw(t, e.addr)
		ext.write(request(http.MethodGet, extNextPath, []string{"Lambda-Extension-Identifier: " + id}, ""))
		conns = append(conns, ext)
	}
	e.ln.waitServed(t, "GET "+extNextPath, extensions)

	// The runtime is served meanwhile.
	startEchoRuntime(t, e, e.client(true))
	inv := newInvocation("req-1", `{}`)
	if o := outcomeOf(t, e.invoke(inv)); o.err != nil || o.res.Body != "echo {}" {
		t.Fatalf("Invoke with extensions waiting = %+v, %v", o.res, o.err)
	}

	if err := e.srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	var failed []string
	for i, ext := range conns {
		a, err := ext.tryRead()
		if err != nil {
			failed = append(failed, fmt.Sprintf("extension %d: %v", i, err))
			continue
		}
		var ev struct {
			EventType, ShutdownReason string
			DeadlineMs                int64
		}
		if err := json.Unmarshal([]byte(a.body), &ev); a.status != http.StatusOK || err != nil ||
			ev.EventType != "SHUTDOWN" || ev.ShutdownReason == "" || ev.DeadlineMs == 0 ||
			a.header.Get("Lambda-Extension-Event-Identifier") == "" {
			failed = append(failed, fmt.Sprintf("extension %d: %d %v %s", i, a.status, a.header, a.body))
		}
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d waiting extensions did not get a SHUTDOWN event with a reason, a deadline and an event id:\n%s",
			len(failed), extensions, strings.Join(failed, "\n"))
	}
}

// TestSecondNext: a runtime may have one /next outstanding; another is refused with 403
// InvalidStateTransition and the first keeps its place.
func TestSecondNext(t *testing.T) {
	wantBusy := func(t *testing.T, a answer) {
		t.Helper()
		if a.status != http.StatusForbidden || !strings.Contains(a.body, `"errorType":"InvalidStateTransition"`) {
			t.Errorf("second /next = %d %s, want 403 InvalidStateTransition", a.status, a.body)
		}
	}
	t.Run("same connection, invocation in flight", func(t *testing.T) {
		e := newEnv(t)
		inv := newInvocation("req-1", `{}`)
		out := e.invoke(inv)
		rt := e.rawRuntime(t, false)
		rt.next(inv)
		wantBusy(t, rt.do(http.MethodGet, nextPath, nil, ""))
		if a := rt.do(http.MethodPost, invocationPath("req-1", "response"), nil, "ok"); a.status != http.StatusAccepted {
			t.Errorf("/response = %d %s", a.status, a.body)
		}
		if o := outcomeOf(t, out); o.err != nil || o.res.Body != "ok" {
			t.Errorf("Invoke = %+v, %v", o.res, o.err)
		}
	})
	t.Run("another connection, invocation in flight", func(t *testing.T) {
		e := newEnv(t)
		inv := newInvocation("req-1", `{}`)
		out := e.invoke(inv)
		rt := e.rawRuntime(t, false)
		rt.next(inv)
		wantBusy(t, dialRaw(t, e.addr).roundTrip(request(http.MethodGet, nextPath, nil, "")))
		if a := rt.do(http.MethodPost, invocationPath("req-1", "response"), nil, "ok"); a.status != http.StatusAccepted {
			t.Errorf("/response = %d %s", a.status, a.body)
		}
		if o := outcomeOf(t, out); o.err != nil || o.res.Body != "ok" {
			t.Errorf("Invoke = %+v, %v", o.res, o.err)
		}
	})
	t.Run("another connection while one is parked", func(t *testing.T) {
		e := newEnv(t)
		first := dialRaw(t, e.addr)
		first.write(request(http.MethodGet, nextPath, nil, ""))
		e.hooks.waitReady(t)
		wantBusy(t, dialRaw(t, e.addr).roundTrip(request(http.MethodGet, nextPath, nil, "")))
		inv := newInvocation("req-1", `{}`)
		out := e.invoke(inv)
		if a := first.read(); a.status != http.StatusOK || a.header.Get("Lambda-Runtime-Aws-Request-Id") != "req-1" {
			t.Fatalf("first /next = %d %v", a.status, a.header)
		}
		first.write(request(http.MethodPost, invocationPath("req-1", "response"), nil, "ok"))
		if a := first.read(); a.status != http.StatusAccepted {
			t.Errorf("/response = %d %s", a.status, a.body)
		}
		if o := outcomeOf(t, out); o.err != nil || o.res.Body != "ok" {
			t.Errorf("Invoke = %+v, %v", o.res, o.err)
		}
	})
}

// TestNextOnAnotherConnection: Invoke waits for the runtime's /next on the connection it kept;
// when the runtime asks on a new connection instead, Invoke takes that one and the kept one is
// closed.
func TestNextOnAnotherConnection(t *testing.T) {
	e := newEnv(t)
	first := answeredOnKeptConnection(t, e)

	inv2 := newInvocation("req-2", `{"n":2}`)
	out := e.invoke(inv2) // reads the kept connection, idle
	second := e.rawRuntime(t, false)
	second.next(inv2)
	first.conn.wantClosed()
	if a := second.do(http.MethodPost, invocationPath("req-2", "response"), nil, "two"); a.status != http.StatusAccepted {
		t.Fatalf("/response = %d %s", a.status, a.body)
	}
	if o := outcomeOf(t, out); o.err != nil || o.res.Body != "two" {
		t.Fatalf("Invoke 2 = %+v, %v", o.res, o.err)
	}
}

// answeredOnKeptConnection runs one invocation through a runtime on one kept-alive connection
// and returns that runtime, its connection kept for its next /next.
func answeredOnKeptConnection(t *testing.T, e *env) *rawRuntime {
	t.Helper()
	first := e.rawRuntime(t, false)
	inv1 := newInvocation("req-1", `{"n":1}`)
	out := e.invoke(inv1)
	first.next(inv1)
	if a := first.do(http.MethodPost, invocationPath("req-1", "response"), nil, "one"); a.status != http.StatusAccepted {
		t.Fatalf("/response = %d %s", a.status, a.body)
	}
	if o := outcomeOf(t, out); o.err != nil || o.res.Body != "one" {
		t.Fatalf("Invoke 1 = %+v, %v", o.res, o.err)
	}
	return first
}

// TestNextOnAnotherConnectionFirst: the runtime's /next on a new connection is parked before
// Invoke reads the kept one; Invoke takes the parked one and the kept one is closed all the same
// (it stayed open until the invocation ended; TestNextOnAnotherConnection raced into this order
// under load).
func TestNextOnAnotherConnectionFirst(t *testing.T) {
	e := newEnv(t)
	first := answeredOnKeptConnection(t, e)
	second := dialRaw(t, e.addr)
	second.write(request(http.MethodGet, nextPath, nil, ""))
	for deadline := time.Now().Add(10 * time.Second); !runtimeapi.Parked(e.srv); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the second connection's /next was not parked within 10 s")
		}
	}
	inv2 := newInvocation("req-2", `{"n":2}`)
	out := e.invoke(inv2)
	if a := second.read(); a.status != http.StatusOK || a.header.Get("Lambda-Runtime-Aws-Request-Id") != "req-2" {
		t.Fatalf("second /next = %d %v", a.status, a.header)
	}
	first.conn.wantClosed()
	second.write(request(http.MethodPost, invocationPath("req-2", "response"), nil, "two"))
	if a := second.read(); a.status != http.StatusAccepted {
		t.Errorf("/response = %d %s", a.status, a.body)
	}
	if o := outcomeOf(t, out); o.err != nil || o.res.Body != "two" {
		t.Fatalf("Invoke 2 = %+v, %v", o.res, o.err)
	}
}

// TestResponseOnAnotherConnection: the runtime takes the event on one connection and answers
// on another (served by net/http). Invoke returns the answer at once, whatever the runtime
// does next, and the runtime's following /next is served wherever it comes.
func TestResponseOnAnotherConnection(t *testing.T) {
	tests := []struct {
		name string
		// then is what the runtime does after its answer was accepted: it returns the
		// connection its next /next went on, or nil.
		then func(t *testing.T, first, second *rawConn) *rawConn
	}{
		{"then nothing", func(*testing.T, *rawConn, *rawConn) *rawConn { return nil }},
		{"then next on the second connection", func(t *testing.T, _, second *rawConn) *rawConn {
			second.write(request(http.MethodGet, nextPath, nil, ""))
			return second
		}},
		{"then next on the first connection", func(t *testing.T, first, _ *rawConn) *rawConn {
			first.write(request(http.MethodGet, nextPath, nil, ""))
			return first
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			inv := newInvocation("req-1", `{}`)
			out := e.invoke(inv)
			first, second := dialRaw(t, e.addr), dialRaw(t, e.addr)
			if a := first.roundTrip(request(http.MethodGet, nextPath, nil, "")); a.status != http.StatusOK {
				t.Fatalf("/next = %d %s", a.status, a.body)
			}
			if a := second.roundTrip(request(http.MethodPost, invocationPath("req-1", "response"), nil, "answer")); a.status != http.StatusAccepted {
				t.Fatalf("/response on the second connection = %d %s", a.status, a.body)
			}
			waiting := tc.then(t, first, second)
			if o := outcomeOf(t, out); o.err != nil || o.res.Body != "answer" {
				t.Fatalf("Invoke = %+v, %v; want the answer", o.res, o.err)
			}
			if waiting == nil {
				return
			}
			inv2 := newInvocation("req-2", `{"n":2}`)
			out = e.invoke(inv2)
			if a := waiting.read(); a.status != http.StatusOK || a.header.Get("Lambda-Runtime-Aws-Request-Id") != "req-2" {
				t.Fatalf("the runtime's next /next = %d %s, want the event of req-2", a.status, a.body)
			}
			waiting.write(request(http.MethodPost, invocationPath("req-2", "response"), nil, "two"))
			if a := waiting.read(); a.status != http.StatusAccepted {
				t.Errorf("/response = %d %s", a.status, a.body)
			}
			if o := outcomeOf(t, out); o.err != nil || o.res.Body != "two" {
				t.Errorf("Invoke 2 = %+v, %v", o.res, o.err)
			}
		})
	}
}

// TestExpectContinue: a runtime that sends Expect: 100-continue gets 100 Continue before it
// sends the body, on either path. The field value is case-insensitive (RFC 9110, 10.1.1).
func TestExpectContinue(t *testing.T) {
	for _, mode := range runtimeModes {
		for _, expect := range []string{"100-continue", "100-Continue"} {
			t.Run(mode.name+"/"+expect, func(t *testing.T) {
				e := newEnv(t)
				inv := newInvocation("req-1", `{}`)
				out := e.invoke(inv)
				rt := e.rawRuntime(t, mode.closeEach)
				rt.next(inv)
				conn := rt.conn
				hdr := []string{"Expect: " + expect, "Content-Length: 4"}
				if mode.closeEach {
					conn = dialRaw(t, e.addr)
					hdr = append(hdr, "Connection: close")
				}
				// Headers only: the body waits for 100 Continue.
				conn.write(request(http.MethodPost, invocationPath("req-1", "response"), hdr, ""))
				if a := conn.read(); a.status != http.StatusContinue {
					t.Fatalf("before the body: %d %q, want 100 Continue", a.status, a.raw)
				}
				conn.write("done")
				if a := conn.read(); a.status != http.StatusAccepted || a.body != statusOK {
					t.Errorf("/response = %d %s, want 202", a.status, a.body)
				}
				if o := outcomeOf(t, out); o.err != nil || o.res.Body != "done" {
					t.Errorf("Invoke = %+v, %v", o.res, o.err)
				}
			})
		}
	}
}
