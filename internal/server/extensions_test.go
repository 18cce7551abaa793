package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/google/go-cmp/cmp"

	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/server"
)

// probeHandler is the function beside the extension: it prints a line per invocation and, asked
// to, returns what the extension recorded (in the linux sandbox that file is in the
// environment's own /tmp).
const probeHandler = `import os

def handler(event, context):
    if event.get("dump"):
        with open(os.environ["PROBE_LOG"]) as f:
            return f.read()
    print("hello", event.get("n"))
    return {"n": event.get("n")}
`

// TestExtensions runs external extensions built as AWS documents them (executables in a layer's
// extensions/ directory that speak only the published Extensions and Telemetry APIs, nothing of
// Flint in them) beside Python and Go functions, in each sandbox, on one server per sandbox:
// externalExtension (testdata/extensions/flint-probe) and extensionFailures
// (testdata/extensions/flint-faulty).
func TestExtensions(t *testing.T) {
	sandboxes := []string{"process"}
	if os.Geteuid() == 0 {
		sandboxes = append(sandboxes, "linux")
	} else {
		t.Log("not root: the linux sandbox is not tried")
	}
	for _, sb := range sandboxes {
		t.Run(sb, func(t *testing.T) {
			s := startServer(t, t.TempDir(), func(c *config.Config) { c.Sandbox = sb })
			t.Run("external extension", func(t *testing.T) { testExternalExtension(t, s, sb) })
			t.Run("failures", func(t *testing.T) { testExtensionFailures(t, s, sb) })
		})
	}
}

