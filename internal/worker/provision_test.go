package worker_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/runtimes"
	"github.com/flint-run/flint/internal/sandbox/process"
	"github.com/flint-run/flint/internal/worker"
)

// slowInitBootstrap spends half a second in INIT, then answers every event with {}.
const slowInitBootstrap = `#!/usr/bin/python3
import http.client, os, time
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

// TestProvisioningIsBounded: raising provisioned concurrency starts the environments a few at
// a time (Config.ProvisionParallel), not all at once: a thousand linux-sandbox environments
// started together starved the server of CPU until its NATS heartbeats and API requests
// timed out. All of them still become ready.
func TestProvisioningIsBounded(t *testing.T) {
	task := t.TempDir()
	if err := os.WriteFile(filepath.Join(task, "bootstrap"), []byte(slowInitBootstrap), 0o755); err != nil {
		t.Fatal(err)
	}
	rt, _ := runtimes.Lookup("provided.al2023")
	const parallel, want = 3, 9
	m := worker.New(worker.Config{Backend: process.New("127.0.0.1"), RuntimeDir: t.TempDir(), Region: "us-east-1",
		KeepAlive: time.Minute, InitTimeout: 30 * time.Second, ProvisionParallel: parallel, Log: testLogger(t)})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); _ = m.Run(ctx) }() // the provisioner
	defer func() { cancel(); <-ran; m.Close() }()
	p := m.Pool(worker.Function{Name: "prov", Version: "1", ARN: "arn:aws:lambda:us-east-1:123456789012:function:prov:1",
		Runtime: rt, Handler: "x", MemoryMB: 128, Timeout: 30 * time.Second, EphemeralMB: 512,
		Env:  func() (map[string]string, error) { return nil, nil },
		Code: func(context.Context) (string, error) { return task, nil }})
	p.SetProvisioned(want)
	most := 0
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		most = max(most, m.Stats().Starting)
		if _, ready := p.Provisioned(); ready == want {
			break
		}
		if time.Now().After(deadline) {
			_, ready := p.Provisioned()
			t.Fatalf("%d of %d provisioned environments ready after a minute", ready, want)
		}
	}
	if most > parallel {
		t.Errorf("%d environments starting at once while provisioning %d, want at most %d", most, want, parallel)
	}
	if most == 0 {
		t.Error("never saw an environment starting")
	}
}
