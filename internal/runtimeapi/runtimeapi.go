// Package runtimeapi serves the Lambda Runtime API (2018-06-01), the Extensions API (2020-01-01,
// extensions.go) and the Telemetry and Logs APIs (telemetry.go) for one execution environment,
// on that environment's own listener.
//
// The hot path does not go through net/http's per-request goroutines: when the runtime asks for
// /next, its connection is taken over (hijacked) and parked, and Invoke, on the caller's own
// goroutine, writes the event to it and reads the runtime's /response from it. Runtimes that use
// a fresh connection per request, or answer on another connection, are served by the net/http
// handlers and meet Invoke through the invocation's result channel. Both transports route
// through one table of endpoints (routes.go). The package owns no environment state beyond the
// invocation in flight and never touches the store.
package runtimeapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MaxResponse is the largest buffered response a runtime may post (Lambda: 6 MB + 100 bytes).
const MaxResponse = 6*1024*1024 + 100

// Invocation is one event on its way to the runtime and back.
type Invocation struct {
	RequestID       string
	Payload         []byte
	ContentType     string
	Deadline        time.Time
	InvokedARN      string
	TraceID         string
	ClientContext   string // decoded JSON
	CognitoIdentity string

	state   atomic.Int32 // 0 pending, 1 completed
	aborted bool         // settled by Abort; written before the send on done, read after it
	done    chan Result
}

// NewInvocation prepares an invocation.
func NewInvocation() *Invocation { return &Invocation{done: make(chan Result, 1)} }

// Complete settles the invocation with r; only the first call wins and reports true.
func (inv *Invocation) Complete(r Result) bool {
	if !inv.Claim() {
		return false
	}
	inv.done <- r
	return true
}

// Abort settles the invocation for the platform, with no result (it stopped the environment
// under the invocation): Invoke returns ErrAborted. Only the first of Complete and Abort wins and
// reports true. Unlike an error type in a Result, nothing a runtime sends can look like it.
func (inv *Invocation) Abort() bool {
	if !inv.Claim() {
		return false
	}
	inv.aborted = true
	inv.done <- Result{}
	return true
}

// Claim reserves the right to settle the invocation; only the first caller gets true and must
// then send the result (Complete does both).
func (inv *Invocation) Claim() bool { return inv.state.CompareAndSwap(0, 1) }

// Completed reports whether the invocation has a result.
func (inv *Invocation) Completed() bool { return inv.state.Load() == 1 }

// Result is what the runtime (or the platform on its behalf) answered.
type Result struct {
	Body        []byte
	ContentType string
	// ErrorType is set when the invocation failed (function error or platform-detected failure).
	ErrorType string
}

// Hooks connect a Server to its environment. They are called on request goroutines.
type Hooks interface {
	// Ready is called on the runtime's first /next: INIT is over.
	Ready()
	// InitError reports /runtime/init/error.
	InitError(r Result)
}

// FunctionInfo is what the Extensions API reports to registering extensions.
type FunctionInfo struct {
	Name, Version, Handler string
	// AccountID is told to extensions that ask for it (Lambda-Extension-Accept-Feature: accountId).
	AccountID string
}

// Server is one environment's Runtime API endpoint.
type Server struct {
	hooks Hooks
	info  FunctionInfo
	log   *slog.Logger
	srv   *http.Server

	// parked holds the connection of a runtime waiting in /next (its request read, unanswered).
	parked chan *rconn

	mu      sync.Mutex
	current *Invocation // delivered to the runtime and not yet answered
	owned   *rconn      // the runtime's connection between its /response and its next /next
	reading *rconn      // the connection Invoke is blocked reading, so a parked one can wake it
	closing bool
	output  func([]byte)

	closed     chan struct{}
	closeOnce  sync.Once
	extensions atomic.Int32
	ext        extState
	tel        telemetry
	detached   sync.WaitGroup // long polls the direct transport serves on their own goroutines
}

// New returns a server for one environment.
func New(hooks Hooks, info FunctionInfo, log *slog.Logger) *Server {
	s := &Server{hooks: hooks, info: info, log: log, parked: make(chan *rconn, 1), closed: make(chan struct{})}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		// No read or write timeout: /next is a long poll and clients set none either.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s
}

