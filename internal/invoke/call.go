package invoke

import (
	"context"
	"errors"
	"sync"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/esm"
	"github.com/flint-run/flint/internal/lambda"
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
	TraceID       string
	Tail          bool // return the last 4 KB of the log in Response.LogResult
}

// Response is an invocation's result. It is lent to ResponseWriter.WriteResponse for the
// length of that call: Payload must be copied to be kept.
type Response struct {
	ExecutedVersion string
	Payload         []byte
	ContentType     string
	// FunctionError is "Unhandled" when the function or its runtime failed.
	FunctionError string
	LogResult     string
}

// ResponseWriter receives an invocation's result, like net/http's: Invoke calls WriteResponse
// once, on the caller's goroutine, as soon as the runtime has answered and before the
// invocation's log record is written, so a sync caller is answered first. It is not called when
// Invoke returns an error.
type ResponseWriter interface {
	WriteResponse(*Response)
}

// Invoke is the one way to run a function: it resolves name and qualifier (alias routing
// included), admits the invocation against the account's and the function's concurrency,
// places it on an environment of the version's pool (a warm one, else a cold start within the
// node's memory budget), runs it and writes the result to w. Errors: ErrNotFound, *Throttled
// (counted in the throttle metric), ErrAborted, ErrClosed, or the platform's own failure. A
// function's failure is not an error: it is Response.FunctionError.
func (s *Service) Invoke(ctx context.Context, req Request, w ResponseWriter) error {
	e := req.Resolved
	if e == nil {
		var err error
		if e, err = s.Lookup(ctx, req.Function, req.Qualifier); err != nil {
			return err
		}
	}
	release, th := s.admit(e)
	if th != nil {
		s.throttled(e, th)
		return th
	}
	defer release()
	arn := req.InvokedARN
	if arn == "" {
		arn = e.Fn.Config.FunctionArn
	}
	d := deliveries.Get().(*delivery)
	d.w, d.resp.ExecutedVersion = w, e.Fn.Config.Version
	err := e.pool.Invoke(ctx, worker.Request{RequestID: req.RequestID, Payload: req.Payload, InvokedARN: arn,
		ClientContext: req.ClientContext, TraceID: req.TraceID, Tail: req.Tail}, d.respond)
	*d = delivery{respond: d.respond}
	deliveries.Put(d)
	if errors.Is(err, worker.ErrNoCapacity) {
		th := &Throttled{Reason: ReasonAccount, err: err}
		s.throttled(e, th)
		return th
	}
	return err
}

func (s *Service) throttled(e *Entry, th *Throttled) {
	if s.metrics != nil {
		s.metrics.Throttled(e.Fn.Config.FunctionName, th.Reason)
	}
}

// delivery hands the worker's result to the caller's ResponseWriter. Deliveries are pooled,
// each with its respond bound once, so that the warm path allocates nothing for it.
type delivery struct {
	w       ResponseWriter
	resp    Response
	respond func(*worker.Response)
}

var deliveries = sync.Pool{New: func() any {
	d := &delivery{}
	d.respond = d.deliver
	return d
}}

func (d *delivery) deliver(r *worker.Response) {
	d.resp.Payload, d.resp.ContentType, d.resp.FunctionError, d.resp.LogResult = r.Payload, r.ContentType, r.FunctionError, r.LogResult
	d.w.WriteResponse(&d.resp)
}

// collected keeps a result for callers that act on it after the invocation (async events,
// event source batches).
type collected struct{ Response }

func (c *collected) WriteResponse(r *Response) {
	c.Response = *r
	c.Payload = append([]byte(nil), r.Payload...)
}

var _ esm.Invoker = (*Service)(nil)

// InvokeBatch runs an event source mapping's batch (esm.Invoker).
func (s *Service) InvokeBatch(ctx context.Context, functionArn string, payload []byte) (esm.Result, error) {
	name, qualifier, err := lambda.ParseFunctionName(functionArn)
	if err != nil {
		return esm.Result{}, err
	}
	var out collected
	err = s.Invoke(ctx, Request{Function: name, Qualifier: qualifier, RequestID: uuid.NewString(), Payload: payload, InvokedARN: functionArn}, &out)
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
