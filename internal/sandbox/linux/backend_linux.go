package linux

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flint-run/flint/internal/sandbox"
)

// Default limits for fields a Spec leaves at zero.
const (
	defaultMemoryMB    = 128
	defaultEphemeralMB = 512
	pidsMax            = 1024 // Lambda's limit on processes and threads
	shmMB              = 64
)

// Backend creates environments isolated by namespaces, cgroups and seccomp.
type Backend struct {
	cfg      Config
	envs     string // StateDir/envs: one directory per live environment
	rootless bool
	// guestUID and guestGID are what runtimes run as: Lambda's unprivileged sandbox user when
	// the server is root; 0 (of the user namespace, mapped to the server's own user) otherwise.
	guestUID, guestGID int
	cg                 *cgroups
	cgErr              error
	net                *egress // set by Check when Network is "egress"

	mu        sync.Mutex
	parentsOK bool
	spares    []spare
	refilling bool
	spareSeq  int
	closed    bool
	wg        sync.WaitGroup // the refill goroutine
	creating  int            // Creates in flight
	initing   int            // environments created whose INIT has not ended (instance.endInit)
	deferred  time.Time      // when a wanted refill was first put off for cold starts (zero: none)
	peak      int            // the most cold starts in flight at once (creating+initing) since peakAt
	peakAt    time.Time
	trimmer   *time.Timer // discards the spares of a burst once spareWindow has passed

	dataID  string    // the first part of this server's cgroup parent's name
	lock    *os.File  // StateDir/lock, held while the backend lives
	reaper  *exec.Cmd // reclaims the environments if the server dies
	reaperW *os.File  // its pipe: EOF when the server is gone
}

// GuestUID and GuestGID are the ids runtimes run as under a root server: those of Lambda's
// sandbox user (sbx_user1051, uid 993, gid 990), unprivileged on the host as in the sandbox.
const (
	GuestUID = 993
	GuestGID = 990
)

// spare is an init started ahead of need, in cgroups named name, waiting for its configuration.
type spare struct {
	name string
	cmd  *exec.Cmd
	conn *net.UnixConn
	veth *veth // with Network "egress"
}

var (
	_ sandbox.Backend   = (*Backend)(nil)
	_ sandbox.Reclaimer = (*Backend)(nil)
	_ sandbox.Closer    = (*Backend)(nil)
)

// New returns a backend; Check says whether this host can run it. It locks StateDir for the
// backend's life, and fails at once, naming the holder, if another backend holds it.
func New(cfg Config) (*Backend, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("linux sandbox: StateDir is required")
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "flint"
	}
	if cfg.CgroupParent != filepath.Clean(cfg.CgroupParent) || strings.Contains(cfg.CgroupParent, "..") {
		return nil, fmt.Errorf("linux sandbox: bad CgroupParent %q", cfg.CgroupParent)
	}
	switch cfg.Network {
	case "", "none":
		cfg.Network = "none"
	case "egress", "host":
		// "host" once meant the host's network namespace, where every local user and every
		// other function could reach an environment's Runtime API: it now means egress.
		cfg.Network = "egress"
	default:
		return nil, fmt.Errorf("linux sandbox: Network %q: want none or egress", cfg.Network)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.Prespawn == 0:
		cfg.Prespawn = 2
	case cfg.Prespawn < 0:
		cfg.Prespawn = 0
	}
	b := &Backend{cfg: cfg, envs: filepath.Join(cfg.StateDir, "envs"), rootless: os.Geteuid() != 0,
		dataID: dataID(cfg.StateDir)}
	if !b.rootless {
		b.guestUID, b.guestGID = GuestUID, GuestGID
	}
	if err := os.MkdirAll(b.envs, 0o700); err != nil {
		return nil, fmt.Errorf("linux sandbox: state dir: %w", err)
	}
	if err := b.lockState(); err != nil {
		return nil, fmt.Errorf("linux sandbox: %w", err)
	}
	b.cg, b.cgErr = detectCgroups(cfg.CgroupParent)
	return b, nil
}

