package linux

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/flint-run/flint/internal/sandbox"
	"github.com/flint-run/flint/internal/sandbox/sandboxtest"
)

func TestMain(m *testing.M) {
	Init()
	if dir := os.Getenv("FLINT_LINUX_TEST_SERVER"); dir != "" {
		crashingServer(dir, os.Getenv("FLINT_LINUX_TEST_CGROUP"), os.Getenv("FLINT_LINUX_TEST_CHECK") != "")
		return
	}
	os.Exit(m.Run())
}

// crashingServer plays a server that the test kills with SIGKILL while it runs environments
// (one of them frozen). With check, it starts as a server does (Check: the reaper, spares);
// without, it has no reaper. It prints "ready" and its cgroup parents.
func crashingServer(state, parent string, check bool) {
	b, err := New(Config{StateDir: state, CgroupParent: parent})
	if err != nil {
		fmt.Println("error", err)
		return
	}
	ctx := context.Background()
	var ids []string
	if check {
		if err := b.Check(ctx); err != nil {
			fmt.Println("error", err)
			return
		}
	}
	for n := range 2 {
		inst, err := b.Create(ctx, sandbox.Spec{ID: fmt.Sprintf("crash%d", n), TaskDir: state,
			Argv: []string{"/bin/sh", "-c", "sleep 1000 & exec sleep 1000"}, MemoryMB: 128, EphemeralStorageMB: 16})
		if err == nil {
			err = inst.Start(ctx)
		}
		if err == nil && n == 1 {
			err = inst.(sandbox.Freezer).Freeze(ctx)
		}
		if err != nil {
			fmt.Println("error", err)
			return
		}
		ids = append(ids, inst.(*instance).cg.id) // a spare's name, when it took one
	}
	fmt.Println("ready " + strings.Join(ids, ",") + " " + strings.Join(b.cg.parents(), " "))
	select {}
}

// newBackend returns a backend on a fresh state dir and a cgroup parent of its own (other test
// runs on the machine use theirs), or skips when the host cannot run it.
func newBackend(t testing.TB, network string, opts ...func(*Config)) *Backend {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the linux sandbox tests need root")
	}
	parent := fmt.Sprintf("flint-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	cfg := Config{StateDir: t.TempDir(), CgroupParent: parent, Network: network}
	for _, o := range opts {
		o(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if b.cgErr != nil || len(b.cg.missing()) > 0 {
		t.Skipf("cgroups unavailable: %v %v", b.cgErr, b.cg.missing())
	}
	if err := b.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		b.mu.Lock()
		if len(b.spares) > 0 || b.refilling {
			t.Errorf("Close left %d spare inits (refilling %v)", len(b.spares), b.refilling)
		}
		b.mu.Unlock()
		for _, h := range b.cg.hier {
			if _, err := os.Stat(h.parent); err == nil {
				t.Errorf("Close left the cgroup parent %s", h.parent)
			}
			_ = os.Remove(h.base)
		}
	})
	return b
}

func TestConformance(t *testing.T) {
	sandboxtest.Run(t, newBackend(t, "none"))
}

func TestConformanceEgress(t *testing.T) {
	if inOwnNetns(t) {
		sandboxtest.Run(t, newBackend(t, "egress"))
	}
}

// inOwnNetns runs the calling (top-level) test again in a child process with a network namespace
// of its own, which it plays the host's: veth pairs, nftables rules and IPv4 forwarding are made
// there and go with it. In that child it returns true (and the test goes on); in the parent it
// reports the child's result and returns false.
func inOwnNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv("FLINT_LINUX_TEST_NETNS") == t.Name() {
		if err := loopbackUp(); err != nil {
			t.Fatal(err)
		}
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("the linux sandbox tests need root")
	}
	cmd := exec.Command("/proc/self/exe", "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "FLINT_LINUX_TEST_NETNS="+t.Name())
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	t.Logf("in a network namespace of its own:\n%s", out)
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("%s failed in a network namespace of its own: %v", t.Name(), err)
	}
	return false
}

// start starts argv in a fresh environment (with the tests' defaults for what spec leaves
// out) and returns it and the read end of its output; both are closed at cleanup.
func start(t *testing.T, b *Backend, spec sandbox.Spec) (sandbox.Instance, *os.File) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	defer w.Close() // the environment holds its own copy
	if spec.ID == "" {
		spec.ID = fmt.Sprintf("l%d", seq.Add(1))
	}
	if spec.TaskDir == "" {
		spec.TaskDir = t.TempDir()
	}
	if spec.MemoryMB == 0 {
		spec.MemoryMB = 256
	}
	if spec.EphemeralStorageMB == 0 {
		spec.EphemeralStorageMB = 64
	}
	spec.Env = append([]string{"PATH=/usr/bin:/bin"}, spec.Env...)
	spec.Output = w
	inst, err := b.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inst.Destroy(context.Background()) })
	if err := inst.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return inst, r
}

// run starts argv in a fresh environment and returns how it ended and what it wrote.
func run(t *testing.T, b *Backend, spec sandbox.Spec) (sandbox.Exit, string, sandbox.Instance) {
	t.Helper()
	inst, r := start(t, b, spec)
	out := readOutput(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	exit, err := inst.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return exit, out, inst
}

// readOutput reads an environment's output until every writer has closed it (within a minute).
func readOutput(t *testing.T, r *os.File) string {
	t.Helper()
	_ = r.SetReadDeadline(time.Now().Add(60 * time.Second))
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading output: %v (so far %q)", err, out)
	}
	return string(out)
}

var seq atomic.Int64

func python(script string) []string { return []string{"/usr/bin/python3", "-c", script} }

