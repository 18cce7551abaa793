package linux

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/flint-run/flint/internal/sandbox"
)

// initArg0 marks a re-executed binary as a sandbox init (os.Args[0]).
const initArg0 = "flint-sandbox-init"

// controlFD is the init's end of the control socket (ExtraFiles[0]).
const controlFD = 3

// Messages on the control socket (SOCK_SEQPACKET, one message each), by first byte.
const (
	msgPrepare  = 'B' // parent → init: the root's directory; build what is function-independent
	msgConfig   = 'C' // parent → init: initConfig as JSON
	msgGo       = 'G' // parent → init: cgroups joined, exec the runtime
	msgReady    = 'R' // init → parent: the root is built; with the listener fds when it made them
	msgStarted  = 'S' // init → parent: the runtime is running
	msgExit     = 'X' // init → parent: the runtime ended: "code N" or "signal N"
	msgError    = 'E' // init → parent: setup failed; the text follows
	msgNoExec   = 'N' // init → parent: the runtime could not be executed; its errno follows
	msgProbeAck = 'P' // init → parent: the probe ran (Check)
	msgBind     = 'D' // parent → init: a prestarted runtime's function (bindConfig, with its directories' fds)
	msgBound    = 'O' // init → parent: the function is mounted and the runtime has its variables
	msgWaiting  = 'A' // init → parent: the prestarted runtime has started and waits for its bind
	msgChild    = 'W' // pid 1 → parent: a child ended; int32 pid, int32 wait status (pid1Program)
)

// initConfig is what the parent tells an init.
type initConfig struct {
	Probe      bool   `json:"probe,omitempty"`
	TaskDir    string `json:"task"`
	OptDir     string `json:"opt,omitempty"`
	RuntimeDir string `json:"runtime,omitempty"`
	TmpMB      int    `json:"tmp_mb"`
	ShmMB      int    `json:"shm_mb"`
	Hostname   string `json:"hostname"`
	// Ports are the loopback ports (sandbox.Port.Number) to listen on besides the Runtime API's.
	Ports []int    `json:"ports,omitempty"`
	Argv  []string `json:"argv"`
	Env   []string `json:"env"`
	// UID and GID, when set, are what the runtime runs as (the init builds the root as root
	// first); unset, it stays uid 0 (of the user namespace, when the server is not root).
	UID int `json:"uid,omitempty"`
	GID int `json:"gid,omitempty"`
	// Interp is an interpreter's installation outside the host directories, shown at /var/lang
	// (interpreterHome).
	Interp string `json:"interp,omitempty"`
	// Extensions are started beside the runtime, as it is; their outputs follow the
	// environment's in the configuration message's descriptors.
	Extensions []initExtension `json:"extensions,omitempty"`
	// Prestart starts the runtime before its function is known (Backend.Prestart): /var/task and
	// /opt stay empty until a bind message, and the init keeps the privileges to mount them
	// until then, so the runtime's are dropped by a stage of its own (execArg0).
	Prestart bool `json:"prestart,omitempty"`
}

// initExtension is one of sandbox.Spec.Extensions, its path and environment in guest terms.
type initExtension struct {
	Path string   `json:"path"`
	Env  []string `json:"env"`
}

// Init runs the in-sandbox setup when this process is a sandbox init started by the backend, and
// never returns in that case; otherwise it returns at once and does nothing. Call it first thing
// in main, and in the TestMain of every test package that creates linux sandboxes: Go cannot run
// code between fork and exec, so the backend re-executes /proc/self/exe as the sandbox's init.
func Init() {
	if len(os.Args) > 0 && os.Args[0] == reaperArg0 {
		runReaper()
	}
	if len(os.Args) > 0 && os.Args[0] == execArg0 {
		runExecStage()
	}
	if len(os.Args) == 0 || os.Args[0] != initArg0 {
		return
	}
	// Credentials, the seccomp filter and the cgroup namespace are per thread: everything from
	// here to the runtime's fork happens on this one.
	runtime.LockOSThread()
	err := sandboxInit()
	msg := "flint sandbox init: " + err.Error()
	if errno, ok := errors.AsType[execFailed](err); ok {
		_ = unix.Sendmsg(controlFD, append([]byte{msgNoExec}, strconv.Itoa(int(errno))...), nil, nil, 0)
	} else {
		_ = unix.Sendmsg(controlFD, append([]byte{msgError}, msg...), nil, nil, 0)
	}
	fmt.Fprintln(os.Stderr, msg)
	unix.Exit(127)
}