func (b *Backend) Name() string { return "linux" }

// Check reports whether this host can run the backend, with what to do about it if not.
func (b *Backend) Check(ctx context.Context) error {
	if b.rootless {
		if v, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(v)) == "0" {
			return errors.New("linux sandbox: not root and unprivileged user namespaces are disabled: run flint as root, or sysctl kernel.unprivileged_userns_clone=1")
		}
		if v, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(v)) == "0" {
			return errors.New("linux sandbox: not root and user.max_user_namespaces is 0: run flint as root, or raise that sysctl")
		}
	}
	if b.cgErr != nil {
		return fmt.Errorf("linux sandbox: cgroups: %w", b.cgErr)
	}
	if m := b.cg.missing(); len(m) > 0 {
		return fmt.Errorf("linux sandbox: cgroup controllers %s not available to this process: mount them (cgroup v1) or enable them in the parent's cgroup.subtree_control (cgroup v2)", strings.Join(m, ", "))
	}
	if _, err := seccompFilter(); err != nil {
		return fmt.Errorf("linux sandbox: %w", err)
	}
	if _, err := os.Stat("/usr"); err != nil {
		return fmt.Errorf("linux sandbox: the host has no /usr to build roots from: %w", err)
	}
	if err := b.ensureNet(); err != nil {
		return err
	}
	if err := b.ensureParents(); err != nil {
		if b.rootless {
			return fmt.Errorf("linux sandbox: not root and no delegated cgroup: %w (run flint as root, or in a systemd unit with Delegate=yes)", err)
		}
		return fmt.Errorf("linux sandbox: %w", err)
	}
	if err := b.probe(ctx); err != nil {
		return err
	}
	if err := b.startReaper(); err != nil {
		return fmt.Errorf("linux sandbox: %w", err)
	}
	b.refill()
	return nil
}

func (b *Backend) ensureParents() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.parentsOK {
		return nil
	}
	if b.cgErr != nil {
		return b.cgErr
	}
	if err := b.cg.ensureParents(b.dataID); err != nil {
		return err
	}
	b.parentsOK = true
	b.cfg.Log.Info("environments' cgroups", "parents", strings.Join(b.cg.parents(), " "))
	return nil
}

// ensureNet sets up the host's side of the egress network once.
func (b *Backend) ensureNet() error {
	if b.cfg.Network != "egress" {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.net != nil {
		return nil
	}
	if b.rootless {
		return errors.New("linux sandbox: function network egress needs a root server (veth pairs and NAT in the host's network namespace): run flint as root, or use --function-network none")
	}
	if err := setupFirewall(b.cfg.Log); err != nil {
		return fmt.Errorf("linux sandbox: function network egress: %w (the kernel needs nf_tables with NAT)", err)
	}
	e, err := newEgress()
	if err != nil {
		return fmt.Errorf("linux sandbox: function network egress: %w", err)
	}
	b.net = e
	return nil
}

// attachNet gives a new init's network namespace its veth pair, with Network "egress".
func (b *Backend) attachNet(pid int) (*veth, error) {
	if b.cfg.Network != "egress" {
		return nil, nil
	}
	b.mu.Lock()
	e := b.net
	b.mu.Unlock()
	if e == nil {
		return nil, errors.New("network not set up: call Check first")
	}
	return e.attach(pid)
}

func (b *Backend) detachNet(v *veth) {
	if v != nil {
		b.net.detach(v)
	}
}

// probe starts an init in fresh namespaces that only answers: it proves the namespaces can be
// made here and that the binary calls Init.
func (b *Backend) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd, conn, err := b.spawn("")
	if err != nil {
		return fmt.Errorf("linux sandbox: %w", err)
	}
	defer conn.Close()
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if err := send(conn, msgConfig, []byte(`{"probe":true}`)); err != nil {
		return fmt.Errorf("linux sandbox: probe: %w", err)
	}
	got := make(chan byte, 1)
	go func() {
		buf := make([]byte, 512)
		n, err := conn.Read(buf)
		if err != nil || n == 0 {
			got <- 0
			return
		}
		got <- buf[0]
	}()
	select {
	case m := <-got:
		if m != msgProbeAck {
			return errors.New("linux sandbox: the sandbox init did not answer: the binary must call linux.Init() first thing in main (or TestMain)")
		}
		return nil
	case <-ctx.Done():
		conn.Close()
		return fmt.Errorf("linux sandbox: probe: %w", ctx.Err())
	}
}

