package runtimeapi

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// The Extensions API (2020-01-01): extensions register during INIT for INVOKE and SHUTDOWN
// events and ask for each event on /extension/event/next. An extension is "done" with an
// event when it asks for the next one: INIT ends when the runtime and every extension have
// called next once, and an invocation's environment is not reused until every extension it
// sent INVOKE to has called next again (the worker waits with AwaitExtensions).
//
// External extensions (executables in /opt/extensions, started by the worker beside the
// runtime) are known by name before they register (ExpectExtensions): INIT waits for each of
// them. Internal ones register from the runtime's own process, under any other name.

const maxExtensions = 10

// Extension error types, as Lambda reports them in an invocation's error and REPORT.
const (
	ExtensionCrash     = "Extension.Crash"
	ExtensionInitError = "Extension.InitError"
	ExtensionExitError = "Extension.ExitError"
)

// extension is one registered extension. Guarded by extState.mu.
type extension struct {
	id, name         string
	external         bool
	invoke, shutdown bool
	events           chan []byte // events queued for it: an INVOKE and a SHUTDOWN at most

	started      bool   // has called /event/next (its INIT is over)
	busy         bool   // was given an event it has not finished (asked for the next one since)
	delivered    bool   // holds an event: its next /event/next finishes it
	shutdownSent bool   // got SHUTDOWN through Shutdown
	failed       string // ExtensionCrash, ExtensionExitError (the environment must go)
}

// extState is the Server's Extensions API state.
type extState struct {
	mu        sync.Mutex
	list      []*extension
	expected  map[string]bool // external extensions' names, until they register
	runtimeUp bool            // the runtime's first /next came
	lost      bool            // an external extension ended before it registered: INIT failed
	// wake is closed (and replaced) when an extension finishes an event or fails: AwaitExtensions
	// and Shutdown wait on it.
	wake chan struct{}

	initDone atomic.Bool  // INIT is over: registration is closed
	invokers atomic.Int32 // extensions registered for INVOKE
	readyRun sync.Once
}

func (x *extState) notify() {
	x.mu.Lock()
	x.notifyLocked()
	x.mu.Unlock()
}

func (x *extState) notifyLocked() {
	if x.wake != nil {
		close(x.wake)
		x.wake = nil
	}
}

// ExpectExtensions names the external extensions started with the runtime; INIT is not over
// until each has registered and called /event/next. Call it before Serve.
func (s *Server) ExpectExtensions(names []string) {
	s.ext.mu.Lock()
	defer s.ext.mu.Unlock()
	s.ext.expected = make(map[string]bool, len(names))
	for _, n := range names {
		s.ext.expected[n] = true
	}
}

// HasExtensions reports whether an extension registered for INVOKE events: the warm path
// checks it before anything else of this file.
func (s *Server) HasExtensions() bool { return s.ext.invokers.Load() > 0 }

// runtimeNext records the runtime's first /next and ends INIT if every extension is ready too.
func (s *Server) runtimeNext() {
	s.ext.mu.Lock()
	s.ext.runtimeUp = true
	done := s.initOverLocked()
	s.ext.mu.Unlock()
	if done {
		s.endInit()
	}
}

// initOverLocked reports whether INIT has just ended: the runtime and every extension called
// next, and every expected extension registered. It marks INIT over (registration closes).
func (s *Server) initOverLocked() bool {
	x := &s.ext
	if x.initDone.Load() || !x.runtimeUp || len(x.expected) > 0 || x.lost {
		return false
	}
	for _, e := range x.list {
		if !e.started || e.failed != "" {
			return false
		}
	}
	x.initDone.Store(true)
	return true
}

// endInit tells the environment INIT is over, once.
func (s *Server) endInit() {
	s.ext.readyRun.Do(func() {
		s.ext.mu.Lock()
		for _, e := range s.ext.list {
			var events []string
			if e.invoke {
				events = append(events, "INVOKE")
			}
			if e.shutdown {
				events = append(events, "SHUTDOWN")
			}
			if events == nil {
				events = []string{}
			}
			s.Emit("platform.extension", kindPlatform, map[string]any{"name": e.name, "state": "Ready", "events": events})
		}
		s.ext.mu.Unlock()
		s.hooks.Ready()
	})
}

// extensionFailed reports an extension's failure while INIT runs as INIT's error.
func (s *Server) extensionFailed(typ, msg string) {
	s.ext.notify()
	if s.ext.initDone.Load() {
		return
	}
	s.hooks.InitError(Result{ErrorType: typ, ContentType: "application/json", Body: errorJSON(typ, msg)})
}

