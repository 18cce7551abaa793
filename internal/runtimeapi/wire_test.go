package runtimeapi_test

import (
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/runtimeapi"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares the exact bytes a runtime read with testdata/<name>.golden.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from %s (-update to accept):\ngot:  %q\nwant: %q", name, path, got, want)
	}
}

// fixedDeadline is the example from the Lambda docs. It is long past, so an Invoke carrying it
// writes the event to a runtime already waiting and then gives up with ErrTimedOut: the event's
// bytes are what the golden files pin.
var fixedDeadline = time.UnixMilli(1542409706888)

// TestNextGolden pins the raw bytes of /next responses written by Invoke.
func TestNextGolden(t *testing.T) {
	tests := []struct {
		name string
		inv  func(*runtimeapi.Invocation)
	}{
		{"next_response", func(inv *runtimeapi.Invocation) {
			inv.RequestID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
			inv.Payload = []byte(`{"key1":"value1","key2":"value2"}`)
			inv.ContentType = "application/x-custom"
			inv.InvokedARN = "arn:aws:lambda:us-east-2:123456789012:function:custom-runtime:live"
			inv.TraceID = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
			inv.ClientContext = `{"client":{"installation_id":"i-1","app_title":"app"},"custom":{"k":"v"},"env":{"platform":"linux"}}`
			inv.CognitoIdentity = `{"cognitoIdentityId":"us-east-2:id","cognitoIdentityPoolId":"us-east-2:pool"}`
		}},
		{"next_response_minimal", func(inv *runtimeapi.Invocation) {
			inv.RequestID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
			inv.Payload = []byte(`{}`)
			inv.InvokedARN = "arn:aws:lambda:us-east-2:123456789012:function:custom-runtime"
		}},
		{"next_response_header_injection", func(inv *runtimeapi.Invocation) {
			inv.RequestID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
			inv.Payload = []byte(`{}`)
			inv.InvokedARN = "arn:aws:lambda:us-east-2:123456789012:function:custom-runtime"
			inv.TraceID = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700\r\nX-Injected: 1"
			inv.ClientContext = "{\n  \"custom\": {\"k\": \"v\"}\n}"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			rc := dialRaw(t, e.addr)
			rc.write(request(http.MethodGet, nextPath, nil, ""))
			e.hooks.waitReady(t)
			inv := runtimeapi.NewInvocation()
			tc.inv(inv)
			inv.Deadline = fixedDeadline
			if o := outcomeOf(t, e.invoke(inv)); !errors.Is(o.err, runtimeapi.ErrTimedOut) {
				t.Errorf("Invoke with a past deadline = %+v, %v; want ErrTimedOut", o.res, o.err)
			}
			a := rc.read()
			golden(t, tc.name, a.raw)
			if got := a.header.Values("X-Injected"); len(got) != 0 {
				t.Errorf("a header value smuggled a header: X-Injected: %q", got)
			}
		})
	}
}

// TestAnswerGolden pins the raw bytes of what Invoke answers on the runtime's connection.
func TestAnswerGolden(t *testing.T) {
	e := newEnv(t)
	rt := e.rawRuntime(t, false)
	inv := newInvocation("8476a536-e9f4-11e8-9739-2dfe598c3fcd", `{}`)
	out := e.invoke(inv)
	rt.next(inv)

	golden(t, "next_busy", rt.do(http.MethodGet, nextPath, nil, "").raw)
	golden(t, "response_invalid_request_id", rt.do(http.MethodPost, invocationPath("00000000-0000-0000-0000-000000000000", "response"), nil, "{}").raw)
	golden(t, "response_accepted", rt.do(http.MethodPost, invocationPath(inv.RequestID, "response"), nil, `{"ok":true}`).raw)
	if o := outcomeOf(t, out); o.err != nil || o.res.Body != `{"ok":true}` {
		t.Fatalf("Invoke = %+v, %v", o.res, o.err)
	}

	inv = newInvocation("9f3c2a1e-0b7d-4c55-8e21-6a4f0d9b2c10", `{}`)
	out = e.invoke(inv)
	rt.next(inv)
	golden(t, "error_accepted", rt.do(http.MethodPost, invocationPath(inv.RequestID, "error"),
		[]string{"Lambda-Runtime-Function-Error-Type: Runtime.UnknownReason"}, `{"errorMessage":"x","errorType":"Runtime.UnknownReason"}`).raw)
	if o := outcomeOf(t, out); o.err != nil || o.res.ErrorType != "Runtime.UnknownReason" {
		t.Fatalf("Invoke = %+v, %v", o.res, o.err)
	}

	inv = newInvocation("1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed", `{}`)
	out = e.invoke(inv)
	rt.next(inv)
	golden(t, "response_too_large", rt.do(http.MethodPost, invocationPath(inv.RequestID, "response"), nil,
		strings.Repeat("x", runtimeapi.MaxResponse+1)).raw)
	if o := outcomeOf(t, out); o.err != nil || o.res.ErrorType != "Function.ResponseSizeTooLarge" {
		t.Fatalf("Invoke = %+v, %v", o.res, o.err)
	}
}
