package worker_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/runtimes"
	"github.com/flint-run/flint/internal/sandbox/process"
	"github.com/flint-run/flint/internal/worker"
)

// pidBootstrap answers each event with its process id after sleeping the event's "sleep"
// seconds.
const pidBootstrap = `#!/usr/bin/python3
import http.client, json, os, time
c = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
while True:
    c.request("GET", "/2018-06-01/runtime/invocation/next")
    r = c.getresponse()
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    ev = json.loads(r.read())
    time.sleep(ev.get("sleep", 0))
    c.request("POST", "/2018-06-01/runtime/invocation/%s/response" % rid, body=json.dumps({"pid": os.getpid()}))
    c.getresponse().read()
`

// TestPoolRecycle: Recycle destroys the idle environments, so the next invocation is a cold
// start (Init Duration in its REPORT line, another process); a busy environment keeps its
// invocation and stays, and a provisioned one stays.
func TestPoolRecycle(t *testing.T) {
	task := t.TempDir()
	if err := os.WriteFile(filepath.Join(task, "bootstrap"), []byte(pidBootstrap), 0o755); err != nil {
		t.Fatal(err)
	}
	rt, _ := runtimes.Lookup("provided.al2023")
	m := worker.New(worker.Config{Backend: process.New("127.0.0.1"), RuntimeDir: t.TempDir(), Region: "us-east-1",
		KeepAlive: time.Minute, InitTimeout: 30 * time.Second, Log: testLogger(t)})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); _ = m.Run(ctx) }() // the provisioner
	defer func() { cancel(); <-ran; m.Close() }()
	fn := func(name string) worker.Function {
		return worker.Function{Name: name, Version: "1", ARN: "arn:aws:lambda:us-east-1:123456789012:function:" + name + ":1",
			Runtime: rt, Handler: "x", MemoryMB: 128, Timeout: 30 * time.Second, EphemeralMB: 512,
			Env:  func() (map[string]string, error) { return nil, nil },
			Code: func(context.Context) (string, error) { return task, nil }}
	}
	type answer struct {
		pid  int
		cold bool
		err  error
	}
	invoke := func(p *worker.Pool, payload string) answer {
		var resp *worker.Response
		err := p.Invoke(context.Background(), worker.Request{RequestID: "r", Payload: []byte(payload), Tail: true}, func(r *worker.Response) { resp = r })
		if err != nil {
			return answer{err: err}
		}
		var out struct{ Pid int }
		if err := json.Unmarshal(resp.Payload, &out); err != nil || resp.FunctionError != "" {
			t.Fatalf("answer %q (%s): %v", resp.Payload, resp.FunctionError, err)
		}
		tail, _ := base64.StdEncoding.DecodeString(resp.LogResult)
		return answer{pid: out.Pid, cold: strings.Contains(string(tail), "\tInit Duration: ")}
	}

	p := m.Pool(fn("recycled"))
	first, again := invoke(p, `{}`), invoke(p, `{}`)
	if first.err != nil || again.err != nil || !first.cold || again.cold || again.pid != first.pid {
		t.Fatalf("two invokes: %+v, %+v; want a cold start, then the same environment warm", first, again)
	}
	if got := p.Recycle(); got != (worker.Recycled{Retired: 1}) {
		t.Errorf("Recycle with one idle environment = %+v, want 1 retired", got)
	}
	if next := invoke(p, `{}`); next.err != nil || !next.cold || next.pid == first.pid {
		t.Errorf("invoke after Recycle: %+v; want a cold start in a new process (the old was %d)", next, first.pid)
	}

	// One busy (for 1 s), one idle: only the idle one goes.
	slow := make(chan answer, 1)
	go func() { slow <- invoke(p, `{"sleep":1}`) }()
	for deadline := time.Now().Add(30 * time.Second); m.Stats().Busy != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the slow invoke never got an environment")
		}
	}
	if a := invoke(p, `{}`); a.err != nil || !a.cold {
		t.Fatalf("invoke beside the busy environment: %+v; want a cold start", a)
	}
	if got := p.Recycle(); got != (worker.Recycled{Retired: 1, Busy: 1}) {
		t.Errorf("Recycle with one busy and one idle environment = %+v, want 1 retired, 1 busy", got)
	}
	busy := <-slow
	if busy.err != nil {
		t.Errorf("the invocation on the busy environment: %v; want its answer", busy.err)
	}
	if a := invoke(p, `{}`); a.err != nil || a.cold || a.pid != busy.pid {
		t.Errorf("invoke after the slow one: %+v; want its environment (%d), warm", a, busy.pid)
	}

	// A provisioned environment is the configuration's: it stays.
	prov := m.Pool(fn("provisioned"))
	prov.SetProvisioned(1)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, ready := prov.Provisioned(); ready == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the provisioned environment never became ready")
		}
	}
	if got := prov.Recycle(); got != (worker.Recycled{Provisioned: 1}) {
		t.Errorf("Recycle with a provisioned environment = %+v, want it kept", got)
	}
	if _, ready := prov.Provisioned(); ready != 1 {
		t.Errorf("%d provisioned environments ready after Recycle, want 1", ready)
	}
}
