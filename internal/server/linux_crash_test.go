package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// oomPy is a Python function that allocates 300 MB when asked ({"hog": true}), sleeps when asked
// ({"sleep": seconds}), and otherwise answers at once.
const oomPy = `import time
def handler(event, context):
    if event.get("hog"):
        b = bytearray(300 * 1024 * 1024)
        return len(b)
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return "fine"
`

// TestLinuxKill9LeavesNothing is issue 3's crash test for the linux sandbox, against the built
// binary: 200 invokes with timeouts, crashes and OOMs mixed in, then kill -9 of the server while
// environments are alive (some idle and frozen, some busy with an invoke in flight), then a
// restart on the same data directory. Once the restart has reclaimed what the dead server left,
// no process, mount, cgroup or namespace of the dead server may remain; nor of the second server
// after a clean stop.
func TestLinuxKill9LeavesNothing(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the linux sandbox runs only on Linux")
	}
	if os.Geteuid() != 0 {
		t.Skip("the linux sandbox crash test needs root (CI runs as root)")
	}
	bin := buildFlint(t)
	data, work := t.TempDir(), t.TempDir()
	envsDir := filepath.Join(data, "sandboxes", "envs")
	ctx := context.Background()

	// The server's CgroupParent is the default "flint", relative to its own cgroups, which it
	// inherits from this process; other servers on the host share that base, each under a
	// parent of its own.
	bases := envCgroupParents(t, os.Getpid())
	var seen1, seen2 nameSet
	var parents, parents2 cgroupParents
	t.Cleanup(func() { scrubCgroups(t, parents, seen1.names()); scrubCgroups(t, parents2, seen2.names()) })

	first := startFlintProcess(t, bin, data, filepath.Join(work, "serve-1.log"), "--log-level", "info", "--sandbox", "linux")
	if got := envCgroupParents(t, first.cmd.Process.Pid); !slices.Equal(got.dirs, bases.dirs) {
		t.Fatalf("the server's environments go under %v, want %v (its cgroups differ from this process's)", got.dirs, bases.dirs)
	}
	parents = serverCgroupParents(t, first, bases)
	if !parents.own {
		t.Errorf("the server puts its environments' cgroups right in %v, shared with every server on the host; want a parent of its own", parents.dirs)
	}
	t.Logf("environments' cgroups go under %s", strings.Join(parents.dirs, ", "))
	stopWatch1 := watchEnvs(envsDir, &seen1)

	c := newClient(first.url)
	createFunction(t, c, "echo", "provided.al2023", "bootstrap", goEchoZip, func(in *lambda.CreateFunctionInput) {
		in.Timeout = aws.Int32(120)
	})
	createFunction(t, c, "timeout", "provided.al2023", "bootstrap", goEchoZip, func(in *lambda.CreateFunctionInput) {
		in.Timeout = aws.Int32(1)
	})
	createFunction(t, c, "crash", "provided.al2023", "bootstrap",
		mustZip(t, map[string]zipEntry{"bootstrap": {body: pyBootstrap("    os._exit(3)"), mode: 0o755}}))
	createFunction(t, c, "oom", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: oomPy}}),
		func(in *lambda.CreateFunctionInput) {
			in.MemorySize = aws.Int32(128)
			in.Timeout = aws.Int32(120)
		})

	// 200 invokes from 8 workers: 20 timeouts, 20 crashes, 10 OOMs, 150 echoes.
	const n, workers = 200, 8
	start := time.Now()
	counts := runMix(t, c, n, workers)
	t.Logf("%d invokes in %v: %s", n, time.Since(start).Round(time.Millisecond), counts)

	// Environments alive at the kill: two Python ones (one stays idle), then busy ones (a
	// Python and three Go invokes sleeping 60 s), then idle Go ones.
	parallel(2, func(int) { checkEcho(t, c, "oom", `{"sleep":1}`, `"fine"`) })
	busyCtx, cancelBusy := context.WithCancel(ctx)
	defer cancelBusy()
	var busy sync.WaitGroup
	for i, call := range []struct{ fn, payload string }{
		{"oom", `{"sleep":60}`}, {"echo", `{"sleep_ms":60000}`}, {"echo", `{"sleep_ms":60000}`}, {"echo", `{"sleep_ms":60000}`},
	} {
		busy.Add(1)
		go func() {
			defer busy.Done()
			out, err := c.Invoke(busyCtx, &lambda.InvokeInput{FunctionName: aws.String(call.fn), Payload: []byte(call.payload)})
			if err == nil { // the kill ends it first
				t.Errorf("busy invoke %d (%s) returned before the kill: %s %s", i, call.fn, aws.ToString(out.FunctionError), out.Payload)
			}
		}()
	}
	parallel(2, func(i int) { checkEcho(t, c, "echo", fmt.Sprintf(`{"idle":%d,"sleep_ms":300}`, i), "") })
	var frozen, thawed []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		frozen, thawed = freezerStates(parents, envsDir)
		if len(frozen) >= 2 && len(thawed) >= 4 {
			break
		}
		if time.Now().After(deadline) {
			first.dumpLog(t)
			t.Fatalf("30 s after starting them, environments frozen (idle) %v, thawed (busy) %v; want at least 2 and 4", frozen, thawed)
		}
	}
	if m := mountsUnder(data); len(m) > 0 {
		t.Errorf("while running, the host's mount table shows mounts under the data directory:\n%s", strings.Join(m, "\n"))
	}

	// Everything of the first server: its process tree, its environments' namespaces.
	all := allProcs()
	oldTree := descendants(all, first.cmd.Process.Pid)
	for _, id := range listDir(envsDir) {
		for _, d := range parents.dirs {
			for _, pid := range cgroupProcs(filepath.Join(d, id)) {
				if p, ok := all[pid]; ok && !oldTree.has(p) {
					oldTree[pid] = p
				}
			}
		}
	}
	oldNS := namespacesOf(oldTree)
	envs := listDir(envsDir)
	t.Logf("before the kill: %d environment directories (%d frozen, %d thawed, the rest spares), %d processes in the server's tree (%s), %d namespaces of their own",
		len(envs), len(frozen), len(thawed), len(oldTree), oldTree.summary(), len(oldNS))

	first.kill(t)
	stopWatch1()
	killedAt := uptime()
	killed := time.Now()
	cancelBusy()
	busy.Wait()

	// (1) Processes. Pdeathsig kills each init, and with it its pid namespace, whether or not
	// the server is ever restarted (doc.go). A task frozen by the v1 freezer does not act on a
	// SIGKILL until it is thawed, so an idle (frozen) environment must not depend on it.
	left := oldTree.alive()
	t.Logf("right after the kill: %d of the dead server's processes alive (%s)", len(left), left.summary())
	for deadline := time.Now().Add(15 * time.Second); len(left) > 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		left = oldTree.alive()
	}
	if len(left) > 0 {
		t.Errorf("%v after the kill -9, %d processes of the dead server are still alive (until a restart reclaims them, if one ever does): %s",
			time.Since(killed).Round(time.Millisecond), len(left), left.describe(parents))
	} else {
		t.Logf("%v after the kill, none of the dead server's processes is alive", time.Since(killed).Round(time.Millisecond))
	}

	// (2) Mounts: an environment's root lives only in its own mount namespace.
	if m := mountsUnder(data); len(m) > 0 {
		t.Errorf("after the kill, the host's mount table shows mounts under the data directory:\n%s", strings.Join(m, "\n"))
	}

	// (3) cgroups: the dead server's reaper removes them (else the restart's Reclaim does).
	afterKill := cgroupChildren(parents)
	var ours, foreign []string
	busyCgroups := 0
	for _, name := range afterKill.names() {
		switch {
		case seen1.has(name):
			ours = append(ours, name)
			for _, d := range parents.dirs {
				if len(cgroupProcs(filepath.Join(d, name))) > 0 {
					busyCgroups++
					break
				}
			}
		default:
			foreign = append(foreign, name)
		}
	}
	var charged int64
	for _, name := range ours {
		if b, err := os.ReadFile(filepath.Join(parents.by["memory"], name, "memory.usage_in_bytes")); err == nil {
			n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			charged += n
		} else if b, err := os.ReadFile(filepath.Join(parents.by["memory"], name, "memory.current")); err == nil {
			n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			charged += n
		}
	}
	t.Logf("after the kill: %d environment cgroups of the dead server left in %d hierarchies (%d still holding processes, %.1f MB of memory charged), %d environment directories left in %s",
		len(ours), len(parents.dirs), busyCgroups, float64(charged)/(1<<20), len(listDir(envsDir)), envsDir)
	if len(foreign) > 0 {
		t.Errorf("cgroups under the dead server's own parents that it never recorded: %v", foreign)
	}

	// The restart reclaims them.
	second := startFlintProcess(t, bin, data, filepath.Join(work, "serve-2.log"), "--log-level", "info", "--sandbox", "linux")
	t.Logf("the restarted server answered %v after the kill", time.Since(killed).Round(time.Millisecond))
	stopWatch2 := watchEnvs(envsDir, &seen2)
	log2, _ := os.ReadFile(second.logPath)
	t.Logf("the restarted server logged %d \"reclaimed sandbox environment\" lines", strings.Count(string(log2), "reclaimed sandbox environment"))
	if strings.Contains(string(log2), "reclaiming leftovers of a previous run") {
		second.dumpLog(t)
		t.Errorf("the restarted server could not reclaim everything (see its log)")
	}
	for deadline := time.Now().Add(15 * time.Second); len(left) > 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		left = oldTree.alive()
	}
	if len(left) > 0 {
		t.Errorf("after the restart, %d processes of the dead server survive: %s", len(left), left.describe(parents))
	}
	if got := cgroupsNamed(parents, &seen1); len(got) > 0 {
		t.Errorf("after the restart, cgroups of the dead server's environments remain:\n%s", strings.Join(got, "\n"))
	}
	if got := existing(parents.dirs); len(got) > 0 {
		t.Errorf("after the restart, the dead server's cgroup parents remain: %v", got)
	}
	parents2 = serverCgroupParents(t, second, bases)
	if slices.Equal(parents2.dirs, parents.dirs) {
		t.Errorf("the restarted server puts its environments under the dead server's parents %v, want a parent of its own", parents.dirs)
	}
	for _, name := range listDir(envsDir) {
		if seen1.has(name) || !strings.HasPrefix(name, "spare-") {
			t.Errorf("after the restart, %s holds %s; want only the new server's spare-* directories", envsDir, name)
		}
	}
	if m := mountsUnder(data); len(m) > 0 {
		t.Errorf("after the restart, the host's mount table shows mounts under the data directory:\n%s", strings.Join(m, "\n"))
	}

	// (4) Namespaces: none of the dead server's is held outside the new server's tree. A
	// namespace's inode number is reused once it is freed, so a holder that started after the
	// kill and descends from nothing of the dead server holds a new namespace.
	// An init reclaimed at the restart was reparented to the host's pid 1 when the server died:
	// until that reaps it, the zombie pins its pid namespace. Reaping is the host init's job.
	newTree := descendants(allProcs(), second.cmd.Process.Pid)
	var held, reused, zombies []string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		held, reused, zombies = nsHolders(oldNS, oldTree, newTree, killedAt)
		if len(held)+len(zombies) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(held) > 0 {
		t.Errorf("after the restart, namespaces of the dead server are still held:\n%s", strings.Join(held, "\n"))
	}
	if len(zombies) > 0 {
		t.Logf("after the restart, exited processes of the dead server not yet reaped by the host's pid 1 pin their namespaces:\n%s", strings.Join(zombies, "\n"))
	}
	if len(reused) > 0 {
		t.Logf("namespace inode numbers of the dead server now used by newer processes (not the same namespaces):\n%s", strings.Join(reused, "\n"))
	}
	if inits := strayInits(newTree); len(inits) > 0 {
		t.Logf("sandbox inits on this host outside the new server's tree (other servers' on a shared machine):\n%s", strings.Join(inits, "\n"))
	}
	t.Logf("after the restart: %d of the dead server's namespaces held, %d processes in the new server's tree (%s)",
		len(held), len(newTree), newTree.summary())

	// The restarted server works, then stops cleanly and leaves nothing either.
	c2 := newClient(second.url)
	checkEcho(t, c2, "echo", `{"after":"restart"}`, "")
	newTree = descendants(allProcs(), second.cmd.Process.Pid)
	seen2.add(listDir(envsDir)...)
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-second.done:
	case <-time.After(60 * time.Second):
		second.dumpLog(t)
		t.Fatal("flint serve did not stop within 60 s of SIGTERM")
	}
	stopWatch2()
	if st := second.cmd.ProcessState; !st.Success() {
		second.dumpLog(t)
		t.Errorf("flint serve after SIGTERM: %v, want exit status 0", st)
	}
	left = newTree.alive()
	for deadline := time.Now().Add(15 * time.Second); len(left) > 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		left = newTree.alive()
	}
	if len(left) > 0 {
		t.Errorf("after a clean stop, %d processes of the server survive: %s", len(left), left.describe(parents2))
	}
	if got := append(cgroupsNamed(parents, &seen1), cgroupsNamed(parents2, &seen2)...); len(got) > 0 {
		t.Errorf("after a clean stop, environment cgroups remain:\n%s", strings.Join(got, "\n"))
	}
	if got := existing(parents2.dirs); len(got) > 0 {
		t.Errorf("after a clean stop, the server's cgroup parents remain: %v", got)
	}
	if got := listDir(envsDir); len(got) > 0 {
		t.Errorf("after a clean stop, %s holds %v, want nothing", envsDir, got)
	}
	if m := mountsUnder(data); len(m) > 0 {
		t.Errorf("after a clean stop, the host's mount table shows mounts under the data directory:\n%s", strings.Join(m, "\n"))
	}
	t.Logf("after a clean stop: %d of the server's %d processes alive, %d environment directories, %d environments' cgroups",
		len(left), len(newTree), len(listDir(envsDir)), len(cgroupsNamed(parents2, &seen2)))
	if t.Failed() {
		first.dumpLog(t)
		second.dumpLog(t)
	}
}

