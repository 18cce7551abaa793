package server_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/server"
)

// extSandboxes are the sandboxes the extension tests run in: the linux one needs root.
func extSandboxes(t *testing.T) []string {
	if os.Geteuid() != 0 {
		t.Log("not root: the linux sandbox is not tried")
		return []string{"process"}
	}
	return []string{"process", "linux"}
}

// probeLog reads what flint-probe recorded in an environment. In the process sandbox the file
// is the host's; in the linux sandbox it is in the environment's own /tmp (a tmpfs of its mount
// namespace), which the test reaches through /proc/PID/root of a process of the environment
// (found by a variable only that function has) and keeps open, so that it can still read the
// file once the environment is gone.
type probeLog struct {
	env  map[string]string // the function's variables that point the probe at its file
	path string            // process sandbox: the host file
	mark string            // linux sandbox: FLINT_TEST_ENV's value
	root *os.Root          // linux sandbox: the environment's /tmp, once attached
}

func newProbeLog(t *testing.T, sandbox, name string) *probeLog {
	if sandbox == "process" {
		p := filepath.Join(t.TempDir(), name+".jsonl")
		return &probeLog{path: p, env: map[string]string{"PROBE_LOG": p}}
	}
	mark := fmt.Sprintf("%s-%d", name, time.Now().UnixNano())
	return &probeLog{mark: mark, env: map[string]string{"PROBE_LOG": "/tmp/flint-probe.jsonl",
		"PROBE_BIND": "sandbox.localdomain", "FLINT_TEST_ENV": mark}}
}

// attach finds the environment (linux sandbox) and holds its /tmp open: call it while the
// environment runs.
func (p *probeLog) attach(t *testing.T) {
	t.Helper()
	if p.mark == "" {
		return
	}
	want := []byte("\x00FLINT_TEST_ENV=" + p.mark + "\x00")
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range ents {
		b, err := os.ReadFile("/proc/" + de.Name() + "/environ")
		if err != nil || !bytes.Contains(append([]byte{0}, b...), want) {
			continue
		}
		root, err := os.OpenRoot("/proc/" + de.Name() + "/root/tmp")
		if err != nil {
			continue // it ended meanwhile
		}
		p.root = root
		t.Cleanup(func() { root.Close() })
		return
	}
	t.Fatalf("no process of the environment (FLINT_TEST_ENV=%s) found", p.mark)
}

func (p *probeLog) read(t *testing.T) []map[string]any {
	t.Helper()
	var b []byte
	if p.root != nil {
		b, _ = p.root.ReadFile("flint-probe.jsonl")
	} else if p.path != "" {
		b, _ = os.ReadFile(p.path)
	}
	return parseProbeLog(t, string(b))
}

