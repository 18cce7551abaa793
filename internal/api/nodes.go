package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/cluster"
)

func (a *API) listNodes(w http.ResponseWriter, r *http.Request, _ string) error {
	out, err := a.nodes.Status(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// drainNode serves POST /flint/v1/nodes/{node}/drain (cluster.Membership.Drain): 200 with the
// node as listed once it drains (or once it stopped answering for three heartbeats; its
// drain_applied then says whether it had applied it).
func (a *API) drainNode(w http.ResponseWriter, r *http.Request, _ string) error {
	return a.changeDrain(w, r, a.nodes.Drain)
}

// undrainNode serves POST /flint/v1/nodes/{node}/undrain (cluster.Membership.Undrain).
func (a *API) undrainNode(w http.ResponseWriter, r *http.Request, _ string) error {
	return a.changeDrain(w, r, a.nodes.Undrain)
}

func (a *API) changeDrain(w http.ResponseWriter, r *http.Request, change func(ctx context.Context, name string) (cluster.Node, error)) error {
	name := r.PathValue("node")
	n, err := change(r.Context(), name)
	switch {
	case errors.Is(err, cluster.ErrUnknownNode):
		return apierr.ResourceNotFound("Node not found: %s", name)
	case errors.Is(err, cluster.ErrLastNode):
		return apierr.ResourceConflict("Node %s cannot drain: no other node is up and not draining to take its work.", name)
	case err != nil:
		return err
	}
	return writeJSON(w, http.StatusOK, n)
}
