// Package sandboxtest is the conformance suite every sandbox backend must pass:
// sandboxtest.Run(t, backend). It uses only the sandbox contract and the optional capabilities
// below, found by type assertion; a check whose capability a backend lacks is skipped with the
// reason.
package sandboxtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/sandbox"
)

// MemoryLimiter is implemented by instances that enforce Spec.MemoryMB: exceeding it must end the
// environment with Exit.OOMKilled.
type MemoryLimiter interface {
	MemoryLimit() uint64 // bytes
}

// CPUMeter is implemented by instances that account their processes' CPU time (a cgroup).
type CPUMeter interface {
	CPUUsage() (time.Duration, error)
}

// HostResourcer is implemented by instances that hold host resources named by paths (cgroup
// directories, state directories): after Destroy none of them may exist.
type HostResourcer interface {
	HostPaths() []string
}

// shell is the guest's /bin/sh; backends expose the host's /bin.
const shell = "/bin/sh"

// Run checks b against the contract.
func Run(t *testing.T, b sandbox.Backend) {
	ctx := context.Background()
	if err := b.Check(ctx); err != nil {
		t.Fatalf("%s.Check: %v", b.Name(), err)
	}

	t.Run("a prestarted runtime gets its function only when bound", func(t *testing.T) { checkPrestart(t, b) })

	t.Run("runs argv in the task root with env and output", func(t *testing.T) {
		task := t.TempDir()
		if err := os.WriteFile(filepath.Join(task, "hello.txt"), []byte("from task"), 0o644); err != nil {
			t.Fatal(err)
		}
		inst, out := start(t, b, task, `echo "env=$GREETING api=$AWS_LAMBDA_RUNTIME_API root=$LAMBDA_TASK_ROOT"; cat "$LAMBDA_TASK_ROOT/hello.txt"; echo; exit 3`,
			"GREETING=hi", "LAMBDA_TASK_ROOT="+sandbox.GuestTaskRoot)
		exit, err := inst.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if exit.Code != 3 || exit.String() != "exit status 3" {
			t.Errorf("exit = %+v (%s), want exit status 3", exit, exit)
		}
		got := out.all(t)
		if !strings.Contains(got, "env=hi") || !strings.Contains(got, "from task") {
			t.Errorf("output = %q, want the variable and the task file", got)
		}
		if !strings.Contains(got, "api="+inst.RuntimeAPI().Addr().String()) && !strings.Contains(got, "api=127.0.0.1:9001") {
			t.Errorf("output = %q, want AWS_LAMBDA_RUNTIME_API set to the runtime API address", got)
		}
	})

	t.Run("runtime reaches its Runtime API listener", func(t *testing.T) {
		inst, _ := start(t, b, t.TempDir(), `exec /usr/bin/python3 -c "
import os, socket
h, p = os.environ['AWS_LAMBDA_RUNTIME_API'].rsplit(':', 1)
s = socket.create_connection((h, int(p))); s.sendall(b'ping\n'); s.recv(10)"`)
		conns := make(chan net.Conn, 1)
		go func() {
			c, err := inst.RuntimeAPI().Accept()
			if err == nil {
				conns <- c
			}
		}()
		select {
		case c := <-conns:
			line, _ := bufio.NewReader(c).ReadString('\n')
			if line != "ping\n" {
				t.Errorf("runtime sent %q", line)
			}
			_, _ = c.Write([]byte("pong\n"))
			c.Close()
		case <-time.After(30 * time.Second):
			t.Fatal("the runtime never connected to its Runtime API listener")
		}
		if _, err := inst.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("runtime reaches its ports through their variables", func(t *testing.T) {
		ports := []sandbox.Port{{Number: 2773, EnvVar: "FLINT_TEST_PORT"}, {Number: 2774, EnvVar: "FLINT_TEST_OTHER_PORT"}}
		// Each port in turn: send a line naming the environment and the port, print the answer.
		script := `exec /usr/bin/python3 -c "
import os, socket
for v in ('FLINT_TEST_PORT', 'FLINT_TEST_OTHER_PORT'):
    s = socket.create_connection(('127.0.0.1', int(os.environ[v])), timeout=30)
    s.sendall(('hello %s %s\n' % (os.environ['NAME'], v)).encode())
    print(s.makefile().readline().strip(), flush=True)
    s.close()"`
		// Two environments at once with the same port numbers (and a value of the variable in
		// Spec.Env, which the backend must replace): each one's traffic reaches its own listeners.
		type environment struct {
			name string
			inst sandbox.Instance
			out  *output
			got  chan string // what the test's side received, one line per connection
		}
		var envs []*environment
		for _, name := range []string{"a", "b"} {
			inst, out := startSpec(t, b, func(s *sandbox.Spec) { s.Ports = ports }, t.TempDir(), script,
				"NAME="+name, "FLINT_TEST_PORT=1")
			e := &environment{name: name, inst: inst, out: out, got: make(chan string, len(ports))}
			envs = append(envs, e)
			if inst.Listener(1) != nil || inst.Listener(sandbox.RuntimeAPIPort) != nil {
				t.Errorf("%s: Listener of a port not in the Spec is not nil", name)
			}
			for _, p := range ports {
				ln := inst.Listener(p.Number)
				if ln == nil {
					t.Fatalf("%s: Listener(%d) = nil", name, p.Number)
				}
				go func() { // ends when the connection does, or when Destroy closes ln
					c, err := ln.Accept()
					if err != nil {
						return
					}
					defer c.Close()
					_ = c.SetDeadline(time.Now().Add(30 * time.Second))
					line, _ := bufio.NewReader(c).ReadString('\n')
					e.got <- strings.TrimSpace(line)
					_, _ = c.Write([]byte("echo " + line))
				}()
			}
		}
		for _, e := range envs {
			var got []string
			for range ports {
				select {
				case line := <-e.got:
					got = append(got, line)
				case <-time.After(30 * time.Second):
					t.Fatalf("%s: the runtime never reached its ports (received %q, output %q)", e.name, got, e.out.all(t))
				}
			}
			for _, p := range ports {
				want := "hello " + e.name + " " + p.EnvVar
				if !slices.Contains(got, want) {
					t.Errorf("%s: listeners received %q, want %q", e.name, got, want)
				}
				if line := e.out.line(t); line != "echo "+want {
					t.Errorf("%s: runtime received %q, want %q", e.name, line, "echo "+want)
				}
			}
			if exit, err := e.inst.Wait(ctx); err != nil || exit.Code != 0 {
				t.Errorf("%s: exit = %+v, %v (output %q)", e.name, exit, err, e.out.all(t))
			}
		}
		// Destroy closes the listeners.
		inst := envs[0].inst
		ln := inst.Listener(ports[0].Number)
		if err := inst.Destroy(ctx); err != nil {
			t.Fatal(err)
		}
		if c, err := ln.Accept(); err == nil {
			c.Close()
			t.Error("Accept on a port's listener succeeded after Destroy")
		}
	})

	t.Run("invalid ports are refused", func(t *testing.T) {
		many := make([]sandbox.Port, sandbox.MaxPorts+1)
		for n := range many {
			many[n] = sandbox.Port{Number: 3000 + n, EnvVar: fmt.Sprintf("P%d", n)}
		}
		for _, tc := range []struct {
			name  string
			ports []sandbox.Port
		}{
			{"port 0", []sandbox.Port{{Number: 0, EnvVar: "P"}}},
			{"port 65536", []sandbox.Port{{Number: 65536, EnvVar: "P"}}},
			{"the Runtime API's port", []sandbox.Port{{Number: sandbox.RuntimeAPIPort, EnvVar: "P"}}},
			{"no variable", []sandbox.Port{{Number: 2773}}},
			{"bad variable", []sandbox.Port{{Number: 2773, EnvVar: "1P"}}},
			{"the Runtime API's variable", []sandbox.Port{{Number: 2773, EnvVar: "AWS_LAMBDA_RUNTIME_API"}}},
			{"same number twice", []sandbox.Port{{Number: 2773, EnvVar: "P"}, {Number: 2773, EnvVar: "Q"}}},
			{"same variable twice", []sandbox.Port{{Number: 2773, EnvVar: "P"}, {Number: 2774, EnvVar: "P"}}},
			{"too many", many},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := spec(t, t.TempDir(), "exit 0", nil)
				s.Ports = tc.ports
				inst, err := b.Create(ctx, s)
				if err == nil {
					_ = inst.Destroy(ctx)
					t.Fatalf("Create with ports %+v succeeded", tc.ports)
				}
			})
		}
	})

	t.Run("destroy kills every process and is idempotent", func(t *testing.T) {
		inst, out := start(t, b, t.TempDir(), `sleep 300 & echo "child $!"; wait`)
		line := out.line(t)
		if !strings.HasPrefix(line, "child ") {
			t.Fatalf("output %q", line)
		}
		if err := inst.Destroy(ctx); err != nil {
			t.Fatal(err)
		}
		if err := inst.Destroy(ctx); err != nil {
			t.Errorf("second Destroy: %v", err)
		}
		exit, err := inst.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if exit.Signal != "killed" {
			t.Errorf("exit after Destroy = %s, want signal: killed", exit)
		}
		// EOF on the output pipe means no process of the environment (the background sleep
		// included) still holds it open.
		if _, err := io.Copy(io.Discard, out.br); err != nil {
			t.Errorf("output still open after Destroy (a process survived): %v", err)
		}
		if err := inst.Start(ctx); err == nil {
			t.Error("Start after Destroy succeeded")
		}
	})

	t.Run("the rest of the environment outlives its main process until Destroy", func(t *testing.T) {
		// External extensions run beside the runtime: when it ends, they still get SHUTDOWN
		// before Destroy ends them.
		inst, out := start(t, b, t.TempDir(), `(while :; do echo alive; sleep 0.05; done) & exit 4`)
		exit, err := inst.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if exit.Code != 4 {
			t.Errorf("exit = %+v, want the main process's exit status 4", exit)
		}
		out.readFor(300 * time.Millisecond) // what was written before Wait returned
		if n := out.readFor(time.Second); n == 0 {
			t.Error("the background process printed nothing after the main process ended: it was killed with it")
		}
		paths := hostPaths(inst)
		if err := inst.Destroy(ctx); err != nil {
			t.Fatal(err)
		}
		if again, _ := inst.Wait(ctx); again != exit {
			t.Errorf("Wait after Destroy = %+v, want the main process's exit %+v", again, exit)
		}
		checkReleased(t, paths, out)
	})

	t.Run("exit codes and signals", func(t *testing.T) {
		for _, tc := range []struct {
			script string
			want   sandbox.Exit
		}{
			{"exit 0", sandbox.Exit{Code: 0}},
			{"exit 1", sandbox.Exit{Code: 1}},
			{"exit 42", sandbox.Exit{Code: 42}},
			{"kill -KILL $$", sandbox.Exit{Code: -1, Signal: "killed"}},
		} {
			t.Run(tc.script, func(t *testing.T) {
				inst, _ := start(t, b, t.TempDir(), tc.script)
				got, err := inst.Wait(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if got.Code != tc.want.Code || got.Signal != tc.want.Signal || got.OOMKilled {
					t.Errorf("exit = %+v, want code %d signal %q, not OOM", got, tc.want.Code, tc.want.Signal)
				}
				if got.At.IsZero() {
					t.Error("exit has no time")
				}
			})
		}
	})

	t.Run("timeout kill: Destroy ends a running environment", func(t *testing.T) {
		inst, out := start(t, b, t.TempDir(), `echo up; exec sleep 300`)
		if line := out.line(t); line != "up" {
			t.Fatalf("output %q", line)
		}
		paths := hostPaths(inst)
		if err := inst.Destroy(ctx); err != nil {
			t.Fatal(err)
		}
		exit, err := inst.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if exit.Signal != "killed" || exit.OOMKilled {
			t.Errorf("exit = %+v, want signal: killed and no OOM", exit)
		}
		checkReleased(t, paths, out)
	})

	t.Run("destroy before start releases everything", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		inst, err := b.Create(ctx, spec(t, t.TempDir(), "exit 0", w))
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		paths := hostPaths(inst)
		if err := inst.Destroy(ctx); err != nil {
			t.Fatal(err)
		}
		if err := inst.Destroy(ctx); err != nil {
			t.Errorf("second Destroy: %v", err)
		}
		if err := inst.Start(ctx); err == nil {
			t.Error("Start after Destroy succeeded")
		}
		checkReleased(t, paths, &output{r: r, br: bufio.NewReader(r)})
	})

	t.Run("one Start, Wait before and after it, Destroy and Wait from many goroutines", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		inst, err := b.Create(ctx, spec(t, t.TempDir(), "echo up; sleep 300", w))
		if err != nil {
			w.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = inst.Destroy(context.Background()) })
		if _, err := inst.Wait(ctx); !errors.Is(err, sandbox.ErrNotStarted) {
			t.Errorf("Wait before Start = %v, want ErrNotStarted", err)
		}
		err = inst.Start(ctx)
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		out := &output{r: r, br: bufio.NewReader(r)}
		if line := out.line(t); line != "up" {
			t.Fatalf("output %q, want up", line)
		}
		if err := inst.Start(ctx); err == nil {
			t.Error("a second Start succeeded")
		}
		const n = 8
		var (
			wg    sync.WaitGroup
			exits [n]sandbox.Exit
			werrs [n]error
			derrs [n]error
		)
		for k := range n {
			wg.Go(func() { exits[k], werrs[k] = inst.Wait(ctx) })
			wg.Go(func() { derrs[k] = inst.Destroy(ctx) })
		}
		wg.Wait()
		for k := range n {
			if derrs[k] != nil {
				t.Errorf("concurrent Destroy %d: %v", k, derrs[k])
			}
			if werrs[k] != nil || exits[k] != exits[0] || exits[k].Signal != "killed" {
				t.Errorf("concurrent Wait %d = %+v, %v; want %+v (signal: killed)", k, exits[k], werrs[k], exits[0])
			}
		}
		if exit, err := inst.Wait(ctx); err != nil || exit != exits[0] {
			t.Errorf("Wait after Destroy = %+v, %v; want %+v", exit, err, exits[0])
		}
		if err := inst.Start(ctx); !errors.Is(err, sandbox.ErrDestroyed) {
			t.Errorf("Start after Destroy = %v, want ErrDestroyed", err)
		}
		if fr, ok := inst.(sandbox.Freezer); ok {
			if err := fr.Freeze(ctx); !errors.Is(err, sandbox.ErrDestroyed) {
				t.Errorf("Freeze after Destroy = %v, want ErrDestroyed", err)
			}
		}
		if ib, ok := inst.(sandbox.InitBooster); ok {
			if err := ib.EndInit(ctx); !errors.Is(err, sandbox.ErrDestroyed) {
				t.Errorf("EndInit after Destroy = %v, want ErrDestroyed", err)
			}
		}
	})

	t.Run("an entrypoint that cannot be executed is an ExecError", func(t *testing.T) {
		for _, tc := range []struct {
			name, body string
			mode       os.FileMode
			errno      syscall.Errno
		}{
			{"not executable", "#!/bin/sh\necho hi\n", 0o644, syscall.EACCES},
			{"no format the kernel runs", "just text\n", 0o755, syscall.ENOEXEC},
			{"interpreter missing", "#!/nonexistent/interpreter\n", 0o755, syscall.ENOENT},
		} {
			t.Run(tc.name, func(t *testing.T) {
				task := t.TempDir()
				if err := os.WriteFile(filepath.Join(task, "bootstrap"), []byte(tc.body), tc.mode); err != nil {
					t.Fatal(err)
				}
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				sp := spec(t, task, "", w)
				sp.Argv = []string{"/var/task/bootstrap"}
				inst, err := b.Create(ctx, sp)
				w.Close()
				if err != nil {
					t.Fatal(err)
				}
				defer inst.Destroy(ctx)
				err = inst.Start(ctx)
				ee, ok := errors.AsType[*sandbox.ExecError](err)
				if !ok || ee.Path != "/var/task/bootstrap" || !errors.Is(err, tc.errno) {
					inst.Destroy(ctx)
					out, _ := io.ReadAll(r)
					t.Fatalf("Start = %v, want an ExecError for /var/task/bootstrap with %v (output %q)", err, tc.errno, out)
				}
				if got, want := ee.Error(), "fork/exec /var/task/bootstrap: "+tc.errno.Error(); got != want {
					t.Errorf("message %q, want %q", got, want)
				}
			})
		}
	})

	t.Run("extensions run beside the runtime, each with its own output", func(t *testing.T) { checkExtensions(t, b) })

	t.Run("a Dialer reaches the environment's listeners, never another's on the host", func(t *testing.T) { checkDialer(t, b) })

	t.Run("exceeding the memory limit is an OOM kill", func(t *testing.T) {
		// Touch 512 MB (bytearray * n writes every page) in a 128 MB environment.
		inst, out := startIf(t, b, func(i sandbox.Instance) bool { _, ok := i.(MemoryLimiter); return ok },
			"instances do not enforce a memory limit",
			t.TempDir(), `exec /usr/bin/python3 -c "b = bytearray(1 << 20) * 512; print('survived', len(b))"`)
		limit := inst.(MemoryLimiter)
		exit, err := inst.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !exit.OOMKilled || exit.Signal != "killed" {
			t.Errorf("exit = %+v, want an OOM kill (output %q)", exit, out.all(t))
		}
		if mr, ok := inst.(sandbox.MemoryReporter); ok {
			peak, err := mr.MaxMemoryUsed()
			if err != nil {
				t.Fatalf("MaxMemoryUsed: %v", err)
			}
			if peak < limit.MemoryLimit()/2 || peak > limit.MemoryLimit()+(8<<20) {
				t.Errorf("MaxMemoryUsed = %d, want about the limit %d", peak, limit.MemoryLimit())
			}
		}
	})

	t.Run("a frozen environment does not run until thawed", func(t *testing.T) {
		inst, out := startIf(t, b, func(i sandbox.Instance) bool { _, ok := i.(sandbox.Freezer); return ok },
			"instances cannot be frozen",
			t.TempDir(), `i=0; while :; do i=$((i+1)); if [ $((i % 2000)) -eq 0 ]; then echo tick; fi; done`)
		fr := inst.(sandbox.Freezer)
		if line := out.line(t); line != "tick" {
			t.Fatalf("output %q", line)
		}
		if err := fr.Freeze(ctx); err != nil {
			t.Fatal(err)
		}
		// Whatever was written before the freeze; after that, nothing more can come.
		for out.readFor(100*time.Millisecond) > 0 {
		}
		cpu, metered := inst.(CPUMeter)
		var before time.Duration
		if metered {
			var err error
			if before, err = cpu.CPUUsage(); err != nil {
				t.Fatal(err)
			}
		}
		if n := out.readFor(300 * time.Millisecond); n > 0 {
			t.Errorf("a frozen environment wrote %d bytes", n)
		}
		if metered {
			after, err := cpu.CPUUsage()
			if err != nil {
				t.Fatal(err)
			}
			if after != before {
				t.Errorf("CPU usage grew while frozen: %v → %v", before, after)
			}
		}
		if err := fr.Thaw(ctx); err != nil {
			t.Fatal(err)
		}
		if line := out.line(t); line != "tick" {
			t.Fatalf("output after thaw %q", line)
		}
		if metered {
			deadline := time.Now().Add(30 * time.Second)
			for {
				after, err := cpu.CPUUsage()
				if err != nil {
					t.Fatal(err)
				}
				if after > before {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("CPU usage did not grow after thaw (%v)", after)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		// A frozen environment can be destroyed.
		if err := fr.Freeze(ctx); err != nil {
			t.Fatal(err)
		}
		paths := hostPaths(inst)
		if err := inst.Destroy(ctx); err != nil {
			t.Fatal(err)
		}
		if exit, err := inst.Wait(ctx); err != nil || exit.Signal != "killed" {
			t.Errorf("exit after Destroy of a frozen environment = %+v, %v", exit, err)
		}
		checkReleased(t, paths, out)
		if err := fr.Thaw(ctx); !errors.Is(err, sandbox.ErrDestroyed) {
			t.Errorf("Thaw after Destroy = %v, want ErrDestroyed", err)
		}
	})
}

func hostPaths(inst sandbox.Instance) []string {
	if hr, ok := inst.(HostResourcer); ok {
		return hr.HostPaths()
	}
	return nil
}

// checkReleased checks that nothing of a destroyed environment is left: no process holding its
// output, none of its host paths.
func checkReleased(t *testing.T, paths []string, out *output) {
	t.Helper()
	_ = out.r.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.Copy(io.Discard, out.br); err != nil {
		t.Errorf("output still open after Destroy (a process survived): %v", err)
	}
	for _, p := range paths {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists after Destroy (%v)", p, err)
		}
	}
}

type output struct {
	r  *os.File
	br *bufio.Reader
}

func (o *output) line(t *testing.T) string {
	t.Helper()
	_ = o.r.SetReadDeadline(time.Now().Add(30 * time.Second))
	s, err := o.br.ReadString('\n')
	if err != nil {
		t.Fatalf("reading output: %v", err)
	}
	return strings.TrimSpace(s)
}

// readFor reads whatever arrives within d and returns how many bytes that was.
func (o *output) readFor(d time.Duration) int {
	_ = o.r.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	total := 0
	for {
		n, err := o.br.Read(buf)
		total += n
		if err != nil {
			return total
		}
	}
}

func (o *output) all(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	_ = o.r.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 4096)
	for {
		n, err := o.br.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

var seq atomic.Int64

func spec(t *testing.T, task, script string, w *os.File, env ...string) sandbox.Spec {
	return sandbox.Spec{ID: fmt.Sprintf("t%s-%d", time.Now().Format("150405"), seq.Add(1)), TaskDir: task, RuntimeDir: t.TempDir(),
		Argv: []string{shell, "-c", script}, Env: append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, env...),
		MemoryMB: 128, EphemeralStorageMB: 512, Output: w}
}

func start(t *testing.T, b sandbox.Backend, task, script string, env ...string) (sandbox.Instance, *output) {
	t.Helper()
	return startIf(t, b, nil, "", task, script, env...)
}

// startSpec is start with the Spec changed by edit first.
func startSpec(t *testing.T, b sandbox.Backend, edit func(*sandbox.Spec), task, script string, env ...string) (sandbox.Instance, *output) {
	t.Helper()
	return startSpecIf(t, b, edit, nil, "", task, script, env...)
}

// startIf creates an environment and, if it has the capability need checks for, starts it;
// otherwise the test is skipped with the reason.
func startIf(t *testing.T, b sandbox.Backend, need func(sandbox.Instance) bool, reason, task, script string, env ...string) (sandbox.Instance, *output) {
	t.Helper()
	return startSpecIf(t, b, nil, need, reason, task, script, env...)
}

func startSpecIf(t *testing.T, b sandbox.Backend, edit func(*sandbox.Spec), need func(sandbox.Instance) bool, reason, task, script string, env ...string) (sandbox.Instance, *output) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	spec := spec(t, task, script, w, env...)
	if edit != nil {
		edit(&spec)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inst, err := b.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inst.Destroy(context.Background()) })
	if need != nil && !need(inst) {
		w.Close()
		t.Skipf("%s %s", b.Name(), reason)
	}
	if err := inst.Start(ctx); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return inst, &output{r: r, br: bufio.NewReader(r)}
}