// mixCall is the i-th invoke of the mix: the function, its payload and the error type it must
// end with ("" for an echo of the payload).
func mixCall(i int) (fn, payload, want string) {
	switch {
	case i%10 == 0:
		return "timeout", `{"sleep_ms":3000}`, "Sandbox.Timedout"
	case i%10 == 5:
		return "crash", `{}`, "Runtime.ExitError"
	case i%20 == 7:
		return "oom", `{"hog":true}`, "Runtime.OutOfMemory"
	case i%3 == 0: // held a little, so that several echo environments exist
		return "echo", fmt.Sprintf(`{"i":%d,"sleep_ms":50}`, i), ""
	}
	return "echo", fmt.Sprintf(`{"i":%d}`, i), ""
}

// runMix sends n invokes of the mix from workers clients, checks each outcome and returns the
// figures per function.
func runMix(t *testing.T, c *lambda.Client, n, workers int) string {
	t.Helper()
	var (
		mu   sync.Mutex
		good = map[string]int{}
		bad  = map[string]int{}
		errs []string
	)
	parallelN(n, workers, func(i int) {
		fn, payload, want := mixCall(i)
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(payload)})
		problem := outcomeProblem(out, err, payload, want)
		mu.Lock()
		defer mu.Unlock()
		if problem == "" {
			good[fn]++
			return
		}
		bad[fn]++
		errs = append(errs, fmt.Sprintf("invoke %d of %s: %s", i, fn, problem))
	})
	for i, e := range errs {
		if i == 10 {
			t.Errorf("... and %d more unexpected outcomes", len(errs)-10)
			break
		}
		t.Error(e)
	}
	var parts []string
	for _, fn := range []string{"echo", "timeout", "crash", "oom"} {
		parts = append(parts, fmt.Sprintf("%s %d/%d as expected", fn, good[fn], good[fn]+bad[fn]))
	}
	return strings.Join(parts, ", ")
}

