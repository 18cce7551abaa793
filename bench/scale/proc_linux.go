package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// sysProcAttr has the server die with the benchmark, however the benchmark ends (the linux
// sandbox's reaper then clears its environments).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// vmRSS is a process's resident set (VmRSS), in bytes.
func vmRSS(pid int) (int64, error) {
	return statusField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
}

// processPss is the anonymous and shared-memory part of a process's proportional set size
// (Pss_Anon + Pss_Shmem), in bytes: its memory less the page cache it maps.
func processPss(pid int) (int64, error) {
	path := fmt.Sprintf("/proc/%d/smaps_rollup", pid)
	anon, err := statusField(path, "Pss_Anon:")
	if err != nil {
		return 0, err
	}
	shmem, err := statusField(path, "Pss_Shmem:")
	return anon + shmem, err
}

// statusField reads a "Name:   N kB" line.
func statusField(path, name string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte(name)); ok {
			f := strings.Fields(string(rest))
			if len(f) < 1 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, name)
}

// descendants returns the process ids of root's descendants: the runtimes (the echo bootstrap,
// named "bootstrap") and the others (the linux sandbox's inits and reaper).
func descendants(root int) (runtimes, others []int, err error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, nil, err
	}
	children := map[int][]int{}
	comm := map[int]string{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || close < open {
			continue
		}
		f := strings.Fields(string(b[close+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
		comm[pid] = string(b[open+1 : close])
	}
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if comm[c] == "bootstrap" {
				runtimes = append(runtimes, c)
			} else {
				others = append(others, c)
			}
			queue = append(queue, c)
		}
	}
	return runtimes, others, nil
}

// isFrozen reports whether pid's freezer cgroup (v1) is frozen.
func isFrozen(pid int) bool {
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) == 3 && parts[1] == "freezer" {
			b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/freezer", parts[2], "freezer.state"))
			return err == nil && strings.TrimSpace(string(b)) == "FROZEN"
		}
	}
	return false
}

// makeCgroup makes a memory cgroup (v1) named name below this process's own and returns its
// directory.
func makeCgroup(name string) (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(b)) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 || !slices.Contains(strings.Split(parts[1], ","), "memory") {
			continue
		}
		mount := "/sys/fs/cgroup/memory"
		if _, err := os.Stat(filepath.Join(mount, "memory.usage_in_bytes")); err != nil {
			return "", fmt.Errorf("no cgroup v1 memory hierarchy at %s: %w", mount, err)
		}
		dir := filepath.Join(mount, parts[2], name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return "", err
		}
		return dir, nil
	}
	return "", errors.New("no cgroup v1 memory controller")
}

// cgroupUsage is a memory cgroup's usage, everything below it included, less the page cache
// of files (reclaimable, and shared with whatever else reads those files: the runtime's code),
// and of it the kernel's.
func cgroupUsage(dir string) (usage, kmem int64, err error) {
	read := func(file string) (int64, error) {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return 0, err
		}
		return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	if usage, err = read("memory.usage_in_bytes"); err != nil {
		return 0, 0, err
	}
	stat, err := os.ReadFile(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.Lines(string(stat)) {
		f := strings.Fields(line)
		if len(f) == 2 && (f[0] == "total_active_file" || f[0] == "total_inactive_file") {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, 0, err
			}
			usage -= n
		}
	}
	kmem, _ = read("memory.kmem.usage_in_bytes") // absent: not accounted apart
	return usage, kmem, nil
}

// removeCgroup removes dir and whatever cgroups are left below it, deepest first.
func removeCgroup(dir string) {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = syscall.Rmdir(dirs[i])
	}
}
