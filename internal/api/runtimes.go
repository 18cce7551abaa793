package api

import (
	"net/http"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/lambda"
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

// checkRuntime refuses, on a strict node, a runtime without an interpreter of its version, and
// otherwise says in the operator log when a function will run on another version.
func (a *API) checkRuntime(c *lambda.FunctionConfiguration) error {
	if err := a.runtimes.Check(c.Runtime); err != nil {
		return apierr.InvalidParameterValue("%s", err.Error())
	}
	if i, ok := a.runtimes.Lookup(c.Runtime); ok && !i.Exact && a.log != nil {
		a.log.Warn("function runs on another runtime version: "+i.Problem(), "function", c.FunctionName,
			"runtime", c.Runtime, "interpreter", i.Path, "version", i.Version)
	}
	return nil
}
