// One environment's cgroups: placing its processes, freezing and thawing them, removing the
// cgroups. Their creation with the environment's limits is in cgroup_limits_linux.go.

package linux

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// envCgroup is one environment's set of cgroup directories.
type envCgroup struct {
	cg *cgroups
	id string
}

func (e envCgroup) dirs() []string {
	var out []string
	for _, h := range e.cg.hier {
		out = append(out, filepath.Join(h.parent, e.id))
	}
	return out
}

func write(path, v string) error {
	if err := os.WriteFile(path, []byte(v), 0); err != nil {
		return err
	}
	return nil
}

// place moves pid into every cgroup of the environment.
func (e envCgroup) place(pid int) error {
	p := strconv.Itoa(pid)
	for _, d := range e.dirs() {
		if err := write(filepath.Join(d, "cgroup.procs"), p); err != nil {
			return fmt.Errorf("join cgroup %s: %w", d, err)
		}
	}
	return nil
}

// freeze suspends every process of the environment and waits until the kernel says so.
func (e envCgroup) freeze(ctx context.Context, frozen bool) error {
	d, v2 := e.cg.dir("freezer", e.id)
	if d == "" {
		return errors.New("no freezer cgroup")
	}
	file, val, done := "freezer.state", "THAWED", "THAWED"
	if frozen {
		val, done = "FROZEN", "FROZEN"
	}
	if v2 {
		file, val, done = "cgroup.freeze", "0", "frozen 0"
		if frozen {
			val, done = "1", "frozen 1"
		}
	}
	if err := write(filepath.Join(d, file), val); err != nil {
		return err
	}
	for delay := 100 * time.Microsecond; ; delay = min(2*delay, 10*time.Millisecond) {
		var b []byte
		var err error
		if v2 {
			b, err = os.ReadFile(filepath.Join(d, "cgroup.events"))
		} else {
			b, err = os.ReadFile(filepath.Join(d, file))
		}
		if err != nil {
			return err
		}
		if strings.Contains(string(b), done) {
			return nil
		}
		if !v2 && frozen {
			// v1 can stay FREEZING when a task is busy in the kernel; asking again retries.
			_ = write(filepath.Join(d, file), val)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

// isFrozen reports whether the environment's freezer is (or is going) frozen.
func (e envCgroup) isFrozen() bool {
	d, v2 := e.cg.dir("freezer", e.id)
	if d == "" {
		return false
	}
	if v2 {
		b, _ := os.ReadFile(filepath.Join(d, "cgroup.freeze"))
		return strings.TrimSpace(string(b)) == "1"
	}
	b, _ := os.ReadFile(filepath.Join(d, "freezer.state"))
	return strings.TrimSpace(string(b)) != "THAWED"
}

// procs lists the pids in the environment's cgroups.
func procs(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// remove deletes the environment's cgroups. Processes must be gone; a cgroup whose last task
// is still exiting is busy for a moment, so removal retries until ctx ends. Any process left
// (a reclaim of a dead server's environment) is killed first.
func (e envCgroup) remove(ctx context.Context) error {
	var errs []error
	for _, d := range e.dirs() {
		if err := removeCgroup(ctx, d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func removeCgroup(ctx context.Context, d string) error {
	for delay := 200 * time.Microsecond; ; delay = min(2*delay, 20*time.Millisecond) {
		err := syscall.Rmdir(d)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("remove cgroup %s: %w", d, err)
		}
		for _, pid := range procs(d) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("remove cgroup %s: %w (%v)", d, err, ctx.Err())
		case <-time.After(delay):
		}
	}
}
