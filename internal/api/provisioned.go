package api

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

type provisionedConfig struct {
	FunctionArn                              string `json:"FunctionArn,omitempty"`
	RequestedProvisionedConcurrentExecutions int    `json:"RequestedProvisionedConcurrentExecutions"`
	AvailableProvisionedConcurrentExecutions int    `json:"AvailableProvisionedConcurrentExecutions"`
	AllocatedProvisionedConcurrentExecutions int    `json:"AllocatedProvisionedConcurrentExecutions"`
	Status                                   string `json:"Status"`
	StatusReason                             string `json:"StatusReason,omitempty"`
	LastModified                             string `json:"LastModified"`
}

// provisionedQualifier checks the Qualifier of a provisioned-concurrency call: a published
// version or an alias of the function.
func (a *API) provisionedQualifier(r *http.Request) (store.Function, string, error) {
	f, err := a.latest(r)
	if err != nil {
		return f, "", err
	}
	q := r.URL.Query().Get("Qualifier")
	switch {
	case q == "":
		return f, "", apierr.Validation("1 validation error detected: Value null at 'qualifier' failed to satisfy constraint: Member must not be null")
	case q == lambda.LatestVersion:
		return f, "", apierr.InvalidParameterValue("Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
	}
	name := f.Config.FunctionName
	if n, err := strconv.Atoi(q); err == nil {
		if _, _, err := a.store.Versions().Get(r.Context(), name, n); errors.Is(err, store.ErrNotFound) {
			return f, "", a.notFound(name, q)
		} else if err != nil {
			return f, "", err
		}
		return f, q, nil
	}
	if _, err := a.store.Aliases().Get(r.Context(), name, q); errors.Is(err, store.ErrNotFound) {
		return f, "", a.aliasNotFound(name, q)
	} else if err != nil {
		return f, "", err
	}
	return f, q, nil
}

func (a *API) putProvisioned(w http.ResponseWriter, r *http.Request, _ string) error {
	var in struct {
		ProvisionedConcurrentExecutions *int `json:"ProvisionedConcurrentExecutions"`
	}
	if err := decodeBody(r, 1<<16, "PutProvisionedConcurrencyConfig", &in); err != nil {
		return err
	}
	if in.ProvisionedConcurrentExecutions == nil || *in.ProvisionedConcurrentExecutions < 1 {
		return apierr.Validation("1 validation error detected: Value at 'provisionedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 1")
	}
	n := *in.ProvisionedConcurrentExecutions
	f, q, err := a.provisionedQualifier(r)
	if err != nil {
		return err
	}
	if f.ReservedConcurrency != nil && n > *f.ReservedConcurrency {
		return apierr.InvalidParameterValue("Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function")
	}
	if limit := a.invoke.AccountLimit() - a.invoke.ReservedTotal(); f.ReservedConcurrency == nil && limit-n < min(lambda.MinUnreservedExecution, limit) {
		return apierr.InvalidParameterValue("Specified ConcurrentExecutions for function is greater than account's unreserved concurrency [%d].", limit)
	}
	pc := &lambda.ProvisionedConcurrency{Requested: n, LastModified: lambda.FormatTime(time.Now())}
	name := f.Config.FunctionName
	rev, err := a.store.Provisioned().Put(r.Context(), name, q, pc)
	if err != nil {
		return err
	}
	a.await(r, invoke.Provisioned, rev)
	return writeJSON(w, http.StatusAccepted, a.provisionedStatus(r, name, q, pc))
}

func (a *API) provisionedStatus(r *http.Request, name, q string, pc *lambda.ProvisionedConcurrency) provisionedConfig {
	out := provisionedConfig{RequestedProvisionedConcurrentExecutions: pc.Requested, LastModified: pc.LastModified, Status: "IN_PROGRESS"}
	if _, ready, err := a.invoke.Provisioned(r.Context(), name, q); err == nil {
		out.AvailableProvisionedConcurrentExecutions, out.AllocatedProvisionedConcurrentExecutions = ready, ready
		if ready >= pc.Requested {
			out.Status = "READY"
		}
	}
	return out
}

func (a *API) getProvisioned(w http.ResponseWriter, r *http.Request, _ string) error {
	if r.URL.Query().Get("List") == "ALL" {
		return a.listProvisioned(w, r)
	}
	f, q, err := a.provisionedQualifier(r)
	if err != nil {
		return err
	}
	name := f.Config.FunctionName
	pc, _, err := a.store.Provisioned().Get(r.Context(), name, q)
	if errors.Is(err, store.ErrNotFound) {
		return apierr.ProvisionedConcurrencyConfigNotFound("No Provisioned Concurrency Config found for this function")
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.provisionedStatus(r, name, q, pc))
}

func (a *API) deleteProvisioned(w http.ResponseWriter, r *http.Request, _ string) error {
	f, q, err := a.provisionedQualifier(r)
	if err != nil {
		return err
	}
	name := f.Config.FunctionName
	_, rev, err := a.store.Provisioned().Get(r.Context(), name, q)
	if errors.Is(err, store.ErrNotFound) {
		return apierr.ProvisionedConcurrencyConfigNotFound("No Provisioned Concurrency Config found for this function")
	}
	if err != nil {
		return err
	}
	rev, err = a.store.Provisioned().Delete(r.Context(), name, q)
	if errors.Is(err, store.ErrNotFound) {
		w.WriteHeader(http.StatusNoContent) // deleted meanwhile
		return nil
	}
	if err != nil {
		return err
	}
	a.await(r, invoke.Provisioned, rev)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listProvisioned(w http.ResponseWriter, r *http.Request) error {
	f, err := a.latest(r)
	if err != nil {
		return err
	}
	page, err := paging(r)
	if err != nil {
		return err
	}
	maxItems, marker := page.MaxItems, page.Marker
	name := f.Config.FunctionName
	all, err := a.store.Provisioned().List(r.Context(), name)
	if err != nil {
		return err
	}
	out := struct {
		ProvisionedConcurrencyConfigs []provisionedConfig `json:"ProvisionedConcurrencyConfigs"`
		NextMarker                    string              `json:"NextMarker,omitempty"`
	}{ProvisionedConcurrencyConfigs: []provisionedConfig{}}
	keys := make([]string, 0, len(all))
	for q := range all {
		keys = append(keys, q)
	}
	slices.Sort(keys)
	last := ""
	for _, q := range keys {
		if marker != "" && q <= marker {
			continue
		}
		if len(out.ProvisionedConcurrencyConfigs) == maxItems {
			out.NextMarker = last
			break
		}
		last = q
		c := a.provisionedStatus(r, name, q, all[q])
		c.FunctionArn = a.account.FunctionARN(name, q)
		out.ProvisionedConcurrencyConfigs = append(out.ProvisionedConcurrencyConfigs, c)
	}
	return writeJSON(w, http.StatusOK, out)
}

// latest reads the function named in the path, ignoring the Qualifier query parameter (which
// names a version or alias to configure on these paths).
func (a *API) latest(r *http.Request) (store.Function, error) {
	name, qualifier, err := a.resolve(r, r.PathValue("name"))
	if err != nil {
		return store.Function{}, err
	}
	if qualifier != "" {
		return store.Function{}, apierr.InvalidParameterValue("The function name must not carry a qualifier here; use the Qualifier parameter.")
	}
	f, err := a.store.Functions().Get(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		return f, a.notFound(name, "")
	}
	return f, err
}
