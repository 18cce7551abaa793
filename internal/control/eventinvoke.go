package control

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// eventInvokeStore is the asynchronous invocation configs' repository (store.EventInvokeConfigs).
type eventInvokeStore interface {
	Put(ctx context.Context, name, qualifier string, c *lambda.EventInvokeConfig) (uint64, error)
	Get(ctx context.Context, name, qualifier string) (*lambda.EventInvokeConfig, error)
	Delete(ctx context.Context, name, qualifier string) (uint64, error)
	List(ctx context.Context, name string) ([]*lambda.EventInvokeConfig, error)
}

// EventInvokeConfigs serves Put/Update/Get/Delete/ListFunctionEventInvokeConfig(s): retries,
// event age and destinations of asynchronous invocations, which the queue reads from the
// invocation view (a write waits until the view holds it). A config may be put on whatever an asynchronous invocation can
// address: its view resolves a name and qualifier as invocations do (invoke.Service).
type EventInvokeConfigs struct {
	resolver
	awaiter
	configs eventInvokeStore
	view    FunctionView
}

// EventInvokeConfigInput is Put- and UpdateFunctionEventInvokeConfig's request body.
type EventInvokeConfigInput struct {
	MaximumRetryAttempts     *int                      `json:"MaximumRetryAttempts"`
	MaximumEventAgeInSeconds *int                      `json:"MaximumEventAgeInSeconds"`
	DestinationConfig        *lambda.DestinationConfig `json:"DestinationConfig"`
}

// EventInvokeConfigList is ListFunctionEventInvokeConfigs's answer.
type EventInvokeConfigList struct {
	FunctionEventInvokeConfigs []*lambda.EventInvokeConfig `json:"FunctionEventInvokeConfigs"`
	NextMarker                 string                      `json:"NextMarker,omitempty"`
}

func checkEventInvokeConfig(c *lambda.EventInvokeConfig) error {
	if n := c.MaximumRetryAttempts; n != nil && (*n < 0 || *n > 2) {
		return apierr.Validation("1 validation error detected: Value '%d' at 'maximumRetryAttempts' failed to satisfy constraint: Member must have value between 0 and 2", *n)
	}
	if n := c.MaximumEventAgeInSeconds; n != nil && (*n < 60 || *n > 21600) {
		return apierr.Validation("1 validation error detected: Value '%d' at 'maximumEventAgeInSeconds' failed to satisfy constraint: Member must have value between 60 and 21600", *n)
	}
	if d := c.DestinationConfig; d != nil {
		for _, dest := range []*lambda.Destination{d.OnSuccess, d.OnFailure} {
			if dest != nil && dest.Destination != "" && !asyncq.ValidDestination(dest.Destination) {
				return apierr.InvalidParameterValue("The destination ARN %s is invalid. Flint delivers to functions (arn:aws:lambda:REGION:ACCOUNT:function:NAME) and JetStream streams (arn:flint:jetstream:REGION:ACCOUNT:stream/NAME).", dest.Destination)
			}
		}
	}
	return nil
}

// target reads the function t names and resolves t.Qualifier ($LATEST when empty).
func (s *EventInvokeConfigs) target(ctx context.Context, t Target) (name, qualifier string, err error) {
	f, err := s.unqualified(ctx, t)
	if err != nil {
		return "", "", err
	}
	name, q := f.Config.FunctionName, t.Qualifier
	if q != "" && q != lambda.LatestVersion {
		if _, err := s.view.Lookup(ctx, name, q); errors.Is(err, invoke.ErrNotFound) {
			return "", "", s.notFound(name, q)
		} else if err != nil {
			return "", "", err
		}
	}
	if q == "" {
		q = lambda.LatestVersion
	}
	return name, q, nil
}

// Put replaces the config of the function, version or alias t names.
func (s *EventInvokeConfigs) Put(ctx context.Context, t Target, in EventInvokeConfigInput) (*lambda.EventInvokeConfig, error) {
	return s.write(ctx, t, in, false)
}

