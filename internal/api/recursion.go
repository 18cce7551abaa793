package api

import (
	"net/http"

	"github.com/flint-run/flint/internal/control"
)

func (a *API) putFunctionRecursionConfig(w http.ResponseWriter, r *http.Request, _ string) error {
	var in control.RecursionConfig
	if err := decodeBody(r, 1<<16, "PutFunctionRecursionConfig", &in); err != nil {
		return err
	}
	out, err := a.ctl.Recursion.Put(r.Context(), a.target(r), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) getFunctionRecursionConfig(w http.ResponseWriter, r *http.Request, _ string) error {
	out, err := a.ctl.Recursion.Get(r.Context(), a.target(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}