// outcomeProblem says what is wrong with an invoke's outcome ("" if nothing): want "" is an
// echo of payload, else the function error type.
func outcomeProblem(out *lambda.InvokeOutput, err error, payload, want string) string {
	if err != nil {
		return err.Error()
	}
	if want == "" {
		if out.FunctionError != nil || string(out.Payload) != payload {
			return fmt.Sprintf("got %s (function error %q), want %s", out.Payload, aws.ToString(out.FunctionError), payload)
		}
		return ""
	}
	var e lambdaError
	if aws.ToString(out.FunctionError) != "Unhandled" || json.Unmarshal(out.Payload, &e) != nil || e.ErrorType != want {
		return fmt.Sprintf("got %s (function error %q), want error type %s", out.Payload, aws.ToString(out.FunctionError), want)
	}
	return ""
}

// checkEcho invokes fn and checks it answers want (payload itself when want is "").
func checkEcho(t *testing.T, c *lambda.Client, fn, payload, want string) {
	t.Helper()
	if want == "" {
		want = payload
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(payload)})
	if err != nil {
		t.Errorf("invoke %s %s: %v", fn, payload, err)
		return
	}
	if out.FunctionError != nil || string(out.Payload) != want {
		t.Errorf("invoke %s %s = %s (function error %q), want %s", fn, payload, out.Payload, aws.ToString(out.FunctionError), want)
	}
}

