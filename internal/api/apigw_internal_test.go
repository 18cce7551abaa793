package api

import (
	"net/http/httptest"
	"testing"
)

// TestAPITargetCostsNothing: every request to the endpoint (the Invoke API's warm path too)
// is asked whether it is an API Gateway request before anything else; the answer allocates
// nothing.
func TestAPITargetCostsNothing(t *testing.T) {
	for _, tc := range []struct {
		host, target  string
		id, raw, path string
		ok            bool
	}{
		{"127.0.0.1:9000", "/2015-03-31/functions/f/invocations", "", "", "", false},
		{"abcdefghij.execute-api.us-east-1.localhost:9000", "/Prod/a%2Fb/c", "abcdefghij", "/Prod/a%2Fb/c", "/Prod/a/b/c", true},
		{"127.0.0.1:9000", "/execute-api/abcdefghij/Prod/x", "abcdefghij", "/Prod/x", "/Prod/x", true},
		{"127.0.0.1:9000", "/execute-api/abcdefghij", "abcdefghij", "/", "/", true},
		{"127.0.0.1:9000", "/execute-api/short/x", "", "", "", false},
		{"toolongidxx.execute-api.us-east-1.localhost", "/", "", "", "", false},
	} {
		r := httptest.NewRequest("GET", "http://"+tc.host+tc.target, nil)
		id, raw, path, ok := apiTarget(r)
		if id != tc.id || raw != tc.raw || path != tc.path || ok != tc.ok {
			t.Errorf("%s%s: got %q %q %q %v", tc.host, tc.target, id, raw, path, ok)
		}
	}
	r := httptest.NewRequest("POST", "http://127.0.0.1:9000/2015-03-31/functions/f/invocations", nil)
	if n := testing.AllocsPerRun(100, func() { _, _, _, _ = apiTarget(r) }); n != 0 {
		t.Errorf("apiTarget on an Invoke request: %v allocations, want 0", n)
	}
}
