package linux

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// reaperArg0 marks a re-executed binary as the backend's reaper (os.Args[0]).
const reaperArg0 = "flint-sandbox-reaper"

// reaperWait bounds how long a reaper works at ending a dead server's environments.
const reaperWait = time.Minute

// runReaper is the reaper: a process outside every environment's cgroups (so never frozen), in
// a session of its own (so a signal to the server's process group spares it), that waits for
// the server to end (EOF on fd 3, the read end of a pipe only the server writes) and then ends
// every environment under the server's cgroup parents (its arguments after the environments'
// directory), from the cgroups alone: the state directory may be gone by then. Fd 4 shares the
// lock on the server's parent, so that no other server takes it for an orphan while this one
// works; it goes when the reaper exits.
func runReaper() {
	if len(os.Args) < 3 {
		unix.Exit(2)
	}
	envsDir, parents := os.Args[1], os.Args[2:]
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
	ctx, cancel := context.WithTimeout(context.Background(), reaperWait)
	defer cancel()
	envs, err := reclaimRun(ctx, parents)
	// The environments' directories, where the state directory is still there: a server
	// restarted on it may already be using it, but never these names.
	for _, name := range envs {
		_ = os.Remove(filepath.Join(envsDir, name))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "flint sandbox reaper:", err)
		unix.Exit(1)
	}
	unix.Exit(0)
}

// lockState takes the state directory's lock for the backend's life, at once or not at all:
// one server per StateDir. The lock file holds the holder's pid, for the error of the next.
func (b *Backend) lockState() error {
	f, err := os.OpenFile(filepath.Join(b.cfg.StateDir, "lock"), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("state dir lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("state directory %s is in use by another flint server%s", b.cfg.StateDir, holder(f))
		}
		return fmt.Errorf("state dir lock: %w", err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	b.lock = f
	return nil
}

// holder is " (pid N)" from a lock file another process holds, or "" if it has not written it.
func holder(f *os.File) string {
	for range 20 { // the holder writes its pid right after taking the lock
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n]))); err == nil && pid > 0 {
			return fmt.Sprintf(" (pid %d)", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return ""
}

// startReaper starts the reaper (once), with a share of the lock on the server's parents.
func (b *Backend) startReaper() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.reaper != nil || b.closed || !b.parentsOK {
		return nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	// A duplicate shares the lock (flock belongs to the open file, not the descriptor).
	fd, err := unix.FcntlInt(uintptr(b.cg.lock), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		w.Close()
		return fmt.Errorf("start sandbox reaper: %w", err)
	}
	lock := os.NewFile(uintptr(fd), "cgroup-parent-lock")
	defer lock.Close()
	cmd := &exec.Cmd{Path: "/proc/self/exe", Args: append([]string{reaperArg0, b.envs}, b.cg.parents()...),
		Env: []string{}, ExtraFiles: []*os.File{r, lock}, SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("start sandbox reaper: %w", err)
	}
	b.reaper, b.reaperW = cmd, w
	return nil
}

// stopReaper ends the reaper: with every environment destroyed it finds nothing to reclaim but
// the server's empty parents.
func (b *Backend) stopReaper() {
	b.mu.Lock()
	cmd, w := b.reaper, b.reaperW
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	w.Close()
	_ = cmd.Wait()
}
