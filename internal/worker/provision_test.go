package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/runtimes"
	"github.com/flint-run/flint/internal/sandbox/process"
	"github.com/flint-run/flint/internal/worker"
)

// slowInitBootstrap marks its start (a file named by its pid in $MARK), spends half a second
// in INIT, then answers every event with {}.
const slowInitBootstrap = `#!/usr/bin/python3
import http.client, os, time
open(os.path.join(os.environ["MARK"], str(os.getpid())), "w").close()
time.sleep(0.5)
c = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
while True:
    c.request("GET", "/2018-06-01/runtime/invocation/next")
    r = c.getresponse()
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    r.read()
    c.request("POST", "/2018-06-01/runtime/invocation/%s/response" % rid, body="{}")
    c.getresponse().read()
`

// counting passes records on and counts those with one message.
type counting struct {
	slog.Handler
	msg string
	n   *atomic.Int64
}

func (c counting) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == c.msg {
		c.n.Add(1)
	}
	return c.Handler.Handle(ctx, r)
}

func (c counting) WithAttrs(as []slog.Attr) slog.Handler {
	return counting{c.Handler.WithAttrs(as), c.msg, c.n}
}

func (c counting) WithGroup(g string) slog.Handler {
	return counting{c.Handler.WithGroup(g), c.msg, c.n}
}

// TestProvisioningIsBounded: raising provisioned concurrency starts the environments a few at
// a time (Config.ProvisionParallel), not all at once: a thousand linux-sandbox environments
// started together starved the server of CPU until its NATS heartbeats and API requests
// timed out. All of them still become ready, with no start given up and none retired and
// replaced on the way, however often the provisioner runs meanwhile (each environment counted
// once: pending, then started); and when the count is lowered while starts wait for their
// turn, the waiting ones are given up, not started and retired.
func TestProvisioningIsBounded(t *testing.T) {
	task := t.TempDir()
	if err := os.WriteFile(filepath.Join(task, "bootstrap"), []byte(slowInitBootstrap), 0o755); err != nil {
		t.Fatal(err)
	}
	rt, _ := runtimes.Lookup("provided.al2023")
	var skipped atomic.Int64
	log := slog.New(counting{testLogger(t).Handler(), "provisioned environment no longer wanted", &skipped})
	const parallel, want = 3, 9
	m := worker.New(worker.Config{Backend: process.New("127.0.0.1"), RuntimeDir: t.TempDir(), Region: "us-east-1",
		KeepAlive: time.Minute, InitTimeout: 30 * time.Second, ProvisionParallel: parallel, Log: log})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); _ = m.Run(ctx) }() // the provisioner
	defer func() { cancel(); <-ran; m.Close() }()
	// pool returns a pool and how many environments it has started so far.
	pool := func(name string) (*worker.Pool, func() int) {
		marks := t.TempDir()
		return m.Pool(worker.Function{Name: name, Version: "1", ARN: "arn:aws:lambda:us-east-1:123456789012:function:" + name + ":1",
				Runtime: rt, Handler: "x", MemoryMB: 128, Timeout: 30 * time.Second, EphemeralMB: 512,
				Env:  func() (map[string]string, error) { return map[string]string{"MARK": marks}, nil },
				Code: func(context.Context) (string, error) { return task, nil }}), func() int {
				ents, err := os.ReadDir(marks)
				if err != nil {
					t.Fatal(err)
				}
				return len(ents)
			}
	}
	until := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within a minute (%+v, %d given up)", what, m.Stats(), skipped.Load())
			}
		}
	}

	// Raised, and the provisioner run again and again meanwhile (as its 2 s tick does): it must
	// neither start more nor retire any, counting each environment once.
	raised, started := pool("raised")
	raised.SetProvisioned(want)
	most := 0
	until(fmt.Sprintf("%d provisioned environments ready", want), func() bool {
		most = max(most, m.Stats().Starting)
		raised.SetProvisioned(want)
		_, ready := raised.Provisioned()
		return ready == want
	})
	if most > parallel || most == 0 {
		t.Errorf("%d environments starting at once while provisioning %d, want 1 to %d", most, want, parallel)
	}
	if n := started(); n != want {
		t.Errorf("%d environments started to provision %d, want %d (none retired and replaced)", n, want, want)
	}
	if n := skipped.Load(); n != 0 {
		t.Errorf("%d queued starts given up while raising to %d, want none", n, want)
	}

	lowered, startedLowered := pool("lowered")
	lowered.SetProvisioned(want)
	until("the first starts under way", func() bool { return m.Stats().Starting == parallel })
	lowered.SetProvisioned(parallel)
	until("the queued starts given up", func() bool { return skipped.Load() == want-parallel })
	until("the first starts ready", func() bool { _, ready := lowered.Provisioned(); return ready == parallel })
	if s := m.Stats(); s.Starting != 0 || s.Provisioned != want+parallel {
		t.Errorf("after lowering: %+v, want nothing starting and %d provisioned environments", s, want+parallel)
	}
	if n := startedLowered(); n != parallel {
		t.Errorf("%d environments started after lowering to %d while %d started, want %d", n, parallel, parallel, parallel)
	}
}
