package process_test

import (
	"bufio"
	"context"
	"os"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/sandbox"
	"github.com/flint-run/flint/internal/sandbox/process"
)

// idleProbe reports the scheduling policy of its threads (one of its own started while it was a
// spare) before it says it waits, and again once bound.
const idleProbe = `
import os, sys, threading
t = threading.Thread(target=lambda: threading.Event().wait(30), daemon=True)
t.start()
def policies():
    return ",".join(str(os.sched_getscheduler(int(x))) for x in sorted(os.listdir("/proc/self/task")))
print("spare " + policies(), flush=True)
fd = int(os.environ["` + sandbox.BindFDEnv + `"])
os.write(fd, b"w")
with os.fdopen(fd, "rb") as f:
    f.read()
print("bound " + policies(), flush=True)
`

// TestSparesStartIdle checks that a prestarted runtime runs in SCHED_IDLE (5), every thread of
// it, until it is bound, and then in the policy of the server's threads (SCHED_OTHER, 0): a
// pool of spares refills on CPU nothing else wants, and the function's code never runs idle.
func TestSparesStartIdle(t *testing.T) {
	if !process.CanUnidle() {
		t.Skip("leaving SCHED_IDLE needs CAP_SYS_NICE, which this test does not have: spares start as is")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := process.New("127.0.0.1")
	inst, err := b.Prestart(ctx, sandbox.Spec{ID: "idle", RuntimeDir: t.TempDir(), Argv: []string{"/usr/bin/python3", "-c", idleProbe},
		Env: []string{"PATH=/usr/bin:/bin"}, Output: w})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = inst.Destroy(context.Background()) }()
	lines := bufio.NewScanner(r)
	next := func() string {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("probe ended: %v", lines.Err())
		}
		return lines.Text()
	}
	if got := next(); got != "spare 5,5" {
		t.Errorf("a waiting spare's threads' policies: %q, want SCHED_IDLE (5) for both", got)
	}
	if err := inst.Waiting(ctx); err != nil {
		t.Fatal(err)
	}
	if err := inst.Bind(ctx, sandbox.Binding{TaskDir: t.TempDir(), Env: []string{"PATH=/usr/bin:/bin"}}); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "bound 0,0" {
		t.Errorf("the bound runtime's threads' policies: %q, want SCHED_OTHER (0) for both", got)
	}
}