// TestIsolation probes the environment from inside, with Python.
func TestIsolation(t *testing.T) {
	b := newBackend(t, "none")
	hostName, _ := os.Hostname()
	other := t.TempDir() // another environment's code, on the host
	if err := os.WriteFile(filepath.Join(other, "secret.py"), []byte("x = 1"), 0o644); err != nil {
		t.Fatal(err)
	}
	host, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	_, hostPort, _ := net.SplitHostPort(host.Addr().String())
	// Syscall numbers for ctypes, per architecture.
	nr := map[string]map[string]int{
		"amd64": {"init_module": 175, "finit_module": 313, "ptrace": 101, "bpf": 321, "keyctl": 250, "unshare": 272},
		"arm64": {"init_module": 105, "finit_module": 273, "ptrace": 117, "bpf": 280, "keyctl": 219, "unshare": 97},
	}[runtime.GOARCH]
	if nr == nil {
		t.Skipf("no syscall numbers for %s", runtime.GOARCH)
	}
	const prelude = `
import ctypes, errno, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
def sys_errno(*args):
    r = libc.syscall(*args)
    return "ok" if r >= 0 else errno.errorcode[ctypes.get_errno()]
def open_errno(path, mode="w"):
    try:
        open(path, mode).close()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
`
	for _, tc := range []struct {
		name, script, want string
	}{
		{"own hostname", `print(socket.gethostname())`, hostname("")},
		// The init forks the runtime, then execs its reaper in its own place: until that exec is
		// done (a loaded machine can delay it past the runtime's start) /proc/1/cmdline is empty.
		{"only its own processes in /proc", `
import time
for _ in range(500):
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    names = sorted(open("/proc/%d/cmdline" % p, "rb").read().split(b"\0")[0].decode() for p in pids)
    if "" not in names:
        break
    time.sleep(0.01)
print(pids[0], names)`, "1 ['/usr/bin/python3', 'flint-sandbox-init']"},
		{"runs unprivileged", `print(os.getuid(), os.getgid(), os.getgroups(), [l.split()[1] for l in open("/proc/self/status") if l.startswith(("CapEff", "CapPrm", "CapBnd", "NoNewPrivs", "Seccomp:"))])`,
			"993 990 [] ['0000000000000000', '0000000000000000', '0000000000000000', '1', '2']"},
		{"localhost is 127.0.0.1 only, no host names", `import socket; print(sorted({a[4][0] for a in socket.getaddrinfo("localhost", 80)}), len(open("/etc/hosts").read().split("\n")))`,
			"['127.0.0.1'] 3"},
		{"root is read-only", `print(open_errno("/x"), open_errno("/etc/passwd", "a"), open_errno("/usr/x"))`, "EROFS EROFS EROFS"},
		{"task is read-only", `print(open_errno("/var/task/x"), open_errno("/var/task/hello.txt", "a"))`, "EROFS EROFS"},
		{"tmp is writable and bounded", `
f = open("/tmp/fill", "wb")
try:
    for i in range(64):
        f.write(b"x" * (1 << 20)); f.flush()
    print("unbounded")
except OSError as e:
    print(errno.errorcode[e.errno], "after about 8 MB" if 6 <= i <= 8 else "after %d MB" % i)`, "ENOSPC after about 8 MB"},
		{"nothing of the host's homes, state or other functions", `
print([p for p in ["/root", "/home", os.environ["STATE"], os.environ["OTHER"], os.environ["OTHER"] + "/secret.py", "/work", "/sys", "/var/lib"] if os.path.exists(p)])`, "[]"},
		{"mount denied", `print(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None), errno.errorcode[ctypes.get_errno()])`, "-1 EPERM"},
		{"ptrace denied", fmt.Sprintf(`print(sys_errno(%d, 16, 1, 0, 0), sys_errno(%d, 0, 0, 0, 0))`, nr["ptrace"], nr["ptrace"]), "EPERM EPERM"},
		{"module loading denied", fmt.Sprintf(`print(sys_errno(%d, 0, 0, b""), sys_errno(%d, 0, b"", 0))`, nr["init_module"], nr["finit_module"]), "EPERM EPERM"},
		{"bpf, keyrings and namespaces denied", fmt.Sprintf(`print(sys_errno(%d, 0, 0, 0), sys_errno(%d, 0, 0), sys_errno(%d, 0x10000000), os.system("unshare -U true 2>/dev/null") != 0)`, nr["bpf"], nr["keyctl"], nr["unshare"]), "EPERM EPERM EPERM True"},
		{"no capabilities", `print([l.split()[1] for l in open("/proc/self/status") if l.startswith(("CapEff", "CapPrm", "CapBnd", "CapAmb"))])`, "['0000000000000000', '0000000000000000', '0000000000000000', '0000000000000000']"},
		{"only loopback", `print([n for _, n in socket.if_nameindex()])`, "['lo']"},
		{"host loopback unreachable", `
try:
    socket.create_connection(("127.0.0.1", int(os.environ["HOSTPORT"])), timeout=5); print("connected")
except OSError as e:
    print(type(e).__name__)`, "ConnectionRefusedError"},
		{"runtime api at 127.0.0.1:9001", `print(os.environ["AWS_LAMBDA_RUNTIME_API"], os.getcwd())`, "127.0.0.1:9001 /var/task"},
		{"devices", `print(sorted(os.listdir("/dev")), open("/dev/urandom", "rb").read(4) != b"", open_errno("/dev/null"))`,
			"['core', 'fd', 'full', 'null', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'tty', 'urandom', 'zero'] True ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			task := t.TempDir()
			if err := os.WriteFile(filepath.Join(task, "hello.txt"), []byte("hi"), 0o600); err != nil {
				t.Fatal(err)
			}
			id := fmt.Sprintf("iso%d", seq.Add(1))
			want := tc.want
			if tc.name == "own hostname" {
				want = hostname(id)
			}
			exit, out, _ := run(t, b, sandbox.Spec{ID: id, TaskDir: task, EphemeralStorageMB: 8,
				Argv: python(prelude + tc.script),
				Env:  []string{"STATE=" + b.cfg.StateDir, "OTHER=" + other, "HOSTPORT=" + hostPort}})
			if exit.Code != 0 {
				t.Fatalf("exit %s, output %q", exit, out)
			}
			got := strings.TrimSpace(out)
			if strings.HasSuffix(tc.name, "read-only") && !b.rootless {
				// As an unprivileged uid the write is refused (EACCES) before the read-only mount
				// is consulted: either way nothing is written.
				got = strings.ReplaceAll(got, "EACCES", "EROFS")
			}
			if got != want {
				t.Errorf("got %q, want %q", got, want)
			}
			if tc.name == "own hostname" && strings.TrimSpace(out) == hostName {
				t.Errorf("hostname %q is the host's", out)
			}
		})
	}
}

// TestPortsAtTheirNumbers checks that in a network namespace of its own an environment finds its
// ports at their Numbers on 127.0.0.1 (the well-known port, as code written for AWS assumes),
// whether its init was a spare configured later or one started for it.
func TestPortsAtTheirNumbers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		prespawn int
	}{{"spare init", 1}, {"init started by Create", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t, "none", func(c *Config) { c.Prespawn = tc.prespawn })
			if tc.prespawn > 0 {
				waitForSpare(t, b)
			}
			ports := []sandbox.Port{{Number: 2773, EnvVar: "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"}, {Number: 8080, EnvVar: "OTHER_PORT"}}
			// The guest dials the well-known numbers, not the variables.
			script := `
import os, socket
print(os.environ["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"], os.environ["OTHER_PORT"])
for port in (2773, 8080):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"%d\n" % port)
    print(s.makefile().readline().strip())`
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			inst, err := b.Create(ctx, sandbox.Spec{ID: fmt.Sprintf("ports%d", seq.Add(1)), TaskDir: t.TempDir(),
				Argv: python(script), Ports: ports, MemoryMB: 128, EphemeralStorageMB: 16, Output: w})
			w.Close()
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Destroy(context.Background())
			for _, p := range ports {
				go func() { // ends with its connection, or when Destroy closes the listener
					c, err := inst.Listener(p.Number).Accept()
					if err != nil {
						return
					}
					defer c.Close()
					_ = c.SetDeadline(time.Now().Add(30 * time.Second))
					line, _ := bufio.NewReader(c).ReadString('\n')
					_, _ = c.Write([]byte("reached " + line))
				}()
			}
			if err := inst.Start(ctx); err != nil {
				t.Fatal(err)
			}
			_ = r.SetReadDeadline(time.Now().Add(60 * time.Second))
			out, _ := io.ReadAll(r)
			if got, want := strings.TrimSpace(string(out)), "2773 8080\nreached 2773\nreached 8080"; got != want {
				t.Errorf("output %q, want %q", got, want)
			}
			if exit, err := inst.Wait(ctx); err != nil || exit.Code != 0 {
				t.Errorf("exit = %+v, %v", exit, err)
			}
		})
	}
}

