package api

import (
	"errors"
	"net/http"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

type concurrency struct {
	ReservedConcurrentExecutions *int `json:"ReservedConcurrentExecutions,omitempty"`
}

func (a *API) putFunctionConcurrency(w http.ResponseWriter, r *http.Request, _ string) error {
	var in concurrency
	if err := decodeBody(r, 1<<16, "PutFunctionConcurrency", &in); err != nil {
		return err
	}
	if in.ReservedConcurrentExecutions == nil {
		return apierr.Validation("1 validation error detected: Value null at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must not be null")
	}
	n := *in.ReservedConcurrentExecutions
	if n < 0 {
		return apierr.Validation("1 validation error detected: Value '%d' at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 0", n)
	}
	f, err := a.lookup(r)
	if err != nil {
		return err
	}
	return a.setReserved(w, r, f, &n)
}

func (a *API) deleteFunctionConcurrency(w http.ResponseWriter, r *http.Request, _ string) error {
	f, err := a.lookup(r)
	if err != nil {
		return err
	}
	if err := a.setReserved(nil, r, f, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// setReserved stores a function's reservation, keeping Lambda's rule that the unreserved pool
// never drops under 100 (or the whole account limit, when that is smaller).
func (a *API) setReserved(w http.ResponseWriter, r *http.Request, f store.Function, n *int) error {
	for attempt := 0; ; attempt++ {
		if n != nil {
			all, err := a.store.Functions().List(r.Context())
			if err != nil {
				return err
			}
			others := 0
			for _, g := range all {
				if g.Config.FunctionName != f.Config.FunctionName && g.ReservedConcurrency != nil {
					others += *g.ReservedConcurrency
				}
			}
			limit := a.invoke.AccountLimit()
			if limit-others-*n < min(lambda.MinUnreservedExecution, limit) {
				return apierr.InvalidParameterValue("Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [%d].", min(lambda.MinUnreservedExecution, limit))
			}
		}
		next := *f.Function
		next.ReservedConcurrency = n
		rev, err := a.store.Functions().Update(r.Context(), &next, f.Revision)
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			if f, err = a.store.Functions().Get(r.Context(), f.Config.FunctionName); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		a.await(r, invoke.Functions, rev)
		if w == nil {
			return nil
		}
		return writeJSON(w, http.StatusOK, concurrency{ReservedConcurrentExecutions: n})
	}
}

func (a *API) getFunctionConcurrency(w http.ResponseWriter, r *http.Request, _ string) error {
	f, err := a.lookup(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, concurrency{ReservedConcurrentExecutions: f.ReservedConcurrency})
}
