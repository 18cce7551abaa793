package api

import (
	"encoding/json"
	"net/http"

	"github.com/flint-run/flint/internal/control"
)

func (a *API) addPermission(w http.ResponseWriter, r *http.Request, _ string) error {
	var in control.PermissionInput
	if err := decodeBody(r, 1<<16, "AddPermission", &in); err != nil {
		return err
	}
	st, err := a.ctl.Policies.Add(r.Context(), a.target(r), in)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(st)
	return writeJSON(w, http.StatusCreated, map[string]string{"Statement": string(b)})
}

func (a *API) removePermission(w http.ResponseWriter, r *http.Request, _ string) error {
	if err := a.ctl.Policies.Remove(r.Context(), a.target(r), r.PathValue("sid"), r.URL.Query().Get("RevisionId")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) getPolicy(w http.ResponseWriter, r *http.Request, _ string) error {
	cur, err := a.ctl.Policies.Get(r.Context(), a.target(r))
	if err != nil {
		return err
	}
	b, err := json.Marshal(cur.Policy)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"Policy": string(b), "RevisionId": cur.RevisionID})
}
