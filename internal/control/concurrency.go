package control

import (
	"context"
	"errors"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// Concurrency serves PutFunctionConcurrency, GetFunctionConcurrency and
// DeleteFunctionConcurrency: a function's reserved concurrency, kept on its record.
type Concurrency struct {
	resolver
	awaiter
	functions functionStore
	limit     accountLimit
	// provisioned lists the function's provisioned-concurrency configs: a reservation may not
	// go below their total.
	provisioned interface {
		List(ctx context.Context, name string) (map[string]*lambda.ProvisionedConcurrency, error)
	}
}

// FunctionConcurrency is a function's reserved concurrency, as PutFunctionConcurrency takes it
// and the concurrency operations and GetFunction answer it (absent: none reserved).
type FunctionConcurrency struct {
	ReservedConcurrentExecutions *int `json:"ReservedConcurrentExecutions,omitempty"`
}

// Put reserves in.ReservedConcurrentExecutions for the function t names.
func (s *Concurrency) Put(ctx context.Context, t Target, in FunctionConcurrency) (*FunctionConcurrency, error) {
	if in.ReservedConcurrentExecutions == nil {
		return nil, apierr.Validation("1 validation error detected: Value null at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must not be null")
	}
	n := *in.ReservedConcurrentExecutions
	if n < 0 {
		return nil, apierr.Validation("1 validation error detected: Value '%d' at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 0", n)
	}
	name, q, err := s.name(t)
	if err != nil {
		return nil, err
	}
	if q != "" {
		return nil, apierr.InvalidParameterValue("This operation is permitted on Lambda functions only. Aliases and versions do not support this operation. Please specify either a function name or an unqualified function ARN.")
	}
	f, err := s.functions.Get(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, s.notFound(name, lambda.LatestVersion) // AWS names $LATEST here
	} else if err != nil {
		return nil, err
	}
	if err := s.reserve(ctx, f, &n); err != nil {
		return nil, err
	}
	return &FunctionConcurrency{ReservedConcurrentExecutions: &n}, nil
}

// Get returns the function's reservation.
func (s *Concurrency) Get(ctx context.Context, t Target) (*FunctionConcurrency, error) {
	f, err := s.latest(ctx, t)
	if err != nil {
		return nil, err
	}
	return &FunctionConcurrency{ReservedConcurrentExecutions: f.ReservedConcurrency}, nil
}

// Delete removes the function's reservation; removing none succeeds.
func (s *Concurrency) Delete(ctx context.Context, t Target) error {
	f, err := s.latest(ctx, t)
	if err != nil {
		return err
	}
	return s.reserve(ctx, f, nil)
}

// reserve stores a function's reservation, keeping Lambda's rule that the unreserved pool never
// drops under 100 (or the whole account limit, when that is smaller).
func (s *Concurrency) reserve(ctx context.Context, f store.Function, n *int) error {
	for attempt := 0; ; attempt++ {
		if n != nil {
			all, err := s.functions.List(ctx)
			if err != nil {
				return err
			}
			others := 0
			for _, g := range all {
				if g.Config.FunctionName != f.Config.FunctionName && g.ReservedConcurrency != nil {
					others += *g.ReservedConcurrency
				}
			}
			limit := s.limit.AccountLimit()
			if limit-others-*n < min(lambda.MinUnreservedExecution, limit) {
				return apierr.InvalidParameterValue("Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [%d].", min(lambda.MinUnreservedExecution, limit))
			}
			pcs, err := s.provisioned.List(ctx, f.Config.FunctionName)
			if err != nil {
				return err
			}
			total := 0
			for _, pc := range pcs {
				total += pc.Requested
			}
			if total > *n {
				return apierr.InvalidParameterValue(" ReservedConcurrentExecutions  %d should not be lower than function's total provisioned concurrency [%d].", *n, total)
			}
		}
		next := *f.Function
		next.ReservedConcurrency = n
		rev, err := s.functions.Update(ctx, &next, f.Revision)
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			if f, err = s.functions.Get(ctx, f.Config.FunctionName); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		s.await(ctx, invoke.Functions, rev)
		return nil
	}
}