// Spare inits beyond Prespawn: after a burst of cold starts the backend keeps as many as were in
// flight at once (from Create to the end of INIT), for spareWindow, so that the next burst finds
// them ready; at most maxSpareInits (an init waiting holds about 6 MB).
const (
	spareWindow   = 2 * time.Minute
	maxSpareInits = 64
)

// wantSpares is how many spare inits to keep now. Called with mu held.
func (b *Backend) wantSpares() int {
	if b.cfg.Prespawn == 0 {
		return 0
	}
	if time.Since(b.peakAt) > spareWindow {
		b.peak = 0
	}
	return max(b.cfg.Prespawn, min(b.peak, maxSpareInits))
}

// creates counts a Create in flight (delta 1) or over (-1), for wantSpares and refill.
func (b *Backend) creates(delta int) {
	b.mu.Lock()
	defer func() {
		idle := b.creating+b.initing == 0
		b.mu.Unlock()
		if idle {
			b.refill() // put off while cold starts went on (refillPutOffLocked)
		}
	}()
	b.creating += delta
	// The demand is every cold start in flight, not only the Creates: in 0→64 bursts of the Go
	// echo on 2 CPUs at most 49–54 Creates were in flight at once but 58–64 cold starts, so the
	// next burst found about 50 spares and started the rest with a fresh init each.
	if n := b.creating + b.initing; delta > 0 && (n >= b.peak || time.Since(b.peakAt) > spareWindow) {
		b.peak, b.peakAt = n, time.Now()
		if n > b.cfg.Prespawn && !b.closed {
			if b.trimmer == nil {
				b.trimmer = time.AfterFunc(spareWindow+time.Second, b.trim)
			} else {
				b.trimmer.Reset(spareWindow + time.Second)
			}
		}
	}
}

// trim discards the spare inits beyond what is wanted now.
func (b *Backend) trim() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	var extra []spare
	if want := b.wantSpares(); len(b.spares) > want {
		extra = append(extra, b.spares[want:]...)
		b.spares = b.spares[:want]
	}
	b.wg.Add(1) // Close waits for the discards
	b.mu.Unlock()
	defer b.wg.Done()
	for _, s := range extra {
		b.discard(s)
	}
}

// take returns a spare init, if one is ready.
func (b *Backend) take() spare {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s spare
	if len(b.spares) > 0 { // the oldest: the likeliest to have its root prepared
		s, b.spares = b.spares[0], b.spares[1:]
	}
	return s
}

// maxRefillDelay bounds how long cold starts in flight put off a refill: a host that is never
// without one (or an INIT that hangs until its timeout) still gets its spares.
const maxRefillDelay = time.Second

// refillPutOffLocked reports whether a refill waits for the cold starts in flight: each spare is
// an exec of the server's binary, about 10 ms of CPU, and on a small host a burst of cold starts
// that refilled the spares it took as it went competed with itself: their refill took one CPU
// of the two here while the rest of the burst still started (docs/PERFORMANCE.md, "Bursts").
// The last cold start to end calls refill again (creates, instance.endInit). Called with mu held.
func (b *Backend) refillPutOffLocked() bool {
	if b.creating+b.initing == 0 {
		b.deferred = time.Time{}
		return false
	}
	if b.deferred.IsZero() {
		b.deferred = time.Now()
	}
	return time.Since(b.deferred) < maxRefillDelay
}

