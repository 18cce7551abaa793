package linux

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flint-run/flint/internal/sandbox"
)

// message is one message from an init.
type message struct {
	kind byte
	body string
	fds  []int // received descriptors
}

// closeFDs closes descriptors received with a message that nobody took.
func (m message) closeFDs() {
	for _, fd := range m.fds {
		unix.Close(fd)
	}
}

// instance is one environment.
type instance struct {
	sandbox.Guard // Wait; started, destroyed and the exit (Exited once the runtime is gone)

	b     *Backend
	id    string
	argv0 string // the runtime, as the environment names it
	memMB int
	dir   string
	cg    envCgroup
	cmd   *exec.Cmd
	conn  *net.UnixConn
	ln    net.Listener
	ports sandbox.Listeners // set by Create, read-only after
	nfds  int               // descriptors the ready message carries (1+len(ports))
	veth  *veth             // with Network "egress"
	msgs  chan message
	// initGone is closed once the init (pid 1) has exited: with it every process of the
	// environment. The runtime's end (Exited) comes first, and the rest of the environment (its
	// extensions) lives on until Destroy, as in every backend.
	initGone chan struct{}
	// waiting is closed when a prestarted runtime says it waits for its bind (msgWaiting).
	waiting chan struct{}

	peak peakMemory

	cpuQuotaUs int64 // the steady-state CPU cap EndInit applies

	// For Bind, set by create.
	prestarted atomic.Bool // a prestarted runtime not bound yet
	initOpen   atomic.Bool // counted in the backend's initing (beginInit, endInit)
	specPorts  []sandbox.Port
	portEnv    []string // the ports' variables, at their numbers
	home       string   // interpreterHome of the runtime
}

var (
	_ sandbox.Freezer        = (*instance)(nil)
	_ sandbox.MemoryReporter = (*instance)(nil)
	_ sandbox.InitBooster    = (*instance)(nil)
)

// beginInit counts the environment as a cold start in flight until endInit: from its creation
// (or a prestarted one's bind) to the end of its INIT, which puts off refills (refillPutOffLocked).
func (i *instance) beginInit() {
	i.b.mu.Lock()
	i.b.initing++
	i.b.mu.Unlock()
	i.initOpen.Store(true)
}

// endInit ends what beginInit began, once; the caller calls refill.
func (i *instance) endInit() {
	if i.initOpen.CompareAndSwap(true, false) {
		i.b.mu.Lock()
		i.b.initing--
		i.b.mu.Unlock()
	}
}

// EndInit caps the environment's CPU in proportion to its memory once INIT is over.
func (i *instance) EndInit(ctx context.Context) error {
	i.endInit()
	defer i.b.refill()
	if err := i.Lock(); err != nil {
		return err
	}
	defer i.Unlock()
	return i.cg.setCPUQuota(i.cpuQuotaUs)
}

func (i *instance) RuntimeAPI() net.Listener { return i.ln }

func (i *instance) Listener(number int) net.Listener { return i.ports[number] }

func (i *instance) closeListeners() {
	if i.ln != nil {
		_ = i.ln.Close()
	}
	i.ports.Close()
}

// next waits for the init's next message.
func (i *instance) next(ctx context.Context) (message, error) {
	select {
	case m := <-i.msgs:
		if m.kind == msgError {
			return m, errors.New(m.body)
		}
		return m, nil
	case <-i.initGone:
		select { // a message sent just before the init exited
		case m := <-i.msgs:
			if m.kind == msgError {
				return m, errors.New(m.body)
			}
			return m, nil
		default:
		}
		return message{}, fmt.Errorf("sandbox init ended: %s", i.Exit())
	case <-ctx.Done():
		return message{}, ctx.Err()
	}
}

// reap reads the init's messages until it exits. The runtime's end, which the init reports,
// is the environment's exit (Wait returns): what else runs in it (external extensions, which
// still get SHUTDOWN) is left to Destroy, which kills the init and with it the pid namespace.
func (i *instance) reap() {
	defer close(i.initGone)
	var runtimePID int // in the environment's pid namespace
	saidWaiting := false
	buf := make([]byte, 4096)
	// Room for every descriptor the ready message carries: the kernel drops (and closes) the
	// ones that do not fit, and Create checks that it got them all.
	oob := make([]byte, unix.CmsgSpace(4*max(i.nfds, 1)))
	for {
		n, oobn, _, _, err := i.conn.ReadMsgUnix(buf, oob)
		if err != nil || n == 0 {
			break
		}
		m := message{kind: buf[0], body: string(buf[1:n])}
		if oobn > 0 {
			if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, cm := range cms {
					if fds, err := unix.ParseUnixRights(&cm); err == nil {
						m.fds = append(m.fds, fds...)
					}
				}
			}
		}
		switch m.kind {
		case msgExit: // from the init itself (where it could not become pid1Program)
			m.closeFDs()
			i.runtimeExited(m.body)
			continue
		case msgStarted:
			runtimePID, _ = strconv.Atoi(strings.TrimSpace(m.body))
		case msgWaiting:
			m.closeFDs()
			if !saidWaiting {
				saidWaiting = true
				close(i.waiting)
			}
			continue
		case msgChild:
			// From pid1Program: the end of one of pid 1's children.
			m.closeFDs()
			if len(m.body) == 8 && runtimePID > 0 && int(int32(binary.LittleEndian.Uint32([]byte(m.body[:4])))) == runtimePID {
				ws := unix.WaitStatus(binary.LittleEndian.Uint32([]byte(m.body[4:])))
				status := "code " + strconv.Itoa(ws.ExitStatus())
				if ws.Signaled() {
					status = "signal " + strconv.Itoa(int(ws.Signal()))
				}
				i.runtimeExited(status)
			}
			continue
		}
		select {
		case i.msgs <- m:
		default: // nobody will read it
			m.closeFDs()
		}
	}
	_ = i.cmd.Wait()
	// The init ended before it reported the runtime's end (killed by Destroy, or the runtime
	// never started): the environment's exit is the init's.
	exit := sandbox.Exit{At: time.Now()}
	if ws, ok := i.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		exit.Code, exit.Signal = -1, sandbox.SignalName(ws.Signal())
	} else {
		exit.Code = i.cmd.ProcessState.ExitCode()
	}
	if exit.Signal == "killed" {
		exit.OOMKilled = i.cg.oomKilled()
	}
	i.peak.finish(i.cg)
	i.Exited(exit) // a no-op after runtimeExited
}

