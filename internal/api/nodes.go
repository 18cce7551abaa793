package api

import (
	"net/http"

	"github.com/flint-run/flint/internal/cluster"
)

func (a *API) listNodes(w http.ResponseWriter, r *http.Request, _ string) error {
	nodes, err := a.nodes.List(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Nodes []cluster.Node `json:"nodes"`
	}{nodes})
}