// awaitShutdown waits until the probe recorded a SHUTDOWN event and returns it.
func (p *probeLog) awaitShutdown(t *testing.T, within time.Duration) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(within); ; {
		for _, l := range p.read(t) {
			if ev, _ := l["event"].(map[string]any); l["kind"] == "event" && ev["eventType"] == "SHUTDOWN" {
				return ev
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no SHUTDOWN recorded within %v; the probe recorded %d lines", within, len(p.read(t)))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkShutdown checks a SHUTDOWN event's reason and that its deadline is about 2 s (the
// budget with external extensions) after sent.
func checkShutdown(t *testing.T, ev map[string]any, reason string, sent time.Time) {
	t.Helper()
	if ev["shutdownReason"] != reason {
		t.Errorf("SHUTDOWN reason %v, want %s", ev["shutdownReason"], reason)
	}
	dl := time.UnixMilli(int64(ev["deadlineMs"].(float64)))
	if d := dl.Sub(sent); d < 1500*time.Millisecond || d > 15*time.Second {
		t.Errorf("SHUTDOWN deadline %v after the environment's end began, want about 2 s", d)
	}
}

// TestExtensionShutdown: an external extension gets SHUTDOWN, with Lambda's reason and a
// deadline 2 s ahead, whenever its environment ends, in each sandbox: the function deleted or
// updated (spindown), the environment reaped idle (spindown), the invocation timed out
// (timeout), the runtime crashed (failure), the server stopping (spindown).
func TestExtensionShutdown(t *testing.T) {
	for _, sb := range extSandboxes(t) {
		t.Run(sb, func(t *testing.T) { testExtensionShutdown(t, sb) })
	}
}

const shutdownHandler = `import os, time

def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("crash"):
        os._exit(3)
    return "ok"
`

func testExtensionShutdown(t *testing.T, sandbox string) {
	ctx := context.Background()
	probe, err := os.ReadFile("testdata/extensions/flint-probe")
	if err != nil {
		t.Fatal(err)
	}
	layerZip := mustZip(t, map[string]zipEntry{"extensions/flint-probe": {body: string(probe), mode: 0o755}})
	code := mustZip(t, map[string]zipEntry{"app.py": {body: shutdownHandler}})
	setup := func(t *testing.T, s *server.Server, name string, timeout int32) (*lambda.Client, *probeLog) {
		c := newClient(s.URL())
		layer, err := c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("probe-" + name),
			Content: &types.LayerVersionContentInput{ZipFile: layerZip}})
		if err != nil {
			t.Fatal(err)
		}
		pl := newProbeLog(t, sandbox, name)
		createFunction(t, c, name, "python3.11", "app.handler", code, func(in *lambda.CreateFunctionInput) {
			in.Layers = []string{aws.ToString(layer.LayerVersionArn)}
			in.Environment = &types.Environment{Variables: pl.env}
			in.Timeout = aws.Int32(timeout)
		})
		if out := invoke(t, c, name, `{}`); out.FunctionError != nil {
			t.Fatalf("invoke %s = %s %s", name, aws.ToString(out.FunctionError), out.Payload)
		}
		pl.attach(t)
		return c, pl
	}

	s := startServer(t, t.TempDir(), func(c *config.Config) { c.Sandbox = sandbox })
	t.Run("deleted", func(t *testing.T) {
		c, pl := setup(t, s, "sd-deleted", 10)
		sent := time.Now()
		if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("sd-deleted")}); err != nil {
			t.Fatal(err)
		}
		checkShutdown(t, pl.awaitShutdown(t, 10*time.Second), "spindown", sent)
	})
	t.Run("updated", func(t *testing.T) {
		c, pl := setup(t, s, "sd-updated", 10)
		env := map[string]string{"UPDATED": "1"}
		for k, v := range pl.env {
			env[k] = v
		}
		sent := time.Now()
		if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("sd-updated"),
			Environment: &types.Environment{Variables: env}}); err != nil {
			t.Fatal(err)
		}
		checkShutdown(t, pl.awaitShutdown(t, 10*time.Second), "spindown", sent)
	})
	t.Run("timed out", func(t *testing.T) {
		c, pl := setup(t, s, "sd-timeout", 1)
		sent := time.Now()
		if out := invoke(t, c, "sd-timeout", `{"sleep": 5}`); aws.ToString(out.FunctionError) != "Unhandled" {
			t.Fatalf("invoke = %s %s, want a timeout", aws.ToString(out.FunctionError), out.Payload)
		}
		checkShutdown(t, pl.awaitShutdown(t, 10*time.Second), "timeout", sent)
	})
	t.Run("runtime crashed", func(t *testing.T) {
		c, pl := setup(t, s, "sd-crash", 10)
		sent := time.Now()
		if out := invoke(t, c, "sd-crash", `{"crash": true}`); aws.ToString(out.FunctionError) != "Unhandled" {
			t.Fatalf("invoke = %s %s, want Runtime.ExitError", aws.ToString(out.FunctionError), out.Payload)
		}
		checkShutdown(t, pl.awaitShutdown(t, 10*time.Second), "failure", sent)
	})
	t.Run("server stopping", func(t *testing.T) {
		s := startServer(t, t.TempDir(), func(c *config.Config) { c.Sandbox = sandbox })
		_, pl := setup(t, s, "sd-stop", 10)
		sent := time.Now()
		s.Close()
		checkShutdown(t, pl.awaitShutdown(t, 10*time.Second), "spindown", sent)
	})
	t.Run("reaped", func(t *testing.T) {
		s := startServer(t, t.TempDir(), func(c *config.Config) { c.Sandbox = sandbox; c.KeepAlive = 2 * time.Second })
		_, pl := setup(t, s, "sd-reaped", 10)
		sent := time.Now()
		ev := pl.awaitShutdown(t, 20*time.Second)
		checkShutdown(t, ev, "spindown", sent.Add(time.Second)) // reaped 2 s or more after
	})
}

