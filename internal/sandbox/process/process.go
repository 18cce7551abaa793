// Package process is the sandbox backend without isolation: each environment is a plain child
// process in its own process group. It runs anywhere (no root, no cgroups) and is meant for
// development machines; the linux backend isolates. It must not import the API, store or worker.
package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flint-run/flint/internal/sandbox"
)

// Backend runs environments as child processes.
type Backend struct {
	host string // address Runtime API listeners bind on
}

var (
	_ sandbox.Backend    = (*Backend)(nil)
	_ sandbox.Prestarter = (*Backend)(nil)
)

// New returns a backend whose environments' Runtime API listens on host (e.g. 127.0.0.1).
func New(host string) *Backend { return &Backend{host: host} }

func (b *Backend) Name() string { return "process" }

func (b *Backend) Check(ctx context.Context) error { return nil }

// Create prepares an environment: its Runtime API listener and command; Start runs it.
func (b *Backend) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Instance, error) {
	if len(spec.Argv) == 0 {
		return nil, errors.New("process: empty argv")
	}
	if err := sandbox.CheckPorts(spec.Ports); err != nil {
		return nil, fmt.Errorf("process: %w", err)
	}
	if err := sandbox.CheckExtensions(spec.Extensions); err != nil {
		return nil, fmt.Errorf("process: %w", err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(b.host, "0"))
	if err != nil {
		return nil, fmt.Errorf("process: runtime api listener: %w", err)
	}
	i := &instance{ln: ln}
	ports, portEnv, err := sandbox.ListenLoopback(ctx, spec.Ports)
	if err != nil {
		i.closeListeners()
		return nil, fmt.Errorf("process: %w", err)
	}
	i.ports = ports
	i.specPorts, i.portEnv, i.runtimeDir = spec.Ports, portEnv, spec.RuntimeDir
	m := pathMap{task: spec.TaskDir, opt: spec.OptDir, runtime: spec.RuntimeDir}
	argv := make([]string, len(spec.Argv))
	for i, a := range spec.Argv {
		argv[i] = m.path(a)
	}
	i.argv0 = spec.Argv[0]
	i.cmd = &exec.Cmd{
		Path:   argv[0],
		Args:   argv,
		Env:    i.hostEnv(m, spec.Env),
		Dir:    spec.TaskDir,
		Stdout: spec.Output,
		Stderr: spec.Output,
		// Its own process group, so Destroy reaches every process the runtime started (and,
		// where the platform can, killed with Flint even after a kill -9: sysProcAttr).
		SysProcAttr: sysProcAttr(),
	}
	for _, x := range spec.Extensions {
		path := m.path(x.Path)
		i.extPaths = append(i.extPaths, x.Path)
		i.exts = append(i.exts, &exec.Cmd{Path: path, Args: []string{path}, Env: i.hostEnv(m, x.Env),
			Dir: spec.TaskDir, Stdout: x.Output, Stderr: x.Output})
	}
	return i, nil
}

// hostEnv is env with its guest paths mapped by m and the backend's own variables (the Runtime
// API's address, the ports') in place of any value env gives them.
func (i *instance) hostEnv(m pathMap, env []string) []string {
	out := make([]string, 0, len(env)+1+len(i.portEnv))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if k == "AWS_LAMBDA_RUNTIME_API" || sandbox.IsPortVar(i.specPorts, k) {
			continue // the backend's value, below
		}
		out = append(out, k+"="+m.list(v))
	}
	out = append(out, "AWS_LAMBDA_RUNTIME_API="+i.ln.Addr().String())
	return append(out, i.portEnv...)
}

