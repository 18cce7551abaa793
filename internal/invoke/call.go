package invoke

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/esm"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/telemetry"
	"github.com/flint-run/flint/internal/worker"
)

// Sentinels of the environments' side, for callers that branch on them without knowing the
// worker: the same values as the worker's.
var (
	// ErrAborted: the platform stopped the environment under the invocation (shutdown), or
	// could not place it. Not the function's error: a sync caller gets a service error, an
	// async event or a batch runs again.
	ErrAborted = worker.ErrAborted
	// ErrClosed: the node is shutting down.
	ErrClosed = worker.ErrClosed
	// ErrNoCapacity: the node's memory budget is taken by busy environments. Invoke returns
	// it wrapped in a *Throttled.
	ErrNoCapacity = worker.ErrNoCapacity
)

// Lambda's throttle reasons.
const (
	ReasonReserved = "ReservedFunctionConcurrentInvocationLimitExceeded"
	ReasonAccount  = "ConcurrentInvocationLimitExceeded"
)

// Throttled is the one form of every throttle Invoke returns: the account's or the function's
// concurrency, or the node's memory budget (which unwraps to ErrNoCapacity). Each is counted
// once, by Invoke, in the throttle metric.
type Throttled struct {
	Reason string // Lambda's ThrottleReason
	// Stopped: the function's reserved concurrency is 0; nothing of it runs until it is raised
	// (its async events go to on-failure at once instead of waiting).
	Stopped bool
	err     error
}

func (t *Throttled) Error() string { return "invoke: throttled: " + t.Reason }

func (t *Throttled) Unwrap() error { return t.err }

// Request is one invocation of a function, whichever way it came (Invoke, a function URL, an
// async event, an event source batch, a schedule through the async queue).
type Request struct {
	Function  string // the function's name
	Qualifier string // "" or $LATEST, a version, an alias
	// Resolved, when set, is what Lookup returned for Function:Qualifier: the Invoke API
	// resolves before it reads the body, so that an unknown function is a 404 whatever the
	// payload, and the invocation is not resolved twice.
	Resolved  *Entry
	RequestID string
	Payload   []byte
	// InvokedARN is the ARN the caller used ("": the function's unqualified ARN).
	InvokedARN    string
	ClientContext string // decoded JSON
	// TraceID is the caller's X-Ray trace header (X-Amzn-Trace-Id), "" for none: Invoke then
	// starts a new trace, as Lambda does, and the runtime gets its header either way.
	TraceID string
	// Trigger is how the invocation came (telemetry.Trigger*; "": the Invoke API or a URL);
	// Enqueued, for an async event, when it became due; Links, for a batch, the trace headers
	// of its records. They shape the exported trace only.
	Trigger  string
	Enqueued time.Time
	Links    []string
	Tail     bool // return the last 4 KB of the log in Response.LogResult
}

// Response is an invocation's result, handed to Invoke's respond. Payload is lent
// for the length of that call: it must be copied to be kept.
type Response struct {
	ExecutedVersion string
	Payload         []byte
	ContentType     string
	// FunctionError is "Unhandled" when the function or its runtime failed.
	FunctionError string
	LogResult     string
}

// Invoke is the one way to run a function: it resolves name and qualifier (alias routing
// included), admits the invocation against the account's and the function's concurrency,
// places it on an environment of the version's pool (a warm one, else a cold start within the
// node's memory budget), runs it and hands the result to respond. Errors: ErrNotFound,
// *Throttled (counted in the throttle metric), ErrAborted, ErrClosed, or the platform's own
// failure. A function's failure is not an error: it is Response.FunctionError.
//
// respond plays the part of net/http's ResponseWriter: Invoke calls it once, on the caller's
// goroutine, as soon as the runtime has answered and before the invocation's log record is
// written, so a sync caller is answered first; never when Invoke returns an error. Invoke
// keeps no reference to it, so a caller's closure stays on the caller's stack.
func (s *Service) Invoke(ctx context.Context, req Request, respond func(Response)) error {
	e := req.Resolved
	if e == nil {
		var err error
		if e, err = s.Lookup(ctx, req.Function, req.Qualifier); err != nil {
			return err
		}
	}
	adm, th := s.admit(ctx, e)
	if th != nil {
		s.throttled(e, th, req.RequestID, req.TraceID, req.Trigger, nil)
		return th
	}
	defer adm.release()
	arn := req.InvokedARN
	if arn == "" {
		arn = e.Fn.Config.FunctionArn
	}
	wreq := worker.Request{RequestID: req.RequestID, Payload: req.Payload, InvokedARN: arn,
		ClientContext: req.ClientContext, TraceID: req.TraceID, Tail: req.Tail}
	s.trace(&wreq, &req)
	r := s.router.Load()
	if r == nil { // a single node
		return s.run(ctx, e, wreq, respond)
	}
	// In a cluster a local idle environment still runs it with nothing more; only what would be
	// a cold start here asks where else it could run (route.go). A draining node sends all
	// its callers' invocations elsewhere.
	wreq.WarmOnly = true
	if s.draining.Load() {
		return r.place(ctx, e, wreq, respond)
	}
	err := s.run(ctx, e, wreq, respond)
	if errors.Is(err, worker.ErrNoWarm) {
		return r.place(ctx, e, wreq, respond)
	}
	return err
}

