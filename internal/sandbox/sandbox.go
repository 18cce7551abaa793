// Package sandbox is the contract between Flint's worker and the isolation technologies that run
// execution environments. It owns only the interfaces, the shared Spec/Exit types and the small
// helpers every backend needs alike (Guard, the instance state rules; signal names, Spec.Ports
// checks and loopback listeners);
// backends live in sub-packages (process, linux, later microvm) and must not import the API, the store or
// the worker.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"
)

// Guest paths: what a function sees inside any environment. Spec.Argv and Spec.Env are written
// in these terms; a backend that cannot mount (process) maps them onto the host directories.
const (
	GuestTaskRoot   = "/var/task"
	GuestOptRoot    = "/opt"
	GuestRuntimeDir = "/var/runtime"
)

// Backend creates execution environments with one isolation technology.
type Backend interface {
	Name() string
	// Check reports whether this host can run the backend, with an actionable reason if not.
	Check(ctx context.Context) error
	Create(ctx context.Context, spec Spec) (Instance, error)
}

// Instance is one execution environment's sandbox.
type Instance interface {
	// RuntimeAPI is where this environment's runtime connects; the worker serves the Runtime API
	// on it. The backend has already put its address into AWS_LAMBDA_RUNTIME_API.
	RuntimeAPI() net.Listener
	// Listener is where this environment's runtime reaches the Spec's Port whose Number is port,
	// nil if the Spec had no such port; the worker serves on it. It is part of Instance rather
	// than an optional capability: a backend that ignored Spec.Ports would leave functions
	// failing to connect at run time, and every backend can listen on a loopback port.
	// Destroy closes it.
	Listener(port int) net.Listener
	// Start boots the environment and starts Spec.Argv. ctx bounds boot only, never the lifetime.
	Start(ctx context.Context) error
	// Wait blocks until the environment's main process exits (or ctx ends). What else runs in
	// the environment (external extensions) lives on until Destroy.
	Wait(ctx context.Context) (Exit, error)
	// Destroy kills everything and releases every resource; it is idempotent.
	Destroy(ctx context.Context) error
}

// Reclaimer is an optional capability of a Backend: remove what servers killed without closing
// their backend (kill -9) left behind on this host (processes, cgroups, roots). The server calls
// it once, before Check and the first Create; it must leave a live server's environments alone.
type Reclaimer interface {
	Reclaim(ctx context.Context) error
}

// Closer is an optional capability of a Backend: release what the backend itself holds (spare
// environments, locks, helper processes, host network setup). The server calls it last, once
// every Instance has been destroyed; it does not destroy instances.
type Closer interface {
	Close() error
}

// Freezer is an optional capability of an Instance: suspend an idle environment so it costs no CPU.
type Freezer interface {
	Freeze(ctx context.Context) error
	Thaw(ctx context.Context) error
}

// InitBooster is an optional capability of an Instance: the environment starts with more resources than its
// steady state (Lambda's INIT phase runs with more CPU); EndInit applies the steady-state limits
// once the runtime asked for its first event.
type InitBooster interface {
	EndInit(ctx context.Context) error
}

// Dialer is an optional capability of an Instance whose environment has a network of its own:
// connect to addr (127.0.0.1:PORT) as seen from inside it, where the Telemetry API delivers to an
// extension's listener. Without it the environment shares the host's loopback.
type Dialer interface {
	Dial(ctx context.Context, network, addr string) (net.Conn, error)
}

// MemoryReporter is an optional capability of an Instance: the peak memory the environment has used, in bytes.
type MemoryReporter interface {
	MaxMemoryUsed() (uint64, error)
}

// Prestarter is an optional capability of a Backend: environments whose runtime is started
// before the function it will run is known (a pre-initialized runtime), so that a cold start
// only binds the function. Only runtimes Flint ships (its Python and Node clients) can wait to
// be bound: they read their Binding from the descriptor named by BindFDEnv before they read
// any other variable, mount point or file of the function.
type Prestarter interface {
	// Prestart creates an environment from spec and starts its runtime, which waits for Bind.
	// spec.TaskDir and spec.OptDir are empty; spec.Argv and spec.Env are the runtime's own,
	// independent of any function; spec.MemoryMB is the spare's own limit until Bind.
	Prestart(ctx context.Context, spec Spec) (Bindable, error)
}

