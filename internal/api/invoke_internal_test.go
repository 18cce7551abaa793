package api

import (
	"net/http/httptest"
	"testing"
)

// TestIsInvokeIsTheInvokeRoute holds the front door's predicate to the API's own route table:
// IsInvoke takes a request exactly when the mux routes it to Invoke.
func TestIsInvokeIsTheInvokeRoute(t *testing.T) {
	a := New(Config{})
	for _, tc := range []struct{ method, path string }{
		{"POST", "/2015-03-31/functions/f/invocations"},
		{"POST", "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af/invocations"},
		{"GET", "/2015-03-31/functions/f/invocations"},
		{"PUT", "/2015-03-31/functions/f/invocations"},
		{"POST", "/2015-03-31/functions/f/x/invocations"},
		{"POST", "/2015-03-31/functions//invocations"},
		{"POST", "/2015-03-31/functions/invocations"},
		{"POST", "/2015-03-31/functions/f/invocationsx"},
		{"POST", "/2015-03-31/functions/f/versions"},
		{"POST", "/2014-11-13/functions/f/invoke-async/"},
	} {
		_, pattern := a.mux.Handler(httptest.NewRequest(tc.method, tc.path, nil))
		if want := pattern == "POST /2015-03-31/functions/{name}/invocations"; IsInvoke(tc.method, tc.path) != want {
			t.Errorf("IsInvoke(%s %s) = %v; the mux routes it to %q", tc.method, tc.path, !want, pattern)
		}
	}
}
