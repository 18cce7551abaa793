// Prestarted environments: a runtime started in its sandbox before its function is known, and
// bound to one later (sandbox.Prestarter).
//
// The runtime starts chrooted into its root; the init keeps the host's tree and the privileges
// to mount until the bind: it mounts the function's code and layers, resizes /tmp, enters the
// root as any environment's init does (pivot_root: the host's tree is gone), writes the
// function's variables to the runtime, and drops its privileges for good while the runtime
// imports the handler. The runtime itself never had any: Go cannot run code between fork
// and exec, so a stage of the server's own binary (execArg0) drops them and execs it.

package linux

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/flint-run/flint/internal/sandbox"
)

// execArg0 marks a re-executed binary as a prestarted runtime's exec stage (os.Args[0]):
// os.Args is execArg0, uid, gid, cap_last_cap, the runtime's path, then its argv.
const execArg0 = "flint-sandbox-exec"

// bindFD is the prestarted runtime's end of its bind pipe.
const bindFD = 3

// bindConfig is the bind message's body.
type bindConfig struct {
	TaskDir string `json:"task"`
	OptDir  string `json:"opt,omitempty"`
	TmpMB   int    `json:"tmp_mb"`
	Payload []byte `json:"payload"` // for the runtime: sandbox.BindPayload as JSON
}

var _ sandbox.Prestarter = (*Backend)(nil)

// Prestart creates an environment whose runtime starts now and waits for Bind.
func (b *Backend) Prestart(ctx context.Context, spec sandbox.Spec) (sandbox.Bindable, error) {
	spec.TaskDir, spec.OptDir = "", ""
	i, err := b.create(ctx, spec, true)
	if err != nil {
		return nil, err
	}
	if err := i.Start(ctx); err != nil {
		_ = i.Destroy(context.WithoutCancel(ctx))
		return nil, err
	}
	return i, nil
}

// Waiting returns once the init has relayed that the runtime waits for its bind.
func (i *instance) Waiting(ctx context.Context) error {
	select {
	case <-i.waiting:
		return nil
	case <-i.initGone:
		return fmt.Errorf("linux sandbox: waiting: sandbox init ended: %s", i.Exit())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Bind applies the function's limits, mounts its code and layers, and hands the runtime its
// variables, in that order: no code of the function runs before its limits hold.
func (i *instance) Bind(ctx context.Context, bd sandbox.Binding) error {
	if !i.prestarted.CompareAndSwap(true, false) {
		return errors.New("linux sandbox: bind: not a prestarted environment, or bound already")
	}
	i.beginInit() // the function's cold start, until its INIT ends (EndInit) or Destroy
	memMB, tmpMB := bd.MemoryMB, bd.EphemeralStorageMB
	if memMB <= 0 {
		memMB = defaultMemoryMB
	}
	if tmpMB <= 0 {
		tmpMB = defaultEphemeralMB
	}
	if err := i.Lock(); err != nil {
		return err
	}
	i.memMB, i.cpuQuotaUs = memMB, cpuQuota(memMB)
	err := i.cg.create(limits{memoryBytes: int64(memMB) << 20, cpuQuotaUs: -1, cpuShareUs: i.cpuQuotaUs, pids: pidsMax})
	i.Unlock()
	if err != nil {
		return fmt.Errorf("linux sandbox: bind %s: %w", i.id, err)
	}
	// What the spare's start used (the exec stage is the server's binary) is not the function's.
	i.cg.resetPeak()
	env := guestLangEnv(i.home, i.guestEnv(bd.Env))
	payload, err := json.Marshal(sandbox.BindPayload{Cwd: sandbox.GuestTaskRoot, Env: env})
	if err != nil {
		return err
	}
	body, err := json.Marshal(bindConfig{TaskDir: bd.TaskDir, OptDir: bd.OptDir, TmpMB: tmpMB, Payload: payload})
	if err != nil {
		return err
	}
	if err := send(i.conn, msgBind, body); err != nil {
		return fmt.Errorf("linux sandbox: bind %s: %w", i.id, err)
	}
	m, err := i.next(ctx)
	if err != nil {
		return fmt.Errorf("linux sandbox: bind %s: %w", i.id, err)
	}
	if m.kind != msgBound {
		return fmt.Errorf("linux sandbox: bind %s: unexpected message %q", i.id, m.kind)
	}
	// Then the runtime's start again, once the init has become pid 1 for good (waitRuntime):
	// from then on the environment may be frozen.
	if m, err = i.next(ctx); err != nil {
		return fmt.Errorf("linux sandbox: bind %s: %w", i.id, err)
	}
	if m.kind != msgStarted {
		return fmt.Errorf("linux sandbox: bind %s: unexpected message %q", i.id, m.kind)
	}
	return nil
}

// runPrestarted runs in the init of a prestarted environment once its cgroups are joined: it
// starts the runtime, chrooted into the root at root, through the exec stage; waits for the
// bind; mounts the function from the host's tree, which only this init can still reach; enters
// the root for good (the same root and mounts as an environment that was not prestarted), passes
// the runtime its variables and drops its own privileges. It returns only on failure.
func runPrestarted(root string, cfg initConfig, lastCap int, argv0 string, buf []byte) error {
	// The bind socket (sandbox.BindFDEnv): p[0] the runtime's, p[1] this init's.
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bind socket: %w", err)
	}
	null, err := os.Open("/dev/null")
	if err != nil {
		return err
	}
	args := append([]string{execArg0, strconv.Itoa(cfg.UID), strconv.Itoa(cfg.GID), strconv.Itoa(lastCap), argv0}, cfg.Argv...)
	// The stage is this binary too: started as the init is (initEnviron, first, so that they win
	// over the function's own), and those dropped again before the interpreter's exec.
	env := append(append(initEnviron[:len(initEnviron):len(initEnviron)], cfg.Env...), sandbox.BindFDEnv+"="+strconv.Itoa(bindFD))
	// Not dumpable before the runtime exists: the runtime never reaches this init's /proc/1
	// (whose root, until the bind, is the host's tree).
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("dumpable: %w", err)
	}
	// /proc/self/exe inside the root is the root's /proc: the stage's own executable, the
	// server's binary, which the root does not otherwise show.
	pid, err := syscall.ForkExec("/proc/self/exe", args, &syscall.ProcAttr{
		Dir:   sandbox.GuestTaskRoot,
		Env:   env,
		Files: []uintptr{null.Fd(), 1, 2, uintptr(p[0])},
		Sys:   &syscall.SysProcAttr{Chroot: root, Pdeathsig: syscall.SIGKILL},
	})
	null.Close()
	unix.Close(p[0])
	if err != nil {
		return fmt.Errorf("exec stage for %s: %w", cfg.Argv[0], err)
	}
	_ = unix.Sendmsg(controlFD, append([]byte{msgStarted}, strconv.Itoa(pid)...), nil, nil, 0)
	relayWaiting(p[1])

	n, _, _, _, err := unix.Recvmsg(controlFD, buf, nil, 0)
	if n == 0 && err == nil {
		unix.Exit(0) // the backend no longer needs this spare
	}
	if err != nil || buf[0] != msgBind {
		return fmt.Errorf("wait for bind: %v", err)
	}
	var bc bindConfig
	if err := json.Unmarshal(buf[1:n], &bc); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	for _, m := range []struct{ host, guest string }{{bc.TaskDir, "var/task"}, {bc.OptDir, "opt"}} {
		if m.host == "" {
			continue
		}
		if err := hiddenRO(m.host, filepath.Join(root, m.guest)); err != nil {
			return fmt.Errorf("bind: %w", err)
		}
	}
	if bc.TmpMB != cfg.TmpMB {
		if err := unix.Mount("", filepath.Join(root, "tmp"), "", unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV,
			"mode=1777,size="+strconv.Itoa(bc.TmpMB)+"m"); err != nil {
			return fmt.Errorf("resize /tmp: %w", err)
		}
	}
	if err := enterRoot(root); err != nil {
		return err
	}
	// A runtime that died waiting gets no variables; the wait below reports its end.
	_, _ = unix.Write(p[1], bc.Payload)
	unix.Close(p[1])
	if err := unix.Sendmsg(controlFD, []byte{msgBound}, nil, nil, 0); err != nil {
		return fmt.Errorf("send bound: %w", err)
	}
	// Nothing is left to mount: the init becomes as unprivileged as the runtime while the
	// runtime imports the handler (the runtime cannot reach it meanwhile: it is not dumpable and,
	// under a root server, not the runtime's user), and only then becomes pid1Program.
	if err := dropPrivileges(lastCap, cfg.UID, cfg.GID, true); err != nil {
		return err
	}
	return waitRuntime(pid)
}