// Serve serves on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	err := s.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Close stops serving, closes the runtime's connections and wakes a blocked Invoke.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.mu.Lock()
		s.closing = true
		if s.owned != nil {
			s.owned.close()
			s.owned = nil
		}
		if s.reading != nil {
			s.reading.close()
		}
		s.mu.Unlock()
		select {
		case rc := <-s.parked:
			rc.close()
		default:
		}
	})
	// Let the handlers Close woke (extensions' /event/next write SHUTDOWN) finish before their
	// connections close; give up on stragglers after a grace period.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	s.detached.Wait() // woken by closed above; their writes have a deadline
	s.closeTelemetry()
	return err
}

// Current is the invocation delivered to the runtime and not yet answered, if any.
func (s *Server) Current() *Invocation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// ServeHTTP serves the requests net/http reads: runtimes on fresh connections, and extensions.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, id := match(r.Method, r.URL.Path)
	rep := s.serve(r, rt, id)
	if rep.park {
		s.hijack(w, r)
		return
	}
	writeReply(w, rep)
}

var statusOK = []byte(`{"status":"OK"}`)

func errorJSON(typ, msg string) []byte {
	b, _ := json.Marshal(struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}{msg, typ})
	return b
}

// ErrorBody renders Lambda's error object {"errorMessage","errorType"} for platform failures.
func ErrorBody(typ, msg string) []byte { return errorJSON(typ, msg) }

var errBusy = errorJSON("InvalidStateTransition",
	"State transition from Running to Ready failed for runtime. Error: previous invocation has no response")

// next is a runtime's /next: refused while an invocation is unanswered or another /next waits,
// else parked for Invoke by the transport.
func (s *Server) next(*http.Request, string) reply {
	s.mu.Lock()
	busy := s.current != nil && !s.current.Completed()
	if !busy {
		s.current = nil
	}
	s.mu.Unlock()
	if busy || len(s.parked) > 0 {
		return reply{status: http.StatusForbidden, body: errBusy}
	}
	return reply{park: true}
}

// hijack takes a parked /next's connection from net/http and offers it to Invoke.
func (s *Server) hijack(w http.ResponseWriter, r *http.Request) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeReply(w, reply{status: http.StatusInternalServerError, body: errorJSON("InternalServerError", "connection cannot be taken over")})
		return
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		s.log.Debug("hijack /next", "err", err)
		return
	}
	_ = c.SetDeadline(time.Time{}) // net/http's header deadline no longer applies
	s.park(&rconn{c: c, br: brw.Reader, bw: brw.Writer, close1: r.Close})
}

// park offers a runtime waiting in /next to Invoke and wakes an Invoke blocked reading another
// connection of this runtime.
func (s *Server) park(rc *rconn) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		rc.close()
		return
	}
	// Under the lock, so that a reader about to block sees the parked connection (readRequest).
	parked := false
	select {
	case s.parked <- rc:
		parked = true
		if s.reading != nil {
			s.reading.kick()
		}
	default:
	}
	s.mu.Unlock()
	if !parked { // a second parked /next: refuse it
		_ = rc.writeResponse(http.StatusForbidden, "application/json", errBusy, nil)
		rc.close()
		return
	}
	if !s.ext.initDone.Load() {
		s.runtimeNext()
	}
}

// response is a runtime's /invocation/{id}/response.
func (s *Server) response(r *http.Request, id string) reply {
	status, body := s.result(r, id, false)
	return reply{status: status, body: body}
}

// invocationError is a runtime's /invocation/{id}/error.
func (s *Server) invocationError(r *http.Request, id string) reply {
	status, body := s.result(r, id, true)
	return reply{status: status, body: body}
}

// result handles /response and /error on any connection: it settles the current invocation and
// returns what to answer the runtime.
func (s *Server) result(r *http.Request, id string, isError bool) (int, []byte) {
	s.mu.Lock()
	inv := s.current
	s.mu.Unlock()
	if inv == nil || inv.RequestID != id || inv.Completed() {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, MaxResponse))
		return http.StatusBadRequest, errorJSON("InvalidRequestID", "Invalid request ID")
	}
	res, status, answer := readResult(r, id, isError)
	if inv.Complete(res) {
		s.mu.Lock()
		if s.current == inv {
			s.current = nil
		}
		if s.reading != nil {
			s.reading.kick() // Invoke waits on the runtime's other connection: wake it
		}
		s.mu.Unlock()
	}
	return status, answer
}