// Prestart starts spec's runtime with no function: it waits on a pipe for Bind. Its working
// directory is the runtime's until Bind names the function's.
func (b *Backend) Prestart(ctx context.Context, spec sandbox.Spec) (sandbox.Bindable, error) {
	spec.TaskDir, spec.OptDir = "", ""
	if len(spec.Extensions) > 0 {
		return nil, errors.New("process: a prestarted runtime starts without extensions")
	}
	inst, err := b.Create(ctx, spec)
	if err != nil {
		return nil, err
	}
	i := inst.(*instance)
	r, w, err := bindSocket()
	if err != nil {
		_ = i.Destroy(ctx)
		return nil, fmt.Errorf("process: bind socket: %w", err)
	}
	defer r.Close() // the runtime has its own copy once started
	i.bind.Store(w)
	i.cmd.ExtraFiles = []*os.File{r} // descriptor 3
	i.cmd.Env = append(i.cmd.Env, sandbox.BindFDEnv+"=3")
	i.cmd.Dir = "/"
	if spec.RuntimeDir != "" {
		i.cmd.Dir = spec.RuntimeDir
	}
	if err := i.Start(ctx); err != nil {
		_ = i.Destroy(ctx)
		return nil, err
	}
	i.wasSched = idle(i.cmd.Process.Pid)
	return i, nil
}

// bindSocket makes a prestarted runtime's bind descriptor: a stream socket pair, the runtime's
// end blocking (its client reads it so), Flint's end pollable (Waiting reads it with a deadline).
func bindSocket() (runtime, flint *os.File, err error) {
	syscall.ForkLock.RLock() // no exec may inherit them before they are close-on-exec
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, err
	}
	if err := syscall.SetNonblock(fds[1], true); err != nil {
		syscall.Close(fds[0])
		syscall.Close(fds[1])
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "bind"), os.NewFile(uintptr(fds[1]), "bind"), nil
}