// refill starts spares in the background up to what wantSpares says. It runs once Check has
// passed and when cold starts end, off their path: on a small host the spare's exec would
// compete for CPU with the environments being built (refillPutOffLocked).
func (b *Backend) refill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.refilling || len(b.spares) >= b.wantSpares() || b.refillPutOffLocked() {
		return
	}
	b.refilling = true
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			b.mu.Lock()
			if b.closed || len(b.spares) >= b.wantSpares() || b.refillPutOffLocked() {
				b.refilling = false
				b.mu.Unlock()
				return
			}
			b.spareSeq++
			name := fmt.Sprintf("spare-%d-%d", time.Now().UnixNano(), b.spareSeq)
			b.mu.Unlock()
			s, err := b.newSpare(name)
			b.mu.Lock()
			if err != nil || b.closed {
				b.refilling = false
				b.mu.Unlock()
				if err != nil {
					b.cfg.Log.Warn("prestart sandbox init", "err", err)
				} else {
					b.discard(s)
				}
				return
			}
			b.spares = append(b.spares, s)
			b.mu.Unlock()
		}
	}()
}

// newSpare starts an init and places it into cgroups (and a directory) named name.
func (b *Backend) newSpare(name string) (spare, error) {
	s := spare{name: name}
	if err := os.Mkdir(filepath.Join(b.envs, name), 0o700); err != nil {
		return s, err
	}
	ec := envCgroup{cg: b.cg, id: name}
	// No CPU quota: a waiting spare uses no CPU, and a 128 MB quota (7% of a CPU) spent on
	// preparing the root would throttle the init just when a cold start configures it.
	err := ec.create(limits{memoryBytes: defaultMemoryMB << 20, cpuQuotaUs: -1, cpuShareUs: cpuQuota(defaultMemoryMB), pids: pidsMax})
	if err == nil {
		s.cmd, s.conn, err = b.spawn(filepath.Join(b.envs, name))
	}
	if err == nil {
		err = ec.place(s.cmd.Process.Pid)
	}
	if err == nil {
		s.veth, err = b.attachNet(s.cmd.Process.Pid)
	}
	if err != nil {
		b.discard(s)
		return spare{}, err
	}
	return s, nil
}

// discard stops a spare and removes its cgroups and directory.
func (b *Backend) discard(s spare) {
	if s.cmd != nil {
		stopInit(s.cmd, s.conn)
	}
	b.detachNet(s.veth)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = envCgroup{cg: b.cg, id: s.name}.remove(ctx)
	_ = os.Remove(filepath.Join(b.envs, s.name))
}

func stopInit(cmd *exec.Cmd, conn *net.UnixConn) {
	conn.Close()
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// Close stops the spare inits. Environments are not touched: Destroy them first.
func (b *Backend) Close() error {
	b.mu.Lock()
	b.closed = true
	if b.trimmer != nil {
		b.trimmer.Stop()
	}
	b.mu.Unlock()
	b.wg.Wait()
	b.mu.Lock()
	spares := b.spares
	b.spares = nil
	b.mu.Unlock()
	for _, s := range spares {
		b.discard(s)
	}
	b.stopReaper()
	b.mu.Lock()
	if b.net != nil {
		b.net.close()
	}
	if b.parentsOK {
		b.cg.release()
	}
	b.mu.Unlock()
	if b.lock != nil {
		b.lock.Close()
	}
	return nil
}

// spawn starts an init in new namespaces with its control socket and, unless root is empty (the
// probe), tells it to build the function-independent part of the root at root. Its stdout and
// stderr are /dev/null until the configuration brings the environment's output.
func (b *Backend) spawn(root string) (*exec.Cmd, *net.UnixConn, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("control socket: %w", err)
	}
	parent, child := os.NewFile(uintptr(fds[0]), "sandbox-control"), os.NewFile(uintptr(fds[1]), "sandbox-control-init")
	defer child.Close()
	fc, err := net.FileConn(parent)
	parent.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("control socket: %w", err)
	}
	conn := fc.(*net.UnixConn)
	flags := uintptr(unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWNET)
	attr := &syscall.SysProcAttr{Cloneflags: flags, Pdeathsig: syscall.SIGKILL}
	if b.rootless {
		attr.Cloneflags |= unix.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
	// The environment reads its pid 1's command line: nothing but the name (the root's path
	// goes over the control socket).
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{initArg0},
		Env:         initEnviron,
		ExtraFiles:  []*os.File{child},
		SysProcAttr: attr,
	}
	if err := cmd.Start(); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("start sandbox init: %w", err)
	}
	if root != "" {
		if err := send(conn, msgPrepare, []byte(root)); err != nil {
			stopInit(cmd, conn)
			return nil, nil, fmt.Errorf("sandbox init: %w", err)
		}
	}
	return cmd, conn, nil
}