// testExternalExtension: flint-probe registers, is refused what Lambda refuses, subscribes to
// telemetry, gets an INVOKE per invocation and platform.report for each, and SHUTDOWN when the
// environment ends. What it receives is compared with testdata/extensions/*.golden.json (the
// values that vary masked after they are checked), and each event's shape with AWS's
// documented examples (testdata/extensions/aws-examples.json). A Go function (aws-lambda-go,
// unmodified) runs with the same extension.
func testExternalExtension(t *testing.T, s *server.Server, sandbox string) {
	c := newClient(s.URL())
	ctx := context.Background()
	probe, err := os.ReadFile("testdata/extensions/flint-probe")
	if err != nil {
		t.Fatal(err)
	}
	layer, err := c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("probe-ext"),
		Content: &types.LayerVersionContentInput{ZipFile: mustZip(t, map[string]zipEntry{"extensions/flint-probe": {body: string(probe), mode: 0o755}})}})
	if err != nil {
		t.Fatal(err)
	}
	logPath := "/tmp/flint-probe.jsonl" // the environment's own /tmp
	env := map[string]string{"PROBE_LOG": logPath, "PROBE_BIND": "sandbox.localdomain"}
	if sandbox == "process" {
		// The host's /tmp and network: the process sandbox maps nothing, and the host's
		// /etc/hosts does not name sandbox.localdomain.
		env = map[string]string{"PROBE_LOG": filepath.Join(t.TempDir(), "probe.jsonl")}
		logPath = env["PROBE_LOG"]
	}
	created := createFunction(t, c, "probe", "python3.11", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: probeHandler}}),
		func(in *lambda.CreateFunctionInput) {
			in.Layers = []string{aws.ToString(layer.LayerVersionArn)}
			in.Environment = &types.Environment{Variables: env}
		})

	// With LogType Tail the answer waits for the extension to finish (REPORT counts its time),
	// so the next invocation finds this environment idle rather than still busy with the
	// extension's post-invoke work (which would make it cold-start another, as on Lambda).
	const n = 3
	var ids []string
	for i := range n {
		out := invoke(t, c, "probe", fmt.Sprintf(`{"n":%d}`, i), withTail)
		if out.FunctionError != nil || string(out.Payload) != fmt.Sprintf(`{"n": %d}`, i) {
			t.Fatalf("invoke %d with the extension = %s %s", i, aws.ToString(out.FunctionError), out.Payload)
		}
		id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
		ids = append(ids, id)
	}

	// The extension gets platform.report once it asked for its next event after each
	// invocation, buffered for up to timeoutMs: read until it has them all.
	var lines []map[string]any
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := invoke(t, c, "probe", `{"dump":true}`, withTail)
		var text string
		if err := json.Unmarshal(out.Payload, &text); err != nil {
			t.Fatalf("dump = %s %s", aws.ToString(out.FunctionError), out.Payload)
		}
		lines = parseProbeLog(t, text)
		if reports(lines, ids) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the extension got platform.report for %d of %d invocations; it recorded:\n%s", reports(lines, ids), n, text)
		}
		time.Sleep(200 * time.Millisecond)
	}
	checkAWSShapes(t, lines)
	// Its own output is an "extension" event (when it arrives among the others varies).
	var extLines []any
	for _, e := range telemetryEvents(lines) {
		if e["type"] == "extension" {
			extLines = append(extLines, e["record"])
		}
	}
	if len(extLines) != 1 || extLines[0] != "[flint-probe] subscribed" {
		t.Errorf("extension events %v, want the extension's one line", extLines)
	}
	got := probeView(t, lines, ids, aws.ToString(created.FunctionArn))
	compareGolden(t, "testdata/extensions/external-extension.golden.json", got)

	// aws-lambda-go's runtime client, unmodified, with the extension beside it.
	createFunction(t, c, "probe-go", "provided.al2023", "bootstrap", goEchoZip, func(in *lambda.CreateFunctionInput) {
		in.Layers = []string{aws.ToString(layer.LayerVersionArn)}
		in.Environment = &types.Environment{Variables: map[string]string{"PROBE_LOG": logPath + ".go"}}
	})
	for range 2 {
		if out := invoke(t, c, "probe-go", `{"go":true}`); out.FunctionError != nil || string(out.Payload) != `{"go":true}` {
			t.Errorf("go echo with the extension = %s %s", aws.ToString(out.FunctionError), out.Payload)
		}
	}

	if sandbox != "process" {
		return // the environment's /tmp goes with it: SHUTDOWN is checked where the file is the host's
	}
	// Deleting the function ends its environment: SHUTDOWN (spindown) with a 2 s deadline.
	sent := time.Now()
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("probe")}); err != nil {
		t.Fatal(err)
	}
	var shutdown map[string]any
	for deadline := time.Now().Add(10 * time.Second); shutdown == nil; {
		b, _ := os.ReadFile(logPath)
		for _, l := range parseProbeLog(t, string(b)) {
			if ev, _ := l["event"].(map[string]any); l["kind"] == "event" && ev["eventType"] == "SHUTDOWN" {
				shutdown = l
			}
		}
		if shutdown == nil && time.Now().After(deadline) {
			t.Fatalf("no SHUTDOWN event recorded after DeleteFunction:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ev := shutdown["event"].(map[string]any)
	dl := time.UnixMilli(int64(ev["deadlineMs"].(float64)))
	if d := dl.Sub(sent); d < 1500*time.Millisecond || d > 10*time.Second {
		t.Errorf("SHUTDOWN deadline %v after the delete, want about 2 s (external extensions' budget)", d)
	}
	ev["deadlineMs"] = "<deadline>"
	compareGolden(t, "testdata/extensions/shutdown.golden.json", shutdown)
}

func parseProbeLog(t *testing.T, text string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("probe log line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// telemetryEvents lists the telemetry events the extension received, in order.
func telemetryEvents(lines []map[string]any) []map[string]any {
	var evs []map[string]any
	for _, l := range lines {
		if l["kind"] != "telemetry" {
			continue
		}
		for _, e := range l["events"].([]any) {
			evs = append(evs, e.(map[string]any))
		}
	}
	return evs
}

func reports(lines []map[string]any, ids []string) int {
	n := 0
	for _, e := range telemetryEvents(lines) {
		if rec, _ := e["record"].(map[string]any); e["type"] == "platform.report" && rec != nil {
			for _, id := range ids {
				if rec["requestId"] == id {
					n++
				}
			}
		}
	}
	return n
}

// xrayHeader is an X-Ray trace header as every invocation carries one.
var xrayHeader = regexp.MustCompile(`^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=[01]$`)

// maskTracing checks an event's or record's tracing (the invocation's X-Ray header) and masks
// what varies in it.
func maskTracing(t *testing.T, m map[string]any) {
	t.Helper()
	tr, ok := m["tracing"].(map[string]any)
	if !ok {
		return
	}
	if tr["type"] != "X-Amzn-Trace-Id" || !xrayHeader.MatchString(fmt.Sprint(tr["value"])) {
		t.Errorf("tracing %v, want type X-Amzn-Trace-Id and an X-Ray header", tr)
	}
	tr["value"] = "<trace>"
	if _, ok := tr["spanId"]; ok {
		tr["spanId"] = "<span>"
	}
}

var telemetryTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

// probeView is what the extension recorded, for the invocations ids, with every value that
// varies checked and then masked: request ids become <request N>, times and durations <ms>.
func probeView(t *testing.T, lines []map[string]any, ids []string, arn string) map[string]any {
	t.Helper()
	reqName := func(id any) (string, bool) {
		for i, x := range ids {
			if x == id {
				return fmt.Sprintf("<request %d>", i+1), true
			}
		}
		return "", false
	}
	view := map[string]any{}
	var probes, events []any
	for _, l := range lines {
		switch l["kind"] {
		case "registered", "subscribed":
			view[l["kind"].(string)] = l
		case "probe":
			probes = append(probes, l)
		case "event":
			ev := l["event"].(map[string]any)
			name, ok := reqName(ev["requestId"])
			if !ok {
				continue // the dump's own
			}
			ev["requestId"] = name
			if ev["invokedFunctionArn"] != arn {
				t.Errorf("INVOKE invokedFunctionArn = %v, want %s", ev["invokedFunctionArn"], arn)
			}
			ev["invokedFunctionArn"] = "<function arn>"
			if dl, _ := ev["deadlineMs"].(float64); math.Abs(float64(time.Now().UnixMilli())-dl) > float64(time.Minute.Milliseconds()) {
				t.Errorf("INVOKE deadlineMs = %v, not about now + the timeout", ev["deadlineMs"])
			}
			ev["deadlineMs"] = "<deadline>"
			maskTracing(t, ev)
			events = append(events, l)
		}
	}
	view["probes"], view["events"] = probes, events
	var tel []any
	seen := 0
	for _, e := range telemetryEvents(lines) {
		if seen == len(ids) {
			break // past the last report of ours: the dump's own events
		}
		if e["type"] == "extension" {
			continue // checked apart: its place among the others varies
		}
		if !telemetryTime.MatchString(fmt.Sprint(e["time"])) {
			t.Errorf("telemetry time %v, want Lambda's 2022-10-12T00:00:15.064Z format", e["time"])
		}
		e["time"] = "<time>"
		if rec, ok := e["record"].(map[string]any); ok {
			if id, ok := rec["requestId"]; ok {
				name, ours := reqName(id)
				if !ours {
					continue
				}
				rec["requestId"] = name
			}
			maskTracing(t, rec)
			if m, ok := rec["metrics"].(map[string]any); ok {
				// durationMs has 2 decimals; billedDurationMs is the ceiling of the exact duration.
				if d, ok := m["durationMs"].(float64); ok && m["billedDurationMs"] != nil {
					if b := m["billedDurationMs"].(float64); b != math.Max(1, math.Ceil(d)) && b != math.Max(1, math.Ceil(d+0.005)) {
						t.Errorf("%s billedDurationMs %v for durationMs %v", e["type"], b, d)
					}
				}
				for k, v := range m {
					switch k {
					case "durationMs", "initDurationMs", "billedDurationMs":
						if f, _ := v.(float64); f < 0 {
							t.Errorf("%s %s = %v", e["type"], k, v)
						}
						m[k] = "<ms>"
					case "maxMemoryUsedMB":
						m[k] = "<MB>"
					}
				}
			}
			if e["type"] == "platform.report" {
				seen++
			}
		}
		tel = append(tel, e)
	}
	view["telemetry"] = tel
	return view
}

// compareGolden compares got, as indented JSON, with the golden file (rewritten with -update).
func compareGolden(t *testing.T, path string, got any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(got); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if diff := cmp.Diff(string(want), string(b)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

// testExtensionFailures: an external extension's failures are the invocation's, reported as
// Lambda reports them (Extension.Crash, Extension.InitError, Extension.ExitError in the error
// and in REPORT), and the environment is not reused after them; an extension's work after
// INVOKE holds the environment and counts in REPORT's Duration. testdata/extensions/flint-faulty
// fails the way its FAULT variable says.
func testExtensionFailures(t *testing.T, s *server.Server, sandbox string) {
	c := newClient(s.URL())
	ctx := context.Background()
	faulty, err := os.ReadFile("testdata/extensions/flint-faulty")
	if err != nil {
		t.Fatal(err)
	}
	layer, err := c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("faulty-ext"),
		Content: &types.LayerVersionContentInput{ZipFile: mustZip(t, map[string]zipEntry{"extensions/flint-faulty": {body: string(faulty), mode: 0o755}})}})
	if err != nil {
		t.Fatal(err)
	}
	fn := func(name string, env map[string]string, timeout ...int32) {
		createFunction(t, c, name, "python3.11", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return 'handled'\n"}}),
			func(in *lambda.CreateFunctionInput) {
				in.Layers = []string{aws.ToString(layer.LayerVersionArn)}
				in.Environment = &types.Environment{Variables: env}
				in.Timeout = aws.Int32(5)
				if len(timeout) > 0 {
					in.Timeout = aws.Int32(timeout[0])
				}
			})
	}
	errorType := func(out *lambda.InvokeOutput) string {
		var e struct{ ErrorType string }
		_ = json.Unmarshal(out.Payload, &e)
		return e.ErrorType
	}

	t.Run("crash during INIT", func(t *testing.T) {
		fn("crash-init", map[string]string{"FAULT": "crash-init"})
		out := invoke(t, c, "crash-init", `{}`, withTail)
		if aws.ToString(out.FunctionError) != "Unhandled" || errorType(out) != "Extension.Crash" {
			t.Errorf("invoke = %s %s, want Unhandled Extension.Crash", aws.ToString(out.FunctionError), out.Payload)
		}
		if tail := decodeTail(t, out); !strings.Contains(tail, "Error Type: Extension.Crash") {
			t.Errorf("log tail has no Extension.Crash REPORT:\n%s", tail)
		}
	})
	t.Run("init error", func(t *testing.T) {
		fn("init-error", map[string]string{"FAULT": "init-error"})
		out := invoke(t, c, "init-error", `{}`, withTail)
		if aws.ToString(out.FunctionError) != "Unhandled" || errorType(out) != "Extension.InitError" {
			t.Errorf("invoke = %s %s, want Unhandled Extension.InitError", aws.ToString(out.FunctionError), out.Payload)
		}
	})
	for _, tc := range []struct{ fault, want string }{{"crash-invoke", "Extension.Crash"}, {"exit-error", "Extension.ExitError"}} {
		t.Run(tc.fault, func(t *testing.T) {
			fn(tc.fault, map[string]string{"FAULT": tc.fault})
			out := invoke(t, c, tc.fault, `{}`, withTail)
			// The runtime had answered: the caller gets its answer; the record says what failed.
			if out.FunctionError != nil || string(out.Payload) != `"handled"` {
				t.Errorf("invoke = %s %s, want the function's answer", aws.ToString(out.FunctionError), out.Payload)
			}
			tail := decodeTail(t, out)
			if !strings.Contains(tail, "Status: error") || !strings.Contains(tail, "Error Type: "+tc.want) {
				t.Errorf("REPORT does not say %s:\n%s", tc.want, tail)
			}
			// Not reused: the next invocation is a cold start (its REPORT has Init Duration).
			if tail := decodeTail(t, invoke(t, c, tc.fault, `{}`, withTail)); !strings.Contains(tail, "Init Duration") {
				t.Errorf("the environment was reused after %s:\n%s", tc.want, tail)
			}
		})
	}
	t.Run("post-invoke work past the timeout", func(t *testing.T) {
		fn("slow-timeout", map[string]string{"FAULT": "slow", "SLOW_S": "3"}, 1)
		tail := decodeTail(t, invoke(t, c, "slow-timeout", `{}`, withTail))
		if !strings.Contains(tail, "Status: timeout") {
			t.Errorf("an extension working 3 s after INVOKE under a 1 s timeout: REPORT has no Status: timeout:\n%s", tail)
		}
	})
	t.Run("post-invoke work", func(t *testing.T) {
		fn("slow", map[string]string{"FAULT": "slow", "SLOW_S": "0.6"})
		invoke(t, c, "slow", `{}`) // INIT
		start := time.Now()
		out := invoke(t, c, "slow", `{}`, withTail)
		took := time.Since(start)
		tail := decodeTail(t, out)
		m := regexp.MustCompile(`Duration: ([0-9.]+) ms`).FindStringSubmatch(tail)
		if m == nil {
			t.Fatalf("no Duration in REPORT:\n%s", tail)
		}
		var ms float64
		fmt.Sscan(m[1], &ms)
		if ms < 600 || took < 600*time.Millisecond {
			t.Errorf("REPORT Duration %v ms (answered in %v): the extension's 600 ms after INVOKE are not in it", ms, took)
		}
	})
	if sandbox != "process" {
		return // the heartbeat file must be the host's
	}
	t.Run("SHUTDOWN deadline enforced", func(t *testing.T) {
		hb := filepath.Join(t.TempDir(), "heartbeat")
		fn("hang", map[string]string{"FAULT": "hang-shutdown", "HEARTBEAT": hb})
		invoke(t, c, "hang", `{}`)
		if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("hang")}); err != nil {
			t.Fatal(err)
		}
		// The extension writes until it is killed: wait until the file stops growing.
		var last []byte
		for deadline := time.Now().Add(15 * time.Second); ; {
			time.Sleep(time.Second)
			b, _ := os.ReadFile(hb)
			if len(b) > 0 && string(b) == string(last) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the extension still runs 15 s after SHUTDOWN (its deadline was 2 s)")
			}
			last = b
		}
		lines := strings.Split(strings.TrimSpace(string(last)), "\n")
		var first, end, deadlineMs float64
		fmt.Sscan(lines[0], &first, &deadlineMs)
		fmt.Sscan(lines[len(lines)-1], &end)
		if ran := time.Duration((end - first) * float64(time.Second)); ran < time.Second || ran > 4*time.Second {
			t.Errorf("the extension ran %v after SHUTDOWN, want about its 2 s", ran)
		}
		if d := deadlineMs/1000 - first; d < 1.5 || d > 2.5 {
			t.Errorf("SHUTDOWN deadlineMs %.0f is %.2f s after the extension got it, want 2 s", deadlineMs, d)
		}
	})
}

// checkAWSShapes compares each event the extension received with AWS's documented example of its
// type (testdata/extensions/aws-examples.json: the examples of the Extensions API and Telemetry
// API schema reference pages): the same kind of record, no field the documentation does not
// have, and every documented field but those it calls optional.
func checkAWSShapes(t *testing.T, lines []map[string]any) {
	t.Helper()
	b, err := os.ReadFile("testdata/extensions/aws-examples.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Events    map[string]map[string]any `json:"events"`
		Telemetry map[string]map[string]any `json:"telemetry"`
		Optional  map[string][]string       `json:"optional"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var compare func(what string, got, want map[string]any, optional []string)
	compare = func(what string, got, want map[string]any, optional []string) {
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: field %q is not in AWS's documented example %v", what, k, want)
			}
		}
		for k, v := range want {
			g, ok := got[k]
			if !ok {
				if !slices.Contains(optional, k) {
					t.Errorf("%s: no %q, which AWS's documented example has", what, k)
				}
				continue
			}
			if fmt.Sprintf("%T", g) != fmt.Sprintf("%T", v) {
				t.Errorf("%s: %q is a %T, AWS's documented example has a %T", what, k, g, v)
			}
			if gm, ok := g.(map[string]any); ok {
				compare(what+"."+k, gm, v.(map[string]any), optional)
			}
		}
	}
	for _, l := range lines {
		if l["kind"] == "event" {
			ev := l["event"].(map[string]any)
			want, ok := doc.Events[fmt.Sprint(ev["eventType"])]
			if !ok {
				t.Errorf("event %v has no documented example", ev["eventType"])
				continue
			}
			compare(fmt.Sprint(ev["eventType"]), ev, want, doc.Optional[fmt.Sprint(ev["eventType"])])
		}
	}
	for _, e := range telemetryEvents(lines) {
		typ := fmt.Sprint(e["type"])
		want, ok := doc.Telemetry[typ]
		if !ok {
			t.Errorf("telemetry event %s has no documented example", typ)
			continue
		}
		compare(typ, e, want, doc.Optional[typ])
	}
}