// relayWaiting tells the backend when the runtime waits for its bind (the byte it writes on
// its bind socket, Instance.Waiting), and returns once a message of the backend's (the bind, or
// its end) is there to read.
func relayWaiting(bindFD int) {
	fds := []unix.PollFd{{Fd: controlFD, Events: unix.POLLIN}, {Fd: int32(bindFD), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err == unix.EINTR {
			continue
		} else if err != nil {
			return
		}
		if len(fds) > 1 && fds[1].Revents != 0 {
			var b [1]byte
			if n, _ := unix.Read(bindFD, b[:]); n == 1 {
				_ = unix.Sendmsg(controlFD, []byte{msgWaiting}, nil, nil, 0)
			}
			fds = fds[:1] // said once, or the runtime ended
		}
		if fds[0].Revents != 0 {
			return
		}
	}
}

// runExecStage runs in a prestarted runtime's exec stage: it drops every privilege, as the init
// of an environment that is not prestarted does before its fork, and execs the runtime. It never
// returns.
func runExecStage() {
	runtime.LockOSThread() // credentials, capabilities and seccomp are the exec'ing thread's
	err := execStage(os.Args[1:])
	fmt.Fprintln(os.Stderr, "flint sandbox: start runtime:", err)
	unix.Exit(127)
}

func execStage(args []string) error {
	if len(args) < 5 {
		return errors.New("exec stage: too few arguments")
	}
	var nums [3]int
	for n := range nums {
		v, err := strconv.Atoi(args[n])
		if err != nil {
			return fmt.Errorf("exec stage: %w", err)
		}
		nums[n] = v
	}
	if err := dropPrivileges(nums[2], nums[0], nums[1], false); err != nil {
		return err
	}
	return unix.Exec(args[3], args[4:], withoutStageEnviron(os.Environ()))
}

// withoutStageEnviron drops the variables runPrestarted put first for the stage itself, leaving
// the runtime's environment exactly as configured (a function's own GOGC, say, included).
func withoutStageEnviron(env []string) []string {
	if len(env) >= len(initEnviron) && slices.Equal(env[:len(initEnviron)], initEnviron) {
		return env[len(initEnviron):]
	}
	return env
}

// resetPeak restarts the memory high-water mark from the current usage (cgroup v1; v2 from
// Linux 6.12, which lets memory.peak be written). Older v2 kernels keep the peak.
func (e envCgroup) resetPeak() {
	d, v2 := e.cg.dir("memory", e.id)
	if d == "" {
		return
	}
	if v2 {
		_ = write(filepath.Join(d, "memory.peak"), "0")
		return
	}
	_ = write(filepath.Join(d, "memory.max_usage_in_bytes"), "0")
}
