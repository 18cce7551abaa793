package control

import (
	"log/slog"
	"time"

	"github.com/flint-run/flint/internal/artifact"
	"github.com/flint-run/flint/internal/esm"
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

	// Code is this node's unpack cache; Limits bounds the packages stored.
	Code   *artifact.Cache
	Limits artifact.Limits
	// CodeGrace is how long unreferenced code is kept before Code.Run removes it (0: at once).
	CodeGrace time.Duration
	// Runtimes is this node's interpreter per runtime; nil: runtimes.Default().
	Runtimes *runtimes.Table
	// Scheduler is told when schedules change; nil: nothing to tell.
	Scheduler Notifier
	// Keys are the master keys that rotation replaces; nil: the server has none.
	Keys MasterKeys
	// Secrets rewraps the secrets after a rotation; nil: there are none.
	Secrets Rewrapper
	// SQS is the SQS API's queues, which mappings over arn:aws:sqs ARNs read; nil: none.
	SQS esm.SQSQueues
	// Invoke is the invocation service (invoke.Service): functions and concurrency ask it for
	// the account's concurrency limit, provisioned concurrency for the environments ready, and
	// mappings and event invoke configs find functions as an invoke would.
	Invoke interface {
		capacity
		FunctionView
	}
}

// Plane is the control plane: one service per kind of resource.
type Plane struct {
	Aliases            *Aliases
	Functions          *Functions
	Versions           *Versions
	Concurrency        *Concurrency
	Code               *Code
	Mappings           *Mappings
	Schedules          *Schedules
	URLs               *URLs
	MasterKey          *MasterKey
	Tags               *Tags
	Policies           *Policies
	Provisioned        *Provisioned
	EventInvokeConfigs *EventInvokeConfigs
	Layers             *Layers
	APIs               *APIs // API Gateway APIs (/flint/v1/apis)
	CodeSigning        *CodeSigning
	Recursion          *Recursion

	names resolver
}

// New builds the services on cfg.Store's repositories.
func New(cfg Config) *Plane {
	st := cfg.Store
	r := resolver{account: cfg.Account, functions: st.Functions(), versions: st.Versions(), aliases: st.Aliases()}
	w := awaiter{view: cfg.View, log: cfg.Log}
	code := newCode(st.Code(), st.Functions(), st.Versions(), st.Layers(), cfg.Code, cfg.Limits, cfg.CodeGrace, cfg.Log)
	versions := &Versions{resolver: r, awaiter: w, functions: st.Functions(), versions: st.Versions(), aliases: st.Aliases()}
	return &Plane{
		Aliases:  &Aliases{resolver: r, awaiter: w, aliases: st.Aliases(), provisioned: st.Provisioned()},
		Versions: versions,
		Functions: &Functions{resolver: r, awaiter: w, functions: st.Functions(), layers: st.Layers(), code: code,
			versions: versions, runtimes: cfg.Runtimes, limit: cfg.Invoke,
			signing: signingGate{configs: st.CodeSigningConfigs(), account: cfg.Account}},
		Concurrency: &Concurrency{resolver: r, awaiter: w, functions: st.Functions(), limit: cfg.Invoke, provisioned: st.Provisioned()},
		Code:        code,
		Mappings: &Mappings{account: cfg.Account, functions: cfg.Invoke, mappings: st.Mappings(), js: st.JetStream(),
			checkpoints: st.Checkpoints(), sqs: cfg.SQS},
		Schedules:          &Schedules{account: cfg.Account, schedules: st.Schedules(), scheduler: cfg.Scheduler},
		URLs:               &URLs{resolver: r, awaiter: w, urls: st.URLs()},
		MasterKey:          &MasterKey{keys: cfg.Keys, env: st, secrets: cfg.Secrets, log: cfg.Log},
		Tags:               &Tags{account: cfg.Account, awaiter: w, functions: st.Functions()},
		Policies:           &Policies{resolver: r, awaiter: w, policies: st.Policies()},
		Provisioned:        &Provisioned{resolver: r, awaiter: w, configs: st.Provisioned(), capacity: cfg.Invoke},
		EventInvokeConfigs: &EventInvokeConfigs{resolver: r, awaiter: w, configs: st.EventInvokeConfigs(), view: cfg.Invoke},
		Layers:             &Layers{account: cfg.Account, layers: st.Layers(), packages: st.Code(), collector: code},
		CodeSigning:        &CodeSigning{resolver: r, awaiter: w, configs: st.CodeSigningConfigs(), functions: st.Functions()},
		Recursion:          &Recursion{resolver: r, awaiter: w, functions: st.Functions()},
		names:              r,
		APIs:               &APIs{resolver: r, awaiter: w, apis: st.APIs()},
	}
}

// Function parses the function t names into its name and qualifier, for the data plane's
// requests (InvokeAsync), which resolve them in the invocation view rather than the store.
func (p *Plane) Function(t Target) (name, qualifier string, err error) {
	return p.names.name(t)
}
