package sandboxtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/sandbox"
)

// checkDialer: a Dialer's connection to a loopback port reaches the environment's listener or
// is refused, never a host listener that holds the same port. The environment listens on
// 127.0.0.1:P if it can (a network of its own), else on [::1]:P (the host's, where the test
// holds 127.0.0.1:P): an extension's telemetry listener went to another program so.
func checkDialer(t *testing.T, b sandbox.Backend) {
	ctx := context.Background()
	host, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	go func() { // ends when host is closed
		for {
			c, err := host.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("host\n"))
			c.Close()
		}
	}()
	port := host.Addr().(*net.TCPAddr).Port
	inst, out := startIf(t, b, func(i sandbox.Instance) bool { _, ok := i.(sandbox.Dialer); return ok }, "has no Dialer", t.TempDir(), `exec /usr/bin/python3 -c "
import os, socket
port = int(os.environ['PORT'])
try:
    s = socket.socket(socket.AF_INET); s.bind(('127.0.0.1', port)); where = '127.0.0.1'
except OSError:
    s = socket.socket(socket.AF_INET6); s.bind(('::1', port)); where = '::1'
s.listen(8)
print('listening', where, flush=True)
while True:
    c, _ = s.accept(); c.sendall(b'env\\n'); c.close()"`, fmt.Sprintf("PORT=%d", port))
	line := out.line(t)
	where, ok := strings.CutPrefix(line, "listening ")
	if !ok {
		t.Fatalf("the environment's listener: %q", line)
	}
	d := inst.(sandbox.Dialer)
	greeting := func(addr string) (string, error) {
		c, err := d.Dial(ctx, "tcp", addr)
		if err != nil {
			return "", err
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		got, err := bufio.NewReader(c).ReadString('\n')
		return strings.TrimSpace(got), err
	}
	v4 := net.JoinHostPort("127.0.0.1", fmt.Sprint(port))
	got, err := greeting(v4)
	switch {
	case err == nil && got != "env":
		t.Errorf("Dial %s (the environment listens on %s) reached %q, want the environment's listener or a refusal", v4, where, got)
	case err != nil && (where == "127.0.0.1" || !errors.Is(err, syscall.ECONNREFUSED)):
		t.Errorf("Dial %s (the environment listens on %s): %v", v4, where, err)
	}
	if addr := net.JoinHostPort(strings.TrimSpace(where), fmt.Sprint(port)); where != "127.0.0.1" {
		if got, err := greeting(addr); err != nil || got != "env" {
			t.Errorf("Dial %s, where the environment listens: %q, %v", addr, got, err)
		}
	}
}
