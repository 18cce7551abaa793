package runtimeapi_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/flint-run/flint/internal/runtimeapi"
)

// TestAbort: the platform settles an invocation the runtime holds with Abort, and Invoke says so
// with ErrAborted; an error type a runtime posts, whatever it is, stays a result.
func TestAbort(t *testing.T) {
	t.Run("abort while the runtime holds the event", func(t *testing.T) {
		e := newEnv(t)
		rc := dialRaw(t, e.addr)
		rc.write(request(http.MethodGet, nextPath, nil, ""))
		e.hooks.waitReady(t)
		inv := newInvocation("req-1", `{}`)
		out := e.invoke(inv)
		if a := rc.read(); a.status != http.StatusOK {
			t.Fatalf("/next = %d", a.status)
		}
		// As the worker's monitor does: the runtime's process is gone (its connection with it),
		// and the platform, which stopped it, settles its invocation.
		_ = rc.c.Close()
		if !inv.Abort() {
			t.Fatal("Abort of a pending invocation reported false")
		}
		if o := outcomeOf(t, out); !errors.Is(o.err, runtimeapi.ErrAborted) || o.res != (result{}) {
			t.Fatalf("Invoke = %+v, %v; want no result, ErrAborted", o.res, o.err)
		}
		if inv.Complete(runtimeapi.Result{Body: []byte("late")}) || inv.Abort() {
			t.Error("the invocation was settled again after Abort")
		}
		_ = e.srv.Close()
	})
	t.Run("abort after the runtime answered", func(t *testing.T) {
		e := newEnv(t)
		rc := dialRaw(t, e.addr)
		rc.write(request(http.MethodGet, nextPath, nil, ""))
		e.hooks.waitReady(t)
		inv := newInvocation("req-1", `{}`)
		out := e.invoke(inv)
		rc.read()
		rc.write(request(http.MethodPost, invocationPath("req-1", "error"),
			[]string{"Lambda-Runtime-Function-Error-Type: flint.Aborted"}, `{"errorType":"flint.Aborted"}`))
		o := outcomeOf(t, out)
		if o.err != nil || o.res.ErrorType != "flint.Aborted" {
			t.Fatalf("Invoke = %+v, %v; want the runtime's error result", o.res, o.err)
		}
		if inv.Abort() {
			t.Error("Abort after the runtime's answer reported true")
		}
	})
}