// TestGoBootstrap runs a static Go program as the runtime: what a provided.al2023 function is.
func TestGoBootstrap(t *testing.T) {
	b := newBackend(t, "none")
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	src := t.TempDir()
	task := t.TempDir()
	prog := `package main

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

func main() {
	h, _ := os.Hostname()
	err := os.WriteFile("/var/task/x", nil, 0o644)
	c, cerr := net.Dial("tcp", os.Getenv("AWS_LAMBDA_RUNTIME_API"))
	if cerr == nil {
		c.Close()
	}
	merr := syscall.Mount("none", "/tmp", "tmpfs", 0, "")
	fmt.Println(h != "", err != nil && err.(*os.PathError).Err == syscall.EROFS, cerr == nil, merr == syscall.EPERM, os.Getpid() > 1)
}
`
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(prog), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module bootstrap\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gobin, "build", "-o", filepath.Join(task, "bootstrap"), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("cannot build a Go bootstrap here: %v\n%s", err, out)
	}
	ctx := context.Background()
	r, w, _ := os.Pipe()
	defer r.Close()
	inst, err := b.Create(ctx, sandbox.Spec{ID: "gobootstrap", TaskDir: task, Argv: []string{"/var/task/bootstrap"},
		MemoryMB: 128, EphemeralStorageMB: 64, Output: w})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Destroy(ctx)
	go func() {
		if c, err := inst.RuntimeAPI().Accept(); err == nil {
			c.Close()
		}
	}()
	if err := inst.Start(ctx); err != nil {
		t.Fatal(err)
	}
	w.Close()
	_ = r.SetReadDeadline(time.Now().Add(60 * time.Second))
	out, _ := io.ReadAll(r)
	if got, want := strings.TrimSpace(string(out)), "true true true true true"; got != want {
		t.Errorf("bootstrap printed %q, want %q", got, want)
	}
}

// TestOOM checks the OOM verdict and that the peak memory reported is at the limit.
func TestOOM(t *testing.T) {
	b := newBackend(t, "none")
	exit, out, inst := run(t, b, sandbox.Spec{MemoryMB: 128, Argv: python("b = bytearray(1 << 20) * 1024")})
	if !exit.OOMKilled || exit.Signal != "killed" {
		t.Fatalf("exit = %+v, want OOMKilled (output %q)", exit, out)
	}
	peak, err := inst.(sandbox.MemoryReporter).MaxMemoryUsed()
	if err != nil {
		t.Fatal(err)
	}
	if peak < 120<<20 || peak > 136<<20 {
		t.Errorf("MaxMemoryUsed = %d MB, want about 128", peak>>20)
	}
	// A function that stays under its limit is not OOM-killed, and reports what it used.
	exit, out, inst = run(t, b, sandbox.Spec{MemoryMB: 256, Argv: python("b = bytearray(1 << 20) * 64; print(len(b))")})
	if exit.Code != 0 || exit.OOMKilled {
		t.Fatalf("exit = %+v (output %q)", exit, out)
	}
	if peak, err := inst.(sandbox.MemoryReporter).MaxMemoryUsed(); err != nil || peak < 64<<20 || peak > 256<<20 {
		t.Errorf("MaxMemoryUsed = %d MB, %v; want 64..256", peak>>20, err)
	}
}

// TestPeakMemoryWhileRunning reads a live environment's high-water mark before and after it
// grows: the descriptor kept open between reads must show the new mark, not the first one.
func TestPeakMemoryWhileRunning(t *testing.T) {
	b := newBackend(t, "none")
	// The function grows once the test has read the first mark and says so over the Runtime API
	// listener. (A file made in /var/task would do only by chance: the code is an overlay, which
	// may keep its first "no such file" for good.)
	task := t.TempDir()
	inst, r := start(t, b, sandbox.Spec{TaskDir: task, Argv: python(`import os, socket, time
print("small", flush=True)
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
socket.create_connection((host, int(port))).recv(1)
b = bytearray(1 << 20) * 96
print("big", flush=True)
time.sleep(60)`)})
	_ = r.SetReadDeadline(time.Now().Add(60 * time.Second))
	lines := bufio.NewReader(r)
	if l, err := lines.ReadString('\n'); err != nil || l != "small\n" {
		t.Fatalf("first line %q, %v", l, err)
	}
	mr := inst.(sandbox.MemoryReporter)
	small, err := mr.MaxMemoryUsed()
	if err != nil {
		t.Fatal(err)
	}
	if small >= 64<<20 {
		t.Fatalf("peak before growing = %d MB, want under 64", small>>20)
	}
	conn, err := inst.RuntimeAPI().Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("g")); err != nil {
		t.Fatal(err)
	}
	if l, err := lines.ReadString('\n'); err != nil || l != "big\n" {
		t.Fatalf("second line %q, %v", l, err)
	}
	big, err := mr.MaxMemoryUsed()
	if err != nil {
		t.Fatal(err)
	}
	if big < 96<<20 || big > 256<<20 {
		t.Errorf("peak after growing = %d MB, want 96..256 (before: %d MB)", big>>20, small>>20)
	}
	if err := inst.Destroy(context.Background()); err != nil {
		t.Fatal(err)
	}
	if final, err := mr.MaxMemoryUsed(); err != nil || final < big {
		t.Errorf("peak after Destroy = %d MB, %v; want at least %d MB", final>>20, err, big>>20)
	}
}

