package api

import "net/http"

// rotateMasterKey serves POST /flint/v1/master-key/rotate (control.MasterKey.Rotate).
func (a *API) rotateMasterKey(w http.ResponseWriter, r *http.Request, _ string) error {
	out, err := a.ctl.MasterKey.Rotate(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}
