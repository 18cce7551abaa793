package runtimeapi

import (
	"net/http"
	"testing"
)

// TestMatch pins how paths meet the route table, at the edges of its patterns: the cases the
// two routers it replaced agreed on.
func TestMatch(t *testing.T) {
	tests := []struct {
		method, path string
		want         string // the route's pattern; "" for none
		id           string
	}{
		{"GET", "/2018-06-01/runtime/invocation/next", "/2018-06-01/runtime/invocation/next", ""},
		{"POST", "/2018-06-01/runtime/invocation/next", "", ""},
		{"HEAD", "/2018-06-01/runtime/invocation/next", "", ""},
		{"GET", "/2018-06-01/runtime/invocation/next/", "", ""},
		{"POST", "/2018-06-01/runtime/invocation/8476a536-e9f4-11e8-9739-2dfe598c3fcd/response", "/2018-06-01/runtime/invocation/{id}/response", "8476a536-e9f4-11e8-9739-2dfe598c3fcd"},
		{"POST", "/2018-06-01/runtime/invocation/next/response", "/2018-06-01/runtime/invocation/{id}/response", "next"},
		{"POST", "/2018-06-01/runtime/invocation/x/error", "/2018-06-01/runtime/invocation/{id}/error", "x"},
		{"POST", "/2018-06-01/runtime/invocation//response", "/2018-06-01/runtime/invocation/{id}/response", ""},
		{"POST", "/2018-06-01/runtime/invocation/response", "", ""},
		{"POST", "/2018-06-01/runtime/invocation/a/b/response", "", ""},
		{"POST", "/2018-06-01/runtime/invocation/x/response/", "", ""},
		{"POST", "/2018-06-01/runtime/invocation/x/responses", "", ""},
		{"POST", "/2018-06-01/runtime/invocation/x", "", ""},
		{"GET", "/2018-06-01/runtime/invocation/x/response", "", ""},
		{"POST", "/2018-06-01/runtime/init/error", "/2018-06-01/runtime/init/error", ""},
		{"GET", "/2018-06-01/runtime/init/error", "", ""},
		{"GET", "/2020-01-01/extension/register", "/2020-01-01/extension/register", ""},
		{"POST", "/2020-01-01/extension/register", "/2020-01-01/extension/register", ""},
		{"GET", "/2020-01-01/extension/event/next", "/2020-01-01/extension/event/next", ""},
		{"POST", "/2020-01-01/extension/exit/error", "/2020-01-01/extension/*", ""},
		{"GET", "/2020-01-01/extension/", "/2020-01-01/extension/*", ""},
		{"GET", "/2020-01-01/extension/register/x", "/2020-01-01/extension/*", ""},
		{"GET", "/2020-01-01/extension", "", ""},
		{"DELETE", "/ping", "/ping", ""},
		{"GET", "/", "", ""},
		{"GET", "", "", ""},
	}
	for _, tc := range tests {
		r, id := match(tc.method, tc.path)
		got := ""
		if r != nil {
			got = r.pattern
		}
		if got != tc.want || id != tc.id {
			t.Errorf("match(%s %q) = %q, id %q; want %q, id %q", tc.method, tc.path, got, id, tc.want, tc.id)
		}
	}
}

// TestMatchAllocs: the runtime's /next and /response are matched on every invocation; matching
// allocates nothing.
func TestMatchAllocs(t *testing.T) {
	for _, req := range []struct{ method, path string }{
		{http.MethodGet, "/2018-06-01/runtime/invocation/next"},
		{http.MethodPost, "/2018-06-01/runtime/invocation/8476a536-e9f4-11e8-9739-2dfe598c3fcd/response"},
	} {
		var r *route
		if n := testing.AllocsPerRun(1000, func() { r, _ = match(req.method, req.path) }); n != 0 || r == nil {
			t.Errorf("match(%s %s): %v allocations, route %v; want 0 and a route", req.method, req.path, n, r)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		match(http.MethodPost, "/2018-06-01/runtime/invocation/8476a536-e9f4-11e8-9739-2dfe598c3fcd/response")
	}
}