func (s *Server) extensionByID(id string) *extension {
	s.ext.mu.Lock()
	defer s.ext.mu.Unlock()
	for _, e := range s.ext.list {
		if e.id == id {
			return e
		}
	}
	return nil
}

// register is an extension's /register.
func (s *Server) register(r *http.Request, _ string) reply {
	if r.Method != http.MethodPost {
		return reply{status: http.StatusNotFound, body: errorJSON("InvalidRequest", "Unknown Extensions API path")}
	}
	name := r.Header.Get("Lambda-Extension-Name")
	if name == "" {
		return reply{status: http.StatusForbidden, body: errorJSON("Extension.InvalidExtensionName", "Lambda-Extension-Name header is required")}
	}
	var req struct {
		Events []string `json:"events"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		return reply{status: http.StatusForbidden, body: errorJSON("InvalidRequestFormat", "Could not parse request body: "+err.Error())}
	}
	e := &extension{id: uuid.NewString(), name: name, events: make(chan []byte, 2)}
	for _, ev := range req.Events {
		switch ev {
		case "INVOKE":
			e.invoke = true
		case "SHUTDOWN":
			e.shutdown = true
		default:
			return reply{status: http.StatusForbidden, body: errorJSON("Extension.InvalidEventType", "Invalid event type: "+ev)}
		}
	}
	x := &s.ext
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.initDone.Load() {
		return reply{status: http.StatusForbidden, body: errorJSON("Extension.RegistrationClosed", "Extension registration closed already")}
	}
	for _, o := range x.list {
		if o.name == name {
			return reply{status: http.StatusForbidden, body: errorJSON("Extension.InvalidExtensionState", "Extension with this name already registered")}
		}
	}
	if len(x.list) >= maxExtensions {
		return reply{status: http.StatusForbidden, body: errorJSON("Extension.TooManyExtensions", "Extension limit ("+strconv.Itoa(maxExtensions)+") reached")}
	}
	if x.expected[name] {
		e.external = true
		delete(x.expected, name)
	}
	x.list = append(x.list, e)
	s.extensions.Add(1)
	if e.invoke {
		x.invokers.Add(1)
	}
	resp := map[string]string{"functionName": s.info.Name, "functionVersion": s.info.Version, "handler": s.info.Handler}
	if s.info.AccountID != "" && strings.Contains(r.Header.Get("Lambda-Extension-Accept-Feature"), "accountId") {
		resp["accountId"] = s.info.AccountID
	}
	b, _ := json.Marshal(resp)
	return reply{status: http.StatusOK, body: b, header: "Lambda-Extension-Identifier", value: e.id}
}

// extensionNext is an extension's /event/next: it finishes the event the extension held, then
// waits for its next one (or the environment's end).
func (s *Server) extensionNext(r *http.Request, _ string) reply {
	id := r.Header.Get("Lambda-Extension-Identifier")
	if id == "" {
		return reply{status: http.StatusForbidden, body: errorJSON("Extension.MissingExtensionIdentifier", "Missing Lambda-Extension-Identifier header")}
	}
	e := s.extensionByID(id)
	if e == nil {
		return reply{status: http.StatusForbidden, body: errorJSON("Extension.UnknownExtensionIdentifier", "Unknown Lambda-Extension-Identifier")}
	}
	x := &s.ext
	x.mu.Lock()
	if e.delivered {
		e.delivered, e.busy = false, false
	}
	e.started = true
	initOver := s.initOverLocked()
	x.notifyLocked()
	x.mu.Unlock()
	if initOver {
		s.endInit()
	}
	select {
	case ev := <-e.events:
		x.mu.Lock()
		// Busy with it until its next call, also when this call finished the event before
		// (above): SHUTDOWN queued while the extension still held INVOKE (the runtime
		// crashed, the invocation timed out) is taken by the same call that ends INVOKE, and
		// Shutdown waits for the extension to be done with SHUTDOWN too.
		e.delivered, e.busy = true, true
		x.mu.Unlock()
		return reply{status: http.StatusOK, body: ev, header: "Lambda-Extension-Event-Identifier", value: uuid.NewString()}
	case <-s.closed:
		x.mu.Lock()
		sent := e.shutdownSent
		x.mu.Unlock()
		if sent { // it had its SHUTDOWN: the environment is gone
			return reply{}
		}
		return reply{status: http.StatusOK, body: shutdownEvent("spindown", time.Now().Add(shutdownBudget(false))),
			header: "Lambda-Extension-Event-Identifier", value: uuid.NewString()}
	case <-r.Context().Done():
		// The extension's connection closed while it waited: its process is gone.
		select {
		case <-s.closed:
			return reply{}
		default:
		}
		x.mu.Lock()
		if e.failed == "" {
			e.failed = ExtensionCrash
		}
		x.mu.Unlock()
		s.extensionFailed(ExtensionCrash, "Extension "+e.name+" exited")
		return reply{}
	}
}

// SetOutput names where external extensions' output (WatchExtension) goes: the environment's
// log output. Call it before Serve.
func (s *Server) SetOutput(out func([]byte)) { s.output = out }

// WatchExtension reads the external extension name's output, which nothing else writes to
// (sandbox.Extension.Output), until its end: each line goes to the environment's output and,
// for subscribers, is an "extension" telemetry event (not a "function" one). The end of the
// output is the end of the extension's process, however it ends, so a crash is seen at once
// rather than at the next deadline: before SHUTDOWN it is the extension's crash
// (Extension.Crash): during INIT it fails INIT, later it resets the environment.
func (s *Server) WatchExtension(name string, r io.Reader) {
	br := bufio.NewReaderSize(r, 16<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if s.output != nil {
				s.output(line)
			}
			if s.Wants(kindExtension) {
				s.Emit("extension", kindExtension, strings.TrimRight(string(line), "\r\n"))
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			break
		}
	}
	select {
	case <-s.closed: // the environment is gone: its end, not the extension's doing
		return
	default:
	}
	s.extensionEnded(name)
}

// extensionEnded records that the external extension name's process ended.
func (s *Server) extensionEnded(name string) {
	if name == "" {
		return
	}
	x := &s.ext
	x.mu.Lock()
	var e *extension
	for _, o := range x.list {
		if o.name == name {
			e = o
		}
	}
	crashed := false
	switch {
	case e == nil && x.expected[name]: // gone before it registered
		x.lost = true
		crashed = true
	case e != nil && e.shutdownSent: // it is done with SHUTDOWN: Shutdown need not wait longer
		e.busy = false
	case e != nil && e.failed == "":
		e.failed = ExtensionCrash
		crashed = true
	}
	x.notifyLocked()
	x.mu.Unlock()
	if crashed {
		s.extensionFailed(ExtensionCrash, "Extension "+name+" exited")
	}
}

// extensionError is an extension's /init/error or /exit/error.
func (s *Server) extensionError(r *http.Request, _ string) reply {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	var exit bool
	switch r.URL.Path {
	case "/2020-01-01/extension/init/error":
	case "/2020-01-01/extension/exit/error":
		exit = true
	default:
		return reply{status: http.StatusNotFound, body: errorJSON("InvalidRequest", "Unknown Extensions API path")}
	}
	if r.Method != http.MethodPost {
		return reply{status: http.StatusNotFound, body: errorJSON("InvalidRequest", "Unknown Extensions API path")}
	}
	id := r.Header.Get("Lambda-Extension-Identifier")
	if id == "" {
		return reply{status: http.StatusForbidden, body: errorJSON("Extension.MissingExtensionIdentifier", "Missing Lambda-Extension-Identifier header")}
	}
	e := s.extensionByID(id)
	if e == nil {
		return reply{status: http.StatusForbidden, body: errorJSON("Extension.UnknownExtensionIdentifier", "Unknown Lambda-Extension-Identifier")}
	}
	typ := r.Header.Get("Lambda-Extension-Function-Error-Type")
	if typ == "" {
		return reply{status: http.StatusForbidden, body: errorJSON("Extension.MissingHeader", "Lambda-Extension-Function-Error-Type not found")}
	}
	fail := ExtensionExitError
	if !exit {
		if s.ext.initDone.Load() {
			return reply{status: http.StatusForbidden, body: errorJSON("Extension.InvalidExtensionState",
				"State transition from Ready to InitError failed for extension "+e.name+". Error: INIT is over")}
		}
		fail = ExtensionInitError
	}
	s.ext.mu.Lock()
	if e.failed == "" {
		e.failed = fail
	}
	s.ext.mu.Unlock()
	s.extensionFailed(fail, "Extension "+e.name+" reported "+typ)
	return reply{status: http.StatusAccepted, body: statusOK}
}

// ExtensionFailed returns the error type of an extension that failed (crashed or reported an
// exit error), "" if none did.
func (s *Server) ExtensionFailed() string {
	s.ext.mu.Lock()
	defer s.ext.mu.Unlock()
	for _, e := range s.ext.list {
		if e.failed != "" {
			return e.failed
		}
	}
	return ""
}

// DispatchInvoke sends inv's INVOKE event to every extension registered for it. Call it only
// when HasExtensions.
func (s *Server) DispatchInvoke(inv *Invocation) {
	ev := struct {
		EventType          string   `json:"eventType"`
		DeadlineMs         int64    `json:"deadlineMs"`
		RequestID          string   `json:"requestId"`
		InvokedFunctionArn string   `json:"invokedFunctionArn"`
		Tracing            *tracing `json:"tracing,omitempty"`
	}{"INVOKE", inv.Deadline.UnixMilli(), inv.RequestID, inv.InvokedARN, nil}
	if inv.TraceID != "" {
		ev.Tracing = &tracing{Type: "X-Amzn-Trace-Id", Value: inv.TraceID}
	}
	b, _ := json.Marshal(ev)
	s.ext.mu.Lock()
	defer s.ext.mu.Unlock()
	for _, e := range s.ext.list {
		if e.invoke && e.failed == "" {
			select {
			case e.events <- b:
				e.busy = true
			default: // it has not taken the last one: it will be found busy or failed
			}
		}
	}
}

type tracing struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// ErrExtensionsTimedOut: an extension did not finish its event before the deadline.
var ErrExtensionsTimedOut = errors.New("runtimeapi: extensions did not finish before the deadline")

// AwaitExtensions waits until every extension given an event has asked for its next one. It
// returns the error type of an extension that failed (the environment must be reset), or
// ErrExtensionsTimedOut at the deadline, or ErrAborted if the environment closed.
func (s *Server) AwaitExtensions(deadline time.Time) (string, error) {
	var t *time.Timer
	for {
		pending, failed, wake := s.extensionsPending()
		if failed != "" {
			return failed, nil
		}
		if !pending {
			return "", nil
		}
		if t == nil {
			t = time.NewTimer(time.Until(deadline))
			defer t.Stop()
		}
		select {
		case <-wake:
		case <-t.C:
			return "", ErrExtensionsTimedOut
		case <-s.closed:
			return "", ErrAborted
		}
	}
}

// extensionsPending reports whether an extension holds an event, the error type of one that
// failed, and the channel closed at the next change.
func (s *Server) extensionsPending() (pending bool, failed string, wake <-chan struct{}) {
	s.ext.mu.Lock()
	defer s.ext.mu.Unlock()
	for _, e := range s.ext.list {
		if e.failed != "" && (e.busy || e.invoke) {
			failed = e.failed
		}
		if e.busy {
			pending = true
		}
	}
	if s.ext.wake == nil {
		s.ext.wake = make(chan struct{})
	}
	return pending, failed, s.ext.wake
}

// Shutdown reasons, as the SHUTDOWN event names them.
const (
	ShutdownSpindown = "spindown"
	ShutdownTimeout  = "timeout"
	ShutdownFailure  = "failure"
)

// shutdownBudget is the time extensions get after SHUTDOWN: 2,000 ms with external extensions,
// 500 ms with internal ones only (Lambda's).
func shutdownBudget(external bool) time.Duration {
	if external {
		return 2000 * time.Millisecond
	}
	return 500 * time.Millisecond
}

func shutdownEvent(reason string, deadline time.Time) []byte {
	b, _ := json.Marshal(struct {
		EventType      string `json:"eventType"`
		ShutdownReason string `json:"shutdownReason"`
		DeadlineMs     int64  `json:"deadlineMs"`
	}{"SHUTDOWN", reason, deadline.UnixMilli()})
	return b
}

// WantsShutdown reports whether an extension registered for SHUTDOWN: the environment must
// then run Shutdown before it is destroyed.
func (s *Server) WantsShutdown() bool {
	s.ext.mu.Lock()
	defer s.ext.mu.Unlock()
	for _, e := range s.ext.list {
		if e.shutdown && e.failed == "" {
			return true
		}
	}
	return false
}

// Shutdown sends SHUTDOWN with reason to every extension registered for it and waits until each
// has asked for its next event or the deadline (2 s with external extensions, else 500 ms)
// passes. Telemetry buffered so far is delivered first. The caller destroys the environment
// after it.
func (s *Server) Shutdown(reason string) {
	s.flushTelemetry()
	external := false
	s.ext.mu.Lock()
	for _, e := range s.ext.list {
		external = external || e.external
	}
	deadline := time.Now().Add(shutdownBudget(external))
	ev := shutdownEvent(reason, deadline)
	sent := false
	for _, e := range s.ext.list {
		if !e.shutdown || e.failed != "" || e.shutdownSent {
			continue
		}
		// An INVOKE it never took is dropped: SHUTDOWN is its next event.
		for len(e.events) > 0 {
			<-e.events
		}
		e.events <- ev
		e.busy, e.shutdownSent = true, true
		sent = true
	}
	s.ext.mu.Unlock()
	if !sent {
		return
	}
	_, _ = s.AwaitExtensions(deadline)
}
