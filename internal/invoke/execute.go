package invoke

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/esm"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/worker"
)

// Execution is how a non-HTTP invocation (async event, event-source batch) went.
type Execution struct {
	Payload         []byte
	FunctionError   string
	ExecutedVersion string
	// Throttled: not run (concurrency or memory limits); Stopped: reserved concurrency is 0.
	Throttled, Stopped bool
}

// Execute runs req for name:qualifier through the same path as a synchronous invoke:
// resolution, admission against the function's and the account's concurrency, the pool.
// ErrNotFound means the function or qualifier is gone.
func (s *Service) Execute(ctx context.Context, name, qualifier string, req worker.Request) (Execution, error) {
	e, err := s.Lookup(ctx, name, qualifier)
	if err != nil {
		return Execution{}, err
	}
	release, err := s.Admit(e)
	if err != nil {
		return Execution{Throttled: true, Stopped: e.counters.reserved.Load() == 0}, nil
	}
	defer release()
	out := Execution{ExecutedVersion: e.Fn.Config.Version}
	if req.InvokedARN == "" {
		req.InvokedARN = e.Fn.Config.FunctionArn
	}
	err = e.Pool.Invoke(ctx, req, func(r *worker.Response) {
		out.Payload = append([]byte(nil), r.Payload...)
		out.FunctionError = r.FunctionError
	})
	if errors.Is(err, worker.ErrNoCapacity) {
		return Execution{Throttled: true}, nil
	}
	return out, err
}

var _ esm.Invoker = (*Service)(nil)

// InvokeBatch runs an event source mapping's batch (esm.Invoker).
func (s *Service) InvokeBatch(ctx context.Context, functionArn string, payload []byte) (esm.Result, error) {
	name, qualifier, err := lambda.ParseFunctionName(functionArn)
	if err != nil {
		return esm.Result{}, err
	}
	ex, err := s.Execute(ctx, name, qualifier, worker.Request{RequestID: uuid.NewString(), Payload: payload, InvokedARN: functionArn})
	if errors.Is(err, ErrNotFound) {
		return esm.Result{}, esm.ErrGone
	}
	return esm.Result{Payload: ex.Payload, FunctionError: ex.FunctionError, Throttled: ex.Throttled}, err
}

var _ asyncq.Invoker = (*Service)(nil)
