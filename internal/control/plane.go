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

	// Invoke is the invocation service (invoke.Service), which provisioned concurrency asks for
	// the account's concurrency and the environments ready, and event invoke configs for what a
	// qualifier resolves to.
	Invoke interface {
		capacity
		resolution
	}
}

// Plane is the control plane: one service per kind of resource.
type Plane struct {
	Aliases            *Aliases
	Tags               *Tags
	Policies           *Policies
	Provisioned        *Provisioned
	EventInvokeConfigs *EventInvokeConfigs
	Layers             *Layers

	names resolver
}

// New builds the services on cfg.Store's repositories.
func New(cfg Config) *Plane {
	st := cfg.Store
	r := resolver{account: cfg.Account, functions: st.Functions(), versions: st.Versions(), aliases: st.Aliases()}
	w := awaiter{view: cfg.View, log: cfg.Log}
	return &Plane{
		Aliases:            &Aliases{resolver: r, awaiter: w, aliases: st.Aliases()},
		Tags:               &Tags{account: cfg.Account, awaiter: w, functions: st.Functions()},
		Policies:           &Policies{resolver: r, awaiter: w, policies: st.Policies()},
		Provisioned:        &Provisioned{resolver: r, awaiter: w, configs: st.Provisioned(), capacity: cfg.Invoke},
		EventInvokeConfigs: &EventInvokeConfigs{resolver: r, configs: st.EventInvokeConfigs(), view: cfg.Invoke},
		Layers:             &Layers{account: cfg.Account, layers: st.Layers(), packages: st.Code()},
		names:              r,
	}
}

// Function parses the function t names into its name and qualifier, for the data plane's
// requests (InvokeAsync), which resolve them in the invocation view rather than the store.
func (p *Plane) Function(t Target) (name, qualifier string, err error) {
	return p.names.name(t)
}
