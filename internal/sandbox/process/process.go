// Package process is the sandbox backend without isolation: each environment is a plain child
// process in its own process group. It runs anywhere (no root, no cgroups) and is meant for
// development machines; the linux backend isolates. It must not import the API, store or worker.
package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/flint-run/flint/internal/sandbox"
)

// Backend runs environments as child processes.
type Backend struct {
	host string // address Runtime API listeners bind on
}

var _ sandbox.Backend = (*Backend)(nil)

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
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(b.host, "0"))
	if err != nil {
		return nil, fmt.Errorf("process: runtime api listener: %w", err)
	}
	i := &instance{ln: ln, done: make(chan struct{})}
	ports, portEnv, err := sandbox.ListenLoopback(ctx, spec.Ports)
	if err != nil {
		i.closeListeners()
		return nil, fmt.Errorf("process: %w", err)
	}
	i.ports = ports
	m := pathMap{task: spec.TaskDir, opt: spec.OptDir, runtime: spec.RuntimeDir}
	argv := make([]string, len(spec.Argv))
	for i, a := range spec.Argv {
		argv[i] = m.path(a)
	}
	env := make([]string, 0, len(spec.Env)+1+len(portEnv))
	for _, kv := range spec.Env {
		k, v, _ := strings.Cut(kv, "=")
		if k == "AWS_LAMBDA_RUNTIME_API" || sandbox.IsPortVar(spec.Ports, k) {
			continue // the backend's value, below
		}
		env = append(env, k+"="+m.list(v))
	}
	env = append(env, "AWS_LAMBDA_RUNTIME_API="+ln.Addr().String())
	env = append(env, portEnv...)
	i.argv0 = spec.Argv[0]
	i.cmd = &exec.Cmd{
		Path:   argv[0],
		Args:   argv,
		Env:    env,
		Dir:    spec.TaskDir,
		Stdout: spec.Output,
		Stderr: spec.Output,
		// Its own process group, so Destroy reaches every process the runtime started; and killed
		// with Flint even after a kill -9.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
	}
	return i, nil
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
	ln    net.Listener
	ports sandbox.Listeners // set by Create, read-only after
	cmd   *exec.Cmd
	argv0 string // the entrypoint as the function names it (a guest path)
	done  chan struct{}

	mu        sync.Mutex
	started   bool
	destroyed bool
	exit      sandbox.Exit
	status    *os.File // /proc/PID/status, opened on the first MaxMemoryUsed
	statusBuf [4096]byte
}

var _ sandbox.MemoryReporter = (*instance)(nil)

func (i *instance) RuntimeAPI() net.Listener { return i.ln }

func (i *instance) Listener(number int) net.Listener { return i.ports[number] }

func (i *instance) closeListeners() {
	_ = i.ln.Close()
	i.ports.Close()
}

func (i *instance) Start(ctx context.Context) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.destroyed {
		return sandbox.ErrDestroyed
	}
	if err := i.cmd.Start(); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Op == "fork/exec" {
			return &sandbox.ExecError{Path: i.argv0, Err: pe.Err}
		}
		return fmt.Errorf("process: start %s: %w", i.cmd.Path, err)
	}
	i.started = true
	go i.reap() // owned by the instance; ends when the process does, which Destroy forces
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
	i.mu.Lock()
	i.exit = exit
	i.mu.Unlock()
	close(i.done)
}

func (i *instance) Wait(ctx context.Context) (sandbox.Exit, error) {
	i.mu.Lock()
	started := i.started
	i.mu.Unlock()
	if !started {
		return sandbox.Exit{}, errors.New("process: not started")
	}
	select {
	case <-i.done:
		i.mu.Lock()
		defer i.mu.Unlock()
		return i.exit, nil
	case <-ctx.Done():
		return sandbox.Exit{}, ctx.Err()
	}
}

func (i *instance) Destroy(ctx context.Context) error {
	i.mu.Lock()
	if i.destroyed {
		i.mu.Unlock()
		return nil
	}
	i.destroyed = true
	started := i.started
	if i.status != nil {
		_ = i.status.Close()
	}
	i.mu.Unlock()
	i.closeListeners()
	if !started {
		return nil
	}
	_ = syscall.Kill(-i.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-i.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("process: destroy %d: %w", i.cmd.Process.Pid, ctx.Err())
	}
}

// MaxMemoryUsed reads the main process's peak resident set (VmHWM). The status file stays open
// and is re-read from offset 0, which regenerates it: one syscall per REPORT.
func (i *instance) MaxMemoryUsed() (uint64, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.destroyed || !i.started {
		return 0, sandbox.ErrDestroyed
	}
	if i.status == nil {
		f, err := os.Open("/proc/" + strconv.Itoa(i.cmd.Process.Pid) + "/status")
		if err != nil {
			return 0, err
		}
		i.status = f
	}
	n, err := i.status.ReadAt(i.statusBuf[:], 0)
	if n == 0 && err != nil {
		return 0, err
	}
	b := i.statusBuf[:n]
	at := bytes.Index(b, []byte("VmHWM:"))
	if at < 0 {
		return 0, errors.New("process: no VmHWM")
	}
	line := b[at+len("VmHWM:"):]
	if nl := bytes.IndexByte(line, '\n'); nl >= 0 {
		line = line[:nl]
	}
	kb, err := strconv.ParseUint(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(line), []byte("kB")))), 10, 64)
	if err != nil {
		return 0, err
	}
	return kb * 1024, nil
}