// parallel runs f(0..n-1) at once and waits for all.
func parallel(n int, f func(i int)) { parallelN(n, n, f) }

// parallelN runs f(0..n-1) from workers goroutines and waits for all.
func parallelN(n, workers int, f func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// nameSet is a set of names safe for concurrent use.
type nameSet struct {
	mu sync.Mutex
	m  map[string]bool
}

func (s *nameSet) add(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]bool{}
	}
	for _, n := range names {
		s.m[n] = true
	}
}

func (s *nameSet) has(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[name]
}

func (s *nameSet) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.m))
	for n := range s.m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// watchEnvs records every name that appears in dir (the backend's environment directories, spares
// included) until the returned stop is called.
func watchEnvs(dir string, into *nameSet) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			into.add(listDir(dir)...)
			select {
			case <-done:
				into.add(listDir(dir)...)
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-stopped }) }
}

func listDir(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// cgroupParents is where the linux sandbox puts environments' cgroups: one directory per
// hierarchy holding a controller it uses.
type cgroupParents struct {
	dirs    []string          // sorted, distinct
	freezer string            // the one in the freezer's hierarchy
	by      map[string]string // controller → directory
	own     bool              // a server's own parent (not the base shared by every server)
}

// envCgroupParents finds, for a server running as pid with the default CgroupParent "flint",
// the directory under which each hierarchy gets its environments' cgroups: the hierarchy's mount
// point, the server's own cgroup in it, then "flint". As the backend does, a controller on a v1
// hierarchy is taken from there, else from the v2 one.
func envCgroupParents(t *testing.T, pid int) cgroupParents {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	own := map[string]string{} // v1 controller, or "" for v2 → path
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, ctl := range strings.Split(parts[1], ",") {
			own[ctl] = parts[2]
		}
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	p := cgroupParents{by: map[string]string{}}
	var v2point, v2root string
	for _, line := range strings.Split(string(mi), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 {
			continue
		}
		root, point := f[3], f[4]
		switch g[0] {
		case "cgroup2":
			if v2point == "" {
				v2point, v2root = point, root
			}
		case "cgroup":
			for _, opt := range strings.Split(g[2], ",") {
				path, ok := own[opt]
				if _, dup := p.by[opt]; !ok || dup || !slices.Contains([]string{"memory", "cpu", "cpuacct", "pids", "freezer"}, opt) {
					continue
				}
				p.by[opt] = filepath.Join(point, strings.TrimPrefix(path, strings.TrimSuffix(root, "/")), "flint")
			}
		}
	}
	for _, ctl := range []string{"memory", "cpu", "pids", "freezer"} {
		if _, ok := p.by[ctl]; !ok && v2point != "" {
			p.by[ctl] = filepath.Join(v2point, strings.TrimPrefix(own[""], strings.TrimSuffix(v2root, "/")), "flint")
		}
	}
	for _, ctl := range []string{"memory", "cpu", "pids", "freezer"} {
		if _, ok := p.by[ctl]; !ok {
			t.Skipf("no cgroup hierarchy holds the %s controller: the linux sandbox cannot run here", ctl)
		}
	}
	for _, d := range p.by {
		if !slices.Contains(p.dirs, d) {
			p.dirs = append(p.dirs, d)
		}
	}
	sort.Strings(p.dirs)
	p.freezer = p.by["freezer"]
	return p
}

// cgroupChildren lists the cgroup directories under every parent.
func cgroupChildren(p cgroupParents) *nameSet {
	s := &nameSet{}
	for _, d := range p.dirs {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if e.IsDir() {
				s.add(e.Name())
			}
		}
	}
	return s
}

