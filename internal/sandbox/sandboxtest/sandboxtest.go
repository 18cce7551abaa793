// Package sandboxtest is the conformance suite every sandbox backend must pass:
// sandboxtest.Run(t, backend). It uses only the sandbox contract.
package sandboxtest

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/sandbox"
)

// shell is the guest's /bin/sh; backends expose the host's /bin.
const shell = "/bin/sh"

// Run checks b against the contract.
func Run(t *testing.T, b sandbox.Backend) {
	ctx := context.Background()
	if err := b.Check(ctx); err != nil {
		t.Fatalf("%s.Check: %v", b.Name(), err)
	}

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

func start(t *testing.T, b sandbox.Backend, task, script string, env ...string) (sandbox.Instance, *output) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	spec := sandbox.Spec{ID: "t" + time.Now().Format("150405.000000"), TaskDir: task, RuntimeDir: t.TempDir(),
		Argv: []string{shell, "-c", script}, Env: append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, env...),
		MemoryMB: 128, EphemeralStorageMB: 512, Output: w}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inst, err := b.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inst.Destroy(context.Background()) })
	if err := inst.Start(ctx); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return inst, &output{r: r, br: bufio.NewReader(r)}
}
