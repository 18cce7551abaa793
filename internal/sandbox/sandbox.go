// Package sandbox is the contract between Flint's worker and the isolation technologies that run
// execution environments. It owns only the interfaces and the shared Spec/Exit types; backends
// live in sub-packages (process, linux, later microvm) and must not import the API, the store or
// the worker.
package sandbox

import (
	"context"
	"errors"
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
	// Start boots the environment and starts Spec.Argv. ctx bounds boot only, never the lifetime.
	Start(ctx context.Context) error
	// Wait blocks until the environment's main process exits (or ctx ends).
	Wait(ctx context.Context) (Exit, error)
	// Destroy kills everything and releases every resource; it is idempotent.
	Destroy(ctx context.Context) error
}

// Freezer is an optional capability: suspend an idle environment so it costs no CPU.
type Freezer interface {
	Freeze(ctx context.Context) error
	Thaw(ctx context.Context) error
}

// InitBooster is an optional capability: the environment starts with more resources than its
// steady state (Lambda's INIT phase runs with more CPU); EndInit applies the steady-state limits
// once the runtime asked for its first event.
type InitBooster interface {
	EndInit(ctx context.Context) error
}

// MemoryReporter is an optional capability: the peak memory the environment has used, in bytes.
type MemoryReporter interface {
	MaxMemoryUsed() (uint64, error)
}

// Spec describes one environment.
type Spec struct {
	ID string // unique, short, safe in file names
	// Host directories mounted (or mapped) at the guest paths. OptDir may be empty.
	TaskDir, OptDir, RuntimeDir string
	Argv                        []string // Argv[0] is a guest path or an absolute host interpreter
	Env                         []string // KEY=VALUE; AWS_LAMBDA_RUNTIME_API is added by the backend
	MemoryMB                    int
	EphemeralStorageMB          int
	// Output receives the environment's merged stdout and stderr. The worker owns it.
	Output *os.File
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

// ErrDestroyed is returned by operations on an instance that has been destroyed.
var ErrDestroyed = errors.New("sandbox: instance destroyed")
