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
// namespace and back. The thread must come back rather than exit with its goroutine: an exiting
// thread sends the parent-death signal (SIGKILL) to every environment init it forked.
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
	runtime.LockOSThread()
	own, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("own network namespace: %w", err)
	}
	defer own.Close()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("enter the environment's network namespace: %w", err)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if rerr := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); rerr != nil {
		// Left locked (this should not happen): a thread in the environment's network must
		// serve no other goroutine.
		if c != nil {
			c.Close()
		}
		return nil, fmt.Errorf("leave the environment's network namespace: %w", rerr)
	}
	runtime.UnlockOSThread()
	return c, err
}
