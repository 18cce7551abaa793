package invoke

import (
	"context"
	"errors"
	"time"

	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
	"github.com/flint-run/flint/internal/worker"
)

var _ asyncq.Invoker = (*Service)(nil)
var _ asyncq.Settings = (*Service)(nil)

// InvokeAsync runs a queued event through the same path as a synchronous invoke: resolution,
// admission against the function's and the account's concurrency, and the function's pool.
func (s *Service) InvokeAsync(ctx context.Context, ev asyncq.Event) (asyncq.Outcome, error) {
	e, err := s.Lookup(ctx, ev.Function, ev.Qualifier)
	if errors.Is(err, ErrNotFound) {
		return asyncq.Outcome{}, asyncq.ErrGone
	}
	if err != nil {
		return asyncq.Outcome{}, err
	}
	release, err := s.Admit(e)
	if err != nil {
		// Reserved concurrency 0 stops the function: its events go straight to on-failure.
		return asyncq.Outcome{Throttled: true, Rejected: e.counters.reserved.Load() == 0}, nil
	}
	defer release()
	out := asyncq.Outcome{ExecutedVersion: e.Fn.Config.Version}
	invoked := e.Fn.Config.FunctionArn
	if ev.Qualifier != "" {
		invoked = ev.FunctionArn + ":" + ev.Qualifier
	}
	err = e.Pool.Invoke(ctx, worker.Request{RequestID: ev.RequestID, Payload: ev.Payload, InvokedARN: invoked},
		func(r *worker.Response) {
			out.Payload = append([]byte(nil), r.Payload...)
			out.FunctionError = r.FunctionError
		})
	if errors.Is(err, worker.ErrNoCapacity) {
		return asyncq.Outcome{Throttled: true}, nil
	}
	return out, err
}

// AsyncConfig returns the asynchronous invocation settings for function:qualifier: its event
// invoke config (Lambda's defaults without one) and the function's dead-letter target.
func (s *Service) AsyncConfig(ctx context.Context, function, qualifier string) (asyncq.InvokeConfig, error) {
	f, err := s.store.GetFunction(ctx, function)
	if errors.Is(err, store.ErrNotFound) {
		return asyncq.InvokeConfig{}, asyncq.ErrGone
	}
	if err != nil {
		return asyncq.InvokeConfig{}, err
	}
	cfg := asyncq.DefaultInvokeConfig
	if dl := f.Config.DeadLetterConfig; dl != nil {
		cfg.DeadLetter = dl.TargetArn
	}
	c, err := s.store.GetEventInvokeConfig(ctx, function, qualifier)
	if errors.Is(err, store.ErrNotFound) {
		return cfg, nil
	}
	if err != nil {
		return cfg, err
	}
	return applyEventInvokeConfig(cfg, c), nil
}

// applyEventInvokeConfig overlays a stored config on defaults.
func applyEventInvokeConfig(cfg asyncq.InvokeConfig, c *lambda.EventInvokeConfig) asyncq.InvokeConfig {
	if c.MaximumRetryAttempts != nil {
		cfg.MaximumRetryAttempts = *c.MaximumRetryAttempts
	}
	if c.MaximumEventAgeInSeconds != nil {
		cfg.MaximumEventAge = time.Duration(*c.MaximumEventAgeInSeconds) * time.Second
	}
	if d := c.DestinationConfig; d != nil {
		if d.OnSuccess != nil {
			cfg.OnSuccess = d.OnSuccess.Destination
		}
		if d.OnFailure != nil {
			cfg.OnFailure = d.OnFailure.Destination
		}
	}
	return cfg
}
