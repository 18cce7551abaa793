package api

import (
	"net/http"

	"github.com/flint-run/flint/internal/control"
)

func (a *API) createAlias(w http.ResponseWriter, r *http.Request, _ string) error {
	var in control.AliasInput
	if err := decodeBody(r, 1<<16, "CreateAlias", &in); err != nil {
		return err
	}
	al, err := a.ctl.Aliases.Create(r.Context(), a.target(r), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, al)
}

func (a *API) getAlias(w http.ResponseWriter, r *http.Request, _ string) error {
	al, err := a.ctl.Aliases.Get(r.Context(), a.target(r), r.PathValue("alias"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, al)
}

func (a *API) updateAlias(w http.ResponseWriter, r *http.Request, _ string) error {
	var in control.AliasInput
	if err := decodeBody(r, 1<<16, "UpdateAlias", &in); err != nil {
		return err
	}
	al, err := a.ctl.Aliases.Update(r.Context(), a.target(r), r.PathValue("alias"), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, al)
}

func (a *API) deleteAlias(w http.ResponseWriter, r *http.Request, _ string) error {
	if err := a.ctl.Aliases.Delete(r.Context(), a.target(r), r.PathValue("alias")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listAliases(w http.ResponseWriter, r *http.Request, _ string) error {
	p, err := paging(r)
	if err != nil {
		return err
	}
	out, err := a.ctl.Aliases.List(r.Context(), a.target(r), r.URL.Query().Get("FunctionVersion"), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}
