package api

import (
	"errors"
	"net/http"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/store"
)

func (a *API) putProvisioned(w http.ResponseWriter, r *http.Request, _ string) error {
	var in control.ProvisionedInput
	if err := decodeBody(r, 1<<16, "PutProvisionedConcurrencyConfig", &in); err != nil {
		return err
	}
	out, err := a.ctl.Provisioned.Put(r.Context(), a.target(r), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, out)
}

func (a *API) getProvisioned(w http.ResponseWriter, r *http.Request, _ string) error {
	if r.URL.Query().Get("List") == "ALL" {
		return a.listProvisioned(w, r)
	}
	out, err := a.ctl.Provisioned.Get(r.Context(), a.target(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) deleteProvisioned(w http.ResponseWriter, r *http.Request, _ string) error {
	if err := a.ctl.Provisioned.Delete(r.Context(), a.target(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listProvisioned(w http.ResponseWriter, r *http.Request) error {
	out, err := a.ctl.Provisioned.List(r.Context(), a.target(r), func() (control.Page, error) { return paging(r) })
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// latest reads the function named in the path, ignoring the Qualifier query parameter (which
// names a version or alias to configure on these paths). urls.go still uses it; the lead
// removes it once no handler does.
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
