package control

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync"
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
	return nil
}

// destinationModel is AWS's pattern for a destination ARN; Flint's own JetStream streams
// (arn:flint:jetstream:…) are destinations too, outside it.
const destinationModel = `$|kafka://([^.]([a-zA-Z0-9\-_.]{0,248}))|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1})?:(\d{12})?:(.*)`

var destinationRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(?:kafka://[^.][a-zA-Z0-9_.-]{0,248}|arn:aws[a-zA-Z0-9-]*:[a-zA-Z0-9-]+:(?:(?:eusc-)?[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d)?:(?:\d{12})?:.*)$`)
})

// checkDestinations checks a config's destinations in AWS's order: the model's pattern, then
// what each names (a function that exists and is not the config's own, or a Flint stream).
func (s *EventInvokeConfigs) checkDestinations(ctx context.Context, name string, d *lambda.DestinationConfig) error {
	if d == nil {
		return nil
	}
	dests := []struct {
		field string
		d     *lambda.Destination
	}{{"onSuccess", d.OnSuccess}, {"onFailure", d.OnFailure}}
	for _, x := range dests {
		if x.d == nil || x.d.Destination == "" || strings.HasPrefix(x.d.Destination, "arn:flint:") {
			continue
		}
		if !destinationRE().MatchString(x.d.Destination) {
			return apierr.Validation("1 validation error detected: Value '%s' at 'destinationConfig.%s.destination' failed to satisfy constraint: Member must satisfy regular expression pattern: %s", x.d.Destination, x.field, destinationModel)
		}
	}
	for _, x := range dests {
		if x.d == nil || x.d.Destination == "" {
			continue
		}
		arn := x.d.Destination
		if !asyncq.ValidDestination(arn) {
			return apierr.InvalidParameterValue("The provided destination config DestinationConfig(onSuccess=%s, onFailure=%s) is invalid.",
				destinationString("OnSuccess", d.OnSuccess), destinationString("OnFailure", d.OnFailure))
		}
		if !strings.HasPrefix(arn, "arn:aws") {
			continue // a Flint stream
		}
		ref, err := lambda.ParseFunctionRef(arn)
		if err == nil && ref.Name == name && ref.Account == s.account.ID {
			return apierr.InvalidParameterValue("You can't specify the function as a destination for itself.")
		}
		if err == nil && ref.Region == s.account.Region && ref.Account == s.account.ID {
			if _, err := s.functions.Get(ctx, ref.Name); err == nil {
				continue
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		return apierr.InvalidParameterValue("The destination ARN %s is invalid.", arn)
	}
	return nil
}

// destinationString renders a destination as AWS's message does (Java's toString).
func destinationString(kind string, d *lambda.Destination) string {
	if d == nil {
		return "null"
	}
	return kind + "(destination=" + d.Destination + ")"
}

// withEmptyDestinations is the config as AWS answers it: DestinationConfig and both of its
// destinations always present, empty when not set.
func withEmptyDestinations(c *lambda.EventInvokeConfig) *lambda.EventInvokeConfig {
	out := *c
	d := lambda.DestinationConfig{OnSuccess: &lambda.Destination{}, OnFailure: &lambda.Destination{}}
	if c.DestinationConfig != nil {
		if c.DestinationConfig.OnSuccess != nil {
			d.OnSuccess = c.DestinationConfig.OnSuccess
		}
		if c.DestinationConfig.OnFailure != nil {
			d.OnFailure = c.DestinationConfig.OnFailure
		}
	}
	out.DestinationConfig = &d
	return &out
}

// AWS's 404 messages: the writes (and List) say the function does not exist; Get and Delete
// that the addressed function has no config.
const eicFunctionMissing = "The function doesn't exist."

// target resolves the function, version or alias t names (a qualifier in the name, fn:alias or
// an alias ARN, or the Qualifier parameter; $LATEST when neither). write says whether a
// missing function is reported as the writes report it.
func (s *EventInvokeConfigs) target(ctx context.Context, t Target, write bool) (name, qualifier string, err error) {
	name, q, err := s.name(t)
	if err != nil {
		return "", "", err
	}
	if q == "" {
		q = lambda.LatestVersion
	}
	missing := func() error {
		if write {
			return apierr.ResourceNotFound(eicFunctionMissing)
		}
		return s.configNotFound(name, q)
	}
	if _, err := s.functions.Get(ctx, name); errors.Is(err, store.ErrNotFound) {
		return "", "", missing()
	} else if err != nil {
		return "", "", err
	}
	if q != lambda.LatestVersion {
		if _, err := s.view.Lookup(ctx, name, q); errors.Is(err, invoke.ErrNotFound) {
			return "", "", missing()
		} else if err != nil {
			return "", "", err
		}
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
	if in.MaximumRetryAttempts == nil && in.MaximumEventAgeInSeconds == nil && in.DestinationConfig == nil {
		return nil, apierr.InvalidParameterValue("You must specify at least one of error handling or destination setting.")
	}
	name, q, err := s.target(ctx, t, true)
	if err != nil {
		return nil, err
	}
	if err := checkEventInvokeConfig(&lambda.EventInvokeConfig{MaximumRetryAttempts: in.MaximumRetryAttempts,
		MaximumEventAgeInSeconds: in.MaximumEventAgeInSeconds}); err != nil {
		return nil, err
	}
	if err := s.checkDestinations(ctx, name, in.DestinationConfig); err != nil {
		return nil, err
	}
	c := &lambda.EventInvokeConfig{}
	if merge {
		old, err := s.configs.Get(ctx, name, q)
		if errors.Is(err, store.ErrNotFound) {
			return nil, s.configNotFound(name, q)
		} else if err != nil {
			return nil, err
		}
		c = old
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
	rev, err := s.configs.Put(ctx, name, q, c)
	if err != nil {
		return nil, err
	}
	s.await(ctx, invoke.EventInvokeConfigs, rev)
	return withEmptyDestinations(c), nil
}

func (s *EventInvokeConfigs) configNotFound(name, q string) error {
	return apierr.ResourceNotFound("The function %s doesn't have an EventInvokeConfig", s.account.FunctionARN(name, q))
}

// Get returns the config of the function, version or alias t names.
func (s *EventInvokeConfigs) Get(ctx context.Context, t Target) (*lambda.EventInvokeConfig, error) {
	name, q, err := s.target(ctx, t, false)
	if err != nil {
		return nil, err
	}
	c, err := s.configs.Get(ctx, name, q)
	if errors.Is(err, store.ErrNotFound) {
		return nil, s.configNotFound(name, q)
	}
	if err != nil {
		return nil, err
	}
	return withEmptyDestinations(c), nil
}

// Delete removes the config of the function, version or alias t names.
func (s *EventInvokeConfigs) Delete(ctx context.Context, t Target) error {
	name, q, err := s.target(ctx, t, false)
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
	var nf *apierr.Error
	if errors.As(err, &nf) && nf.Code == "ResourceNotFoundException" {
		return nil, apierr.ResourceNotFound(eicFunctionMissing)
	}
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
	for _, c := range all[start:end] {
		out.FunctionEventInvokeConfigs = append(out.FunctionEventInvokeConfigs, withEmptyDestinations(c))
	}
	if end < len(all) {
		out.NextMarker = strconv.Itoa(end)
	}
	return out, nil
}
