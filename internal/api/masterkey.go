package api

import (
	"errors"
	"net/http"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/crypt"
)

// rotateMasterKey makes a new master key active, rewraps every sealed record under it (the
// functions' and versions' variables, the secrets) while the server keeps serving, then
// retires the old keys: a leaked old key opens nothing stored from then on.
func (a *API) rotateMasterKey(w http.ResponseWriter, r *http.Request, _ string) error {
	if a.keyring == nil {
		return apierr.InvalidParameterValue("This server has no master keyring.")
	}
	old := a.keyring.KeyIDs()
	id, err := a.keyring.Rotate()
	if errors.Is(err, crypt.ErrNoKeyFile) {
		return apierr.InvalidParameterValue("The master key comes from FLINT_MASTER_KEY: rotate by putting a new key first in that list and restarting; stored records are rewrapped by the next rotation with a key file.")
	}
	if err != nil {
		return err
	}
	envs, err := a.store.RewrapEnv(r.Context())
	if err != nil {
		return err
	}
	secrets := 0
	if a.secrets != nil {
		if secrets, err = a.secrets.Rewrap(r.Context()); err != nil {
			return err
		}
	}
	retired := []string{}
	for _, k := range old {
		if k == id {
			continue
		}
		if err := a.keyring.Retire(k); err != nil {
			return err
		}
		retired = append(retired, k)
	}
	a.log.Info("master key rotated", "active", id, "retired", retired, "functions_rewrapped", envs, "secret_versions_rewrapped", secrets)
	return writeJSON(w, http.StatusOK, map[string]any{"ActiveKeyId": id, "RetiredKeyIds": retired,
		"FunctionRecordsRewrapped": envs, "SecretVersionsRewrapped": secrets})
}
