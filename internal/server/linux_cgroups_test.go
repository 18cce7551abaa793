package server_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// needLinuxSandbox skips unless the linux sandbox can run here.
func needLinuxSandbox(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the linux sandbox runs only on Linux")
	}
	if os.Geteuid() != 0 {
		t.Skip("the linux sandbox tests need root (CI runs as root)")
	}
}

// linuxServer is a `flint serve --sandbox linux` of a test, with what the test knows of it.
type linuxServer struct {
	*flintProcess
	data    string
	c       *lambda.Client
	parents cgroupParents
	seen    nameSet
	stop    func() // stops recording the environments' names
}

func startLinuxServer(t *testing.T, bin, data, logPath string, bases cgroupParents) *linuxServer {
	t.Helper()
	p := startFlintProcess(t, bin, data, logPath, "--log-level", "info", "--sandbox", "linux", "--async-retry-delay", "100ms")
	s := &linuxServer{flintProcess: p, data: data, c: newClient(p.url)}
	s.parents = serverCgroupParents(t, p, bases)
	s.stop = watchEnvs(filepath.Join(data, "sandboxes", "envs"), &s.seen)
	// Runs before startFlintProcess's kill: kill first, so that nothing makes new ones meanwhile.
	t.Cleanup(func() { p.kill(t); s.stop(); scrubCgroups(t, s.parents, s.seen.names()) })
	return s
}

// tree is every process of the server: its own tree, and the processes in its environments'
// cgroups (an init is the server's child, but not what it forks once reparented).
func (s *linuxServer) tree() procSet {
	all := allProcs()
	tree := descendants(all, s.cmd.Process.Pid)
	for _, d := range s.parents.dirs {
		for _, id := range listDir(d) {
			if !s.parents.own && !s.seen.has(id) {
				continue // another server's, in the base every server shares
			}
			for _, pid := range cgroupProcs(filepath.Join(d, id)) {
				if p, ok := all[pid]; ok {
					tree[pid] = p
				}
			}
		}
	}
	return tree
}

// cgroupDirs is what the server must leave behind of its cgroups: its parents when it has its
// own, else its environments' cgroups in the shared base.
func (s *linuxServer) cgroupDirs() []string {
	if s.parents.own {
		return s.parents.dirs
	}
	var out []string
	for _, name := range s.seen.names() {
		for _, d := range s.parents.dirs {
			out = append(out, filepath.Join(d, name))
		}
	}
	return out
}

// waitFrozen waits until at least n of the server's started environments are frozen.
func (s *linuxServer) waitFrozen(t *testing.T, n int) []string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		frozen, _ := freezerStates(s.parents, filepath.Join(s.data, "sandboxes", "envs"))
		if len(frozen) >= n {
			return frozen
		}
		if time.Now().After(deadline) {
			s.dumpLog(t)
			t.Fatalf("30 s on, %d of the server's environments are frozen, want %d", len(frozen), n)
		}
	}
}

// waitGone waits (generously: the host is shared and busy) until none of procs is alive and
// none of dirs exists, and reports what is left.
func waitGone(t *testing.T, what string, procs procSet, dirs []string, parents cgroupParents) {
	t.Helper()
	left, remain := procs.alive(), existing(dirs)
	for deadline := time.Now().Add(30 * time.Second); len(left)+len(remain) > 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		left, remain = procs.alive(), existing(dirs)
	}
	if len(left) > 0 {
		t.Errorf("30 s %s, %d processes of the dead server are alive: %s", what, len(left), left.describe(parents))
	}
	if len(remain) > 0 {
		var lines []string
		for _, d := range remain {
			lines = append(lines, fmt.Sprintf("%s (holding %v)", d, listDir(d)))
		}
		t.Errorf("30 s %s, the dead server's cgroups remain:\n%s", what, strings.Join(lines, "\n"))
	}
}