// TestCPUProportionalToMemory spins at 128 MB and 1769 MB: CPU time should be in about that
// ratio (13.8); the assertion is deliberately loose. TestInitIsUncapped checks the boost.
func TestCPUProportionalToMemory(t *testing.T) {
	b := newBackend(t, "none")
	ctx := context.Background()
	spin := func(mb int) (sandbox.Instance, sandboxtest.CPUMeter) {
		inst, err := b.Create(ctx, sandbox.Spec{ID: fmt.Sprintf("spin%d", mb), TaskDir: t.TempDir(),
			Argv: []string{"/bin/sh", "-c", "while :; do :; done"}, MemoryMB: mb, EphemeralStorageMB: 64})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = inst.Destroy(ctx) })
		if err := inst.Start(ctx); err != nil {
			t.Fatal(err)
		}
		// INIT runs uncapped; the worker applies the cap at the runtime's first /next.
		if err := inst.(sandbox.InitBooster).EndInit(ctx); err != nil {
			t.Fatal(err)
		}
		return inst, inst.(sandboxtest.CPUMeter)
	}
	_, small := spin(128)
	_, large := spin(1769)
	usage := func(m sandboxtest.CPUMeter) time.Duration {
		u, err := m.CPUUsage()
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	time.Sleep(200 * time.Millisecond)
	s0, l0 := usage(small), usage(large)
	// At least a second, and until the large one has had a fair sample even on a busy host.
	begin := time.Now()
	for time.Since(begin) < time.Second || (usage(large)-l0 < 300*time.Millisecond && time.Since(begin) < 20*time.Second) {
		time.Sleep(100 * time.Millisecond)
	}
	ds, dl := usage(small)-s0, usage(large)-l0
	t.Logf("CPU over %v: 128 MB %v, 1769 MB %v (ratio %.1f)", time.Since(begin).Round(time.Millisecond), ds, dl, float64(dl)/float64(ds))
	if ds <= 0 || float64(dl)/float64(ds) < 3 {
		t.Errorf("CPU 1769 MB / 128 MB = %v / %v, want a ratio above 3", dl, ds)
	}
}

// crashedServer is a crashingServer the test has killed with SIGKILL: its state directory, its
// cgroup parents and its environments' cgroups and directories.
type crashedServer struct {
	state   string
	ids     []string // the environments' cgroups' and directories' names: running, frozen
	parents []string
	cmd     *exec.Cmd
}

// startCrashingServer runs crashingServer on state and parent until it is ready.
func startCrashingServer(t *testing.T, state, parent string, check bool) *crashedServer {
	t.Helper()
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), "FLINT_LINUX_TEST_SERVER="+state, "FLINT_LINUX_TEST_CGROUP="+parent)
	if check {
		cmd.Env = append(cmd.Env, "FLINT_LINUX_TEST_CHECK=1")
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	f := strings.Fields(line)
	if len(f) < 3 || f[0] != "ready" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("server said %q", line)
	}
	s := &crashedServer{state: state, ids: strings.Split(f[1], ","), parents: f[2:], cmd: cmd}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); scrub(s.parents) })
	return s
}

// leftovers are the dead server's environments' cgroups and directories.
func (s *crashedServer) leftovers() []string {
	var out []string
	for _, id := range s.ids {
		out = append(out, filepath.Join(s.state, "envs", id))
		for _, p := range s.parents {
			out = append(out, filepath.Join(p, id))
		}
	}
	return out
}

// processes lists the pids in the server's environments' cgroups.
func (s *crashedServer) processes() []int {
	var out []int
	for _, id := range s.ids {
		out = append(out, procs(filepath.Join(s.parents[0], id))...)
	}
	return out
}

// testParent returns a CgroupParent of the test's own, whose (empty) directories are removed
// when the test ends.
func testParent(t *testing.T) string {
	parent := fmt.Sprintf("flint-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() {
		if cg, err := detectCgroups(parent); err == nil {
			for _, h := range cg.hier {
				_ = os.Remove(h.base)
			}
		}
	})
	return parent
}

// scrub kills and removes what a failed test left under parents.
func scrub(parents []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = reclaimRun(ctx, parents)
}

// TestReclaim kills a server running environments with SIGKILL (one without a reaper): its
// inits die with it (Pdeathsig) and their mounts with their namespaces; Reclaim by the next
// server on the state directory then ends the frozen environment and removes the cgroups and
// directories left.
func TestReclaim(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the linux sandbox tests need root")
	}
	state := t.TempDir()
	parent := testParent(t)
	dead := startCrashingServer(t, state, parent, false)
	leftovers := dead.leftovers()
	if err := dead.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = dead.cmd.Wait()
	for _, p := range leftovers {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("expected a leftover %s: %v", p, err)
		}
	}
	// The unfrozen environment's processes die with the server; the frozen one's are killed
	// but only go once thawed, which is Reclaim's job.
	deadline := time.Now().Add(30 * time.Second)
	for len(procs(filepath.Join(dead.parents[0], dead.ids[0]))) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("processes of a dead server's environment survive: %v", procs(filepath.Join(dead.parents[0], dead.ids[0])))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("processes left in the frozen environment before Reclaim: %v", dead.processes())
	b, err := New(Config{StateDir: state, CgroupParent: parent})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Reclaim(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range append(leftovers, dead.parents...) {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived Reclaim (%v)", p, err)
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), state) {
		t.Errorf("mounts under the state dir visible on the host:\n%s", mounts)
	}
	if err := b.Reclaim(ctx); err != nil {
		t.Errorf("second Reclaim: %v", err)
	}
}

// TestReaperNeedsNoStateDir is the race behind frozen environments outliving their server: the
// server is killed with an environment frozen and its state directory is removed at once (a
// test's cleanup, an operator's rm -rf), before the reaper has looked at it. The reaper works
// from the server's cgroups alone, so nothing survives, with no restart.
func TestReaperNeedsNoStateDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the linux sandbox tests need root")
	}
	state := t.TempDir()
	parent := testParent(t)
	dead := startCrashingServer(t, state, parent, true)
	frozen := procs(filepath.Join(dead.parents[0], dead.ids[1]))
	if len(frozen) == 0 {
		t.Fatal("no process in the frozen environment")
	}
	if err := dead.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = dead.cmd.Wait()
	if err := os.RemoveAll(state); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var alive []int
		for _, pid := range frozen {
			if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(st), ") Z ") {
				alive = append(alive, pid)
			}
		}
		var left []string
		for _, p := range dead.parents {
			if _, err := os.Stat(p); err == nil {
				left = append(left, p)
			}
		}
		if len(alive)+len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the kill and the state dir's removal, processes %v of the frozen environment are alive and cgroup parents %v remain", alive, left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReclaimLeavesLiveServersAlone: three servers share a CgroupParent. One is killed together
