package runtimeapi

import (
	"net/http"
	"strings"
)

// routes is the Runtime API: every endpoint, the one handler for it, in the order they are
// tried. Both transports dispatch through it: ServeHTTP for requests net/http reads, and
// serveDirect for requests Invoke reads on a runtime's taken-over connection (direct.go), so an
// endpoint is added here once and both serve it.
var routes = compile([]route{
	{method: http.MethodGet, pattern: "/2018-06-01/runtime/invocation/next", serve: (*Server).next},
	{method: http.MethodPost, pattern: "/2018-06-01/runtime/invocation/{id}/response", serve: (*Server).response},
	{method: http.MethodPost, pattern: "/2018-06-01/runtime/invocation/{id}/error", serve: (*Server).invocationError},
	{method: http.MethodPost, pattern: "/2018-06-01/runtime/init/error", serve: (*Server).initError},
	{pattern: "/2020-01-01/extension/register", serve: (*Server).register},
	{pattern: "/2020-01-01/extension/event/next", serve: (*Server).extensionNext, wait: true},
	// init/error and exit/error (any other path under it: 404).
	{pattern: "/2020-01-01/extension/*", serve: (*Server).extensionError},
	{pattern: "/2022-07-01/telemetry", serve: (*Server).telemetrySubscribe},
	{pattern: "/2020-08-15/logs", serve: (*Server).logsSubscribe},
	{pattern: "/ping", serve: (*Server).ping},
})

// A handler answers one request; id is the {id} segment of its route's path, if any. It runs on
// a net/http handler goroutine or on Invoke's goroutine, so it waits for nothing but the
// request's own body unless its route says wait.
type handler func(s *Server, r *http.Request, id string) reply

// reply is a handler's answer, written by the transport that read the request.
type reply struct {
	status      int    // 0: nothing to write (the client is gone)
	contentType string // "" is application/json
	body        []byte
	// header, when set, is one more response header with value (an identifier).
	header, value string
	// park: a runtime's /next, left unanswered: its connection goes to Invoke, which answers it
	// with the event.
	park bool
}

// route is one endpoint of the table.
type route struct {
	method string // "" matches every method (the handler may refuse some)
	// pattern is the path: literal, except that "{id}" stands for one segment (possibly empty,
	// without '/') and a final "*" for any rest.
	pattern string
	serve   handler
	// wait: the handler may block until the environment closes (a long poll). The direct
	// transport runs on Invoke's goroutine and cannot wait, so it serves such a route on a
	// goroutine of its own.
	wait bool

	// pattern split by compile: the path is prefix, then the wildcard part, then suffix.
	kind           matchKind
	prefix, suffix string
}

type matchKind uint8

const (
	matchExact matchKind = iota // the path is prefix
	matchID                     // prefix, one segment (the id), suffix
	matchRest                   // prefix, then anything
)

func compile(rs []route) []route {
	for i := range rs {
		r := &rs[i]
		switch {
		case strings.HasSuffix(r.pattern, "*"):
			r.kind, r.prefix = matchRest, strings.TrimSuffix(r.pattern, "*")
		case strings.Contains(r.pattern, "{id}"):
			r.kind = matchID
			r.prefix, r.suffix, _ = strings.Cut(r.pattern, "{id}")
		default:
			r.kind, r.prefix = matchExact, r.pattern
		}
		if strings.ContainsAny(r.prefix+r.suffix, "{}*") {
			panic("runtimeapi: unsupported route pattern " + r.pattern)
		}
	}
	return rs
}

// match finds the route for a request and the id segment of its path. It is on the hot path of
// every invocation (the runtime's /next and /response): plain string comparisons, no
// allocation; the id is a slice of path.
func match(method, path string) (*route, string) {
	for i := range routes {
		r := &routes[i]
		if r.method != "" && r.method != method {
			continue
		}
		switch r.kind {
		case matchExact:
			if path == r.prefix {
				return r, ""
			}
		case matchRest:
			if strings.HasPrefix(path, r.prefix) {
				return r, ""
			}
		case matchID:
			if len(path) >= len(r.prefix)+len(r.suffix) && strings.HasPrefix(path, r.prefix) && strings.HasSuffix(path, r.suffix) {
				id := path[len(r.prefix) : len(path)-len(r.suffix)]
				if strings.IndexByte(id, '/') < 0 {
					return r, id
				}
			}
		}
	}
	return nil, ""
}

// serve runs the handler of r's route, or answers 404 when there is none.
func (s *Server) serve(r *http.Request, rt *route, id string) reply {
	if rt == nil {
		return reply{status: http.StatusNotFound, body: errorJSON("InvalidRequest", "Unknown Runtime API path: "+r.Method+" "+r.URL.Path)}
	}
	return rt.serve(s, r, id)
}

// writeReply writes rep through net/http.
func writeReply(w http.ResponseWriter, rep reply) {
	if rep.status == 0 {
		return
	}
	if rep.header != "" {
		w.Header().Set(rep.header, rep.value)
	}
	if ct := contentTypeOr(rep.contentType); ct != textPlain {
		w.Header().Set("Content-Type", ct)
	} // else net/http's sniffing sets it, after Date and Content-Length, where /ping always had it
	w.WriteHeader(rep.status)
	_, _ = w.Write(rep.body)
}

// textPlain is the type net/http's content sniffing gives plain text.
const textPlain = "text/plain; charset=utf-8"

func contentTypeOr(ct string) string {
	if ct == "" {
		return "application/json"
	}
	return ct
}
