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
// invoke config (Lambda's defaults without one) and the dead-letter target of the version it
// runs. Both come from the view (the queue asks for every event it takes; reading them from
// the store was most of the cost of settling one), which a write to either waits for.
func (s *Service) AsyncConfig(ctx context.Context, function, qualifier string) (asyncq.InvokeConfig, error) {
	e, err := s.Lookup(ctx, function, qualifier)
	if errors.Is(err, ErrNotFound) {
		return asyncq.InvokeConfig{}, asyncq.ErrGone
	}
	if err != nil {
		return asyncq.InvokeConfig{}, err
	}
	cfg := asyncq.DefaultInvokeConfig
	if dl := e.Fn.Config.DeadLetterConfig; dl != nil {
		cfg.DeadLetter = dl.TargetArn
	}
	s.mu.RLock()
	it := s.eic[store.EventInvokeConfigKey(function, qualifier)]
	s.mu.RUnlock()
	if it == nil || it.c == nil {
		return cfg, nil
	}
	return overlayEventInvokeConfig(cfg, it.c), nil
}

// applyEventInvokeConfig installs revision rev of an asynchronous invocation config (c nil:
// deleted) unless a newer one is known.
func (s *Service) applyEventInvokeConfig(key string, rev uint64, c *lambda.EventInvokeConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.eic[key]; old != nil && rev <= old.rev {
		return
	}
	if c == nil {
		// A tombstone keeps its revision: an older put replayed after it must not revive it.
		s.eic[key] = &eicItem{rev: rev}
		return
	}
	s.eic[key] = &eicItem{rev: rev, c: c}
}

// overlayEventInvokeConfig overlays a stored config on defaults.
func overlayEventInvokeConfig(cfg asyncq.InvokeConfig, c *lambda.EventInvokeConfig) asyncq.InvokeConfig {
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