// with its reaper (as a kill of everything in the server's own cgroup would), leaving a frozen
// environment; a server on another state directory reclaims those orphans and does not touch
// the live server's environments, frozen or not.
func TestReclaimLeavesLiveServersAlone(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the linux sandbox tests need root")
	}
	parent := testParent(t)
	live := newBackend(t, "none", func(c *Config) { c.CgroupParent = parent })
	running, _ := start(t, live, sandbox.Spec{Argv: []string{"/bin/sh", "-c", "exec sleep 1000"}})
	idle, _ := start(t, live, sandbox.Spec{Argv: []string{"/bin/sh", "-c", "exec sleep 1000"}})
	ctx := context.Background()
	if err := idle.(sandbox.Freezer).Freeze(ctx); err != nil {
		t.Fatal(err)
	}
	liveProcs := append(procs(filepath.Join(live.cg.parents()[0], running.(*instance).id)), procs(filepath.Join(live.cg.parents()[0], idle.(*instance).id))...)

	dead := startCrashingServer(t, t.TempDir(), parent, true)
	if dead.parents[0] == live.cg.parents()[0] {
		t.Fatalf("two servers share the cgroup parent %s", dead.parents[0])
	}
	reaper := 0
	for _, e := range must(os.ReadDir("/proc")) {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); len(f) > 1 && f[1] == strconv.Itoa(dead.cmd.Process.Pid) &&
			strings.HasPrefix(string(cmdline), reaperArg0) {
			reaper = pid
		}
	}
	if reaper == 0 {
		t.Fatal("the crashing server has no reaper")
	}
	if err := syscall.Kill(reaper, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := dead.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = dead.cmd.Wait()
	time.Sleep(200 * time.Millisecond)
	orphans := dead.processes()
	if len(orphans) == 0 {
		t.Fatal("the dead server's frozen environment did not outlive it: the test proves nothing")
	}
	t.Logf("the dead server's frozen environment holds %v", orphans)

	third := newBackend(t, "none", func(c *Config) { c.CgroupParent, c.Prespawn = parent, -1 })
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := third.Reclaim(rctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range dead.parents {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the dead server's cgroup parent %s survived Reclaim (%v)", p, err)
		}
	}
	// A killed task leaves its cgroup (which Reclaim waits for) a moment before it is a zombie:
	// it may still be exiting when Reclaim returns.
	for _, pid := range orphans {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil || strings.Contains(string(st), ") Z ") {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("pid %d of the dead server's frozen environment survived Reclaim: %s", pid, st)
				break
			}
		}
	}
	for _, pid := range liveProcs {
		if err := syscall.Kill(pid, 0); err != nil {
			t.Errorf("pid %d of the live server's environments is gone after another server's Reclaim: %v", pid, err)
		}
	}
	if _, err := os.Stat(live.cg.parents()[0]); err != nil {
		t.Errorf("the live server's cgroup parent: %v", err)
	}
	if err := idle.(sandbox.Freezer).Thaw(ctx); err != nil {
		t.Errorf("thaw the live server's environment: %v", err)
	}
}

