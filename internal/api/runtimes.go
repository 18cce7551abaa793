package api

import (
	"net/http"

	"github.com/flint-run/flint/internal/runtimes"
)

// listRuntimes serves GET /flint/v1/runtimes: which interpreter runs each Python and Node
// runtime on this node, and whether the node refuses runtimes without their own version.
func (a *API) listRuntimes(w http.ResponseWriter, _ *http.Request, _ string) error {
	return writeJSON(w, http.StatusOK, struct {
		Strict   bool                   `json:"strict"`
		Runtimes []runtimes.Interpreter `json:"runtimes"`
	}{a.runtimes.Strict(), a.runtimes.List()})
}