// cgroupsNamed lists the cgroup directories, in any hierarchy, named in one of sets.
func cgroupsNamed(p cgroupParents, sets ...*nameSet) []string {
	var out []string
	for _, s := range sets {
		for _, name := range s.names() {
			for _, d := range p.dirs {
				path := filepath.Join(d, name)
				if _, err := os.Stat(path); err == nil {
					out = append(out, fmt.Sprintf("%s (processes %v)", path, cgroupProcs(path)))
				}
			}
		}
	}
	return out
}

func cgroupProcs(dir string) []int {
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

// freezerState is an environment's freezer state: FROZEN, THAWED or FREEZING (v1), or "1"/"0"
// (v2's cgroup.freeze); "" when it has none.
func freezerState(p cgroupParents, id string) string {
	d := filepath.Join(p.freezer, id)
	if b, err := os.ReadFile(filepath.Join(d, "freezer.state")); err == nil {
		return strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile(filepath.Join(d, "cgroup.freeze")); err == nil {
		if strings.TrimSpace(string(b)) == "1" {
			return "FROZEN"
		}
		return "THAWED"
	}
	return ""
}

// freezerStates lists the started environments (not spares: a runtime besides the init) that are
// frozen (idle) and thawed (busy, or idle a moment before their freeze).
func freezerStates(p cgroupParents, envsDir string) (frozen, thawed []string) {
	for _, id := range listDir(envsDir) {
		if len(cgroupProcs(filepath.Join(p.freezer, id))) < 2 { // a spare: its init alone
			continue
		}
		switch freezerState(p, id) {
		case "FROZEN":
			frozen = append(frozen, id)
		case "THAWED":
			thawed = append(thawed, id)
		}
	}
	return frozen, thawed
}

// scrubCgroups kills and removes whatever cgroups of a test's server are still there (names
// under p, then p itself when it is the server's own parent), so that a failed run leaves the
// shared host clean.
func scrubCgroups(t *testing.T, p cgroupParents, names []string) {
	for _, d := range p.dirs {
		if !p.own {
			break // the base every server shares: only the names the test saw are its own
		}
		for _, e := range listDir(d) {
			if st, err := os.Stat(filepath.Join(d, e)); err == nil && st.IsDir() && !slices.Contains(names, e) {
				names = append(names, e)
			}
		}
	}
	remove := func(path string) {
		if _, err := os.Stat(path); err != nil {
			return
		}
		for _, pid := range cgroupProcs(path) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		_ = os.WriteFile(filepath.Join(path, "freezer.state"), []byte("THAWED"), 0)
		_ = os.WriteFile(filepath.Join(path, "cgroup.freeze"), []byte("0"), 0)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			err := syscall.Rmdir(path)
			if err == nil || errors.Is(err, syscall.ENOENT) {
				break
			}
			if time.Now().After(deadline) {
				t.Logf("cleanup: remove %s: %v", path, err)
				break
			}
		}
	}
	for _, name := range names {
		for _, d := range p.dirs {
			remove(filepath.Join(d, name))
		}
	}
	if p.own {
		for _, d := range p.dirs {
			remove(d)
		}
	}
}

// existing lists the paths of paths that exist.
func existing(paths []string) []string {
	var out []string
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// serverCgroupParents is where the server p puts its environments' cgroups, in every
// hierarchy: below the bases (<hierarchy>/<its own cgroup>/flint), the parent of its own that
// one of its sandbox inits, once placed in an environment's cgroup, shows. own is false when the
// environments' cgroups sit right in the base, shared with every other server on the host.
func serverCgroupParents(t *testing.T, p *flintProcess, bases cgroupParents) cgroupParents {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		for _, q := range descendants(allProcs(), p.cmd.Process.Pid) {
			if !strings.HasPrefix(q.cmdline, "flint-sandbox-init") {
				continue
			}
			cg := freezerCgroupOf(q.pid)
			if !strings.Contains(cg, "/flint/") {
				continue // not placed yet
			}
			_, rest, _ := strings.Cut(cg, "/flint/")
			out := cgroupParents{by: map[string]string{}}
			if run, _, nested := strings.Cut(rest, "/"); nested {
				out.own = true
				for _, d := range bases.dirs {
					out.dirs = append(out.dirs, filepath.Join(d, run))
				}
				for c, d := range bases.by {
					out.by[c] = filepath.Join(d, run)
				}
			} else {
				out.dirs, out.by = bases.dirs, bases.by
			}
			out.freezer = out.by["freezer"]
			return out
		}
		if time.Now().After(deadline) {
			p.dumpLog(t)
			t.Fatal("60 s after it answered, no sandbox init of the server is in an environment's cgroup")
		}
	}
}

// mountsUnder lists the lines of this process's mount table that mention dir.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, dir) {
			out = append(out, line)
		}
	}
	return out
}