// TestStateDirInUse: a second backend on a state directory fails at once, naming it and the
// holder's pid; once the first is closed, it can be had.
func TestStateDirInUse(t *testing.T) {
	state := t.TempDir()
	first, err := New(Config{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(Config{StateDir: state})
	want := fmt.Sprintf("linux sandbox: state directory %s is in use by another flint server (pid %d)", state, os.Getpid())
	if err == nil || err.Error() != want {
		t.Errorf("second New on one state dir: %v, want %q", err, want)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := New(Config{StateDir: state})
	if err != nil {
		t.Fatalf("New after Close: %v", err)
	}
	_ = again.Close()
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestInitIsUncapped: before EndInit an environment is not held to its CPU quota (Lambda's INIT
// phase gets more CPU); after it, it is.
func TestInitIsUncapped(t *testing.T) {
	b := newBackend(t, "none")
	ctx := context.Background()
	inst, err := b.Create(ctx, sandbox.Spec{ID: "boost", TaskDir: t.TempDir(),
		Argv: []string{"/bin/sh", "-c", "while :; do :; done"}, MemoryMB: 128, EphemeralStorageMB: 64})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inst.Destroy(ctx) })
	if err := inst.Start(ctx); err != nil {
		t.Fatal(err)
	}
	m := inst.(sandboxtest.CPUMeter)
	measure := func() time.Duration {
		u0, _ := m.CPUUsage()
		time.Sleep(500 * time.Millisecond)
		u1, _ := m.CPUUsage()
		return u1 - u0
	}
	boosted := measure()
	if err := inst.(sandbox.InitBooster).EndInit(ctx); err != nil {
		t.Fatal(err)
	}
	capped := measure()
	t.Logf("CPU per 500 ms: during init %v, after %v", boosted, capped)
	// 128 MB is capped at 7.2% of a CPU (36 ms per 500 ms); uncapped it gets far more.
	if capped > 150*time.Millisecond || boosted < 2*capped {
		t.Errorf("CPU during init %v, after EndInit %v: want the cap to apply only after EndInit", boosted, capped)
	}
}

// TestNoHostPaths reads what an environment can learn of where things are on the host: its pid
// 1's command line and environment, its mounts. None of the state directory's, the code's, the
// layers' or the runtime client's host paths may show, and every mount's root (mountinfo's
// fourth field, a bind mount's path in its source file system) must be "/", the tail of where
// the environment sees it (/usr at /usr, /dev/null at /dev/null) or the masks' /dev/null, with a
// spare init and without.
func TestNoHostPaths(t *testing.T) {
	script := `
import os
def read(p):
    try:
        return open(p, "rb").read().decode(errors="replace")
    except OSError as e:
        return "<%s>" % e.strerror
def link(p):
    try:
        return os.readlink(p)
    except OSError as e:
        return "<%s>" % e.strerror
print("cmdline", read("/proc/1/cmdline").replace("\0", " "))
print("environ", read("/proc/1/environ").replace("\0", " "))
print("exe", link("/proc/1/exe"), link("/proc/1/cwd"), link("/proc/1/root"))
print(read("/proc/self/mounts"))
for line in read("/proc/self/mountinfo").splitlines():
    f = line.split()
    root, point = f[3], f[4]
    if root not in ("/", "/null") and not point.endswith(root):
        print("BADROOT", line)
    print("mountinfo", line)
`
	for _, tc := range []struct {
		name     string
		prespawn int
	}{{"spare init", 1}, {"init started by Create", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t, "none", func(c *Config) { c.Prespawn = tc.prespawn })
			task, opt, rt := t.TempDir(), t.TempDir(), t.TempDir()
			if err := os.WriteFile(filepath.Join(task, "x.py"), []byte("x = 1"), 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.prespawn > 0 {
				waitForSpare(t, b)
			}
			exit, out, _ := run(t, b, sandbox.Spec{TaskDir: task, OptDir: opt, RuntimeDir: rt, Argv: python(script)})
			if exit.Code != 0 {
				t.Fatalf("exit %s, output %q", exit, out)
			}
			t.Logf("inside:\n%s", out[:strings.Index(out, "\nmountinfo")])
			if !strings.Contains(out, "cmdline flint-sandbox-init") || !strings.Contains(out, " /var/task ") {
				t.Fatalf("unexpected output:\n%s", out)
			}
			for _, p := range []string{b.cfg.StateDir, task, opt, rt} {
				if strings.Contains(out, p) {
					t.Errorf("host path %s visible inside:\n%s", p, out)
				}
			}
			if strings.Contains(out, "BADROOT") {
				t.Errorf("a mount shows a host path as its root:\n%s", out)
			}
			// The code is still there, read-only.
			exit, out, _ = run(t, b, sandbox.Spec{TaskDir: task, OptDir: opt, RuntimeDir: rt, Argv: python(`
import os, sys
sys.path.insert(0, "/var/task")
import x
try:
    open("/var/task/y", "w")
except OSError as e:
    print(x.x, sorted(os.listdir("/var/task")), e.strerror)`)})
			if got, want := strings.TrimSpace(out), "1 ['x.py'] Read-only file system"; exit.Code != 0 || got != want {
				t.Errorf("code in /var/task: exit %s, got %q, want %q", exit, got, want)
			}
		})
	}

	// An interpreter installed outside /usr (pyenv's, `flint runtimes install`'s in the data
	// directory) shows at /var/lang without its host path.
	t.Run("interpreter outside /usr", func(t *testing.T) {
		b := newBackend(t, "none", func(c *Config) { c.Prespawn = -1 })
		home := filepath.Join(t.TempDir(), "host-layout-pyenv")
		bin, err := os.ReadFile("/usr/bin/python3")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(home, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, "bin", "python3"), bin, 0o755); err != nil {
			t.Fatal(err)
		}
		exit, out, _ := run(t, b, sandbox.Spec{TaskDir: t.TempDir(), Argv: []string{filepath.Join(home, "bin", "python3"), "-c", script}})
		if exit.Code != 0 {
			t.Fatalf("exit %s, output %q", exit, out)
		}
		if !strings.Contains(out, " /var/lang ") {
			t.Errorf("no /var/lang mount:\n%s", out)
		}
		if strings.Contains(out, "host-layout-pyenv") {
			t.Errorf("the interpreter's host path is visible inside:\n%s", out)
		}
		if strings.Contains(out, "BADROOT") {
			t.Errorf("a mount shows a host path as its root:\n%s", out)
		}
	})
}

// waitForSpare waits until b has a spare init ready.
func waitForSpare(t testing.TB, b *Backend) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b.mu.Lock()
		n := len(b.spares)
		b.mu.Unlock()
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no spare init started")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEgress: with Network "egress" (and "host", its alias) an environment reaches a server beyond
// the host through NAT, but not the host (not its loopback, not a service on 0.0.0.0 through any
// of its addresses), not another environment (its Runtime API, a port it listens on), and no
// other environment of another server on the host takes its addresses.
func TestEgress(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	// "The world": a network namespace of the test's behind a veth pair, 198.18.0.2 (a
	// benchmarking range) beyond this namespace's 198.18.0.1, with a server that answers with the
	// address it sees the caller at.
	world := newWorld(t)
	reached := make(chan string, 16)
	hostListen := func(addr, name string) int {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() { // ends when the listener closes
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				reached <- name + " from " + c.RemoteAddr().String()
				c.Close()
			}
		}()
		return ln.Addr().(*net.TCPAddr).Port
	}
	anyPort := hostListen("0.0.0.0:0", "the host's 0.0.0.0 listener")
	loPort := hostListen("127.0.0.1:0", "the host's 127.0.0.1 listener")
	// Addresses of the pool this host already uses: slots 0 and 1 (a route), 2 (an address of
	// its own) and 3 (an interface of that name, as another server's would be) must be skipped.
	if err := netlink.RouteAdd(&netlink.Route{Dst: &net.IPNet{IP: net.IPv4(169, 254, 0, 0), Mask: net.CIDRMask(29, 32)},
		Gw: net.IPv4(198, 18, 0, 2)}); err != nil {
		t.Fatal(err)
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(169, 254, 0, 9), Mask: net.CIDRMask(32, 32)}}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: vethPrefix + "3"}, PeerName: "other3"}); err != nil {
		t.Fatal(err)
	}

	b := newBackend(t, "host")
	if b.cfg.Network != "egress" {
		t.Fatalf("Network host is %q, want egress", b.cfg.Network)
	}
	// B listens on 0.0.0.0:8080 and tells its address.
	instB, outB := start(t, b, sandbox.Spec{Argv: python(`
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", 8080)); s.listen(8)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.connect(("198.18.0.2", 9))
print("ready", u.getsockname()[0], flush=True)
while True:
    c, a = s.accept(); print("B reached from", a, flush=True); c.close()`)})
	go func() { // ends when Destroy closes the listener
		for {
			c, err := instB.RuntimeAPI().Accept()
			if err != nil {
				return
			}
			reached <- "B's Runtime API from " + c.RemoteAddr().String()
			c.Close()
		}
	}()
	_ = outB.SetReadDeadline(time.Now().Add(60 * time.Second))
	linesB := bufio.NewReader(outB)
	line, err := linesB.ReadString('\n')
	ipB, ok := strings.CutPrefix(strings.TrimSpace(line), "ready ")
	if err != nil || !ok {
		t.Fatalf("B said %q, %v", line, err)
	}
	_, apiB, _ := net.SplitHostPort(instB.RuntimeAPI().Addr().String())

	probe := `
import os, socket
def dial(host, port):
    try:
        c = socket.create_connection((host, int(port)), timeout=2)
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return type(e).__name__
    try:
        c.settimeout(2)
        return "ok " + c.recv(100).decode().strip()
    except OSError as e:
        return "ok"
gw = [l.split()[2] for l in open("/proc/net/route") if l.split()[1] == "00000000"] + ["0100A8C6"]
gw = socket.inet_ntoa(int(gw[0], 16).to_bytes(4, "little")) # else (no route of its own) 198.18.0.1
for name, host, port in [
    ("world", "198.18.0.2", 8080),
    ("host loopback", "127.0.0.1", os.environ["LOPORT"]),
    ("host 0.0.0.0 via gateway", gw, os.environ["ANYPORT"]),
    ("host 127.0.0.1 via gateway", gw, os.environ["LOPORT"]),
    ("host 0.0.0.0 via its other address", "198.18.0.1", os.environ["ANYPORT"]),
    ("B's Runtime API port", "127.0.0.1", os.environ["APIB"]),
    ("B's port", os.environ["IPB"], 8080),
    ("B's Runtime API on its address", os.environ["IPB"], 9001),
    ("metadata", "169.254.169.254", 8080),
]:
    if os.environ.get("ONLY", name) != name:
        continue
    print(name + ":", dial(host, port), flush=True)
`
	env := []string{"LOPORT=" + strconv.Itoa(loPort), "ANYPORT=" + strconv.Itoa(anyPort), "APIB=" + apiB, "IPB=" + ipB}
	exit, out, instA := run(t, b, sandbox.Spec{Argv: python(probe), Env: env})
	if exit.Code != 0 {
		t.Fatalf("exit %s, output %q", exit, out)
	}
	want := map[string]string{
		"world": "ok 198.18.0.1", // masqueraded: the world sees this host, not the environment
		// Its own loopback: nothing listens there.
		"host loopback": "ConnectionRefusedError",
		// Dropped by the host.
		"host 0.0.0.0 via gateway": "timeout", "host 127.0.0.1 via gateway": "timeout",
		"host 0.0.0.0 via its other address": "timeout", "B's port": "timeout",
		"B's Runtime API on its address": "timeout", "metadata": "timeout",
	}
	if apiB != "9001" { // the old host network: B's Runtime API on a port of the host's loopback
		want["B's Runtime API port"] = "ConnectionRefusedError"
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok {
			got[k] = v
		}
	}
	delete(got, "B's Runtime API port") // A's own Runtime API when both have their own namespace
	delete(want, "B's Runtime API port")
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
	t.Logf("A:\n%s", out)

	// A second server on the same host: its environments get addresses of their own, and reach
	// the world too. (It has no spare inits: its veth pairs are made during Create.)
	b2 := newBackend(t, "egress", func(c *Config) { c.Prespawn = -1 })
	_, out2, instC := run(t, b2, sandbox.Spec{Argv: python(probe), Env: append(env, "ONLY=world")})
	if !strings.Contains(out2, "world: ok 198.18.0.1") {
		t.Errorf("an environment of a second server: %q", out2)
	}
	if a, bb, c := instA.(*instance).veth, instB.(*instance).veth, instC.(*instance).veth; a == nil || bb == nil || c == nil ||
		a.name == bb.name || a.name == c.name || bb.name == c.name || min(a.slot, bb.slot, c.slot) < 4 {
		t.Errorf("veths %+v %+v %+v, want three different ones, none of slots 0-3", a, bb, c)
	}
	world.close()
	if err := instB.Destroy(context.Background()); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(linesB)
	if strings.Contains(string(rest), "reached") {
		t.Errorf("B was reached: %s", rest)
	}
	close(reached)
	for r := range reached {
		t.Errorf("%s", r)
	}
	// Destroyed, an environment's veth goes with its network namespace (the kernel's cleanup runs
	// in the background).
	name := instB.(*instance).veth.name
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := netlink.LinkByName(name); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s survives its environment", name)
		}
	}
}

