package linux

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Controllers an environment needs. cpuacct is only for accounting (CPUUsage) and is optional.
var required = []string{"memory", "cpu", "pids", "freezer"}

// hierarchy is one mounted cgroup hierarchy holding some of the controllers we use.
type hierarchy struct {
	v2          bool
	controllers []string // for v1, as mounted; for v2, those used from it
	// base is <mount>/<own cgroup>/<CgroupParent> (relative parent) or <mount>/<CgroupParent>
	// (absolute): shared by every server that runs there, each under a parent of its own.
	base string
	// parent is this server's own directory, base/<run> (see claim), under which its
	// environments' cgroups are created; "" until claimed.
	parent string
}

// cgroups is where each controller lives on this host, detected once by New.
type cgroups struct {
	hier []hierarchy
	// where each controller's hierarchy is, index into hier.
	by map[string]int
	// run names this server's parents (see claim); lock is hier[0]'s parent, open and flocked
	// for as long as the server or its reaper lives (-1 until claimed).
	run  string
	lock int
}

type mountInfo struct {
	root, point, fstype string
	superOpts           []string
}

func readMountinfo() ([]mountInfo, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []mountInfo
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		out = append(out, mountInfo{root: unescape(f[3]), point: unescape(f[4]), fstype: g[0],
			superOpts: strings.Split(g[2], ",")})
	}
	return out, sc.Err()
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ownCgroups parses /proc/self/cgroup: v1 controller (or "" for v2) → path.
func ownCgroups() (map[string]string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			m[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			m[c] = parts[2]
		}
	}
	return m, nil
}

// detectCgroups finds, per controller, whether it is on a v1 hierarchy or on the v2 one (a hybrid
// host has both), and the directory environments' cgroups go under.
func detectCgroups(parent string) (*cgroups, error) {
	mounts, err := readMountinfo()
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	own, err := ownCgroups()
	if err != nil {
		return nil, fmt.Errorf("read own cgroups: %w", err)
	}
	under := func(m mountInfo, ownPath string) string {
		if strings.HasPrefix(parent, "/") {
			return filepath.Join(m.point, parent)
		}
		rel := ownPath
		if m.root != "/" {
			rel = strings.TrimPrefix(rel, m.root)
		}
		return filepath.Join(m.point, rel, parent)
	}
	cg := &cgroups{by: map[string]int{}, lock: -1}
	want := append([]string{"cpuacct"}, required...)
	var v2 *mountInfo
	for i := range mounts {
		m := mounts[i]
		switch m.fstype {
		case "cgroup2":
			if v2 == nil {
				v2 = &mounts[i]
			}
		case "cgroup":
			var have []string
			for _, c := range want {
				for _, o := range m.superOpts {
					if o == c {
						have = append(have, c)
					}
				}
			}
			if len(have) == 0 {
				continue
			}
			dup := false
			for _, c := range have {
				if _, ok := cg.by[c]; ok {
					dup = true // the same hierarchy mounted twice
				}
			}
			if dup {
				continue
			}
			p, ok := own[have[0]]
			if !ok {
				continue
			}
			cg.hier = append(cg.hier, hierarchy{controllers: have, base: under(m, p)})
			for _, c := range have {
				cg.by[c] = len(cg.hier) - 1
			}
		}
	}
	if v2 != nil {
		// v2 controllers available to our own cgroup. The freezer (cgroup.freeze) and CPU
		// accounting (cpu.stat) are built into every v2 cgroup.
		ownPath := own[""]
		rel := ownPath
		if v2.root != "/" {
			rel = strings.TrimPrefix(rel, v2.root)
		}
		b, _ := os.ReadFile(filepath.Join(v2.point, rel, "cgroup.controllers"))
		avail := strings.Fields(string(b))
		var have []string
		for _, c := range want {
			if _, ok := cg.by[c]; ok {
				continue
			}
			if c == "freezer" || c == "cpuacct" {
				if _, err := os.Stat(filepath.Join(v2.point, "cgroup.stat")); err == nil {
					have = append(have, c)
				}
				continue
			}
			for _, a := range avail {
				if a == c {
					have = append(have, c)
				}
			}
		}
		if len(have) > 0 {
			cg.hier = append(cg.hier, hierarchy{v2: true, controllers: have, base: under(*v2, ownPath)})
			for _, c := range have {
				cg.by[c] = len(cg.hier) - 1
			}
		}
	}
	return cg, nil
}