// Update changes the fields in gives of the config t names (starting from none).
func (s *EventInvokeConfigs) Update(ctx context.Context, t Target, in EventInvokeConfigInput) (*lambda.EventInvokeConfig, error) {
	return s.write(ctx, t, in, true)
}

func (s *EventInvokeConfigs) write(ctx context.Context, t Target, in EventInvokeConfigInput, merge bool) (*lambda.EventInvokeConfig, error) {
	name, q, err := s.target(ctx, t)
	if err != nil {
		return nil, err
	}
	c := &lambda.EventInvokeConfig{}
	if merge {
		if old, err := s.configs.Get(ctx, name, q); err == nil {
			c = old
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if in.MaximumRetryAttempts != nil {
			c.MaximumRetryAttempts = in.MaximumRetryAttempts
		}
		if in.MaximumEventAgeInSeconds != nil {
			c.MaximumEventAgeInSeconds = in.MaximumEventAgeInSeconds
		}
		if in.DestinationConfig != nil {
			c.DestinationConfig = in.DestinationConfig
		}
	} else {
		c = &lambda.EventInvokeConfig{MaximumRetryAttempts: in.MaximumRetryAttempts,
			MaximumEventAgeInSeconds: in.MaximumEventAgeInSeconds, DestinationConfig: in.DestinationConfig}
	}
	c.FunctionArn = s.account.FunctionARN(name, q)
	c.LastModified = float64(time.Now().UnixMilli()) / 1000
	if err := checkEventInvokeConfig(c); err != nil {
		return nil, err
	}
	rev, err := s.configs.Put(ctx, name, q, c)
	if err != nil {
		return nil, err
	}
	s.await(ctx, invoke.EventInvokeConfigs, rev)
	return c, nil
}

func (s *EventInvokeConfigs) configNotFound(name, q string) error {
	return apierr.ResourceNotFound("The function %s doesn't have an EventInvokeConfig", s.account.FunctionARN(name, q))
}

// Get returns the config of the function, version or alias t names.
func (s *EventInvokeConfigs) Get(ctx context.Context, t Target) (*lambda.EventInvokeConfig, error) {
	name, q, err := s.target(ctx, t)
	if err != nil {
		return nil, err
	}
	c, err := s.configs.Get(ctx, name, q)
	if errors.Is(err, store.ErrNotFound) {
		return nil, s.configNotFound(name, q)
	}
	return c, err
}

// Delete removes the config of the function, version or alias t names.
func (s *EventInvokeConfigs) Delete(ctx context.Context, t Target) error {
	name, q, err := s.target(ctx, t)
	if err != nil {
		return err
	}
	rev, err := s.configs.Delete(ctx, name, q)
	if errors.Is(err, store.ErrNotFound) {
		return s.configNotFound(name, q)
	} else if err != nil {
		return err
	}
	s.await(ctx, invoke.EventInvokeConfigs, rev)
	return nil
}

// List returns a page of the function's configs; the marker is the index of the page's first.
// page reads the request's paging parameters once the function is found (see Provisioned.List).
func (s *EventInvokeConfigs) List(ctx context.Context, t Target, page func() (Page, error)) (*EventInvokeConfigList, error) {
	f, err := s.unqualified(ctx, t)
	if err != nil {
		return nil, err
	}
	p, err := page()
	if err != nil {
		return nil, err
	}
	all, err := s.configs.List(ctx, f.Config.FunctionName)
	if err != nil {
		return nil, err
	}
	out := &EventInvokeConfigList{FunctionEventInvokeConfigs: []*lambda.EventInvokeConfig{}}
	start := 0
	if p.Marker != "" {
		if n, err := strconv.Atoi(p.Marker); err == nil && n > 0 && n <= len(all) {
			start = n
		}
	}
	end := min(start+p.MaxItems, len(all))
	out.FunctionEventInvokeConfigs = append(out.FunctionEventInvokeConfigs, all[start:end]...)
	if end < len(all) {
		out.NextMarker = strconv.Itoa(end)
	}
	return out, nil
}
