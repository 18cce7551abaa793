package control

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// provisionedStore is the provisioned-concurrency configs' repository (store.Provisioned).
type provisionedStore interface {
	Put(ctx context.Context, name, qualifier string, pc *lambda.ProvisionedConcurrency) (uint64, error)
	Get(ctx context.Context, name, qualifier string) (*lambda.ProvisionedConcurrency, uint64, error)
	Delete(ctx context.Context, name, qualifier string) (uint64, error)
	List(ctx context.Context, name string) (map[string]*lambda.ProvisionedConcurrency, error)
}

// capacity is what provisioned concurrency asks the invocation service (invoke.Service): the
// account's concurrency left unreserved, and how many environments of a qualifier are ready.
type capacity interface {
	AccountLimit() int
	ReservedTotal() int
	Provisioned(ctx context.Context, name, qualifier string) (requested, ready int, err error)
}

// Provisioned serves Put/Get/Delete/ListProvisionedConcurrencyConfig(s).
type Provisioned struct {
	resolver
	awaiter
	configs  provisionedStore
	capacity capacity
}

// ProvisionedInput is PutProvisionedConcurrencyConfig's request body.
type ProvisionedInput struct {
	ProvisionedConcurrentExecutions *int `json:"ProvisionedConcurrentExecutions"`
}

// ProvisionedConfig is a provisioned-concurrency config as the API returns it.
type ProvisionedConfig struct {
	FunctionArn                              string `json:"FunctionArn,omitempty"`
	RequestedProvisionedConcurrentExecutions int    `json:"RequestedProvisionedConcurrentExecutions"`
	AvailableProvisionedConcurrentExecutions int    `json:"AvailableProvisionedConcurrentExecutions"`
	AllocatedProvisionedConcurrentExecutions int    `json:"AllocatedProvisionedConcurrentExecutions"`
	Status                                   string `json:"Status"`
	StatusReason                             string `json:"StatusReason,omitempty"`
	LastModified                             string `json:"LastModified"`
}

// ProvisionedList is ListProvisionedConcurrencyConfigs's answer.
type ProvisionedList struct {
	ProvisionedConcurrencyConfigs []ProvisionedConfig `json:"ProvisionedConcurrencyConfigs"`
	NextMarker                    string              `json:"NextMarker,omitempty"`
}

// target reads the function t names and the published version or alias its qualifier names
// (the Qualifier parameter or in the name). latest is the operation's refusal of $LATEST.
func (s *Provisioned) target(ctx context.Context, t Target, latest string) (store.Function, string, error) {
	name, q, err := s.name(t)
	if err != nil {
		return store.Function{}, "", err
	}
	if q == "" {
		return store.Function{}, "", apierr.Validation("1 validation error detected: Value null at 'qualifier' failed to satisfy constraint: Member must not be null")
	}
	// AWS names the qualifier asked for, as a version or as an alias, even when the function
	// itself is missing.
	missing := func() error {
		if isNumber(q) {
			return s.notFound(name, q)
		}
		return apierr.ResourceNotFound("Cannot find alias arn: %s", s.account.FunctionARN(name, q))
	}
	f, err := s.functions.Get(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return f, "", missing()
	} else if err != nil {
		return f, "", err
	}
	if q == lambda.LatestVersion {
		return f, "", apierr.InvalidParameterValue("%s", latest)
	}
	if n, err := strconv.Atoi(q); err == nil {
		if _, _, err := s.versions.Get(ctx, name, n); errors.Is(err, store.ErrNotFound) {
			return f, "", missing()
		} else if err != nil {
			return f, "", err
		}
		return f, q, nil
	}
	if _, err := s.aliases.Get(ctx, name, q); errors.Is(err, store.ErrNotFound) {
		return f, "", missing()
	} else if err != nil {
		return f, "", err
	}
	return f, q, nil
}

// AWS's refusals of $LATEST: Put's, and Get's and Delete's.
const (
	putLatest = "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
	useLatest = "The function resource provided must be an alias or a published version."
)