// Waiting reads the byte the runtime writes on its bind socket once it waits.
func (i *instance) Waiting(ctx context.Context) error {
	w := i.bind.Load()
	if w == nil {
		return errors.New("process: waiting: not a prestarted environment, or bound or destroyed already")
	}
	// The read ends when ctx does (a deadline in the past), and then ctx.Err() is set.
	stop := context.AfterFunc(ctx, func() { _ = w.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	var b [1]byte
	n, err := w.Read(b[:])
	_ = w.SetReadDeadline(time.Time{})
	if n == 1 {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = errors.New("the runtime ended before it waited")
	}
	return fmt.Errorf("process: waiting: %w", err)
}

// Bind hands the waiting runtime its function's variables, with the guest paths mapped onto
// the function's directories, and the function's code directory as its working directory.
// The process backend has no limits to apply.
func (i *instance) Bind(ctx context.Context, b sandbox.Binding) error {
	m := pathMap{task: b.TaskDir, opt: b.OptDir, runtime: i.runtimeDir}
	payload, err := json.Marshal(sandbox.BindPayload{Cwd: b.TaskDir, Env: i.hostEnv(m, b.Env)})
	if err != nil {
		return err
	}
	w := i.bind.Swap(nil)
	if w == nil {
		return errors.New("process: bind: not a prestarted environment, or bound or destroyed already")
	}
	if i.wasSched != nil {
		if err := unidle(i.cmd.Process.Pid, i.wasSched); err != nil {
			w.Close()
			return fmt.Errorf("process: bind: leave SCHED_IDLE: %w", err)
		}
	}
	_, err = w.Write(payload)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("process: bind: %w", err)
	}
	return nil
}

// pathMap maps the guest paths onto host directories, since a process cannot mount.
type pathMap struct{ task, opt, runtime string }

func (m pathMap) path(p string) string {
	for _, r := range [...]struct{ guest, host string }{
		{sandbox.GuestTaskRoot, m.task}, {sandbox.GuestOptRoot, m.opt}, {sandbox.GuestRuntimeDir, m.runtime},
	} {
		if p == r.guest || strings.HasPrefix(p, r.guest+"/") {
			host := r.host
			if host == "" {
				host = "/nonexistent" + r.guest
			}
			return host + p[len(r.guest):]
		}
	}
	return p
}

// list maps every element of a colon-separated path list.
func (m pathMap) list(v string) string {
	if !strings.Contains(v, "/") {
		return v
	}
	parts := strings.Split(v, ":")
	for i, p := range parts {
		parts[i] = m.path(p)
	}
	return strings.Join(parts, ":")
}

type instance struct {
	sandbox.Guard // Wait; started, destroyed and the exit

	ln       net.Listener
	ports    sandbox.Listeners // set by Create, read-only after
	cmd      *exec.Cmd
	exts     []*exec.Cmd // Spec.Extensions, started in cmd's process group
	extPaths []string    // their guest paths
	argv0    string      // the entrypoint as the function names it (a guest path)

	specPorts  []sandbox.Port
	portEnv    []string // the ports' variables, naming the ports served
	runtimeDir string
	bind       atomic.Pointer[os.File] // a prestarted runtime's bind socket, until Bind or Destroy
	wasSched   *schedAttr              // a prestarted runtime started in SCHED_IDLE: what it gets at Bind (idle)

	// Between Guard.Lock and Unlock.
	status    *os.File // /proc/PID/status, opened on the first MaxMemoryUsed
	statusBuf [4096]byte
}

func (i *instance) RuntimeAPI() net.Listener { return i.ln }

func (i *instance) Listener(number int) net.Listener { return i.ports[number] }

func (i *instance) closeListeners() {
	_ = i.ln.Close()
	i.ports.Close()
}

func (i *instance) Start(ctx context.Context) error {
	if err := i.Lock(); err != nil {
		return err
	}
	defer i.Unlock()
	// Held across the fork: a Destroy meanwhile waits, then finds the process to kill.
	if err := i.cmd.Start(); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Op == "fork/exec" {
			return &sandbox.ExecError{Path: i.argv0, Err: pe.Err}
		}
		return fmt.Errorf("process: start %s: %w", i.cmd.Path, err)
	}
	_ = i.MarkStarted() // cannot fail: cmd.Start refuses a second Start first
	// The extensions join the runtime's process group, so that Destroy ends them with it; one
	// that cannot be started gets the error on its output, which no process holds then. The
	// runtime is reaped only after: a runtime that ended at once is a zombie until then, which
	// keeps its group there to join.
	for n, x := range i.exts {
		x.SysProcAttr = sysProcAttr()
		x.SysProcAttr.Pgid = i.cmd.Process.Pid
		if err := x.Start(); err != nil {
			// Named as the environment names it, as the linux sandbox's init does.
			if pe, ok := errors.AsType[*fs.PathError](err); ok && pe.Op == "fork/exec" {
				err = &sandbox.ExecError{Path: i.extPaths[n], Err: pe.Err}
			}
			fmt.Fprintf(x.Stdout, "%v\n", err)
			continue
		}
		go func() { _ = x.Wait() }() // owned by the instance: ends when the extension does, which Destroy forces
	}
	// The reaper is owned by the instance; it ends when the process does, which Destroy forces.
	go i.reap()
	return nil
}

func (i *instance) reap() {
	err := i.cmd.Wait()
	exit := sandbox.Exit{At: time.Now()}
	if ws, ok := i.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		exit.Code, exit.Signal = -1, sandbox.SignalName(ws.Signal())
	} else {
		exit.Code = i.cmd.ProcessState.ExitCode()
	}
	_ = err
	i.Exited(exit)
}

// Destroy kills the process group and closes the listeners; it is idempotent.
func (i *instance) Destroy(ctx context.Context) error {
	first, started := i.MarkDestroyed()
	if !first {
		return nil
	}
	// No MaxMemoryUsed runs from now on: the Guard refuses it.
	if i.status != nil {
		_ = i.status.Close()
	}
	i.closeListeners()
	if w := i.bind.Swap(nil); w != nil {
		_ = w.Close()
	}
	if !started {
		return nil
	}
	_ = syscall.Kill(-i.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-i.Done():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("process: destroy %d: %w", i.cmd.Process.Pid, ctx.Err())
	}
}