// Bindable is a prestarted environment: started, and waiting for its function.
type Bindable interface {
	Instance
	// Bind gives the environment its function: the function's code and layers appear at
	// /var/task and /opt, its limits apply, and only then does the runtime get its variables
	// (the function's whole environment, as Spec.Env would have been) and go on to import the
	// handler. It is called at most once; on error the environment is unusable: Destroy it.
	Bind(ctx context.Context, b Binding) error
	// Waiting returns once the runtime waits for its Binding, its own start over (it says so
	// on its BindFDEnv descriptor), or with an error when ctx ends or the runtime ended first.
	// Whoever keeps spares starts the next once the last waits: an interpreter's start takes a
	// CPU, and starting fifty back to back took both of a small host's from warm invokes.
	Waiting(ctx context.Context) error
}

// Binding is what a prestarted environment learns of its function.
type Binding struct {
	TaskDir, OptDir              string
	Env                          []string // as Spec.Env: the backend adds AWS_LAMBDA_RUNTIME_API and the ports' variables
	MemoryMB, EphemeralStorageMB int
}

// BindFDEnv names the variable that tells a prestarted runtime the descriptor its Binding
// arrives on, a stream socket: the runtime writes one byte on it once it has started and waits
// (Bindable.Waiting), then reads its Binding, JSON {"cwd": DIR, "env": ["KEY=VALUE", ...]},
// until end of file.
const BindFDEnv = "_FLINT_BIND_FD"

// BindPayload is the JSON a prestarted runtime reads on its BindFDEnv descriptor.
type BindPayload struct {
	Cwd string   `json:"cwd"`
	Env []string `json:"env"`
}

// Spec describes one environment.
type Spec struct {
	ID string // unique, short, safe in file names
	// Host directories mounted (or mapped) at the guest paths. OptDir may be empty.
	TaskDir, OptDir, RuntimeDir string
	Argv                        []string // Argv[0] is a guest path or an absolute host interpreter
	// Env is KEY=VALUE; the backend adds AWS_LAMBDA_RUNTIME_API and the Ports' variables.
	Env []string
	// Ports are TCP ports the worker serves on the environment's own loopback (Instance.Listener),
	// such as the Parameters and Secrets extension's HTTP interface. See Port.
	Ports              []Port
	MemoryMB           int
	EphemeralStorageMB int
	// Output receives the environment's merged stdout and stderr. The worker owns it.
	Output *os.File
	// Extensions are started in the environment beside Argv (Lambda's external extensions),
	// right after it: same user, limits and namespaces, working directory GuestTaskRoot, and
	// they end with the environment (Destroy), not with Argv's process. At most MaxExtensions.
	Extensions []Extension
}

// Extension is an executable Start runs in the environment beside the runtime. Its own process
// rather than a launcher's doing, so that the runtime's exec errors stay Start's (ExecError)
// and nothing of the function's image (a shell) is needed to start it.
type Extension struct {
	Path string   // a guest path (/opt/extensions/NAME)
	Env  []string // as Spec.Env: the backend adds AWS_LAMBDA_RUNTIME_API and the Ports' variables
	// Output receives its stdout and stderr, and nothing else does: its end of file tells the
	// worker that the extension's process (and whatever it started that kept its output) ended.
	// The worker owns it (and closes its own copy once Start returned); an extension that cannot
	// be executed gets the error written there, and no process of the environment holds it.
	Output *os.File
}

// MaxExtensions bounds Spec.Extensions (a backend may pass their outputs in one message).
const MaxExtensions = 16

// CheckExtensions validates Spec.Extensions; backends call it in Create.
func CheckExtensions(exts []Extension) error {
	if len(exts) > MaxExtensions {
		return fmt.Errorf("sandbox: %d extensions, at most %d", len(exts), MaxExtensions)
	}
	for _, x := range exts {
		if x.Path == "" || x.Path[0] != '/' || x.Output == nil {
			return fmt.Errorf("sandbox: extension %q: an absolute path and an output are required", x.Path)
		}
	}
	return nil
}

// Port is a TCP port served to an environment on its loopback (127.0.0.1), in the host rather
// than by a process inside the environment.
//
// A backend that gives each environment a network namespace of its own listens on 127.0.0.1 at
// Number inside it, so code that assumes the well-known port works, and environments never
// collide. A backend whose environments share the host's network listens on an ephemeral port.
// Either way it sets EnvVar to the port number the runtime must use (replacing any value in
// Spec.Env), as the AWS_LAMBDA_RUNTIME_API variable tells runtimes where the Runtime API is.
type Port struct {
	Number int    // 1-65535, not RuntimeAPIPort
	EnvVar string // e.g. PARAMETERS_SECRETS_EXTENSION_HTTP_PORT
}

// RuntimeAPIPort is where a backend with a network namespace per environment serves the Runtime
// API (127.0.0.1:9001, as on AWS); no Port may take it, on any backend, so that a Spec valid on
// one backend is valid on all.
const RuntimeAPIPort = 9001