// runtimeExited records the runtime's end ("code N" or "signal N", as the init reports it) as
// the environment's exit.
func (i *instance) runtimeExited(status string) {
	exit := sandbox.Exit{At: time.Now()}
	kind, v, _ := strings.Cut(status, " ")
	n, _ := strconv.Atoi(v)
	if kind == "signal" {
		exit.Code, exit.Signal = -1, sandbox.SignalName(syscall.Signal(n))
	} else {
		exit.Code = n
	}
	if exit.Signal == "killed" {
		exit.OOMKilled = i.cg.oomKilled()
	}
	i.Exited(exit)
}

// Start execs the runtime inside the prepared environment.
func (i *instance) Start(ctx context.Context) error {
	if err := i.Lock(); err != nil {
		return err
	}
	// Not held across the exchange with the init: a Destroy meanwhile kills it, which ends
	// the wait below.
	err := i.MarkStarted()
	i.Unlock()
	if err != nil {
		return fmt.Errorf("linux sandbox: %w", err)
	}
	if err := send(i.conn, msgGo, nil); err != nil {
		return fmt.Errorf("linux sandbox: start %s: %w", i.id, err)
	}
	m, err := i.next(ctx)
	if err != nil {
		return fmt.Errorf("linux sandbox: start %s: %w", i.id, err)
	}
	if m.kind == msgNoExec {
		n, _ := strconv.Atoi(m.body)
		return &sandbox.ExecError{Path: i.argv0, Err: syscall.Errno(n)}
	}
	if m.kind != msgStarted {
		return fmt.Errorf("linux sandbox: start %s: unexpected message %q", i.id, m.kind)
	}
	// The init is tiny and must outlive the runtime to report its end: never the OOM victim.
	_ = os.WriteFile("/proc/"+strconv.Itoa(i.cmd.Process.Pid)+"/oom_score_adj", []byte("-1000"), 0)
	if i.prestarted.Load() {
		// A spare's start is off every cold start's path (its bind begins one). Any other
		// runtime's INIT is on one: the next spare init (an exec of the server's binary) starts
		// once it is over (EndInit, or Destroy if it fails).
		i.endInit()
		i.b.refill()
	}
	return nil
}

// Destroy kills the environment's init, and with it every process of its pid namespace, then
// removes its cgroups and directory. It is idempotent.
func (i *instance) Destroy(ctx context.Context) error {
	if first, _ := i.MarkDestroyed(); !first {
		return nil
	}
	i.endInit()
	defer i.b.refill() // for an environment whose INIT never ended (see Start)
	// First, so that whatever happens below the worker's servers on them stop.
	i.closeListeners()
	var errs []error
	if i.cmd != nil {
		_ = i.cmd.Process.Kill()
		// A frozen task dies only once thawed; killed first, it never runs again.
		if i.cg.isFrozen() {
			if err := i.cg.freeze(ctx, false); err != nil {
				errs = append(errs, fmt.Errorf("thaw: %w", err))
			}
		}
		select {
		case <-i.initGone:
		case <-ctx.Done():
			return fmt.Errorf("linux sandbox: destroy %s: %w", i.id, ctx.Err())
		}
		i.conn.Close()
		for len(i.msgs) > 0 { // listeners nobody took (Create gave up)
			(<-i.msgs).closeFDs()
		}
	}
	// Only once the init is dead: its namespace, and with it the veth, is on its way out.
	i.b.detachNet(i.veth)
	if err := i.cg.remove(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := os.Remove(i.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("linux sandbox: destroy %s: %w", i.id, err)
	}
	return nil
}

// Freeze suspends every process of the environment (freezer cgroup); it costs no CPU until Thaw.
func (i *instance) Freeze(ctx context.Context) error { return i.setFrozen(ctx, true) }

// Thaw resumes a frozen environment.
func (i *instance) Thaw(ctx context.Context) error { return i.setFrozen(ctx, false) }

func (i *instance) setFrozen(ctx context.Context, frozen bool) error {
	if err := i.Lock(); err != nil {
		return err
	}
	defer i.Unlock()
	if err := i.cg.freeze(ctx, frozen); err != nil {
		return fmt.Errorf("linux sandbox: freeze %s: %w", i.id, err)
	}
	return nil
}

// MaxMemoryUsed is the environment's memory high-water mark from its memory cgroup.
func (i *instance) MaxMemoryUsed() (uint64, error) {
	return i.peak.read(i.cg)
}

// MemoryLimit is the environment's memory limit in bytes (the conformance suite's cue that
// exceeding it must end in an OOM kill).
func (i *instance) MemoryLimit() uint64 { return uint64(i.memMB) << 20 }

// HostPaths are the host resources the environment holds: its directory and cgroups.
func (i *instance) HostPaths() []string { return append([]string{i.dir}, i.cg.dirs()...) }

// CPUUsage is the CPU time the environment's processes have used (cgroup accounting).
func (i *instance) CPUUsage() (time.Duration, error) { return i.cg.cpuUsage() }
