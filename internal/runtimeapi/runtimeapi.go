// Package runtimeapi serves the Lambda Runtime API (2018-06-01) and the registration part of the
// Extensions API (2020-01-01) for one execution environment, on that environment's own listener.
// It hands events to the runtime and results back through Hooks; it owns no environment state
// beyond the invocation in flight and never touches the store.
package runtimeapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
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

	state atomic.Int32 // 0 pending, 1 completed
	done  chan Result
}

// NewInvocation prepares an invocation; Done delivers its one result.
func NewInvocation() *Invocation { return &Invocation{done: make(chan Result, 1)} }

// Done delivers the result once the invocation completes.
func (inv *Invocation) Done() <-chan Result { return inv.done }

// Complete settles the invocation with r; only the first call wins and reports true.
func (inv *Invocation) Complete(r Result) bool {
	if !inv.Claim() {
		return false
	}
	inv.Send(r)
	return true
}

// Claim reserves the right to settle the invocation; only the first caller gets true and must
// then call Send exactly once.
func (inv *Invocation) Claim() bool { return inv.state.CompareAndSwap(0, 1) }

// Send delivers the result after a successful Claim.
func (inv *Invocation) Send(r Result) { inv.done <- r }

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
	// Ready is called on every /next: the runtime is waiting for work. The first call ends INIT.
	Ready()
	// InitError reports /runtime/init/error.
	InitError(r Result)
	// Finished is called when the runtime posted /response or /error for inv, after the server
	// claimed inv and before the result is sent, so that the environment is available again by
	// the time the caller sees the result.
	Finished(inv *Invocation)
}

// FunctionInfo is what the Extensions API reports to registering extensions.
type FunctionInfo struct {
	Name, Version, Handler string
}

// Server is one environment's Runtime API endpoint.
type Server struct {
	hooks Hooks
	info  FunctionInfo
	log   *slog.Logger
	srv   *http.Server

	events chan *Invocation // the invocation the runtime gets on its next /next

	mu      sync.Mutex
	current *Invocation

	closed     chan struct{}
	closeOnce  sync.Once
	extensions atomic.Int32
}

// New returns a server for one environment.
func New(hooks Hooks, info FunctionInfo, log *slog.Logger) *Server {
	s := &Server{hooks: hooks, info: info, log: log, events: make(chan *Invocation, 1), closed: make(chan struct{})}
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

// Close stops serving and releases every parked request.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return s.srv.Close()
}

// Deliver queues inv for the runtime's next /next. The environment must be idle (the previous
// invocation finished), so the one-slot queue never blocks.
func (s *Server) Deliver(inv *Invocation) {
	s.events <- inv
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/2018-06-01/runtime/invocation/next":
		if r.Method != http.MethodGet {
			break
		}
		s.next(w, r)
		return
	case strings.HasPrefix(p, "/2018-06-01/runtime/invocation/"):
		if r.Method != http.MethodPost {
			break
		}
		id, verb, ok := strings.Cut(p[len("/2018-06-01/runtime/invocation/"):], "/")
		if !ok || (verb != "response" && verb != "error") {
			break
		}
		s.result(w, r, id, verb == "error")
		return
	case p == "/2018-06-01/runtime/init/error":
		if r.Method != http.MethodPost {
			break
		}
		s.initError(w, r)
		return
	case p == "/2020-01-01/extension/register":
		s.register(w, r)
		return
	case p == "/2020-01-01/extension/event/next":
		s.extensionNext(w, r)
		return
	case strings.HasPrefix(p, "/2020-01-01/extension/"):
		// init/error and exit/error: accepted; the runtime's exit is what the platform acts on.
		_, _ = io.Copy(io.Discard, r.Body)
		accepted(w)
		return
	case p == "/ping":
		_, _ = w.Write([]byte("pong"))
		return
	}
	writeError(w, http.StatusNotFound, "InvalidRequest", "Unknown Runtime API path: "+r.Method+" "+p)
}

var statusOK = []byte(`{"status":"OK"}`)

func accepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(statusOK)
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	b, _ := json.Marshal(struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}{msg, typ})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (s *Server) next(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.current != nil && !s.current.Completed() {
		// The runtime asked for more work without answering the current invocation.
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, "InvalidStateTransition",
			"State transition from Running to Ready failed for runtime. Error: previous invocation has no response")
		return
	}
	s.current = nil
	s.mu.Unlock()
	s.hooks.Ready()
	var inv *Invocation
	select {
	case inv = <-s.events:
	case <-s.closed:
		writeError(w, http.StatusInternalServerError, "InternalServerError", "environment is shutting down")
		return
	case <-r.Context().Done():
		return
	}
	s.mu.Lock()
	s.current = inv
	s.mu.Unlock()
	h := w.Header()
	h["Lambda-Runtime-Aws-Request-Id"] = []string{inv.RequestID}
	h["Lambda-Runtime-Deadline-Ms"] = []string{strconv.FormatInt(inv.Deadline.UnixMilli(), 10)}
	h["Lambda-Runtime-Invoked-Function-Arn"] = []string{inv.InvokedARN}
	if inv.TraceID != "" {
		h["Lambda-Runtime-Trace-Id"] = []string{inv.TraceID}
	}
	if inv.ClientContext != "" {
		h["Lambda-Runtime-Client-Context"] = []string{inv.ClientContext}
	}
	if inv.CognitoIdentity != "" {
		h["Lambda-Runtime-Cognito-Identity"] = []string{inv.CognitoIdentity}
	}
	ct := inv.ContentType
	if ct == "" {
		ct = "application/json"
	}
	h["Content-Type"] = []string{ct}
	h["Content-Length"] = []string{strconv.Itoa(len(inv.Payload))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.Payload)
}

func (s *Server) result(w http.ResponseWriter, r *http.Request, id string, isError bool) {
	s.mu.Lock()
	inv := s.current
	s.mu.Unlock()
	if inv == nil || inv.RequestID != id || inv.Completed() {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, MaxResponse))
		writeError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID")
		return
	}
	var res Result
	if mode := r.Header.Get("Lambda-Runtime-Function-Response-Mode"); mode != "" && !strings.EqualFold(mode, "streaming") {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, MaxResponse))
		writeError(w, http.StatusBadRequest, "InvalidFunctionResponseMode", "Invalid function response mode")
		s.finish(inv, Result{ErrorType: "Runtime.InvalidResponseModeHeader",
			Body: errorBody("Runtime.InvalidResponseModeHeader", "RequestId: "+id+" Error: Invalid function response mode")})
		return
	}
	body, err := readBody(r)
	switch {
	case errors.Is(err, errTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
			"Exceeded maximum allowed payload size (6291556 bytes).")
		res = Result{ErrorType: "Function.ResponseSizeTooLarge", Body: errorBody("Function.ResponseSizeTooLarge",
			"Response payload size exceeded maximum allowed payload size (6291556 bytes).")}
		s.finish(inv, res)
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "TruncatedHTTPRequest", "HTTP request detected as truncated")
		s.finish(inv, Result{ErrorType: "Runtime.TruncatedResponse",
			Body: errorBody("Runtime.TruncatedResponse", "RequestId: "+id+" Error: runtime response was truncated")})
		return
	}
	res = Result{Body: body, ContentType: r.Header.Get("Content-Type")}
	if isError {
		res.ErrorType = r.Header.Get("Lambda-Runtime-Function-Error-Type")
		if res.ErrorType == "" {
			res.ErrorType = "Unhandled"
		}
		res.ContentType = "application/json"
		if len(body) == 0 {
			res.Body = errorBody(res.ErrorType, "")
		}
	} else if typ := r.Trailer.Get("Lambda-Runtime-Function-Error-Type"); typ != "" {
		// A streamed response that failed midway: the error travels in the trailers.
		res.ErrorType = typ
		res.ContentType = "application/json"
		res.Body = errorBody(typ, "")
		if b, err := base64.StdEncoding.DecodeString(r.Trailer.Get("Lambda-Runtime-Function-Error-Body")); err == nil && len(b) > 0 {
			res.Body = b
		}
	}
	accepted(w)
	s.finish(inv, res)
}