// checkExtensions: Spec.Extensions are started beside the runtime (nothing of the image, no
// shell, starts them), with their variables and the Runtime API's address; each one's output is
// its own, and reaches its end when its process ends, while the runtime runs on; one that cannot
// be executed gets the error there; the rest end with Destroy. An entrypoint that cannot be
// executed is still Start's ExecError with extensions present.
func checkExtensions(t *testing.T, b sandbox.Backend) {
	ctx := context.Background()
	opt := t.TempDir()
	if err := os.Chmod(opt, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(opt, "extensions")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"quits":   "#!/bin/sh\necho \"quits var=$EXT_VAR api=${AWS_LAMBDA_RUNTIME_API:+set}\"\n",
		"stays":   "#!/bin/sh\necho stays\nexec sleep 300\n",
		"garbage": "not a program\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pipes := func(t *testing.T, names ...string) ([]sandbox.Extension, map[string]*output) {
		var exts []sandbox.Extension
		outs := map[string]*output{}
		for _, n := range names {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close(); w.Close() })
			exts = append(exts, sandbox.Extension{Path: sandbox.GuestOptRoot + "/extensions/" + n,
				Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "EXT_VAR=x1"}, Output: w})
			outs[n] = &output{r: r, br: bufio.NewReader(r)}
		}
		return exts, outs
	}
	closeWriters := func(exts []sandbox.Extension) {
		for _, x := range exts {
			x.Output.Close()
		}
	}

	t.Run("started, with their own outputs", func(t *testing.T) {
		exts, outs := pipes(t, "quits", "stays", "garbage")
		inst, out := startSpec(t, b, func(s *sandbox.Spec) { s.OptDir, s.Extensions = opt, exts },
			t.TempDir(), `echo runtime; exec sleep 300`)
		closeWriters(exts) // the environment holds its own copies
		if line := out.line(t); line != "runtime" {
			t.Errorf("runtime output %q, want only its own line", line)
		}
		if got := strings.TrimSpace(outs["quits"].all(t)); got != "quits var=x1 api=set" {
			t.Errorf("extension output %q, want its line with its variable and the Runtime API's address", got)
		}
		// That end of file was the extension's end: the environment runs on.
		select {
		case <-waitDone(inst):
			t.Error("the environment ended with an extension")
		case <-time.After(200 * time.Millisecond):
		}
		if got := outs["garbage"].all(t); got != "fork/exec /opt/extensions/garbage: exec format error\n" {
			t.Errorf("output of an extension that cannot be executed = %q, want the exec error", got)
		}
		if line := outs["stays"].line(t); line != "stays" {
			t.Errorf("extension output %q", line)
		}
		if n := out.readFor(200 * time.Millisecond); n != 0 {
			t.Errorf("the runtime's output got %d more bytes: an extension's output went there", n)
		}
		paths := hostPaths(inst)
		if err := inst.Destroy(ctx); err != nil {
			t.Fatal(err)
		}
		checkReleased(t, paths, out)
		checkReleased(t, nil, outs["stays"])
	})

	t.Run("an entrypoint that cannot be executed is still an ExecError", func(t *testing.T) {
		task := t.TempDir()
		if err := os.WriteFile(filepath.Join(task, "bootstrap"), []byte("#!/bin/sh\necho hi\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		exts, outs := pipes(t, "stays")
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		sp := spec(t, task, "", w)
		sp.Argv, sp.OptDir, sp.Extensions = []string{"/var/task/bootstrap"}, opt, exts
		inst, err := b.Create(ctx, sp)
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		defer inst.Destroy(ctx)
		err = inst.Start(ctx)
		closeWriters(exts)
		if _, ok := errors.AsType[*sandbox.ExecError](err); !ok || !errors.Is(err, syscall.EACCES) {
			t.Fatalf("Start = %v, want an ExecError (permission denied) as without extensions", err)
		}
		if err := inst.Destroy(ctx); err != nil {
			t.Fatal(err)
		}
		checkReleased(t, nil, outs["stays"])
	})
}

// waitDone is closed when inst's main process has exited.
func waitDone(inst sandbox.Instance) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = inst.Wait(ctx)
		close(done)
	}()
	return done
}