// conflict refuses a config on a version that an alias with a config points to, or on an alias
// whose version has one: one version's environments are provisioned once.
func (s *Provisioned) conflict(ctx context.Context, name, q string) error {
	all, err := s.configs.List(ctx, name)
	if err != nil {
		return err
	}
	version := func(alias string) (string, error) {
		al, err := s.aliases.Get(ctx, name, alias)
		if err != nil {
			return "", err
		}
		return al.FunctionVersion, nil
	}
	if !isNumber(q) {
		v, err := version(q)
		if err != nil {
			return err
		}
		if _, ok := all[v]; ok {
			return apierr.ResourceConflict("Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version")
		}
		return nil
	}
	for other := range all {
		if isNumber(other) || other == q {
			continue
		}
		if v, err := version(other); err == nil && v == q {
			return apierr.ResourceConflict("Version is pointed by a Provisioned Concurrency alias")
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// Put sets the provisioned concurrency of the version or alias t names. Its environments start
// after the answer: the config returned is IN_PROGRESS until they are ready.
func (s *Provisioned) Put(ctx context.Context, t Target, in ProvisionedInput) (*ProvisionedConfig, error) {
	if in.ProvisionedConcurrentExecutions == nil {
		return nil, apierr.Validation("1 validation error detected: Value null at 'provisionedConcurrentExecutions' failed to satisfy constraint: Member must not be null")
	}
	if *in.ProvisionedConcurrentExecutions < 1 {
		return nil, apierr.Validation("1 validation error detected: Value '%d' at 'provisionedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 1", *in.ProvisionedConcurrentExecutions)
	}
	n := *in.ProvisionedConcurrentExecutions
	f, q, err := s.target(ctx, t, putLatest)
	if err != nil {
		return nil, err
	}
	if err := s.conflict(ctx, f.Config.FunctionName, q); err != nil {
		return nil, err
	}
	if f.ReservedConcurrency != nil {
		// The function's other versions and aliases count against its reservation too.
		all, err := s.configs.List(ctx, f.Config.FunctionName)
		if err != nil {
			return nil, err
		}
		total := n
		for other, pc := range all {
			if other != q {
				total += pc.Requested
			}
		}
		if total > *f.ReservedConcurrency {
			return nil, apierr.InvalidParameterValue("Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function")
		}
	}
	if limit := s.capacity.AccountLimit() - s.capacity.ReservedTotal(); f.ReservedConcurrency == nil && limit-n < min(lambda.MinUnreservedExecution, limit) {
		return nil, apierr.InvalidParameterValue("Specified ConcurrentExecutions for function is greater than account's unreserved concurrency [%d].", limit)
	}
	pc := &lambda.ProvisionedConcurrency{Requested: n, LastModified: lambda.FormatTime(time.Now())}
	name := f.Config.FunctionName
	rev, err := s.configs.Put(ctx, name, q, pc)
	if err != nil {
		return nil, err
	}
	s.await(ctx, invoke.Provisioned, rev)
	// What was accepted, as Lambda answers a Put: IN_PROGRESS with nothing allocated yet; Get
	// shows the environments as they become ready. (Reading them here raced their start: a fast
	// runtime could be READY before the answer, so the answer depended on timing.)
	return &ProvisionedConfig{RequestedProvisionedConcurrentExecutions: n, LastModified: pc.LastModified, Status: "IN_PROGRESS"}, nil
}

// status is a config with the environments ready for it now.
func (s *Provisioned) status(ctx context.Context, name, q string, pc *lambda.ProvisionedConcurrency) ProvisionedConfig {
	out := ProvisionedConfig{RequestedProvisionedConcurrentExecutions: pc.Requested, LastModified: pc.LastModified, Status: "IN_PROGRESS"}
	if _, ready, err := s.capacity.Provisioned(ctx, name, q); err == nil {
		out.AvailableProvisionedConcurrentExecutions, out.AllocatedProvisionedConcurrentExecutions = ready, ready
		if ready >= pc.Requested {
			out.Status = "READY"
		}
	}
	return out
}

func configNotFound() error {
	return apierr.ProvisionedConcurrencyConfigNotFound("No Provisioned Concurrency Config found for this function")
}

// Get returns the provisioned-concurrency config of the version or alias t names.
func (s *Provisioned) Get(ctx context.Context, t Target) (*ProvisionedConfig, error) {
	f, q, err := s.target(ctx, t, useLatest)
	if err != nil {
		return nil, err
	}
	name := f.Config.FunctionName
	pc, _, err := s.configs.Get(ctx, name, q)
	if errors.Is(err, store.ErrNotFound) {
		return nil, configNotFound()
	}
	if err != nil {
		return nil, err
	}
	out := s.status(ctx, name, q, pc)
	return &out, nil
}

// Delete removes the provisioned-concurrency config of the version or alias t names; its
// environments are no longer kept once Delete returns. Deleting a config that does not exist
// succeeds, as on AWS.
func (s *Provisioned) Delete(ctx context.Context, t Target) error {
	f, q, err := s.target(ctx, t, useLatest)
	if err != nil {
		return err
	}
	name := f.Config.FunctionName
	rev, err := s.configs.Delete(ctx, name, q)
	if errors.Is(err, store.ErrNotFound) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return err
	}
	s.await(ctx, invoke.Provisioned, rev)
	return nil
}

// List returns a page of the function's provisioned-concurrency configs, by qualifier. page
// reads the request's paging parameters: it is called once the function is found, so that a
// missing function is what a request with both faults hears of.
func (s *Provisioned) List(ctx context.Context, t Target, page func() (Page, error)) (*ProvisionedList, error) {
	f, err := s.unqualified(ctx, t)
	if err != nil {
		return nil, err
	}
	p, err := page()
	if err != nil {
		return nil, err
	}
	name := f.Config.FunctionName
	all, err := s.configs.List(ctx, name)
	if err != nil {
		return nil, err
	}
	out := &ProvisionedList{ProvisionedConcurrencyConfigs: []ProvisionedConfig{}}
	keys := make([]string, 0, len(all))
	for q := range all {
		keys = append(keys, q)
	}
	slices.Sort(keys)
	last := ""
	for _, q := range keys {
		if p.Marker != "" && q <= p.Marker {
			continue
		}
		if len(out.ProvisionedConcurrencyConfigs) == p.MaxItems {
			out.NextMarker = last
			break
		}
		last = q
		c := s.status(ctx, name, q, all[q])
		c.FunctionArn = s.account.FunctionARN(name, q)
		out.ProvisionedConcurrencyConfigs = append(out.ProvisionedConcurrencyConfigs, c)
	}
	return out, nil
}
