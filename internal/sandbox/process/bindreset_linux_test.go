package process

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flint-run/flint/internal/runtimes"
	"github.com/flint-run/flint/internal/sandbox"
)

// TestBoundWithWaitUnread binds Flint's own runtime clients (Python, Node) after they said they
// wait but before anyone read that byte: closing a socket with unread data makes its peer's
// read after the binding fail with a reset (as when a cold start takes a spare whose refill
// stopped waiting for it). The client must take the binding it read and go on to its first
// /next, not die.
func TestBoundWithWaitUnread(t *testing.T) {
	rtDir := t.TempDir()
	if err := runtimes.Install(rtDir); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, file, body, handler string
		argv                      []string
	}{
		{"python", "app.py", "def handler(e, c):\n    return e\n", "app.handler", []string{"/usr/bin/python3", filepath.Join(rtDir, "python", "bootstrap.py")}},
		{"node", "index.mjs", "export const handler = async (e) => e;\n", "index.handler", []string{"node", filepath.Join(rtDir, "nodejs", "index.mjs")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			argv := tc.argv
			if argv[0] == "node" {
				p, err := execLookNode()
				if err != nil {
					t.Skip("no node")
				}
				argv = append([]string{p}, argv[1:]...)
			}
			task := t.TempDir()
			if err := os.WriteFile(filepath.Join(task, tc.file), []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			go func() { // the runtime's output, for the failure message
				sc := bufio.NewScanner(r)
				for sc.Scan() {
					t.Log(tc.name + ": " + sc.Text())
				}
			}()
			inst, err := New("127.0.0.1").Prestart(ctx, sandbox.Spec{ID: "unread-" + tc.name, RuntimeDir: rtDir, Argv: argv,
				Env: []string{"PATH=/usr/bin:/bin"}, Output: w})
			w.Close()
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = inst.Destroy(context.Background()) }()
			// Wait until the byte is there, without reading it.
			i := inst.(*instance)
			raw, err := i.bind.Load().SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(50 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				n := 0
				_ = raw.Control(func(fd uintptr) {
					var b [1]byte
					n, _, _ = unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
				})
				if n == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the runtime never said it waits")
				}
			}
			if err := inst.Bind(ctx, sandbox.Binding{TaskDir: task, Env: []string{"PATH=/usr/bin:/bin", "_HANDLER=" + tc.handler,
				"LAMBDA_TASK_ROOT=" + sandbox.GuestTaskRoot, "AWS_LAMBDA_FUNCTION_NAME=fn", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
				"AWS_LAMBDA_FUNCTION_VERSION=$LATEST", "AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/fn", "AWS_LAMBDA_LOG_STREAM_NAME=s"}}); err != nil {
				t.Fatal(err)
			}
			ln := inst.RuntimeAPI()
			go func() { _, _ = inst.Wait(ctx); ln.Close() }() // ends with the runtime, or the test's time
			conn, err := ln.Accept()
			if err != nil {
				t.Fatalf("the bound runtime never came to its Runtime API: %v", err)
			}
			defer conn.Close()
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			line, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "GET /2018-06-01/runtime/invocation/next ") {
				t.Fatalf("the bound runtime's first request: %q, %v; want GET …/invocation/next", line, err)
			}
		})
	}
}

func execLookNode() (string, error) {
	for _, p := range []string{"/usr/bin/node", "/usr/local/bin/node"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", os.ErrNotExist
}