// run places an admitted invocation on this node's pool.
func (s *Service) run(ctx context.Context, e *Entry, wreq worker.Request, respond func(Response)) error {
	err := s.runHere(ctx, e, wreq, respond)
	if errors.Is(err, worker.ErrNoCapacity) {
		th := &Throttled{Reason: ReasonAccount, err: err}
		s.throttled(e, th, wreq.RequestID, "", "", wreq.Span)
		return th
	}
	return err
}

// runHere runs the invocation on this node's pool; worker.ErrNoCapacity says the node's memory
// budget had no room for the environment it needed (nothing ran).
func (s *Service) runHere(ctx context.Context, e *Entry, wreq worker.Request, respond func(Response)) error {
	version := e.Fn.Config.Version
	// The worker calls this before Pool.Invoke returns and keeps no reference: it stays on this
	// stack, and respond on the caller's, so the warm path allocates nothing for either.
	return e.pool.Invoke(ctx, wreq, func(r *worker.Response) {
		respond(Response{ExecutedVersion: version, Payload: r.Payload, ContentType: r.ContentType,
			FunctionError: r.FunctionError, LogResult: r.LogResult})
	})
}

// throttled counts a throttle and, with OTLP export on, exports its span: in the trace the
// invocation was given (sp) when it had one, else continuing the caller's header. With export
// off it adds nothing to the throttled path.
func (s *Service) throttled(e *Entry, th *Throttled, requestID, header, trigger string, sp *telemetry.Span) {
	if s.metrics != nil {
		s.metrics.Throttled(e.Fn.Config.FunctionName, e.Fn.Config.Version, th.Reason)
	}
	if s.tracer != nil {
		s.tracer.Throttled(telemetry.Throttle{Function: e.Fn.Config.FunctionName, Version: e.Fn.Config.Version,
			RequestID: requestID, Reason: th.Reason, Span: sp, Header: header, Trigger: trigger}, time.Now())
	}
}

// trace gives the invocation its trace header: the caller's, or a new root when it sent none
// (or a malformed one), as Lambda does. With OTLP export on, the header's Parent becomes the
// runtime's span and the span ids are chosen now; the spans are written when it has finished.
// With export off a caller's header passes as it came and nothing is allocated for it.
func (s *Service) trace(wreq *worker.Request, req *Request) {
	if s.tracer == nil {
		if _, ok := telemetry.ParseTraceHeader(req.TraceID); !ok {
			wreq.TraceID = telemetry.NewTraceHeader(time.Now(), false)
		}
		return
	}
	trigger := req.Trigger
	if trigger == "" {
		trigger = telemetry.TriggerHTTP
	}
	wreq.Span, wreq.TraceID = s.tracer.Begin(req.TraceID, time.Now(), trigger)
	wreq.Span.Enqueued = req.Enqueued
	for _, l := range req.Links {
		if tc, ok := telemetry.ParseTraceHeader(l); ok {
			wreq.Span.Links = append(wreq.Span.Links, tc)
		}
	}
}

// collect returns a respond that keeps the result, for callers that act on it after the
// invocation (async events, event source batches).
func collect(out *Response) func(Response) {
	return func(r Response) {
		*out = r
		out.Payload = append([]byte(nil), r.Payload...)
	}
}

var _ esm.Invoker = (*Service)(nil)

// InvokeBatch runs an event source mapping's batch (esm.Invoker) in a new trace, linked to the
// traces its records carry.
func (s *Service) InvokeBatch(ctx context.Context, functionArn string, payload []byte, traces []string) (esm.Result, error) {
	name, qualifier, err := lambda.ParseFunctionName(functionArn)
	if err != nil {
		return esm.Result{}, err
	}
	var out Response
	err = s.Invoke(ctx, Request{Function: name, Qualifier: qualifier, RequestID: uuid.NewString(), Payload: payload, InvokedARN: functionArn,
		Trigger: telemetry.TriggerDatasource, Links: traces}, collect(&out))
	var th *Throttled
	switch {
	case errors.Is(err, ErrNotFound):
		return esm.Result{}, esm.ErrGone
	case errors.As(err, &th):
		return esm.Result{Throttled: true}, nil
	}
	return esm.Result{Payload: out.Payload, FunctionError: out.FunctionError}, err
}

var _ asyncq.Invoker = (*Service)(nil)