// initEnviron is the init's whole environment (the runtime's is the configuration's, never this).
// The init is this whole binary, whose package initializers allocate a few megabytes: with the
// collector on they cost one collection, a fifth of the init's start-up CPU. The init allocates
// little after them and execs pid1Program (waitRuntime collects again where it cannot). One P:
// the init runs one goroutine, and each thread more is one more to signal when it changes its
// credentials (every thread does, in turn), which under a burst of inits on a busy machine
// waits for each to be scheduled (0→64 Go echo, linux: ~6% less CPU, in 5 pairs of runs).
var initEnviron = []string{"GOGC=off", "GOMAXPROCS=1"}

func send(conn *net.UnixConn, kind byte, body []byte) error {
	_, err := conn.Write(append([]byte{kind}, body...))
	return err
}

// hostname is Lambda-like: a link-local address, here derived from the environment id.
func hostname(id string) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	v := h.Sum32()
	return fmt.Sprintf("169.254.%d.%d", 1+(v>>8)%254, 1+v%254)
}

// Create builds the environment up to the point where its runtime would be exec'd: namespaces,
// root, Runtime API listener, cgroups. Start execs the runtime.
func (b *Backend) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Instance, error) {
	i, err := b.create(ctx, spec, false)
	if err != nil {
		return nil, err
	}
	return i, nil
}

