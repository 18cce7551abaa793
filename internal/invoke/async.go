package invoke

import (
	"context"
	"errors"
	"time"

	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
	"github.com/flint-run/flint/internal/telemetry"
)

var _ asyncq.Settings = (*Service)(nil)

// InvokeAsync runs a queued event through Invoke with the event's request id (asyncq.Invoker).
func (s *Service) InvokeAsync(ctx context.Context, ev asyncq.Event) (asyncq.Outcome, error) {
	invoked := ""
	if ev.Qualifier != "" {
		invoked = ev.FunctionArn + ":" + ev.Qualifier
	}
	var out Response
	due := ev.EnqueuedAt
	if ev.NotBefore.After(due) { // a retry: it waited in the queue from its retry delay's end
		due = ev.NotBefore
	}
	err := s.Invoke(ctx, Request{Function: ev.Function, Qualifier: ev.Qualifier, RequestID: ev.RequestID, Payload: ev.Payload,
		InvokedARN: invoked, TraceID: ev.TraceID, Trigger: telemetry.TriggerPubSub, Enqueued: due}, collect(&out))
	var th *Throttled
	switch {
	case errors.Is(err, ErrNotFound):
		return asyncq.Outcome{}, asyncq.ErrGone
	case errors.As(err, &th):
		// Reserved concurrency 0 stops the function: its events go straight to on-failure.
		return asyncq.Outcome{Throttled: true, Rejected: th.Stopped}, nil
	}
	return asyncq.Outcome{Payload: out.Payload, FunctionError: out.FunctionError, ExecutedVersion: out.ExecutedVersion}, err
}

// AsyncConfig returns the asynchronous invocation settings for function:qualifier: its event
// invoke config (Lambda's defaults without one) and the function's dead-letter target.
func (s *Service) AsyncConfig(ctx context.Context, function, qualifier string) (asyncq.InvokeConfig, error) {
	f, err := s.store.Functions.Get(ctx, function)
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
	c, err := s.store.EventInvokeConfigs.Get(ctx, function, qualifier)
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