// proc is one process as /proc shows it; pid and start together name it across pid reuse.
type proc struct {
	pid, ppid int
	start     uint64 // clock ticks after boot
	state     string
	cmdline   string
}

func readProc(pid int) (proc, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return proc{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces and parentheses
	if i < 0 {
		return proc{}, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return proc{}, false
	}
	p := proc{pid: pid, state: f[0]}
	p.ppid, _ = strconv.Atoi(f[1])
	p.start, _ = strconv.ParseUint(f[19], 10, 64)
	cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	p.cmdline = strings.TrimSpace(strings.ReplaceAll(string(cl), "\x00", " "))
	return p, true
}

type procSet map[int]proc

func allProcs() procSet {
	out := procSet{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readProc(pid); ok {
			out[pid] = p
		}
	}
	return out
}

// descendants is root and every process below it.
func descendants(all procSet, root int) procSet {
	out := procSet{}
	if p, ok := all[root]; ok {
		out[root] = p
	}
	for grew := true; grew; {
		grew = false
		for pid, p := range all {
			if _, in := out[pid]; !in {
				if _, parentIn := out[p.ppid]; parentIn {
					out[pid] = p
					grew = true
				}
			}
		}
	}
	return out
}

func (s procSet) has(p proc) bool {
	q, ok := s[p.pid]
	return ok && q.start == p.start
}

// alive is the processes of s still running (zombies, whose resources are gone, do not count).
func (s procSet) alive() procSet {
	out := procSet{}
	for pid, p := range s {
		if q, ok := readProc(pid); ok && q.start == p.start && q.state != "Z" && q.state != "X" {
			out[pid] = q
		}
	}
	return out
}

// summary counts the processes by program: sandbox inits, and the rest by their argv[0].
func (s procSet) summary() string {
	count := map[string]int{}
	for _, p := range s {
		name := strings.Fields(p.cmdline + " ?")[0]
		count[filepath.Base(name)]++
	}
	var parts []string
	for name, n := range count {
		parts = append(parts, fmt.Sprintf("%d %s", n, name))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// describe lists each process with its state and its freezer cgroup's state.
func (s procSet) describe(p cgroupParents) string {
	var lines []string
	for pid, q := range s {
		cg := freezerCgroupOf(pid)
		lines = append(lines, fmt.Sprintf("\n  pid %d ppid %d state %s %q, freezer cgroup %s (%s)",
			pid, q.ppid, q.state, q.cmdline, cg, freezerState(p, filepath.Base(cg))))
	}
	sort.Strings(lines)
	return strings.Join(lines, "")
}

func freezerCgroupOf(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && slices.Contains(strings.Split(parts[1], ","), "freezer") {
			return parts[2]
		}
	}
	return "?"
}

// nsKinds are the namespaces an environment gets of its own.
var nsKinds = []string{"mnt", "pid", "net", "uts", "ipc", "cgroup", "user"}

// namespacesOf is the set of namespaces ("net:[4026532...]") that processes of s are in and this
// process is not.
func namespacesOf(s procSet) map[string]bool {
	host := map[string]bool{}
	for _, k := range nsKinds {
		if l, err := os.Readlink("/proc/self/ns/" + k); err == nil {
			host[l] = true
		}
	}
	out := map[string]bool{}
	for pid := range s {
		for _, k := range nsKinds {
			if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, k)); err == nil && !host[l] {
				out[l] = true
			}
		}
	}
	return out
}

