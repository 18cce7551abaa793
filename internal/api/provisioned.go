package api

import (
	"net/http"

	"github.com/flint-run/flint/internal/control"
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