// MaxPorts bounds Spec.Ports: a backend may pass every listener in one message (the linux
// backend's init sends them with SCM_RIGHTS, limited to 253 descriptors by the kernel).
const MaxPorts = 16

// CheckPorts validates Spec.Ports; backends call it in Create so that all of them accept and
// refuse the same specs.
func CheckPorts(ports []Port) error {
	if len(ports) > MaxPorts {
		return fmt.Errorf("sandbox: %d ports, at most %d", len(ports), MaxPorts)
	}
	for i, p := range ports {
		switch {
		case p.Number < 1 || p.Number > 65535:
			return fmt.Errorf("sandbox: port %d: out of range", p.Number)
		case p.Number == RuntimeAPIPort:
			return fmt.Errorf("sandbox: port %d: taken by the Runtime API", p.Number)
		case !isEnvName(p.EnvVar) || p.EnvVar == "AWS_LAMBDA_RUNTIME_API":
			return fmt.Errorf("sandbox: port %d: bad variable name %q", p.Number, p.EnvVar)
		}
		for _, q := range ports[:i] {
			if q.Number == p.Number || q.EnvVar == p.EnvVar {
				return fmt.Errorf("sandbox: port %d (%s) given twice", p.Number, p.EnvVar)
			}
		}
	}
	return nil
}

// Listeners are an environment's Spec.Ports listeners by Port.Number, as backends keep them.
type Listeners map[int]net.Listener

// Close closes every listener.
func (l Listeners) Close() {
	for _, ln := range l {
		_ = ln.Close()
	}
}

// ListenLoopback opens an ephemeral 127.0.0.1 listener for each port, for environments that
// share the host's network (where Port.Number cannot be used: environments would collide), and
// returns them with each port's KEY=VALUE variable naming the port actually served. Loopback
// whatever else the backend binds: what is served there is meant for the environment alone.
func ListenLoopback(ctx context.Context, ports []Port) (Listeners, []string, error) {
	lns := make(Listeners, len(ports))
	env := make([]string, 0, len(ports))
	var lc net.ListenConfig
	for _, p := range ports {
		ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			lns.Close()
			return nil, nil, fmt.Errorf("port %d listener: %w", p.Number, err)
		}
		lns[p.Number] = ln
		env = append(env, p.EnvVar+"="+strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	return lns, env, nil
}

// IsPortVar reports whether k is the variable of one of ports: the backend sets it, whatever
// Spec.Env says.
func IsPortVar(ports []Port, k string) bool {
	for _, p := range ports {
		if p.EnvVar == k {
			return true
		}
	}
	return false
}

// isEnvName reports whether s is a portable variable name ([A-Za-z_][A-Za-z0-9_]*).
func isEnvName(s string) bool {
	for i, c := range []byte(s) {
		if c != '_' && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}

// Exit describes how an environment's main process ended.
type Exit struct {
	Code      int    // exit status, -1 if killed by a signal
	Signal    string // e.g. "killed", "" if exited normally
	OOMKilled bool
	At        time.Time
}

// String renders the exit as Lambda does in Runtime.ExitError messages ("exit status 1",
// "signal: killed").
func (e Exit) String() string {
	if e.Signal != "" {
		return "signal: " + e.Signal
	}
	return "exit status " + strconv.Itoa(e.Code)
}

// SignalName renders a terminating signal as Lambda's Runtime.ExitError messages do
// ("signal: killed", "signal: aborted (core dumped)").
func SignalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGKILL:
		return "killed"
	case syscall.SIGABRT:
		return "aborted (core dumped)"
	case syscall.SIGSEGV:
		return "segmentation fault (core dumped)"
	case syscall.SIGTERM:
		return "terminated"
	}
	return s.String()
}

// ExecError is Start's error when the environment's entrypoint could not be executed: a file that
// is not executable or of no format the kernel runs, or whose interpreter (#!) is missing. Unlike
// any other failure to start it is the function's doing, which Lambda reports as
// Runtime.InvalidEntrypoint; backends return it (wrapped or not) so the worker can tell.
type ExecError struct {
	Path string // as the environment names it (/var/task/bootstrap)
	Err  error  // the exec's errno
}

// Error reads as Lambda's message does ("fork/exec /var/task/bootstrap: exec format error").
func (e *ExecError) Error() string { return "fork/exec " + e.Path + ": " + e.Err.Error() }

func (e *ExecError) Unwrap() error { return e.Err }

// ErrDestroyed is returned by operations on an instance that has been destroyed.
var ErrDestroyed = errors.New("sandbox: instance destroyed")