// create is Create, or with prestart the first half of Prestart (see initConfig.Prestart).
func (b *Backend) create(ctx context.Context, spec sandbox.Spec, prestart bool) (*instance, error) {
	b.creates(1)
	defer b.creates(-1)
	if len(spec.Argv) == 0 {
		return nil, errors.New("linux sandbox: empty argv")
	}
	if spec.ID == "" || strings.ContainsAny(spec.ID, "/\x00") || spec.ID == "." || spec.ID == ".." {
		return nil, fmt.Errorf("linux sandbox: bad environment id %q", spec.ID)
	}
	if err := sandbox.CheckPorts(spec.Ports); err != nil {
		return nil, fmt.Errorf("linux sandbox: %w", err)
	}
	if err := sandbox.CheckExtensions(spec.Extensions); err != nil {
		return nil, fmt.Errorf("linux sandbox: %w", err)
	}
	if prestart && len(spec.Extensions) > 0 {
		return nil, errors.New("linux sandbox: a prestarted runtime starts without extensions")
	}
	if err := b.ensureParents(); err != nil {
		return nil, fmt.Errorf("linux sandbox: %w", err)
	}
	memMB, tmpMB := spec.MemoryMB, spec.EphemeralStorageMB
	if memMB <= 0 {
		memMB = defaultMemoryMB
	}
	if tmpMB <= 0 {
		tmpMB = defaultEphemeralMB
	}
	i := &instance{b: b, id: spec.ID, argv0: spec.Argv[0], memMB: memMB, dir: filepath.Join(b.envs, spec.ID),
		cg: envCgroup{cg: b.cg, id: spec.ID}, msgs: make(chan message, 4),
		initGone: make(chan struct{}), waiting: make(chan struct{})}
	if _, err := os.Lstat(i.dir); err == nil {
		return nil, fmt.Errorf("linux sandbox: environment %s already exists", spec.ID)
	}
	// The environment gets the Runtime API and its ports at their usual numbers on the loopback
	// of its own network namespace, made by the init: only it can reach them.
	numbers := make([]int, len(spec.Ports))
	portEnv := make([]string, len(spec.Ports))
	for n, p := range spec.Ports {
		numbers[n] = p.Number
		portEnv[n] = p.EnvVar + "=" + strconv.Itoa(p.Number)
	}
	i.nfds = 1 + len(spec.Ports)
	i.specPorts, i.portEnv = spec.Ports, portEnv
	env := i.guestEnv(spec.Env)
	i.prestarted.Store(prestart)
	// A spare init comes already placed in cgroups of its own, with the function-independent
	// part of its root built: the environment keeps its directory and cgroups under the spare's
	// name (moving a process between v1 cgroups waits for an RCU grace period per hierarchy,
	// and building the root takes milliseconds: the spare paid both ahead of time).
	sp := b.take()
	if sp.cmd != nil {
		i.dir, i.cg, i.veth = filepath.Join(b.envs, sp.name), envCgroup{cg: b.cg, id: sp.name}, sp.veth
	}
	i.home = interpreterHome(spec.Argv) // an interpreter outside /usr: shown at /var/lang
	argv, env := inGuestLang(i.home, spec.Argv, env)
	exts := make([]initExtension, len(spec.Extensions))
	for n, x := range spec.Extensions {
		exts[n] = initExtension{Path: x.Path, Env: i.guestEnv(x.Env)}
	}
	cfg, err := json.Marshal(initConfig{TaskDir: spec.TaskDir, OptDir: spec.OptDir,
		RuntimeDir: spec.RuntimeDir, Interp: i.home, TmpMB: tmpMB, ShmMB: shmMB, Hostname: hostname(spec.ID),
		Ports: numbers, Argv: argv, Env: env, UID: b.guestUID, GID: b.guestGID, Prestart: prestart, Extensions: exts})
	if err != nil {
		if sp.cmd != nil {
			b.discard(sp)
		}
		return nil, err
	}
	// Without a spare, the veth pair is made while the init builds the root: Create waits for
	// both, and for the pair before it returns in any case (Destroy releases it).
	var attaching chan error
	joinNet := func() error {
		if attaching == nil {
			return nil
		}
		err := <-attaching
		attaching = nil
		return err
	}
	fail := func(err error) (*instance, error) {
		_ = joinNet()
		_ = i.Destroy(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("linux sandbox: create %s: %w", spec.ID, err)
	}
	placed := sp.cmd != nil
	if !placed {
		if err := os.Mkdir(i.dir, 0o700); err != nil {
			return fail(err)
		}
	}
	// INIT runs without the CPU cap (as Lambda's init phase has more CPU); EndInit applies it.
	i.cpuQuotaUs = cpuQuota(memMB)
	if err := i.cg.create(limits{memoryBytes: int64(memMB) << 20, cpuQuotaUs: -1, cpuShareUs: i.cpuQuotaUs, pids: pidsMax}); err != nil {
		if sp.cmd != nil {
			stopInit(sp.cmd, sp.conn)
		}
		return fail(err)
	}
	// The environment's output, then each extension's (the init tells them apart by count).
	var fds []int
	if spec.Output != nil {
		fds = append(fds, int(spec.Output.Fd()))
	}
	for _, x := range spec.Extensions {
		fds = append(fds, int(x.Output.Fd()))
	}
	var rights []byte
	if len(fds) > 0 {
		rights = unix.UnixRights(fds...)
	}
	if sp.cmd != nil {
		if _, _, err := sp.conn.WriteMsgUnix(append([]byte{msgConfig}, cfg...), rights, nil); err != nil {
			stopInit(sp.cmd, sp.conn) // a spare that died: start afresh
			b.detachNet(i.veth)
			sp, placed, i.veth = spare{}, false, nil
		}
	}
	if sp.cmd == nil {
		if sp.cmd, sp.conn, err = b.spawn(i.dir); err != nil {
			return fail(err)
		}
		if b.cfg.Network == "egress" {
			attaching = make(chan error, 1)
			go func(pid int) { // joined by joinNet on every path out of Create
				v, err := b.attachNet(pid)
				i.veth = v
				attaching <- err
			}(sp.cmd.Process.Pid)
		}
		if _, _, err := sp.conn.WriteMsgUnix(append([]byte{msgConfig}, cfg...), rights, nil); err != nil {
			stopInit(sp.cmd, sp.conn)
			return fail(fmt.Errorf("send config: %w", err))
		}
	}
	runtime.KeepAlive(spec.Output)
	runtime.KeepAlive(spec.Extensions)
	cmd, conn := sp.cmd, sp.conn
	i.cmd, i.conn = cmd, conn
	go i.reap() // owned by the instance; ends when the init does, which Destroy forces
	m, err := i.next(ctx)
	if err != nil {
		return fail(err)
	}
	if m.kind != msgReady {
		return fail(fmt.Errorf("unexpected message %q", m.kind))
	}
	if err := joinNet(); err != nil {
		return fail(err)
	}
	lns, err := fileListeners(m.fds)
	if err != nil {
		return fail(err)
	}
	if len(lns) != i.nfds {
		for _, ln := range lns {
			ln.Close()
		}
		return fail(fmt.Errorf("init sent %d listeners, want %d", len(lns), i.nfds))
	}
	i.ln, i.ports = lns[0], make(sandbox.Listeners, len(spec.Ports))
	for n, p := range spec.Ports {
		i.ports[p.Number] = lns[1+n]
	}
	if !placed {
		if err := i.cg.place(cmd.Process.Pid); err != nil {
			return fail(err)
		}
	}
	i.beginInit()
	return i, nil
}

// guestEnv is env with the backend's own variables (the Runtime API's address, the ports') in
// place of any value env gives them: what a runtime of i gets, at start or at its bind.
func (i *instance) guestEnv(env []string) []string {
	out := make([]string, 0, len(env)+1+len(i.portEnv))
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k != "AWS_LAMBDA_RUNTIME_API" && !sandbox.IsPortVar(i.specPorts, k) {
			out = append(out, kv)
		}
	}
	out = append(out, "AWS_LAMBDA_RUNTIME_API="+runtimeAPIAddr)
	return append(out, i.portEnv...)
}