// TestExtensionsInvalidEntrypoint: a bootstrap that cannot be executed is Runtime.
// InvalidEntrypoint with Lambda's message whether or not the function's layers hold external
// extensions, in each sandbox (the runtime's exec is the sandbox's own, not a launcher's: a
// shell's exec turned "permission denied" into Runtime.ExitError, and ran a bootstrap of no
// executable format as a shell script).
func TestExtensionsInvalidEntrypoint(t *testing.T) {
	faulty, err := os.ReadFile("testdata/extensions/flint-faulty")
	if err != nil {
		t.Fatal(err)
	}
	for _, sb := range extSandboxes(t) {
		t.Run(sb, func(t *testing.T) {
			s := startServer(t, t.TempDir(), func(c *config.Config) { c.Sandbox = sb })
			c := newClient(s.URL())
			layer, err := c.PublishLayerVersion(context.Background(), &lambda.PublishLayerVersionInput{LayerName: aws.String("ext"),
				Content: &types.LayerVersionContentInput{ZipFile: mustZip(t, map[string]zipEntry{"extensions/flint-faulty": {body: string(faulty), mode: 0o755}})}})
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name string
				boot zipEntry
				want string
			}{
				{"not executable", zipEntry{body: "#!/bin/sh\necho hi\n", mode: 0o644}, "fork/exec /var/task/bootstrap: permission denied"},
				{"no executable format", zipEntry{body: "echo hi\n", mode: 0o755}, "fork/exec /var/task/bootstrap: exec format error"},
				{"interpreter missing", zipEntry{body: "#!/nonexistent/sh\n", mode: 0o755}, "fork/exec /var/task/bootstrap: no such file or directory"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					for _, withExt := range []bool{false, true} {
						fn := strings.ReplaceAll(tc.name, " ", "-") + map[bool]string{false: "-plain", true: "-ext"}[withExt]
						createFunction(t, c, fn, "provided.al2023", "bootstrap", mustZip(t, map[string]zipEntry{"bootstrap": tc.boot}),
							func(in *lambda.CreateFunctionInput) {
								if withExt {
									in.Layers = []string{aws.ToString(layer.LayerVersionArn)}
								}
							})
						out := invoke(t, c, fn, `{}`)
						e := functionError(t, out)
						id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
						if want := "RequestId: " + id + " Error: " + tc.want; e.ErrorType != "Runtime.InvalidEntrypoint" || e.ErrorMessage != want {
							t.Errorf("extensions %v: error %+v, want Runtime.InvalidEntrypoint %q", withExt, e, want)
						}
					}
				})
			}
		})
	}
}

