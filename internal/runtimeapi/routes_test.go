package runtimeapi_test

import (
	"encoding/json"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/runtimeapi"
	"github.com/google/go-cmp/cmp"
)

// seen is what a client can tell of an answer, leaving out what only one transport writes
// (net/http's Date, the direct transport's Connection: close after a long poll) and the values
// of fresh identifiers.
type seen struct {
	Status      int
	ContentType string
	Headers     []string // names of the other headers
	Body        string
}

func seenOf(a answer) seen {
	var names []string
	for name := range a.header {
		switch name {
		case "Date", "Content-Length", "Content-Type":
		default:
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return seen{Status: a.status, ContentType: a.header.Get("Content-Type"), Headers: names, Body: a.body}
}

// TestOneRouteTable: every endpoint of the route table, and a path in none, gets the same
// answer through net/http (a fresh connection) and through the direct transport (the
// runtime's connection that Invoke reads). The requests come from the table itself, so an
// endpoint added to it is checked on both transports without a new test.
func TestOneRouteTable(t *testing.T) {
	e := newEnv(t)
	// The long polls below are an extension's: registered during INIT, as Lambda requires (an
	// unknown identifier is refused).
	reg := dialRaw(t, e.addr).roundTrip(request(http.MethodPost, registerPath, []string{"Lambda-Extension-Name: poller"}, `{"events":["SHUTDOWN"]}`))
	if reg.status != http.StatusOK {
		t.Fatalf("register = %d %s", reg.status, reg.body)
	}
	// "ext" is registered too: the table's requests below register it again on each transport,
	// refused alike (one name, one extension).
	if a := dialRaw(t, e.addr).roundTrip(request(http.MethodPost, registerPath, []string{"Lambda-Extension-Name: ext"}, "")); a.status != http.StatusOK {
		t.Fatalf("register = %d %s", a.status, a.body)
	}
	rt := e.rawRuntime(t, false) // after its first /next, Invoke reads this connection
	inv := newInvocation("req-1", `{}`)
	out := e.invoke(inv)
	rt.next(inv)

	both := func(t *testing.T, method, path string, hdr []string, body string) {
		t.Helper()
		viaHTTP := seenOf(dialRaw(t, e.addr).roundTrip(request(method, path, hdr, body)))
		viaDirect := seenOf(rt.do(method, path, hdr, body))
		if diff := cmp.Diff(viaHTTP, viaDirect); diff != "" {
			t.Errorf("%s %s: net/http and direct answers differ (-net/http +direct):\n%s", method, path, diff)
		}
		if viaHTTP.Status == 0 {
			t.Errorf("%s %s: no answer", method, path)
		}
	}
	// An invocation is in flight throughout: the state is the same for both transports.
	hdr := []string{"Lambda-Extension-Name: ext", "Content-Type: application/json"}
	var waits []runtimeapi.Route
	for _, r := range runtimeapi.Routes() {
		if r.Wait {
			waits = append(waits, r)
			continue
		}
		methods := []string{r.Method}
		if r.Method == "" {
			methods = []string{http.MethodGet, http.MethodPost}
		}
		path := strings.NewReplacer("{id}", "not-the-request-id", "*", "exit/error").Replace(r.Pattern)
		for _, m := range methods {
			body := ""
			if m == http.MethodPost {
				body = `{"events":["SHUTDOWN"]}`
			}
			both(t, m, path, hdr, body)
		}
	}
	for _, p := range []string{"/", "/2018-06-01/runtime/invocation/req-1", "/2018-06-01/runtime/invocation/a/b/response", "/2018-06-01/runtime/invocation/next/", "/2018-06-01/runtime/unknown"} {
		both(t, http.MethodGet, p, nil, "")
		both(t, http.MethodPost, p, nil, "{}")
	}
	both(t, http.MethodDelete, nextPath, nil, "")

	// The {id} routes with the id of the invocation in flight: one invocation answered on each
	// transport.
	for _, r := range runtimeapi.Routes() {
		if !strings.Contains(r.Pattern, "{id}") {
			continue
		}
		viaDirect := seenOf(rt.do(r.Method, strings.ReplaceAll(r.Pattern, "{id}", inv.RequestID), hdr, `{"ok":true}`))
		byDirect := outcomeOf(t, out)
		inv = newInvocation(inv.RequestID+"+", `{}`)
		out = e.invoke(inv)
		rt.next(inv)
		viaHTTP := seenOf(dialRaw(t, e.addr).roundTrip(request(r.Method, strings.ReplaceAll(r.Pattern, "{id}", inv.RequestID), hdr, `{"ok":true}`)))
		byHTTP := outcomeOf(t, out)
		if diff := cmp.Diff(viaHTTP, viaDirect); diff != "" {
			t.Errorf("%s %s: net/http and direct answers differ (-net/http +direct):\n%s", r.Method, r.Pattern, diff)
		}
		if byHTTP.err != nil || byDirect.err != nil {
			t.Fatalf("%s %s: Invoke errors: %v through net/http, %v through direct", r.Method, r.Pattern, byHTTP.err, byDirect.err)
		}
		if diff := cmp.Diff(byHTTP.res, byDirect.res); diff != "" {
			t.Errorf("%s %s: the invocation's result differs (-net/http +direct):\n%s", r.Method, r.Pattern, diff)
		}
		inv = newInvocation(inv.RequestID+"+", `{}`)
		out = e.invoke(inv)
		rt.next(inv)
	}

	// The long polls last: each holds its connection until the environment closes. The direct
	// transport meets one in two places: while an invocation is in flight (which is then
	// answered on another connection) and between invocations, as Invoke looks for the
	// runtime's next /next (which then comes on another connection).
	if len(waits) == 0 {
		t.Fatal("the route table has no long poll")
	}
	type poll struct {
		method, path       string
		viaHTTP, viaDirect *rawConn
	}
	var polls []poll
	hdr = []string{"Lambda-Extension-Identifier: " + reg.header.Get("Lambda-Extension-Identifier")}
	deliver := func() { // the next invocation, to a runtime on a new connection
		rt = e.rawRuntime(t, false)
		inv = newInvocation(inv.RequestID+"+", `{}`)
		out = e.invoke(inv)
		rt.next(inv)
	}
	for _, r := range waits {
		method := r.Method
		if method == "" {
			method = http.MethodGet
		}
		req := request(method, r.Pattern, hdr, "")
		start := func(viaDirect *rawConn) {
			p := poll{method: method, path: r.Pattern, viaHTTP: dialRaw(t, e.addr), viaDirect: viaDirect}
			p.viaHTTP.write(req)
			n := 1 // the server counts requests by route
			for _, q := range polls {
				if q.path == r.Pattern {
					n++
				}
			}
			e.ln.waitServed(t, method+" "+r.Pattern, n)
			polls = append(polls, p)
		}

		// In flight.
		start(rt.conn)
		rt.conn.write(req)
		waitGoroutines(t, "runtimeapi.(*Server).detach.func1", len(polls))
		if a := dialRaw(t, e.addr).roundTrip(request(http.MethodPost, invocationPath(inv.RequestID, "response"), nil, "{}")); a.status != http.StatusAccepted {
			t.Fatalf("/response on another connection = %d %s", a.status, a.body)
		}
		if o := outcomeOf(t, out); o.err != nil || o.res.Body != "{}" {
			t.Fatalf("Invoke = %+v, %v", o.res, o.err)
		}

		// Between invocations: the next Invoke reads the long poll where it expects /next.
		deliver()
		if a := rt.do(http.MethodPost, invocationPath(inv.RequestID, "response"), nil, "{}"); a.status != http.StatusAccepted {
			t.Fatalf("/response = %d %s", a.status, a.body)
		}
		if o := outcomeOf(t, out); o.err != nil || o.res.Body != "{}" {
			t.Fatalf("Invoke = %+v, %v", o.res, o.err)
		}
		start(rt.conn)
		rt.conn.write(req)
		inv = newInvocation(inv.RequestID+"+", `{}`)
		out = e.invoke(inv)
		waitGoroutines(t, "runtimeapi.(*Server).detach.func1", len(polls))
		rt = e.rawRuntime(t, false)
		rt.next(inv)
		if a := rt.do(http.MethodPost, invocationPath(inv.RequestID, "response"), nil, "{}"); a.status != http.StatusAccepted {
			t.Fatalf("/response = %d %s", a.status, a.body)
		}
		if o := outcomeOf(t, out); o.err != nil || o.res.Body != "{}" {
			t.Fatalf("Invoke = %+v, %v", o.res, o.err)
		}
		deliver() // in flight again, for the next long poll
	}
	if err := e.srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	for _, p := range polls {
		a, b := seenOf(p.viaHTTP.read()), seenOf(p.viaDirect.read())
		a.Body, b.Body = withoutDeadline(t, a.Body), withoutDeadline(t, b.Body)
		if diff := cmp.Diff(a, b); diff != "" {
			t.Errorf("%s %s: net/http and direct answers differ (-net/http +direct):\n%s", p.method, p.path, diff)
		}
		if a.Status != http.StatusOK {
			t.Errorf("%s %s = %+v, want 200", p.method, p.path, a)
		}
	}
}

// waitGoroutines waits until n goroutines run fn: the server has taken a request that it
// answers later, at a time nothing else shows.
func waitGoroutines(t *testing.T, fn string, n int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	buf := make([]byte, 1<<20)
	for {
		stacks := string(buf[:runtime.Stack(buf, true)])
		got := 0
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, fn+"(") {
				got++
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines in %s, want %d", got, fn, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// withoutDeadline zeroes an event's deadlineMs, which is the time of the answer.
func withoutDeadline(t *testing.T, body string) string {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal([]byte(body), &ev); err != nil {
		t.Errorf("event %q: %v", body, err)
		return body
	}
	if _, ok := ev["deadlineMs"]; ok {
		ev["deadlineMs"] = 0
	}
	b, _ := json.Marshal(ev)
	return string(b)
}
