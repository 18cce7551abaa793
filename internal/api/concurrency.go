package api

import (
	"net/http"

	"github.com/flint-run/flint/internal/control"
)

func (a *API) putFunctionConcurrency(w http.ResponseWriter, r *http.Request, _ string) error {
	var in control.FunctionConcurrency
	if err := decodeBody(r, 1<<16, "PutFunctionConcurrency", &in); err != nil {
		return err
	}
	out, err := a.ctl.Concurrency.Put(r.Context(), a.target(r), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) deleteFunctionConcurrency(w http.ResponseWriter, r *http.Request, _ string) error {
	if err := a.ctl.Concurrency.Delete(r.Context(), a.target(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) getFunctionConcurrency(w http.ResponseWriter, r *http.Request, _ string) error {
	out, err := a.ctl.Concurrency.Get(r.Context(), a.target(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}
