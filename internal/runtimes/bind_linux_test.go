package runtimes

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/sandbox"
)

// TestBindWithWaitUnread runs both clients as pre-initialized runtimes (sandbox.BindFDEnv) and
// binds them after they said they wait, with that byte left unread when the binding's sender
// closes its end: the kernel then reports a reset to the client after the binding's data (as
// when a cold start takes a spare whose refill stopped waiting for it). The client must take
// the binding it read and serve invocations, not die.
func TestBindWithWaitUnread(t *testing.T) {
	t.Parallel()
	for _, fn := range []fnConfig{
		{runtime: pyRuntime, handler: "app.handler", files: map[string]string{"app.py": "def handler(event, context):\n    return event\n"}},
		{runtime: nodeRuntime, handler: "index.handler", files: map[string]string{"index.js": "exports.handler = async (event) => event;\n"}},
	} {
		t.Run(fn.runtime, func(t *testing.T) {
			api := startPeer(t)
			rt, _ := Lookup(fn.runtime)
			taskDir, optDir, runtimeDir := t.TempDir(), t.TempDir(), t.TempDir()
			writeFiles(t, taskDir, fn.files)
			if err := Install(runtimeDir); err != nil {
				t.Fatal(err)
			}
			argv, env, err := rt.Entrypoint(taskDir, optDir)
			if errors.Is(err, exec.ErrNotFound) {
				t.Skipf("%s: %v", fn.runtime, err)
			}
			if err != nil {
				t.Fatal(err)
			}
			guest := map[string]string{sandbox.GuestTaskRoot: taskDir, sandbox.GuestOptRoot: optDir, sandbox.GuestRuntimeDir: runtimeDir}
			for i := 1; i < len(argv); i++ {
				argv[i] = hostPaths(argv[i], guest)
			}
			fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			ours, theirs := os.NewFile(uintptr(fds[0]), "bind"), os.NewFile(uintptr(fds[1]), "bind")
			defer ours.Close()
			// The runtime's own variables, on the host: what the spare starts with, and part of
			// its binding.
			own := []string{"PATH=/usr/local/bin:/usr/bin/:/bin", "LANG=en_US.UTF-8"}
			for _, kv := range env {
				k, v, _ := strings.Cut(kv, "=")
				own = append(own, k+"="+hostPaths(v, guest))
			}
			spareEnv := append(own[:len(own):len(own)], sandbox.BindFDEnv+"=3")
			out, err := os.Create(filepath.Join(t.TempDir(), "output"))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = spareEnv, runtimeDir, out, out
			cmd.ExtraFiles = []*os.File{theirs}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			theirs.Close()
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				if t.Failed() {
					b, _ := os.ReadFile(out.Name())
					t.Logf("runtime output:\n%s", b)
				}
			})
			// The waiting byte, seen and left unread.
			for deadline := time.Now().Add(waitFor); ; time.Sleep(10 * time.Millisecond) {
				var b [1]byte
				if n, _, _ := syscall.Recvfrom(fds[0], b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT); n == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the spare never said it waits")
				}
			}
			bound := append(own, "AWS_LAMBDA_RUNTIME_API="+api.addr, "_HANDLER="+fn.handler, "AWS_LAMBDA_FUNCTION_NAME=fn",
				"AWS_LAMBDA_FUNCTION_VERSION=$LATEST", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
				"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/fn", "AWS_LAMBDA_LOG_STREAM_NAME=s", "AWS_REGION=us-east-1",
				"LAMBDA_TASK_ROOT="+taskDir, "LAMBDA_RUNTIME_DIR="+runtimeDir)
			payload, err := json.Marshal(sandbox.BindPayload{Cwd: taskDir, Env: bound})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ours.Write(payload); err != nil {
				t.Fatal(err)
			}
			ours.Close() // with the waiting byte unread: a reset after the data
			wantResponse(t, api.invoke(t, event{Body: "1"}), "1")
		})
	}
}