// world is a network namespace behind a veth pair with a server on 198.18.0.2:8080 that answers
// with the address it sees its caller at. It also plays a cloud's metadata service: the host
// routes 169.254.169.254 there, where the server answers too.
type world struct {
	ln   net.Listener
	done chan struct{}
}

func newWorld(t *testing.T) *world {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	here, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer here.Close()
	ns, err := netns.New() // and this thread is in it
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	var ln net.Listener
	err = func() error {
		defer netns.Set(here)
		if err := netns.Set(here); err != nil {
			return err
		}
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "world0"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(ns)}); err != nil {
			return err
		}
		up, err := netlink.LinkByName("world0")
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(up, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(198, 18, 0, 1), Mask: net.CIDRMask(30, 32)}}); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(up); err != nil {
			return err
		}
		if err := netlink.RouteAdd(&netlink.Route{Dst: &net.IPNet{IP: net.IPv4(169, 254, 169, 254), Mask: net.CIDRMask(32, 32)},
			Gw: net.IPv4(198, 18, 0, 2)}); err != nil {
			return err
		}
		if err := netns.Set(ns); err != nil {
			return err
		}
		far, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(far, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(198, 18, 0, 2), Mask: net.CIDRMask(30, 32)}}); err != nil {
			return err
		}
		if err := netlink.AddrAdd(far, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(169, 254, 169, 254), Mask: net.CIDRMask(32, 32)}}); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(far); err != nil {
			return err
		}
		ln, err = net.Listen("tcp", "0.0.0.0:8080") // the socket is the world's
		return err
	}()
	if err != nil {
		t.Fatalf("world: %v", err)
	}
	w := &world{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			_, _ = c.Write([]byte(host + "\n"))
			c.Close()
		}
	}()
	t.Cleanup(w.close)
	return w
}

func (w *world) close() {
	w.ln.Close()
	<-w.done
}

// TestResolvConf: a host whose resolv.conf names only a stub on its loopback (unreachable from
// an environment) gives environments the upstream servers instead.
func TestResolvConf(t *testing.T) {
	dir := t.TempDir()
	file := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stub := file("stub", "# systemd-resolved\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n")
	upstream := file("upstream", "nameserver 10.0.0.2\nnameserver 1.1.1.1\n")
	plain := file("plain", "nameserver 10.0.0.2\n")
	mixed := file("mixed", "nameserver 127.0.0.53\nnameserver 10.0.0.2\n")
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct{ host, upstream, want string }{
		{stub, upstream, upstream},
		{stub, missing, stub},
		{stub, stub, stub},
		{plain, upstream, plain},
		{mixed, upstream, mixed},
	} {
		if got := resolvConf(tc.host, tc.upstream); got != tc.want {
			t.Errorf("resolvConf(%s, %s) = %s, want %s", filepath.Base(tc.host), filepath.Base(tc.upstream), filepath.Base(got), filepath.Base(tc.want))
		}
	}
}

// TestSpareInitsFollowBursts: the backend keeps Prespawn spare inits, and after a burst as many
// as cold starts were in flight at once (Creates and INITs; at most maxSpareInits) until
// spareWindow has passed.
func TestSpareInitsFollowBursts(t *testing.T) {
	// refilling: the Creates' end asks for a refill, which this bare Backend cannot start.
	b := &Backend{cfg: Config{Prespawn: 2}, refilling: true}
	stop := func(b *Backend) {
		if b.trimmer != nil {
			b.trimmer.Stop()
		}
	}
	want := func(n int) {
		t.Helper()
		b.mu.Lock()
		got := b.wantSpares()
		b.mu.Unlock()
		if got != n {
			t.Errorf("wantSpares = %d, want %d", got, n)
		}
	}
	want(2)
	for range 10 {
		b.creates(1)
	}
	for range 10 {
		b.creates(-1)
	}
	want(10)
	b.mu.Lock()
	b.peakAt = time.Now().Add(-spareWindow - time.Second)
	b.mu.Unlock()
	want(2)
	for range 100 {
		b.creates(1)
	}
	want(maxSpareInits)
	// Environments past their Create and still in INIT are demand too.
	b.mu.Lock()
	b.peakAt = time.Now().Add(-spareWindow - time.Second)
	b.creating, b.initing = 0, 20
	b.mu.Unlock()
	b.creates(1)
	want(21)
	stop(b)
	b = &Backend{cfg: Config{Prespawn: 0}} // none at all (New makes a negative Prespawn 0)
	b.creates(1)
	want(0)
	stop(b)
}

