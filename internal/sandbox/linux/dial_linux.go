package linux

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/flint-run/flint/internal/sandbox"
)

var _ sandbox.Dialer = (*instance)(nil)

// Dial connects to addr inside the environment's network namespace (the Telemetry API's
// deliveries to an extension's listener there). The socket is made on a thread moved into that
// namespace; the thread is never handed back to the scheduler (it exits with its goroutine), so
// no other goroutine runs in the environment's network.
func (i *instance) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	// Under the Guard, so the init's pid is this environment's (not reused after Destroy); the
	// open descriptor pins the namespace from then on.
	if err := i.Lock(); err != nil {
		return nil, err
	}
	ns, err := os.Open("/proc/" + strconv.Itoa(i.cmd.Process.Pid) + "/ns/net")
	i.Unlock()
	if err != nil {
		return nil, fmt.Errorf("environment's network namespace: %w", err)
	}
	defer ns.Close()
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{nil, fmt.Errorf("enter the environment's network namespace: %w", err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		done <- result{c, err}
	}()
	r := <-done
	return r.c, r.err
}