// TestLinuxKill9RestartUnderLoad is the report of frozen leftovers after a kill -9 and a quick
// restart: a server drains an async backlog behind reserved concurrency 1 (its environment
// alternately busy and frozen) with another function's environment idle and frozen, is killed
// with SIGKILL and restarted at once on the same data directory. Nothing of the dead server may
// be left: no process, no cgroup, frozen or not. A second server on the host (another data
// directory) runs throughout: each server has a cgroup parent of its own, and neither the dead
// server's reaper nor the restart's Reclaim touches the other's environments.
func TestLinuxKill9RestartUnderLoad(t *testing.T) {
	needLinuxSandbox(t)
	bin := buildFlint(t)
	work := t.TempDir()
	bases := envCgroupParents(t, os.Getpid())

	other := startLinuxServer(t, bin, t.TempDir(), filepath.Join(work, "other.log"), bases)
	createFunction(t, other.c, "echo", "provided.al2023", "bootstrap", goEchoZip)
	checkEcho(t, other.c, "echo", `{"other":1}`, "")
	other.waitFrozen(t, 1)
	otherTree := other.tree()

	data := t.TempDir()
	first := startLinuxServer(t, bin, data, filepath.Join(work, "serve-1.log"), bases)
	if !first.parents.own || !other.parents.own || slices.Equal(first.parents.dirs, other.parents.dirs) {
		t.Errorf("two servers' environments go under %v and %v, want a parent of its own each", first.parents.dirs, other.parents.dirs)
	}
	ctx := context.Background()
	createFunction(t, first.c, "idle", "provided.al2023", "bootstrap", goEchoZip)
	checkEcho(t, first.c, "idle", `{"idle":1}`, "")
	createFunction(t, first.c, "drain", "provided.al2023", "bootstrap", goEchoZip)
	if _, err := first.c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("drain"),
		ReservedConcurrentExecutions: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	const n = 50 // 100 ms each, one at a time: a backlog of 5 s
	parallelN(n, 8, func(i int) {
		out, err := first.c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("drain"), InvocationType: types.InvocationTypeEvent,
			Payload: []byte(fmt.Sprintf(`{"n":%d,"sleep_ms":100}`, i))})
		if err != nil || out.StatusCode != http.StatusAccepted {
			t.Errorf("Event invoke %d: %+v, %v", i, out, err)
		}
	})
	first.waitFrozen(t, 1)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st, err := asyncStats(first.url)
		if err != nil {
			t.Fatal(err)
		}
		if d := depth(st, "drain"); d < n {
			t.Logf("killing the server with %d events queued", d)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s on the async queue holds all %d events", n)
		}
	}
	oldTree := first.tree()
	frozen, thawed := freezerStates(first.parents, filepath.Join(data, "sandboxes", "envs"))
	t.Logf("before the kill: %d processes (%s), environments frozen %v, thawed %v", len(oldTree), oldTree.summary(), frozen, thawed)
	first.kill(t)
	first.stop()
	deadDirs := first.cgroupDirs()

	second := startLinuxServer(t, bin, data, filepath.Join(work, "serve-2.log"), bases)
	if slices.Equal(second.parents.dirs, first.parents.dirs) {
		t.Errorf("the restarted server uses the dead server's cgroup parents %v", first.parents.dirs)
	}
	waitGone(t, "after the kill and the restart", oldTree, deadDirs, first.parents)
	checkEcho(t, second.c, "idle", `{"after":"restart"}`, "")

	if left := otherTree.alive(); len(left) != len(otherTree) {
		t.Errorf("the other server had %d processes (%s), %d are left after this one's kill and restart", len(otherTree), otherTree.summary(), len(left))
	}
	if dirs := other.cgroupDirs(); len(existing(dirs)) != len(dirs) {
		t.Errorf("the other server's cgroups %v: only %v are left", dirs, existing(dirs))
	}
	checkEcho(t, other.c, "echo", `{"other":2}`, "")
	if t.Failed() {
		first.dumpLog(t)
		second.dumpLog(t)
	}
}

// TestLinuxKill9ThenDataDirRemoved: a server is killed with SIGKILL with an environment frozen
// and its data directory is removed at once, sandboxes first (a test's cleanup or an operator's
// rm -rf races the dead server's reaper); no server ever starts on it again. Nothing of the dead
// server may be left running.
func TestLinuxKill9ThenDataDirRemoved(t *testing.T) {
	needLinuxSandbox(t)
	bin := buildFlint(t)
	work := t.TempDir()
	bases := envCgroupParents(t, os.Getpid())
	data := filepath.Join(t.TempDir(), "data")
	s := startLinuxServer(t, bin, data, filepath.Join(work, "serve.log"), bases)
	createFunction(t, s.c, "echo", "provided.al2023", "bootstrap", goEchoZip)
	checkEcho(t, s.c, "echo", `{"a":1}`, "")
	frozen := s.waitFrozen(t, 1)
	tree := s.tree()
	t.Logf("before the kill: %d processes (%s), environments frozen %v", len(tree), tree.summary(), frozen)
	if !s.parents.own {
		t.Errorf("the server puts its environments' cgroups right in %v, shared with every server on the host; want a parent of its own", s.parents.dirs)
	}
	s.stop()
	dirs := s.cgroupDirs()
	// As `kill -9 $pid; rm -rf $data` does: the removal does not wait for the process to end.
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	err := os.RemoveAll(filepath.Join(data, "sandboxes"))
	<-s.done
	for try := 0; try < 50 && (err != nil || existing([]string{data}) != nil); try++ {
		if try > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		err = os.RemoveAll(data)
	}
	if err != nil {
		t.Errorf("removing the dead server's data directory: %v (something of it writes there still)", err)
	}
	waitGone(t, "after the kill and the data directory's removal", tree, dirs, s.parents)
	if t.Failed() {
		s.dumpLog(t)
	}
}
