package linux

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// reaperArg0 marks a re-executed binary as the backend's reaper (os.Args[0]).
const reaperArg0 = "flint-sandbox-reaper"

// reaperLockWait bounds how long a reaper waits for the dead server's state lock to be released.
const reaperLockWait = 10 * time.Second

// runReaper is the reaper: a process outside every environment's cgroups, so never frozen, that
// waits for the server to end (EOF on fd 3, the read end of a pipe only the server writes) and
// then reclaims the environments it left, unless a new server already holds the state lock.
func runReaper() {
	if len(os.Args) != 3 {
		unix.Exit(2)
	}
	stateDir, parent := os.Args[1], os.Args[2]
	buf := make([]byte, 1)
	for {
		n, err := unix.Read(3, buf)
		if n == 0 && err == nil {
			break // the server is gone, however it ended
		}
		if err != nil && err != unix.EINTR {
			break
		}
	}
	lock, err := os.OpenFile(filepath.Join(stateDir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		unix.Exit(1)
	}
	// The pipe's EOF can come before the dead server's lock is released: the kernel closes an
	// exiting process's files one by one (and releases them later still). So a lock still held
	// is not yet proof that a new server holds it; only one held for a while is, and that
	// server's Reclaim does the work.
	for deadline := time.Now().Add(reaperLockWait); ; time.Sleep(5 * time.Millisecond) {
		err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR || time.Now().After(deadline) {
			unix.Exit(0)
		}
	}
	b, err := New(Config{StateDir: stateDir, CgroupParent: parent, Prespawn: -1})
	if err != nil {
		unix.Exit(1)
	}
	b.lock = lock
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = b.Reclaim(ctx)
	unix.Exit(0)
}

// lockState takes the state directory's lock for the backend's life: one server per StateDir,
// and a new server waits for a reaper still reclaiming.
func (b *Backend) lockState(ctx context.Context) error {
	f, err := os.OpenFile(filepath.Join(b.cfg.StateDir, "lock"), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	for {
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
			b.lock = f
			return nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return fmt.Errorf("state dir %s is locked by another server: %w", b.cfg.StateDir, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// startReaper starts the reaper (once).
func (b *Backend) startReaper() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.reaper != nil || b.closed {
		return nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := &exec.Cmd{Path: "/proc/self/exe", Args: []string{reaperArg0, b.cfg.StateDir, b.cfg.CgroupParent},
		Env: []string{}, ExtraFiles: []*os.File{r}, SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("start sandbox reaper: %w", err)
	}
	b.reaper, b.reaperW = cmd, w
	return nil
}

// stopReaper ends the reaper: with every environment destroyed it finds nothing to reclaim.
func (b *Backend) stopReaper() {
	b.mu.Lock()
	cmd, w := b.reaper, b.reaperW
	b.mu.Unlock()
	// Release the lock first, so that the reaper can take it.
	if b.lock != nil {
		b.lock.Close()
	}
	if cmd == nil {
		return
	}
	w.Close()
	_ = cmd.Wait()
}
