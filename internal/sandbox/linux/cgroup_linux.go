// The host's cgroup layout: which hierarchy (v1 or v2; a hybrid host has both) holds each
// controller an environment needs, found once from /proc/self/mountinfo and /proc/self/cgroup.
// The other cgroup_*_linux.go files build on it: this server's parent (cgroup_parent), ending a
// dead server's environments (cgroup_reclaim), one environment's cgroups (cgroup_env), its limits
// (cgroup_limits) and what its cgroups account (cgroup_stats).

package linux

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