// sandboxInit runs as pid 1 of the new pid namespace. It returns only on failure.
func sandboxInit() error {
	unix.CloseOnExec(controlFD)
	buf := make([]byte, 1<<20)
	oob := make([]byte, unix.CmsgSpace(4*(1+sandbox.MaxExtensions)))
	// The root's directory comes over the control socket, not in argv: the environment can read
	// its pid 1's command line, and nothing of the host's layout may show there. The init builds
	// the function-independent part of the root while it waits for its configuration (a spare
	// may wait long); a failure is reported once the configuration asks for that root.
	var root string
	var prepErr error
	n, oobn, _, _, err := unix.Recvmsg(controlFD, buf, oob, 0)
	if n > 0 && err == nil && buf[0] == msgPrepare {
		root = string(buf[1:n])
		prepErr = prepareRoot(root, shmMB)
		n, oobn, _, _, err = unix.Recvmsg(controlFD, buf, oob, 0)
	}
	if n == 0 && err == nil {
		unix.Exit(0) // a spare init the backend no longer needs
	}
	if err != nil || buf[0] != msgConfig {
		return fmt.Errorf("read config: %v (%d bytes)", err, n)
	}
	var cfg initConfig
	if err := json.Unmarshal(buf[1:n], &cfg); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	// The environment's output, for this init's and the runtime's stdout and stderr, then the
	// extensions' (close-on-exec: each goes to its extension only, or its end of file would
	// wait for the runtime's).
	var extOut []int
	if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(cms) > 0 {
		if fds, err := unix.ParseUnixRights(&cms[0]); err == nil && len(fds) > 0 {
			if len(fds) > len(cfg.Extensions) {
				for _, fd := range []int{1, 2} {
					if err := unix.Dup3(fds[0], fd, 0); err != nil {
						return fmt.Errorf("output: %w", err)
					}
				}
				unix.Close(fds[0])
				fds = fds[1:]
			}
			for _, fd := range fds {
				unix.CloseOnExec(fd)
			}
			extOut = fds
		}
	}
	if len(extOut) != len(cfg.Extensions) {
		return fmt.Errorf("config: %d extensions, %d outputs", len(cfg.Extensions), len(extOut))
	}
	if cfg.Probe {
		if err := unix.Sendmsg(controlFD, []byte{msgProbeAck}, nil, nil, 0); err != nil {
			return err
		}
		unix.Exit(0)
	}
	lastCap, err := capLast()
	if err != nil {
		return err
	}
	switch {
	case root == "":
		return errors.New("no root to build")
	case prepErr != nil:
		return prepErr
	}
	if err := finishRoot(root, cfg); err != nil {
		return err
	}
	if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
		return fmt.Errorf("sethostname: %w", err)
	}
	if err := loopbackUp(); err != nil {
		return err
	}
	// The Runtime API's listener first, then one per port in the configuration's order: the
	// parent matches them up by position, all in the one ready message. (On failure the init
	// exits, which closes what it made.)
	var fds []int
	for _, port := range append([]int{sandbox.RuntimeAPIPort}, cfg.Ports...) {
		fd, err := listenLoopback(port)
		if err != nil {
			return err
		}
		fds = append(fds, fd)
	}
	err = unix.Sendmsg(controlFD, []byte{msgReady}, unix.UnixRights(fds...), nil, 0)
	// The parent has its own copies now. Ours are close-on-exec, but the init outlives the exec:
	// closed, the sockets go when the parent closes them, not only when the environment ends.
	for _, fd := range fds {
		unix.Close(fd)
	}
	if err != nil {
		return fmt.Errorf("send ready: %w", err)
	}
	// Block until the parent has put us into the environment's cgroups.
	n, _, _, _, err = unix.Recvmsg(controlFD, buf, nil, 0)
	if n == 0 && err == nil {
		unix.Exit(1) // the parent closed the socket: destroyed before Start
	}
	if err != nil || buf[0] != msgGo {
		return fmt.Errorf("wait for go: %v", err)
	}
	// A cgroup namespace rooted at the environment's cgroups, now that we are in them.
	if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
		return fmt.Errorf("cgroup namespace: %w", err)
	}
	argv0, err := lookPath(cfg.Argv[0], cfg.Env)
	if err != nil {
		return fmt.Errorf("%w: %w", err, execFailed(syscall.ENOENT))
	}
	if cfg.Prestart {
		return runPrestarted(root, cfg, lastCap, argv0, buf)
	}
	null, err := os.Open("/dev/null")
	if err != nil {
		return err
	}
	if err := dropPrivileges(lastCap, cfg.UID, cfg.GID, true); err != nil {
		return err
	}
	pid, err := syscall.ForkExec(argv0, cfg.Argv, &syscall.ProcAttr{
		Dir:   "/var/task",
		Env:   cfg.Env,
		Files: []uintptr{null.Fd(), 1, 2},
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	})
	if errno, ok := err.(syscall.Errno); ok {
		return fmt.Errorf("exec %s: %w", cfg.Argv[0], execFailed(errno))
	}
	if err != nil {
		return fmt.Errorf("exec %s: %w", cfg.Argv[0], err)
	}
	startExtensions(cfg.Extensions, extOut, null)
	null.Close()
	return waitRuntime(pid)
}