// readResult reads a /response or /error request into the caller's result and the answer to the
// runtime.
func readResult(r *http.Request, id string, isError bool) (Result, int, []byte) {
	if mode := r.Header.Get("Lambda-Runtime-Function-Response-Mode"); mode != "" && !strings.EqualFold(mode, "streaming") {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, MaxResponse))
		return Result{ErrorType: "Runtime.InvalidResponseModeHeader",
				Body: errorJSON("Runtime.InvalidResponseModeHeader", "RequestId: "+id+" Error: Invalid function response mode")},
			http.StatusBadRequest, errorJSON("InvalidFunctionResponseMode", "Invalid function response mode")
	}
	body, err := readBody(r)
	switch {
	case errors.Is(err, errTooLarge):
		_, _ = io.Copy(io.Discard, r.Body) // keep the connection usable, as Lambda does
		return Result{ErrorType: "Function.ResponseSizeTooLarge", Body: errorJSON("Function.ResponseSizeTooLarge",
				"Response payload size exceeded maximum allowed payload size (6291556 bytes).")},
			http.StatusRequestEntityTooLarge, errorJSON("RequestEntityTooLarge", "Exceeded maximum allowed payload size (6291556 bytes).")
	case err != nil:
		return Result{ErrorType: "Runtime.TruncatedResponse",
				Body: errorJSON("Runtime.TruncatedResponse", "RequestId: "+id+" Error: runtime response was truncated")},
			http.StatusBadRequest, errorJSON("TruncatedHTTPRequest", "HTTP request detected as truncated")
	}
	res := Result{Body: body, ContentType: r.Header.Get("Content-Type")}
	if isError {
		res.ErrorType = r.Header.Get("Lambda-Runtime-Function-Error-Type")
		if res.ErrorType == "" {
			res.ErrorType = "Unhandled"
		}
		res.ContentType = "application/json"
		if len(body) == 0 {
			res.Body = errorJSON(res.ErrorType, "")
		}
	} else if typ := r.Trailer.Get("Lambda-Runtime-Function-Error-Type"); typ != "" {
		// A streamed response that failed midway: the error travels in the trailers.
		res.ErrorType = typ
		res.ContentType = "application/json"
		res.Body = errorJSON(typ, "")
		if b, err := base64.StdEncoding.DecodeString(r.Trailer.Get("Lambda-Runtime-Function-Error-Body")); err == nil && len(b) > 0 {
			res.Body = b
		}
	}
	return res, http.StatusAccepted, statusOK
}

var errTooLarge = errors.New("response too large")

// readBody reads a whole request body (chunked or not, trailers included) up to MaxResponse.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > MaxResponse {
		return nil, errTooLarge
	}
	if r.ContentLength >= 0 {
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxResponse+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxResponse {
		return nil, errTooLarge
	}
	return b, nil
}

// initError is a runtime's /init/error.
func (s *Server) initError(r *http.Request, _ string) reply {
	body, err := readBody(r)
	if err != nil {
		return reply{status: http.StatusBadRequest, body: errorJSON("TruncatedHTTPRequest", "HTTP request detected as truncated")}
	}
	typ := r.Header.Get("Lambda-Runtime-Function-Error-Type")
	if typ == "" {
		typ = "Runtime.Unknown"
	}
	ct := "application/octet-stream"
	if json.Valid(body) {
		ct = "application/json"
	}
	if len(body) == 0 {
		body, ct = errorJSON(typ, ""), "application/json"
	}
	s.hooks.InitError(Result{Body: body, ContentType: ct, ErrorType: typ})
	return reply{status: http.StatusAccepted, body: statusOK}
}

var pong = []byte("pong")

// ping is a liveness probe.
func (s *Server) ping(*http.Request, string) reply {
	return reply{status: http.StatusOK, contentType: textPlain, body: pong}
}
