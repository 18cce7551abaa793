package api

import (
	"net/http"

	"github.com/flint-run/flint/internal/control"
)

func (a *API) publishVersion(w http.ResponseWriter, r *http.Request, _ string) error {
	var in control.PublishInput
	if err := decodeBody(r, 1<<16, "PublishVersion", &in); err != nil {
		return err
	}
	c, err := a.ctl.Versions.Publish(r.Context(), a.target(r), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, c)
}

func (a *API) listVersions(w http.ResponseWriter, r *http.Request, _ string) error {
	out, err := a.ctl.Versions.List(r.Context(), a.target(r), func() (control.Page, error) { return paging(r) })
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}