// fileListeners turns listening sockets received from an init into listeners. It closes every
// descriptor (net.FileListener keeps a duplicate), and on failure every listener it made.
func fileListeners(fds []int) ([]net.Listener, error) {
	lns := make([]net.Listener, 0, len(fds))
	var errs []error
	for _, fd := range fds {
		f := os.NewFile(uintptr(fd), "sandbox-listener")
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		lns = append(lns, ln)
	}
	if err := errors.Join(errs...); err != nil {
		for _, ln := range lns {
			ln.Close()
		}
		return nil, fmt.Errorf("listeners from init: %w", err)
	}
	return lns, nil
}

// Reclaim removes what dead servers left behind (after a kill -9): every orphaned cgroup
// parent under CgroupParent (a run whose lock neither its server nor its reaper holds, whatever
// its state directory), with any process still in it, and the environments' directories in
// StateDir. Call it before the first Create. Live servers' parents are locked and left alone.
func (b *Backend) Reclaim(ctx context.Context) error {
	var errs []error
	if b.cgErr == nil && len(b.cg.hier) > 0 {
		runs, locks := b.cg.orphans()
		for n, parents := range runs {
			envs, err := reclaimRun(ctx, parents)
			if locks[n] >= 0 {
				unix.Close(locks[n])
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			b.cfg.Log.Info("reclaimed the cgroups of a dead server", "parent", parents[0], "environments", len(envs))
		}
	}
	// This backend holds StateDir's lock and has not created anything yet: every directory
	// there is a dead server's.
	entries, err := os.ReadDir(b.envs)
	if err != nil {
		errs = append(errs, err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(b.envs, e.Name())
		_ = unix.Unmount(dir, unix.MNT_DETACH) // never mounted in the host's namespace, but be sure
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		b.cfg.Log.Info("reclaimed sandbox environment", "env", e.Name())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("linux sandbox: reclaim: %w", err)
	}
	return nil
}
