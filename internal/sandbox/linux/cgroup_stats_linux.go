// What an environment's cgroups account, for the REPORT line and the exit: OOM kills, the memory
// high-water mark, CPU time.

package linux

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// readKV returns the integer value of key in a flat-keyed cgroup file ("key value" lines).
func readKV(path, key string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok && k == key {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// oomKilled reports whether the kernel's OOM killer killed a process of the environment.
func (e envCgroup) oomKilled() bool {
	d, v2 := e.cg.dir("memory", e.id)
	if d == "" {
		return false
	}
	if v2 {
		n, _ := readKV(filepath.Join(d, "memory.events"), "oom_kill")
		return n > 0
	}
	if n, ok := readKV(filepath.Join(d, "memory.oom_control"), "oom_kill"); ok {
		return n > 0
	}
	// Kernels before 4.13 have no oom_kill counter: hitting the limit is the best evidence.
	n, _ := readInt(filepath.Join(d, "memory.failcnt"))
	return n > 0
}

// peakMemory reads an environment's memory high-water mark from its cgroup through a descriptor
// kept open: every invocation's REPORT line needs it, and a pread is one system call where
// opening the file is five (cgroup files are pollable, so os.Open registers them with the
// netpoller and close unregisters them). finish reads it a last time and closes it.
type peakMemory struct {
	mu    sync.Mutex
	fd    int
	open  bool
	ended bool
	last  uint64
	buf   [32]byte
}

// read returns the high-water mark now (or, once finished, the last one read).
func (p *peakMemory) read(e envCgroup) (uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.readLocked(e)
}

func (p *peakMemory) readLocked(e envCgroup) (uint64, error) {
	if p.ended {
		return p.last, nil
	}
	if !p.open {
		fd, err := openPeakFile(e)
		if err != nil {
			return 0, err
		}
		p.fd, p.open = fd, true
	}
	n, err := unix.Pread(p.fd, p.buf[:], 0)
	if err != nil {
		return 0, fmt.Errorf("read peak memory: %w", err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(p.buf[:n])), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read peak memory: %w", err)
	}
	p.last = v
	return v, nil
}

// finish reads the mark a last time, closes the file and keeps the value for later reads.
func (p *peakMemory) finish(e envCgroup) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = p.readLocked(e) // on failure the last value read stands
	if p.open {
		_ = unix.Close(p.fd)
		p.open = false
	}
	p.ended = true
	return p.last
}

func openPeakFile(e envCgroup) (int, error) {
	d, v2 := e.cg.dir("memory", e.id)
	if d == "" {
		return -1, errors.New("no memory cgroup")
	}
	names := []string{"memory.max_usage_in_bytes"}
	if v2 {
		names = []string{"memory.peak", "memory.current"} // memory.peak: Linux 5.19 and later
	}
	var err error
	for _, name := range names {
		var fd int
		if fd, err = unix.Open(filepath.Join(d, name), unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
			return fd, nil
		}
	}
	return -1, fmt.Errorf("open peak memory: %w", err)
}

// cpuUsage is the CPU time the environment's processes have used.
func (e envCgroup) cpuUsage() (time.Duration, error) {
	if d, v2 := e.cg.dir("cpuacct", e.id); d != "" && !v2 {
		n, err := readInt(filepath.Join(d, "cpuacct.usage"))
		return time.Duration(n), err
	}
	for _, c := range []string{"cpu", "cpuacct", "freezer"} {
		if d, v2 := e.cg.dir(c, e.id); d != "" && v2 {
			n, ok := readKV(filepath.Join(d, "cpu.stat"), "usage_usec")
			if !ok {
				return 0, errors.New("no usage_usec in cpu.stat")
			}
			return time.Duration(n) * time.Microsecond, nil
		}
	}
	return 0, errors.New("no cpu accounting cgroup")
}