// missing lists the required controllers found on no hierarchy.
func (cg *cgroups) missing() []string {
	var out []string
	for _, c := range required {
		if _, ok := cg.by[c]; !ok {
			out = append(out, c)
		}
	}
	return out
}

// dir is an environment's cgroup directory in the hierarchy holding controller c ("" if absent).
func (cg *cgroups) dir(c, id string) (string, bool) {
	i, ok := cg.by[c]
	if !ok {
		return "", false
	}
	return filepath.Join(cg.hier[i].parent, id), cg.hier[i].v2
}

// runPattern is the name of a server's parent under a base: a hash of its state directory's
// path, then a random part that makes each run of a server on that directory a parent of its own.
var runPattern = regexp.MustCompile(`^[0-9a-f]{12}-[0-9a-f]{8}$`)

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

// ensureParents claims this server's parents and, on v2, enables the controllers for children.
func (cg *cgroups) ensureParents(id string) error {
	if err := cg.claim(id); err != nil {
		return err
	}
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
			if e.IsDir() && runPattern.MatchString(e.Name()) && e.Name() != cg.run {
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

// reclaimRun ends a server's environments from their cgroups alone (parents holds the run's
// directory in every hierarchy, the locked one first): it kills every process in them (v2's
// cgroup.kill where there is one), then thaws them (a frozen task dies once thawed, without
// running again), removes the environments' cgroups, then the parents, the locked one last. It
// returns the environments' names.
func reclaimRun(ctx context.Context, parents []string) ([]string, error) {
	seen := map[string]bool{}
	var envs []string
	for _, p := range parents {
		entries, _ := os.ReadDir(p)
		for _, e := range entries {
			if e.IsDir() && !seen[e.Name()] {
				seen[e.Name()] = true
				envs = append(envs, e.Name())
			}
		}
	}
	for _, p := range parents {
		if write(filepath.Join(p, "cgroup.kill"), "1") == nil {
			continue
		}
		for _, env := range envs {
			killTree(filepath.Join(p, env))
		}
	}
	for _, p := range parents {
		for _, env := range envs {
			thawTree(filepath.Join(p, env))
		}
	}
	var errs []error
	for _, p := range parents {
		for _, env := range envs {
			if err := removeTree(ctx, filepath.Join(p, env)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for i := len(parents) - 1; i >= 0; i-- {
		if err := removeCgroup(ctx, parents[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return envs, errors.Join(errs...)
}

// killTree sends SIGKILL to every process in the cgroup d and the cgroups below it.
func killTree(d string) {
	for _, pid := range procs(d) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	entries, _ := os.ReadDir(d)
	for _, e := range entries {
		if e.IsDir() {
			killTree(filepath.Join(d, e.Name()))
		}
	}
}

// thawTree thaws the cgroup d and those below it, whichever freezer they have.
func thawTree(d string) {
	if b, err := os.ReadFile(filepath.Join(d, "freezer.state")); err == nil && strings.TrimSpace(string(b)) != "THAWED" {
		_ = write(filepath.Join(d, "freezer.state"), "THAWED")
	}
	if b, err := os.ReadFile(filepath.Join(d, "cgroup.freeze")); err == nil && strings.TrimSpace(string(b)) != "0" {
		_ = write(filepath.Join(d, "cgroup.freeze"), "0")
	}
	entries, _ := os.ReadDir(d)
	for _, e := range entries {
		if e.IsDir() {
			thawTree(filepath.Join(d, e.Name()))
		}
	}
}

// removeTree removes the cgroup d and those below it, deepest first.
func removeTree(ctx context.Context, d string) error {
	entries, _ := os.ReadDir(d)
	var errs []error
	for _, e := range entries {
		if e.IsDir() {
			if err := removeTree(ctx, filepath.Join(d, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := removeCgroup(ctx, d); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// envCgroup is one environment's set of cgroup directories.
type envCgroup struct {
	cg *cgroups
	id string
}

// limits for one environment.
type limits struct {
	memoryBytes int64
	cpuQuotaUs  int64 // per cpuPeriodUs; negative: no cap
	cpuShareUs  int64 // the steady-state quota, for the proportional weight
	pids        int64
}

const cpuPeriodUs = 100_000

// cpuQuota is the CPU share proportional to memory as on Lambda (1,769 MB = one vCPU), with a
// floor of 1 ms per 100 ms period so that tiny functions still make progress.
func cpuQuota(memoryMB int) int64 {
	q := int64(cpuPeriodUs) * int64(memoryMB) / 1769
	if q < 1000 {
		q = 1000
	}
	return q
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

// create makes the environment's cgroups and sets their limits.
func (e envCgroup) create(l limits) error {
	for _, d := range e.dirs() {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create cgroup: %w", err)
		}
	}
	if d, v2 := e.cg.dir("memory", e.id); d != "" {
		if v2 {
			if err := write(filepath.Join(d, "memory.max"), strconv.FormatInt(l.memoryBytes, 10)); err != nil {
				return fmt.Errorf("memory limit: %w", err)
			}
			if _, err := os.Stat(filepath.Join(d, "memory.swap.max")); err == nil {
				if err := write(filepath.Join(d, "memory.swap.max"), "0"); err != nil {
					return fmt.Errorf("swap limit: %w", err)
				}
			}
		} else {
			// memory+swap may never be below memory: lift it before changing memory.
			memsw := filepath.Join(d, "memory.memsw.limit_in_bytes")
			_, err := os.Stat(memsw)
			hasMemsw := err == nil
			if hasMemsw {
				if err := write(memsw, "-1"); err != nil {
					return fmt.Errorf("memory+swap limit: %w", err)
				}
			}
			if err := write(filepath.Join(d, "memory.limit_in_bytes"), strconv.FormatInt(l.memoryBytes, 10)); err != nil {
				return fmt.Errorf("memory limit: %w", err)
			}
			if hasMemsw {
				if err := write(filepath.Join(d, "memory.memsw.limit_in_bytes"), strconv.FormatInt(l.memoryBytes, 10)); err != nil {
					return fmt.Errorf("memory+swap limit: %w", err)
				}
			}
			// No swap even where memsw accounting is off.
			_ = write(filepath.Join(d, "memory.swappiness"), "0")
		}
	}
	if d, v2 := e.cg.dir("cpu", e.id); d != "" {
		// The weight keeps the shares proportional to memory when the host is busier than the
		// quotas add up to; the quota (setCPUQuota) caps the environment's CPU.
		if v2 {
			_ = write(filepath.Join(d, "cpu.weight"), strconv.FormatInt(max(1, 100*l.cpuShareUs/cpuPeriodUs), 10))
		} else {
			_ = write(filepath.Join(d, "cpu.shares"), strconv.FormatInt(max(2, 1024*l.cpuShareUs/cpuPeriodUs), 10))
			if err := write(filepath.Join(d, "cpu.cfs_period_us"), strconv.Itoa(cpuPeriodUs)); err != nil {
				return fmt.Errorf("cpu period: %w", err)
			}
		}
		if err := e.setCPUQuota(l.cpuQuotaUs); err != nil {
			return err
		}
	}
	if d, _ := e.cg.dir("pids", e.id); d != "" {
		if err := write(filepath.Join(d, "pids.max"), strconv.FormatInt(l.pids, 10)); err != nil {
			return fmt.Errorf("pids limit: %w", err)
		}
	}
	return nil
}

// setCPUQuota caps the environment's CPU at quotaUs per period; a negative quota lifts the cap.
func (e envCgroup) setCPUQuota(quotaUs int64) error {
	d, v2 := e.cg.dir("cpu", e.id)
	if d == "" {
		return nil
	}
	if v2 {
		q := "max"
		if quotaUs >= 0 {
			q = strconv.FormatInt(quotaUs, 10)
		}
		if err := write(filepath.Join(d, "cpu.max"), fmt.Sprintf("%s %d", q, cpuPeriodUs)); err != nil {
			return fmt.Errorf("cpu quota: %w", err)
		}
		return nil
	}
	if err := write(filepath.Join(d, "cpu.cfs_quota_us"), strconv.FormatInt(max(quotaUs, -1), 10)); err != nil {
		return fmt.Errorf("cpu quota: %w", err)
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
