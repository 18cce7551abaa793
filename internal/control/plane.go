package control

import (
	"log/slog"

	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// Config wires the control plane.
type Config struct {
	Store   *store.Store
	View    View // the invocation service's view, which writes wait for
	Account lambda.Account
	Log     *slog.Logger
}

// Plane is the control plane: one service per kind of resource.
type Plane struct {
	Aliases *Aliases
}

// New builds the services on cfg.Store's repositories.
func New(cfg Config) *Plane {
	st := cfg.Store
	r := resolver{account: cfg.Account, functions: st.Functions(), versions: st.Versions(), aliases: st.Aliases()}
	w := awaiter{view: cfg.View, log: cfg.Log}
	return &Plane{
		Aliases: &Aliases{resolver: r, awaiter: w, aliases: st.Aliases()},
	}
}