// startExtensions starts each extension (its output is outs[n]) as the runtime was started,
// and closes the init's copies of their outputs: each one's end of file is its process's. One
// that cannot be executed gets the error on its output instead.
func startExtensions(exts []initExtension, outs []int, null *os.File) {
	for n, x := range exts {
		_, err := syscall.ForkExec(x.Path, []string{x.Path}, &syscall.ProcAttr{
			Dir:   "/var/task",
			Env:   x.Env,
			Files: []uintptr{null.Fd(), uintptr(outs[n]), uintptr(outs[n])},
			Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
		})
		if err != nil {
			_, _ = unix.Write(outs[n], []byte("fork/exec "+x.Path+": "+err.Error()+"\n"))
		}
		unix.Close(outs[n])
	}
}

// waitRuntime tells the parent the runtime (pid) runs (msgStarted) and reaps, as pid 1, every
// orphan; when the runtime ends, it reports how, and goes on reaping while anything else of the
// environment runs (external extensions, which get SHUTDOWN before Destroy kills the rest).
// Where it can, it becomes pid1Program for that, which sends the msgStarted once its exec is
// over: the parent, which may freeze the environment from then on, must not freeze
// it during the exec (the exec waits for the init's other threads to end, which the freezer
// holds: both wait for ever).
func waitRuntime(pid int) error {
	started := fmt.Appendf(nil, "%c%-11d", msgStarted, pid)
	execPID1(string(started)) // returns only if it could not
	if len(pid1Program) > 0 {
		// The init's other threads kept its first IDs (setThreadIDs): it must not live on.
		return errors.New("exec pid 1 failed")
	}
	// Still this binary, for the environment's life: collect again (the backend starts inits
	// with GOGC=off, which suits a start but not a process that reaps for ever).
	debug.SetGCPercent(100)
	_ = unix.Sendmsg(controlFD, started, nil, nil, 0)
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.ECHILD) {
			unix.Exit(0) // nothing of the environment is left
		}
		if err != nil {
			return fmt.Errorf("wait: %w", err)
		}
		if got != pid {
			continue
		}
		status := "code " + strconv.Itoa(ws.ExitStatus())
		if ws.Signaled() {
			status = "signal " + strconv.Itoa(int(ws.Signal()))
		}
		_ = unix.Sendmsg(controlFD, append([]byte{msgExit}, status...), nil, nil, 0)
	}
}

// execPID1 replaces this init with pid1Program, which sends started (msgStarted, 12 bytes) and
// goes on reaping and reports every child's end ('W' messages: the parent knows the runtime's
// pid from msgStarted). The init has nothing
// left to do but that, and as the server's binary it holds megabytes an idle environment should
// not. The program is written to a memory file that is executable but not readable: exec'ing a
// file one cannot read leaves the process not dumpable, so the runtime cannot reach pid 1's
// memory (and the program makes itself not dumpable too). It returns only if the exec failed.
func execPID1(started string) {
	if len(pid1Program) == 0 || len(started) != 12 {
		return
	}
	fd, err := unix.MemfdCreate("flint-pid1", unix.MFD_CLOEXEC)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if n, err := unix.Write(fd, pid1Program); err != nil || n != len(pid1Program) {
		return
	}
	if err := unix.Fchmod(fd, 0o111); err != nil {
		return
	}
	if _, err := unix.FcntlInt(controlFD, unix.F_SETFD, 0); err != nil {
		return
	}
	_ = unix.Exec("/proc/self/fd/"+strconv.Itoa(fd), []string{initArg0, started}, []string{})
	unix.CloseOnExec(controlFD)
}