func (s *Server) finish(inv *Invocation, res Result) {
	if inv.Claim() { // else it timed out or the environment died: the result is dropped
		s.hooks.Finished(inv)
		inv.Send(res)
	}
}

var errTooLarge = errors.New("response too large")

// readBody reads a whole request body (chunked or not, trailers included) up to MaxResponse.
func readBody(r *http.Request) ([]byte, error) {
	var buf []byte
	if r.ContentLength > MaxResponse {
		return nil, errTooLarge
	}
	if r.ContentLength >= 0 {
		buf = make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, err
		}
		// Drain to EOF so trailers (if any) are read.
		if n, _ := io.Copy(io.Discard, r.Body); n > 0 {
			return nil, errTooLarge
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

// errorBody renders Lambda's error object.
func errorBody(typ, msg string) []byte {
	b, _ := json.Marshal(struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}{msg, typ})
	return b
}

// ErrorBody renders Lambda's error object {"errorMessage","errorType"} for platform failures.
func ErrorBody(typ, msg string) []byte { return errorBody(typ, msg) }

func (s *Server) initError(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "TruncatedHTTPRequest", "HTTP request detected as truncated")
		return
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
		body, ct = errorBody(typ, ""), "application/json"
	}
	accepted(w)
	s.hooks.InitError(Result{Body: body, ContentType: ct, ErrorType: typ})
}

const maxExtensions = 10

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, http.StatusNotFound, "InvalidRequest", "Unknown Extensions API path")
		return
	}
	name := r.Header.Get("Lambda-Extension-Name")
	if name == "" {
		writeError(w, http.StatusForbidden, "Extension.InvalidExtensionName", "Lambda-Extension-Name header is required")
		return
	}
	var req struct {
		Events []string `json:"events"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusForbidden, "InvalidRequestFormat", "Could not parse request body: "+err.Error())
		return
	}
	for _, e := range req.Events {
		if e != "INVOKE" && e != "SHUTDOWN" {
			writeError(w, http.StatusForbidden, "Extension.InvalidEventType", "Invalid event type: "+e)
			return
		}
	}
	if s.extensions.Add(1) > maxExtensions {
		writeError(w, http.StatusForbidden, "Extension.TooManyExtensions", "Too many extensions registered")
		return
	}
	w.Header().Set("Lambda-Extension-Identifier", uuid.NewString())
	w.Header().Set("Content-Type", "application/json")
	b, _ := json.Marshal(map[string]string{"functionName": s.info.Name, "functionVersion": s.info.Version, "handler": s.info.Handler})
	_, _ = w.Write(b)
}

// extensionNext parks an extension until the environment shuts down. Flint does not yet deliver
// INVOKE events to extensions; an extension registered for SHUTDOWN gets it when the environment
// is destroyed gracefully.
func (s *Server) extensionNext(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Lambda-Extension-Identifier") == "" {
		writeError(w, http.StatusForbidden, "Extension.MissingExtensionIdentifier", "Missing Lambda-Extension-Identifier header")
		return
	}
	select {
	case <-s.closed:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Lambda-Extension-Event-Identifier", uuid.NewString())
		b, _ := json.Marshal(map[string]any{"eventType": "SHUTDOWN", "shutdownReason": "spindown", "deadlineMs": time.Now().Add(500 * time.Millisecond).UnixMilli()})
		_, _ = w.Write(b)
	case <-r.Context().Done():
	}
}

// Reclaim takes back an invocation that was delivered but never picked up by a /next, so the
// caller can place it elsewhere (the runtime died between two invocations). It returns nil if the
// runtime already took it.
func (s *Server) Reclaim() *Invocation {
	select {
	case inv := <-s.events:
		return inv
	default:
		return nil
	}
}

// Current is the invocation the runtime took with its last /next, if it has not answered it.
func (s *Server) Current() *Invocation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}
