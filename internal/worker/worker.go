// Package worker owns execution environments: one pool per function version configuration, the
// environment lifecycle (cold start, warm reuse, timeout, crash, reaping), and the per-invocation
// log record (START/END/REPORT around the function's output). It runs environments through a
// sandbox.Backend and speaks to runtimes through runtimeapi; it serves the handlers it is given
// (Config.Services) on each environment's own ports, but never touches the store or HTTP API
// types.
//
// Files by concern: worker.go (the package's types and sentinels), manager.go (Manager: pools,
// Run, Stats, Close), pool.go (Pool: acquire, Invoke, Retire), env.go (one environment: run,
// release, monitor, destroy), state.go (the environment state machine), coldstart.go,
// budget.go (memory budget, LRU eviction), reaper.go, freeze.go, provision.go (provisioned
// concurrency), records.go (invocation outcomes, START/END/REPORT records), output.go (the
// output pipe), environ.go (Lambda's environment variables), services.go (per-environment
// services), spares.go (pre-initialized Python and Node runtimes), extensions.go (external
// extensions' output pipes, the invocation's wait for its extensions, SHUTDOWN, telemetry records).
package worker

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/flint-run/flint/internal/runtimes"
	"github.com/flint-run/flint/internal/sandbox"
	"github.com/flint-run/flint/internal/telemetry"
)

// Function is everything needed to start environments for one version of a function. Any change
// to it means a new Pool.
type Function struct {
	Name        string
	Version     string
	ARN         string // unqualified
	Runtime     runtimes.Runtime
	Handler     string
	MemoryMB    int
	Timeout     time.Duration
	EphemeralMB int
	// Logging is the function's LoggingConfig: its log group, and the JSON format's levels.
	Logging Logging
	// Env returns the user's variables (decrypted); called on cold starts only.
	Env func() (map[string]string, error)
	// Code returns the host directory holding the unpacked code; called on cold starts only.
	Code func(ctx context.Context) (string, error)
	// Opt returns the host directory of the function's layers, merged ("" for none); nil: none.
	Opt func(ctx context.Context) (string, error)
}

// Logging is how a function's logs are written (Lambda's LoggingConfig). JSON has the runtime
// clients write their records as JSON objects at ApplicationLevel and above, and the platform
// its lines as platform.* events at SystemLevel and above; Text is Lambda's plain format,
// without levels.
type Logging struct {
	JSON             bool
	ApplicationLevel string // TRACE, DEBUG, INFO, WARN, ERROR or FATAL; JSON only
	SystemLevel      string // DEBUG, INFO or WARN; JSON only
	Group            string // "" is /aws/lambda/NAME
}

// Request is one synchronous invocation.
type Request struct {
	RequestID     string
	Payload       []byte
	InvokedARN    string
	ClientContext string // decoded JSON
	TraceID       string // X-Ray trace header, handed to the runtime as Lambda-Runtime-Trace-Id
	// Span, when tracing is on, is the invocation's trace for the Observer; the worker only
	// carries it there.
	Span *telemetry.Span
	Tail bool // return the last 4 KB of the log
	// WarmOnly runs the invocation only on an idle environment: with none, Invoke returns
	// ErrNoWarm at once and nothing started (a cluster node asks the others before a cold start).
	WarmOnly bool
}

// Response is what the caller gets.
type Response struct {
	Payload     []byte
	ContentType string
	// FunctionError is "Unhandled" when the function or its runtime failed.
	FunctionError string
	LogResult     string
}

// LogSink stores invocation log records; it must not block, nor keep record after Append
// returns (the worker builds the next record in the same buffer).
type LogSink interface {
	Append(function string, record []byte)
}

// Observer is told about every finished invocation (for metrics and traces), off the caller's
// path; it must not block.
type Observer interface {
	Invoked(inv telemetry.Invocation)
}

// Config wires a Manager.
type Config struct {
	Backend     sandbox.Backend
	RuntimeDir  string // host directory of the installed runtime clients
	Region      string
	KeepAlive   time.Duration
	InitTimeout time.Duration
	// FreezeAfter is how long an idle environment waits before it is frozen (sandboxes that can
	// freeze); 0 never freezes. A short grace keeps environments reused under load from paying a
	// freeze and a thaw per invoke, while idle ones cost no CPU.
	FreezeAfter time.Duration
	// MemoryBudgetMB bounds the sum of MemorySize over live environments (0: unbounded).
	MemoryBudgetMB int
	// SpareMemoryMB bounds the memory of pre-initialized Python and Node runtimes waiting for a
	// cold start (spares.go); 0: none are kept.
	SpareMemoryMB int
	// Services are HTTP interfaces served from the host to every environment, each on a port of
	// the environment's loopback, for the environment's life. Their ports must be valid
	// sandbox.Ports (sandbox.CheckPorts), or every cold start fails.
	Services []Service
	Logs     LogSink
	Observer Observer // may be nil
	Log      *slog.Logger
	Now      func() time.Time
	// Runtimes is this node's interpreter per Python and Node runtime; nil: runtimes.Default().
	Runtimes *runtimes.Table
	// ProvisionParallel bounds how many provisioned environments start at once (0: four per
	// CPU). A thousand started together starve the server of CPU for as long as they take: its
	// NATS heartbeats and API requests time out.
	ProvisionParallel int
}

// Service is an HTTP interface served to each environment on a loopback port of its own, in place
// of a Lambda extension that would run inside it (such as the Parameters and Secrets extension's
// localhost:2773): nothing extra runs in the sandbox, and the handler runs in the server. Handler
// is called once per environment, on its cold start, with what it needs to authorise callers.
type Service struct {
	Port    sandbox.Port
	Handler func(env EnvInfo) http.Handler
}

// EnvInfo is what a Service knows of the environment it serves.
type EnvInfo struct {
	ID string // the environment's id, for logs
	// SessionToken is the environment's AWS_SESSION_TOKEN, a secret of that environment alone:
	// a caller presenting it (the Parameters and Secrets extension's
	// X-Aws-Parameters-Secrets-Token) is code of this environment. Required where the port is
	// reachable by other processes of the host (the process backend, the linux one on the host's
	// network), and cheap everywhere.
	SessionToken string
	Function     string // the function's name
	Version      string // "$LATEST" or a version number
	ARN          string // the function's unqualified ARN
}

// Sentinels callers branch on.
var (
	// ErrClosed is returned for invocations after Close.
	ErrClosed = errors.New("worker: closed")
	// ErrNoCapacity: the node's memory budget is taken by busy environments; nothing idle can be
	// evicted to make room. The caller throttles.
	ErrNoCapacity = errors.New("worker: no memory left for another environment")
	// ErrAborted: the platform stopped the environment under the invocation (shutdown), or could
	// not place it after several environments went away before taking it. It is not the
	// function's error: a synchronous caller gets a service error, an async event runs again.
	ErrAborted = errors.New("worker: the invocation's environment was stopped by the platform")
	// ErrNoWarm: a WarmOnly invocation found no idle environment; nothing ran.
	ErrNoWarm = errors.New("worker: no idle environment")
)