func capLast() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, fmt.Errorf("read cap_last_cap: %w", err)
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// execFailed is the errno of a runtime that could not be executed: the function's doing
// (sandbox.ExecError), not the sandbox's.
type execFailed syscall.Errno

func (e execFailed) Error() string { return syscall.Errno(e).Error() }

// lookPath resolves a bare command name against the runtime's PATH inside the new root.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := "/usr/local/bin:/usr/bin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %s: not found in PATH %s", name, path)
}

// Secure bits: root gets no capabilities from exec, for good.
const (
	secbitNoroot       = 1 << 0
	secbitNorootLocked = 1 << 1
)

// dropPrivileges leaves the init (and so the runtime forked from it) as uid (0: uid 0) with no
// capabilities at all, no way to regain them, and the seccomp filter installed.
// checkControl makes sure, after the credentials changed, that the server is still there (its
// end of the control socket open): an init's; the runtime's exec stage has no control socket.
// The IDs change on this thread alone when the caller execs from it next (setIDs): the exec
// stage always, an init when it has a pid1Program to become.
func dropPrivileges(lastCap, uid, gid int, checkControl bool) error {
	threadOnly := !checkControl || len(pid1Program) > 0
	for c := 0; c <= lastCap; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_SECUREBITS, secbitNoroot|secbitNorootLocked, 0, 0, 0); err != nil {
		return fmt.Errorf("securebits: %w", err)
	}
	if uid != 0 {
		// Before the capabilities that allow it are gone; leaving uid 0 also clears what
		// capabilities are left.
		if err := setIDs(uid, gid, threadOnly); err != nil {
			return err
		}
		// Changing credentials clears the parent-death signal: arm it again, then make sure the
		// server did not die in between (its end of the control socket would be closed).
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
			return fmt.Errorf("parent death signal: %w", err)
		}
		var b [1]byte
		if n, _, err := unix.Recvfrom(controlFD, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT); checkControl && n == 0 && err == nil {
			unix.Exit(1)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("drop capabilities: %w", err)
	}
	// Not dumpable: /proc/1 (the init's executable, which is the server's binary at its host
	// path, its maps and its descriptors) is closed to the runtime even when both are uid 0 of a
	// user namespace. The runtime's exec makes it dumpable again, for its own /proc/self.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("dumpable: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	return installSeccomp()
}

// setIDs gives the calling thread uid and gid as its real, effective and saved IDs and no
// supplementary groups; with threadOnly that thread alone, else every thread of the process.
// Like everything else dropPrivileges does (capabilities, secure bits, no_new_privs, the
// seccomp filter), credentials are per thread in Linux. Go's Setresuid and friends change every
// thread, stopping each with a signal, three times: about 0.2 ms of every cold start here. A caller
// that execs from this thread next (the exec stage execs the runtime; an init forks the runtime
// from it, then execs pid1Program) needs only this thread's: the exec ends every other, and until
// then they run the init's own code and the runtime cannot reach them (the process is not
// dumpable, and they are not its user). An init that stays this binary for the environment's
// life (no pid1Program for the architecture) changes them all.
func setIDs(uid, gid int, threadOnly bool) error {
	if !threadOnly {
		if err := unix.Setgroups([]int{}); err != nil {
			return fmt.Errorf("setgroups: %w", err)
		}
		if err := unix.Setresgid(gid, gid, gid); err != nil {
			return fmt.Errorf("setresgid %d: %w", gid, err)
		}
		if err := unix.Setresuid(uid, uid, uid); err != nil {
			return fmt.Errorf("setresuid %d: %w", uid, err)
		}
		return nil
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); errno != 0 {
		return fmt.Errorf("setgroups: %w", errno)
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); errno != 0 {
		return fmt.Errorf("setresgid %d: %w", gid, errno)
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); errno != 0 {
		return fmt.Errorf("setresuid %d: %w", uid, errno)
	}
	return nil
}

// loopbackUp brings lo up in the environment's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP | unix.IFF_RUNNING)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	return nil
}

// runtimeAPIAddr is where runtimes find the Runtime API inside their network namespace, as on
// AWS: 127.0.0.1:sandbox.RuntimeAPIPort.
const runtimeAPIAddr = "127.0.0.1:9001"

// listenLoopback listens on 127.0.0.1:port in this process's network namespace.
func listenLoopback(port int) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket for port %d: %w", port, err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind 127.0.0.1:%d: %w", port, err)
	}
	if err := unix.Listen(fd, 128); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("listen on 127.0.0.1:%d: %w", port, err)
	}
	return fd, nil
}
