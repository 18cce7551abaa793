package api

import (
	"errors"
	"net/http"

	"github.com/flint-run/flint/internal/invoke"
)

// recycleOutput is POST /flint/v1/functions/{name}/recycle's answer.
type recycleOutput struct {
	Function  string `json:"function"`
	Qualifier string `json:"qualifier,omitempty"`
	// Retired idle environments were destroyed; the others were left alone: busy and starting
	// ones keep their invocations, provisioned ones are the configuration's.
	Retired     int `json:"retired"`
	Busy        int `json:"busy"`
	Starting    int `json:"starting"`
	Provisioned int `json:"provisioned"`
}

// recycleFunction serves POST /flint/v1/functions/{name}/recycle[?Qualifier=Q]
// (invoke.Service.Recycle): this node's idle environments of the function are destroyed, so its
// next invocation here is a cold start (`flint bench --cold`, `--burst`). Nothing stored changes.
// Authenticated like every /flint/v1 endpoint; on a cluster it reaches only the node that answers.
func (a *API) recycleFunction(w http.ResponseWriter, r *http.Request, _ string) error {
	name, qualifier, err := a.ctl.Function(a.target(r))
	if err != nil {
		return err
	}
	got, err := a.invoke.Recycle(r.Context(), name, qualifier)
	if errors.Is(err, invoke.ErrNotFound) {
		return a.notFound(name, qualifier)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, recycleOutput{Function: name, Qualifier: qualifier,
		Retired: got.Retired, Busy: got.Busy, Starting: got.Starting, Provisioned: got.Provisioned})
}
