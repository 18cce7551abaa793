package api

import (
	"net/http"
)

func (a *API) listNodes(w http.ResponseWriter, r *http.Request, _ string) error {
	out, err := a.nodes.Status(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}
