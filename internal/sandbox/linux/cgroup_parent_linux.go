// This server's own parent cgroup in every hierarchy: its name, how it is claimed and locked for
// as long as the server (then its reaper) lives and released, and how a server tells a dead
// server's parent (an orphan) from a live one's.

package linux

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// runPattern is the name of a server's parent under a base: a hash of its state directory's
// path, then a random part that makes each run of a server on that directory a parent of its own.
var runPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{12}-[0-9a-f]{8}$`) })

// dataID is the first part of a run's name: which state directory it belongs to, for operators.
func dataID(stateDir string) string {
	if abs, err := filepath.Abs(stateDir); err == nil {
		stateDir = abs
	}
	if real, err := filepath.EvalSymlinks(stateDir); err == nil {
		stateDir = real
	}
	sum := sha256.Sum256([]byte(stateDir))
	return hex.EncodeToString(sum[:6])
}

// claim makes this server's parent in every hierarchy, base/<dataID>-<random>, and locks it:
// hier[0]'s parent is opened and flocked for as long as the server (then its reaper) lives,
// which is how other servers tell a live server's parent from a dead one's (see orphans). The
// locked directory is made first and removed last.
func (cg *cgroups) claim(id string) error {
	if cg.run != "" {
		return nil
	}
	if len(cg.hier) == 0 {
		return errors.New("no cgroup hierarchy")
	}
	var err error
	for range 10 {
		var rnd [4]byte
		if _, err = rand.Read(rnd[:]); err != nil {
			return err
		}
		name := id + "-" + hex.EncodeToString(rnd[:])
		var fd int
		if fd, err = lockNew(filepath.Join(cg.hier[0].base, name)); err != nil {
			continue // taken, or reclaimed under our feet by another server: another name
		}
		cg.run, cg.lock = name, fd
		for i := range cg.hier {
			cg.hier[i].parent = filepath.Join(cg.hier[i].base, name)
			if i > 0 {
				if err := os.MkdirAll(cg.hier[i].parent, 0o755); err != nil {
					return fmt.Errorf("cgroup parent %s: %w", cg.hier[i].parent, err)
				}
			}
		}
		return nil
	}
	return fmt.Errorf("cgroup parent under %s: %w", cg.hier[0].base, err)
}

// lockNew makes dir, opens it and flocks it; it fails if dir existed, if another process holds
// its lock, or if it was removed before the lock was ours.
func lockNew(dir string) (int, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return -1, err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return -1, err
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		return -1, err
	}
	var byPath, byFD unix.Stat_t
	if err := unix.Stat(dir, &byPath); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Fstat(fd, &byFD); err != nil || byPath.Ino != byFD.Ino || byPath.Dev != byFD.Dev {
		unix.Close(fd)
		return -1, errors.New("removed while being locked")
	}
	return fd, nil
}

// ensureParents claims this server's parents and, on v2, enables the controllers for children;
// then weighs the environments' CPU (weighEnvironments).
func (cg *cgroups) ensureParents(id string) error {
	if err := cg.claim(id); err != nil {
		return err
	}
	defer cg.weighEnvironments()
	for _, h := range cg.hier {
		if !h.v2 {
			continue
		}
		var ctl []string
		for _, c := range h.controllers {
			if c == "memory" || c == "cpu" || c == "pids" {
				ctl = append(ctl, "+"+c)
			}
		}
		if len(ctl) == 0 {
			continue
		}
		// Every ancestor between the hierarchy's delegation point and parent must pass the
		// controllers down; enable them on base and parent, and on base's parent if that is ours.
		for _, d := range []string{filepath.Dir(h.base), h.base, h.parent} {
			if err := os.WriteFile(filepath.Join(d, "cgroup.subtree_control"), []byte(strings.Join(ctl, " ")), 0); err != nil && d != filepath.Dir(h.base) {
				return fmt.Errorf("enable %s in %s: %w (on cgroup v2 the parent must be a cgroup without processes of its own: set CgroupParent to a delegated absolute path)", strings.Join(ctl, " "), d, err)
			}
		}
	}
	return nil
}

// weighEnvironments gives CgroupParent (in the cpu hierarchy), where every environment of the
// host's servers lives, the CPU weight of as many busy processes as the host has CPUs (a
// process or cgroup weighs 1024 shares on v1, 100 on v2), so that the environments together
// get half the CPUs when the server (or anything else) keeps them all busy. At the default
// weight of one, every environment together weighed as much as one of the server's threads:
// at c=16 on 2 CPUs the runtimes waited behind the server's threads and the client's (Go echo,
// linux sandbox, 2 rounds each: 3,855–4,429 invokes/s and p99 19–64 ms at 1×, 4,620–4,716/s
// and 10.1–10.5 ms at 2×, 4,718–5,312/s and 10.2–10.8 ms at 4×; docs/PERFORMANCE.md). The
// process sandbox's runtimes, and the relay's, are processes of their own weight each. Each
// server computes the same value for the host, so servers sharing CgroupParent agree. Best
// effort: a CgroupParent whose weight is not ours to set keeps its own.
func (cg *cgroups) weighEnvironments() {
	i, ok := cg.by["cpu"]
	if !ok {
		return
	}
	h := cg.hier[i]
	file, v := "cpu.shares", 1024*runtime.NumCPU()
	if h.v2 {
		file, v = "cpu.weight", min(100*runtime.NumCPU(), 10000)
	}
	_ = write(filepath.Join(h.base, file), strconv.Itoa(v))
}

// release removes this server's (empty) parents, the locked one last, and drops the lock.
func (cg *cgroups) release() {
	if cg.lock < 0 {
		return
	}
	for i := len(cg.hier) - 1; i >= 0; i-- {
		_ = syscall.Rmdir(cg.hier[i].parent)
	}
	unix.Close(cg.lock)
	cg.lock = -1
}

// parents lists this server's parent in every hierarchy, the locked one first.
func (cg *cgroups) parents() []string {
	var out []string
	for _, h := range cg.hier {
		out = append(out, h.parent)
	}
	return out
}

// orphans lists the parents, under every base, of servers that are gone: a run whose locked
// directory nobody holds (its server and its reaper have died), or that is missing while others
// of the run are left (a server makes it first and removes it last). For each it returns the
// run's directories, the locked one first, and the lock, now held by the caller (-1 when
// missing): release it once the run is reclaimed.
func (cg *cgroups) orphans() (runs [][]string, locks []int) {
	names := map[string]bool{}
	for _, h := range cg.hier {
		entries, _ := os.ReadDir(h.base)
		for _, e := range entries {
			if e.IsDir() && runPattern().MatchString(e.Name()) && e.Name() != cg.run {
				names[e.Name()] = true
			}
		}
	}
	sorted := make([]string, 0, len(names))
	for name := range names {
		sorted = append(sorted, name)
	}
	sort.Strings(sorted)
	for _, name := range sorted {
		first := filepath.Join(cg.hier[0].base, name)
		fd, err := unix.Open(first, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		switch {
		case err == nil:
			if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
				unix.Close(fd) // a live server's, or its reaper's at work
				continue
			}
		case errors.Is(err, unix.ENOENT):
			fd = -1
		default:
			continue
		}
		dirs := make([]string, 0, len(cg.hier))
		for _, h := range cg.hier {
			dirs = append(dirs, filepath.Join(h.base, name))
		}
		runs, locks = append(runs, dirs), append(locks, fd)
	}
	return runs, locks
}
