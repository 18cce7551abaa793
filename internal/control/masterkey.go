package control

import (
	"context"
	"errors"
	"log/slog"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/crypt"
)

// MasterKeys is the keyring of master keys that seal stored secrets (crypt.Keyring).
type MasterKeys interface {
	KeyIDs() []string
	Rotate() (string, error)
	Retire(id string) error
}

// Rewrapper moves sealed records to the keyring's active key without opening them and returns
// how many it rewrote: the functions' and versions' variables (store.Store.RewrapEnv), the
// secrets (secrets.Service).
type Rewrapper interface {
	Rewrap(ctx context.Context) (int, error)
}

// envRewrapper is the store's rewrap of the functions' and versions' variables (store.Store).
type envRewrapper interface {
	RewrapEnv(ctx context.Context) (int, error)
}

// MasterKey serves POST /flint/v1/master-key/rotate.
type MasterKey struct {
	keys    MasterKeys // nil: the server has no keyring
	env     envRewrapper
	secrets Rewrapper // nil: no secrets service
	log     *slog.Logger
}

// Rotation is the answer to a rotation. Its fields are in alphabetical order: the order its
// keys have always had on the wire, when it was a map.
type Rotation struct {
	ActiveKeyId              string   `json:"ActiveKeyId"`
	FunctionRecordsRewrapped int      `json:"FunctionRecordsRewrapped"`
	RetiredKeyIds            []string `json:"RetiredKeyIds"`
	SecretVersionsRewrapped  int      `json:"SecretVersionsRewrapped"`
}

// Rotate makes a new master key active, rewraps every sealed record under it (the functions'
// and versions' variables, the secrets) while the server keeps serving, then retires the old
// keys: a leaked old key opens nothing stored from then on.
func (s *MasterKey) Rotate(ctx context.Context) (*Rotation, error) {
	if s.keys == nil {
		return nil, apierr.InvalidParameterValue("This server has no master keyring.")
	}
	old := s.keys.KeyIDs()
	id, err := s.keys.Rotate()
	if errors.Is(err, crypt.ErrNoKeyFile) {
		return nil, apierr.InvalidParameterValue("The master key comes from FLINT_MASTER_KEY: rotate by putting a new key first in that list and restarting; stored records are rewrapped by the next rotation with a key file.")
	}
	if err != nil {
		return nil, err
	}
	envs, err := s.env.RewrapEnv(ctx)
	if err != nil {
		return nil, err
	}
	secrets := 0
	if s.secrets != nil {
		if secrets, err = s.secrets.Rewrap(ctx); err != nil {
			return nil, err
		}
	}
	retired := []string{}
	for _, k := range old {
		if k == id {
			continue
		}
		if err := s.keys.Retire(k); err != nil {
			return nil, err
		}
		retired = append(retired, k)
	}
	s.log.Info("master key rotated", "active", id, "retired", retired, "functions_rewrapped", envs, "secret_versions_rewrapped", secrets)
	return &Rotation{ActiveKeyId: id, RetiredKeyIds: retired, FunctionRecordsRewrapped: envs, SecretVersionsRewrapped: secrets}, nil
}
