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
	// Lookup finds functions as an invoke would (the invocation service): mappings check theirs.
	Lookup FunctionView
	// Scheduler is told when schedules change; nil: nothing to tell.
	Scheduler Notifier
	// Keys are the master keys that rotation replaces; nil: the server has none.
	Keys MasterKeys
	// Secrets rewraps the secrets after a rotation; nil: there are none.
	Secrets Rewrapper
}

// Plane is the control plane: one service per kind of resource.
type Plane struct {
	Aliases   *Aliases
	Mappings  *Mappings
	Schedules *Schedules
	URLs      *URLs
	MasterKey *MasterKey
}

// New builds the services on cfg.Store's repositories.
func New(cfg Config) *Plane {
	st := cfg.Store
	r := resolver{account: cfg.Account, functions: st.Functions(), versions: st.Versions(), aliases: st.Aliases()}
	w := awaiter{view: cfg.View, log: cfg.Log}
	return &Plane{
		Aliases: &Aliases{resolver: r, awaiter: w, aliases: st.Aliases()},
		Mappings: &Mappings{account: cfg.Account, functions: cfg.Lookup, mappings: st.Mappings(), js: st.JetStream(),
			checkpoints: st.Checkpoints()},
		Schedules: &Schedules{account: cfg.Account, schedules: st.Schedules(), scheduler: cfg.Scheduler},
		URLs:      &URLs{resolver: r, awaiter: w, urls: st.URLs()},
		MasterKey: &MasterKey{keys: cfg.Keys, env: st, secrets: cfg.Secrets, log: cfg.Log},
	}
}
