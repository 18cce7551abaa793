package linux

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	// parent is the directory under which environments' cgroups are created:
	// <mount>/<own cgroup>/<CgroupParent> (relative parent) or <mount>/<CgroupParent> (absolute).
	parent string
}

// cgroups is where each controller lives on this host, detected once by New.
type cgroups struct {
	hier []hierarchy
	// where each controller's hierarchy is, index into hier.
	by map[string]int
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
	cg := &cgroups{by: map[string]int{}}
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
			cg.hier = append(cg.hier, hierarchy{controllers: have, parent: under(m, p)})
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
			cg.hier = append(cg.hier, hierarchy{v2: true, controllers: have, parent: under(*v2, ownPath)})
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

// ensureParents creates the parent cgroups and, on v2, enables the controllers for children.
func (cg *cgroups) ensureParents() error {
	for _, h := range cg.hier {
		if err := os.MkdirAll(h.parent, 0o755); err != nil {
			return fmt.Errorf("cgroup parent %s: %w", h.parent, err)
		}
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
		// controllers down; enable them on parent itself, and on its parent if that is ours.
		for _, d := range []string{filepath.Dir(h.parent), h.parent} {
			if err := os.WriteFile(filepath.Join(d, "cgroup.subtree_control"), []byte(strings.Join(ctl, " ")), 0); err != nil && d == h.parent {
				return fmt.Errorf("enable %s in %s: %w (on cgroup v2 the parent must be a cgroup without processes of its own: set CgroupParent to a delegated absolute path)", strings.Join(ctl, " "), d, err)
			}
		}
	}
	return nil
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