// TestRefillWaitsForColdStarts: spares are not refilled while cold starts are being created or
// run their INIT, for at most maxRefillDelay, and at once when none is.
func TestRefillWaitsForColdStarts(t *testing.T) {
	b := &Backend{}
	putOff := func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.refillPutOffLocked()
	}
	if putOff() {
		t.Fatal("put off with no cold start in flight")
	}
	b.creating = 1
	if !putOff() {
		t.Fatal("not put off during a Create")
	}
	b.creating, b.initing = 0, 3
	if !putOff() {
		t.Fatal("not put off during INITs")
	}
	b.deferred = time.Now().Add(-maxRefillDelay)
	if putOff() {
		t.Fatalf("put off for longer than maxRefillDelay (%v)", maxRefillDelay)
	}
	b.initing = 0
	if putOff() || !b.deferred.IsZero() {
		t.Fatal("put off, or still counting the delay, once the cold starts ended")
	}
}

// TestColdStartsCounted: an environment counts as a cold start in flight from its creation to
// the end of its INIT, or to its Destroy when its INIT never ended.
func TestColdStartsCounted(t *testing.T) {
	b := newBackend(t, "none")
	initing := func() int {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.initing
	}
	a, _ := start(t, b, sandbox.Spec{Argv: []string{"/bin/sh", "-c", "exec sleep 1000"}})
	c, _ := start(t, b, sandbox.Spec{Argv: []string{"/bin/sh", "-c", "exec sleep 1000"}})
	if n := initing(); n != 2 {
		t.Fatalf("initing = %d with two INITs running, want 2", n)
	}
	if err := a.(sandbox.InitBooster).EndInit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.(sandbox.InitBooster).EndInit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := initing(); n != 1 {
		t.Fatalf("initing = %d after one INIT ended (twice), want 1", n)
	}
	for _, inst := range []sandbox.Instance{a, c} {
		if err := inst.Destroy(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := initing(); n != 0 {
		t.Fatalf("initing = %d once both are destroyed, want 0", n)
	}
}

// TestFreezeRightAfterStart: Start returns once the init has become the environment's pid 1 for
// good (pid1Program): a freeze while its exec was still going on waited for ever (the exec
// waits for the init's other threads to end, which the freezer holds).
func TestFreezeRightAfterStart(t *testing.T) {
	b := newBackend(t, "none")
	for n := range 20 {
		inst, _ := start(t, b, sandbox.Spec{Argv: []string{"/bin/sh", "-c", "exec sleep 1000"}})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := inst.(sandbox.Freezer).Freeze(ctx)
		cancel()
		if err != nil {
			t.Fatalf("freeze %d right after Start: %v", n, err)
		}
		if err := inst.Destroy(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// privilegesProbe prints the runtime's own credentials, capabilities, no_new_privs and seccomp
// mode, then pid 1's once it is the single-threaded pid1Program (which keeps the credentials of
// the init thread that execs it; an init that execs no pid1Program stays multi-threaded and is
// shown as it is).
const privilegesProbe = `
import os, time
FIELDS = ("Uid:", "Gid:", "Groups:", "CapEff:", "CapPrm:", "CapBnd:", "CapAmb:", "NoNewPrivs:", "Seccomp:")
def status(pid):
    lines = open("/proc/%s/status" % pid).read().splitlines()
    return dict((l.split(":")[0], " ".join(l.split()[1:])) for l in lines)
deadline = time.time() + 10
while status(1)["Threads"] != "1" and time.time() < deadline:
    time.sleep(0.01)
for who in ("self", 1):
    s = status(who)
    print(who, [s[f[:-1]] for f in FIELDS])
`

// TestPrivilegesDropped checks, as the root server the sandbox runs under in production, that
// the runtime and pid 1 are Lambda's sandbox user without groups, capabilities or a way to gain
// any, under the seccomp filter, whichever way the environment started: an init started by
// Create, a spare init, and a prestarted runtime (its exec stage drops its own privileges, the
// init drops its after the bind).
func TestPrivilegesDropped(t *testing.T) {
	if len(pid1Program) == 0 {
		t.Skipf("no pid1Program on %s: the init stays this binary", runtime.GOARCH)
	}
	const unprivileged = "['993 993 993 993', '990 990 990 990', '', '0000000000000000', '0000000000000000', '0000000000000000', '0000000000000000', '1', '2']"
	want := "self " + unprivileged + "\n1 " + unprivileged
	for _, tc := range []struct {
		name     string
		prespawn int
	}{{"init started by Create", -1}, {"spare init", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t, "none", func(c *Config) { c.Prespawn = tc.prespawn })
			if b.rootless {
				t.Skip("a rootless server's environments are uid 0 of their own user namespace")
			}
			if tc.prespawn > 0 {
				waitForSpare(t, b)
			}
			exit, out, _ := run(t, b, sandbox.Spec{TaskDir: t.TempDir(), Argv: python(privilegesProbe)})
			if got := strings.TrimSpace(out); exit.Code != 0 || got != want {
				t.Errorf("exit %s, output:\n%s\nwant:\n%s", exit, got, want)
			}
		})
	}
	t.Run("prestarted runtime", func(t *testing.T) {
		b := newBackend(t, "none")
		if b.rootless {
			t.Skip("a rootless server's environments are uid 0 of their own user namespace")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		waitBind := "import os\nos.read(int(os.environ['" + sandbox.BindFDEnv + "']), 1 << 20)\n"
		inst, err := b.Prestart(ctx, sandbox.Spec{ID: fmt.Sprintf("priv%d", seq.Add(1)), RuntimeDir: t.TempDir(),
			Argv: python(waitBind + privilegesProbe), Env: []string{"PATH=/usr/bin:/bin"}, MemoryMB: 128, Output: w})
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = inst.Destroy(context.Background()) }()
		if err := inst.Bind(ctx, sandbox.Binding{TaskDir: t.TempDir(), MemoryMB: 128, Env: []string{"PATH=/usr/bin:/bin"}}); err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(readOutput(t, r)); got != want {
			t.Errorf("output:\n%s\nwant:\n%s", got, want)
		}
	})
}

// TestEnvironmentsWeigh checks the CPU weight of CgroupParent, which holds every environment:
// as many busy processes' worth as the host has CPUs (weighEnvironments), not one.
func TestEnvironmentsWeigh(t *testing.T) {
	b := newBackend(t, "")
	i, ok := b.cg.by["cpu"]
	if !ok {
		t.Skip("no cpu controller")
	}
	h := b.cg.hier[i]
	file, want := "cpu.shares", 1024*runtime.NumCPU()
	if h.v2 {
		file, want = "cpu.weight", min(100*runtime.NumCPU(), 10000)
	}
	got, err := os.ReadFile(filepath.Join(h.base, file))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(got)) != strconv.Itoa(want) {
		t.Errorf("%s of %s = %s, want %d", file, h.base, strings.TrimSpace(string(got)), want)
	}
}