// nsHolders finds the processes outside newTree that are in, or hold a descriptor of, one of
// namespaces, and the nsfs mounts of them. A holder that is not of oldTree and started after
// killedAt (seconds after boot) holds a namespace created since, under a reused inode number.
func nsHolders(namespaces map[string]bool, oldTree, newTree procSet, killedAt float64) (held, reused, zombies []string) {
	ticks := 100.0 // USER_HZ
	for pid, p := range allProcs() {
		if newTree.has(p) || pid == os.Getpid() {
			continue
		}
		var links []string
		for _, k := range nsKinds {
			if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, k)); err == nil && namespaces[l] {
				links = append(links, l)
			}
		}
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && namespaces[l] {
				links = append(links, "fd "+fd.Name()+" "+l)
			}
		}
		if len(links) == 0 {
			continue
		}
		line := fmt.Sprintf("  pid %d ppid %d state %s %q: %s", pid, p.ppid, p.state, p.cmdline, strings.Join(links, ", "))
		switch {
		case !oldTree.has(p) && float64(p.start)/ticks > killedAt:
			reused = append(reused, line)
		case p.state == "Z":
			zombies = append(zombies, line)
		default:
			held = append(held, line)
		}
	}
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(b), "\n") {
		for ns := range namespaces {
			if strings.Contains(line, ns) {
				held = append(held, "  mount "+line)
			}
		}
	}
	sort.Strings(held)
	sort.Strings(reused)
	sort.Strings(zombies)
	return held, reused, zombies
}

// strayInits lists the sandbox inits on the host outside tree.
func strayInits(tree procSet) []string {
	var out []string
	for pid, p := range allProcs() {
		if strings.HasPrefix(p.cmdline, "flint-sandbox-init") && !tree.has(p) {
			out = append(out, fmt.Sprintf("  pid %d ppid %d state %s, freezer cgroup %s", pid, p.ppid, p.state, freezerCgroupOf(pid)))
		}
	}
	sort.Strings(out)
	return out
}

// uptime is the seconds since boot, the clock of /proc/<pid>/stat's start times.
func uptime() float64 {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseFloat(strings.Fields(string(b) + " 0")[0], 64)
	return v
}
