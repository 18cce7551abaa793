package worker_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/runtimes"
	"github.com/flint-run/flint/internal/sandbox/process"
	"github.com/flint-run/flint/internal/worker"
)

// errorTypeBootstrap fails every event with the error type the event names, noting each event
// it gets in $SEEN.
const errorTypeBootstrap = `#!/usr/bin/python3
import http.client, json, os
c = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
while True:
    c.request("GET", "/2018-06-01/runtime/invocation/next")
    r = c.getresponse()
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    ev = json.loads(r.read())
    with open(os.environ["SEEN"], "a") as f:
        f.write(rid + "\n")
    body = json.dumps({"errorMessage": "boom", "errorType": ev["type"]})
    c.request("POST", "/2018-06-01/runtime/invocation/%s/error" % rid, body=body,
        headers={"Lambda-Runtime-Function-Error-Type": ev["type"]})
    c.getresponse().read()
`

// TestFunctionErrorTypesAreOnlyData: whatever error type a function reports, it is the
// function's error, answered once as Unhandled with the function's own body. The worker's own
// signals (an invocation to place again, one the platform stopped) are not error types a
// function can forge: before they were typed, "flint.Retry" ran the event on 4 environments and
// failed the call with ErrAborted, and "flint.Aborted" crashed the server.
func TestFunctionErrorTypesAreOnlyData(t *testing.T) {
	task := t.TempDir()
	if err := os.WriteFile(filepath.Join(task, "bootstrap"), []byte(errorTypeBootstrap), 0o755); err != nil {
		t.Fatal(err)
	}
	rt, _ := runtimes.Lookup("provided.al2023")
	seen := filepath.Join(t.TempDir(), "seen")
	rec := &recorder{}
	m := worker.New(worker.Config{Backend: process.New("127.0.0.1"), RuntimeDir: t.TempDir(), Region: "us-east-1",
		KeepAlive: time.Minute, InitTimeout: 30 * time.Second, Logs: rec, Log: testLogger(t)})
	defer m.Close()
	p := m.Pool(worker.Function{Name: "errs", Version: "$LATEST", ARN: "arn:aws:lambda:us-east-1:123456789012:function:errs",
		Runtime: rt, Handler: "x", MemoryMB: 128, Timeout: 30 * time.Second, EphemeralMB: 512,
		Env:  func() (map[string]string, error) { return map[string]string{"SEEN": seen}, nil },
		Code: func(context.Context) (string, error) { return task, nil }})
	for _, typ := range []string{"flint.Retry", "flint.Aborted", "Runtime.ExitError", "Sandbox.Timedout", "MyError"} {
		t.Run(typ, func(t *testing.T) {
			id := "req-" + typ
			var resp *worker.Response
			err := p.Invoke(context.Background(), worker.Request{RequestID: id, Payload: []byte(fmt.Sprintf(`{"type":%q}`, typ))},
				func(r *worker.Response) { resp = r })
			if err != nil || resp == nil {
				t.Fatalf("Invoke = %v, response %v; want the function's error", err, resp)
			}
			want := fmt.Sprintf(`{"errorMessage": "boom", "errorType": %q}`, typ)
			if resp.FunctionError != "Unhandled" || string(resp.Payload) != want {
				t.Errorf("response FunctionError %q, payload %s; want Unhandled, %s", resp.FunctionError, resp.Payload, want)
			}
			b, err := os.ReadFile(seen)
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(b), id+"\n"); n != 1 {
				t.Errorf("the function got the event %d times, want 1", n)
			}
		})
	}
	m.Close() // every record is in rec once Close returns
	got := rec.all()
	for _, typ := range []string{"flint.Retry", "flint.Aborted"} {
		if want := "REPORT RequestId: req-" + typ; !strings.Contains(got, want) {
			t.Errorf("no %q in the records:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "Status: error"); n != 5 {
		t.Errorf("%d records with Status: error, want 5:\n%s", n, got)
	}
	if strings.Contains(got, "stopped by the platform") {
		t.Errorf("a function's error is reported as a platform stop:\n%s", got)
	}
}