// TestTelemetrySandboxLocaldomainProcess: in the process sandbox (the host's network, whose
// /etc/hosts does not name sandbox.localdomain) an extension that subscribes with
// http://sandbox.localdomain:PORT gets its telemetry: Flint resolves the name itself, to the
// environment's loopback, when it delivers; the listener may be on the IPv4 or the IPv6
// loopback (a listener bound to "localhost" is on ::1 only where it resolves there first).
func TestTelemetrySandboxLocaldomainProcess(t *testing.T) {
	s := startServer(t, t.TempDir(), func(c *config.Config) { c.Sandbox = "process" })
	c := newClient(s.URL())
	probe, err := os.ReadFile("testdata/extensions/flint-probe")
	if err != nil {
		t.Fatal(err)
	}
	layer, err := c.PublishLayerVersion(context.Background(), &lambda.PublishLayerVersionInput{LayerName: aws.String("probe"),
		Content: &types.LayerVersionContentInput{ZipFile: mustZip(t, map[string]zipEntry{"extensions/flint-probe": {body: string(probe), mode: 0o755}})}})
	if err != nil {
		t.Fatal(err)
	}
	for _, bind := range []string{"127.0.0.1", "::1"} {
		t.Run(bind, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "probe.jsonl")
			fn := map[string]string{"127.0.0.1": "localdomain-ipv4", "::1": "localdomain-ipv6"}[bind]
			createFunction(t, c, fn, "python3.11", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: probeHandler}}),
				func(in *lambda.CreateFunctionInput) {
					in.Layers = []string{aws.ToString(layer.LayerVersionArn)}
					in.Environment = &types.Environment{Variables: map[string]string{"PROBE_LOG": log, "PROBE_BIND": bind}}
				})
			var ids []string
			for i := range 2 {
				out := invoke(t, c, fn, fmt.Sprintf(`{"n":%d}`, i), withTail)
				if out.FunctionError != nil {
					t.Fatalf("invoke = %s %s", aws.ToString(out.FunctionError), out.Payload)
				}
				id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
				ids = append(ids, id)
			}
			for deadline := time.Now().Add(20 * time.Second); ; {
				b, _ := os.ReadFile(log)
				lines := parseProbeLog(t, string(b))
				if reports(lines, ids) == len(ids) {
					for _, l := range lines {
						if l["kind"] == "subscribed" && l["status"] != float64(200) {
							t.Errorf("subscription with http://sandbox.localdomain:PORT = %v", l)
						}
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the extension listening on %s got platform.report for %d of %d invocations; it recorded:\n%s", bind, reports(lines, ids), len(ids), b)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// holderExtension starts a process that leaves the environment's process group (a session of
// its own, so Destroy in the process sandbox does not reach it) with the extension's output,
// writes its pid to HOLDER_PID, and becomes flint-faulty (lib/flint-faulty in the same layer,
// under the name it was started as).
const holderExtension = `#!/usr/bin/python3
import os, subprocess
p = subprocess.Popen(["sleep", "300"], start_new_session=True)
with open(os.environ["HOLDER_PID"], "w") as f:
    f.write(str(p.pid))
real = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib", "flint-faulty")
os.execv("/usr/bin/python3", ["python3", real])
`

// TestExtensionOutputHeldPastDestroy: a process that escaped the process sandbox's Destroy and
// holds an extension's output does not keep the server from stopping (the output's reader is
// woken when the environment is destroyed).
func TestExtensionOutputHeldPastDestroy(t *testing.T) {
	s := startServer(t, t.TempDir(), func(c *config.Config) { c.Sandbox = "process" })
	c := newClient(s.URL())
	faulty, err := os.ReadFile("testdata/extensions/flint-faulty")
	if err != nil {
		t.Fatal(err)
	}
	layer, err := c.PublishLayerVersion(context.Background(), &lambda.PublishLayerVersionInput{LayerName: aws.String("holder"),
		Content: &types.LayerVersionContentInput{ZipFile: mustZip(t, map[string]zipEntry{
			"extensions/flint-faulty": {body: holderExtension, mode: 0o755},
			"lib/flint-faulty":        {body: string(faulty), mode: 0o755}})}})
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(t.TempDir(), "holder.pid")
	createFunction(t, c, "holder", "python3.11", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return 'ok'\n"}}),
		func(in *lambda.CreateFunctionInput) {
			in.Layers = []string{aws.ToString(layer.LayerVersionArn)}
			in.Environment = &types.Environment{Variables: map[string]string{"HOLDER_PID": pidFile}}
		})
	if out := invoke(t, c, "holder", `{}`); out.FunctionError != nil {
		t.Fatalf("invoke = %s %s", aws.ToString(out.FunctionError), out.Payload)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	fmt.Sscan(string(b), &pid)
	defer syscall.Kill(pid, syscall.SIGKILL)
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(60 * time.Second):
		syscall.Kill(pid, syscall.SIGKILL)
		<-closed
		t.Fatal("the server did not stop within 60 s while a process outside the environment held an extension's output")
	}
}
