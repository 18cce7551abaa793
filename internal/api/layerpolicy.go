package api

import (
	"net/http"

	"github.com/flint-run/flint/internal/control"
)

func (a *API) addLayerVersionPermission(w http.ResponseWriter, r *http.Request, _ string) error {
	var in control.LayerPermissionInput
	if err := decodeBody(r, 1<<16, "AddLayerVersionPermission", &in); err != nil {
		return err
	}
	out, err := a.ctl.Layers.AddPermission(r.Context(), r.PathValue("layer"), r.PathValue("version"), r.URL.Query().Get("RevisionId"), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}

func (a *API) getLayerVersionPolicy(w http.ResponseWriter, r *http.Request, _ string) error {
	out, err := a.ctl.Layers.Policy(r.Context(), r.PathValue("layer"), r.PathValue("version"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) removeLayerVersionPermission(w http.ResponseWriter, r *http.Request, _ string) error {
	if err := a.ctl.Layers.RemovePermission(r.Context(), r.PathValue("layer"), r.PathValue("version"), r.PathValue("sid"), r.URL.Query().Get("RevisionId")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
