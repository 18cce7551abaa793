package control

import (
	"log/slog"
	"time"

	"github.com/flint-run/flint/internal/artifact"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/runtimes"
	"github.com/flint-run/flint/internal/store"
)

// Config wires the control plane.
type Config struct {
	Store   *store.Store
	View    View // the invocation service's view, which writes wait for
	Account lambda.Account
	Log     *slog.Logger

	// Limit gives the account's concurrency limit (the invocation service).
	Limit interface{ AccountLimit() int }
	// Code is this node's unpack cache; Limits bounds the packages stored.
	Code   *artifact.Cache
	Limits artifact.Limits
	// CodeGrace is how long unreferenced code is kept before Code.Run removes it (0: at once).
	CodeGrace time.Duration
	// Runtimes is this node's interpreter per runtime; nil: runtimes.Default().
	Runtimes *runtimes.Table
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
	Aliases     *Aliases
	Functions   *Functions
	Versions    *Versions
	Concurrency *Concurrency
	Code        *Code
	Mappings    *Mappings
	Schedules   *Schedules
	URLs        *URLs
	MasterKey   *MasterKey
}

// New builds the services on cfg.Store's repositories.
func New(cfg Config) *Plane {
	st := cfg.Store
	r := resolver{account: cfg.Account, functions: st.Functions(), versions: st.Versions(), aliases: st.Aliases()}
	w := awaiter{view: cfg.View, log: cfg.Log}
	code := newCode(st.Code(), st.Functions(), st.Versions(), st.Layers(), cfg.Code, cfg.Limits, cfg.CodeGrace, cfg.Log)
	versions := &Versions{resolver: r, awaiter: w, functions: st.Functions(), versions: st.Versions(), aliases: st.Aliases()}
	return &Plane{
		Aliases:  &Aliases{resolver: r, awaiter: w, aliases: st.Aliases()},
		Versions: versions,
		Functions: &Functions{resolver: r, awaiter: w, functions: st.Functions(), layers: st.Layers(), code: code,
			versions: versions, runtimes: cfg.Runtimes, limit: cfg.Limit},
		Concurrency: &Concurrency{resolver: r, awaiter: w, functions: st.Functions(), limit: cfg.Limit},
		Code:        code,
		Mappings: &Mappings{account: cfg.Account, functions: cfg.Lookup, mappings: st.Mappings(), js: st.JetStream(),
			checkpoints: st.Checkpoints()},
		Schedules: &Schedules{account: cfg.Account, schedules: st.Schedules(), scheduler: cfg.Scheduler},
		URLs:      &URLs{resolver: r, awaiter: w, urls: st.URLs()},
		MasterKey: &MasterKey{keys: cfg.Keys, env: st, secrets: cfg.Secrets, log: cfg.Log},
	}
}
