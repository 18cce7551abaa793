package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/flint-run/flint/internal/config"
)

const probePy = `import os, socket, errno, json
def attempt(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
def write(path):
    with open(path, "w") as f:
        f.write("x")
def connect(addr):
    s = socket.create_connection(addr, timeout=2)
    s.close()
def handler(event, context):
    return {
        "hostname": socket.gethostname(),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "root": attempt(lambda: write("/x")),
        "task": attempt(lambda: write("/var/task/x")),
        "tmp": attempt(lambda: write("/tmp/x")),
        "data": os.path.exists(event["data"]),
        "home": os.path.exists("/root") and len(os.listdir("/root")) > 0,
        "api": os.environ["AWS_LAMBDA_RUNTIME_API"],
        "loopback_out": attempt(lambda: connect(("127.0.0.1", event["port"]))),
        "outside": attempt(lambda: connect((event["host"], event["port"]))),
        "ifaces": sorted(os.listdir("/sys/class/net")) if os.path.exists("/sys/class/net") else [],
    }
`

// TestLinuxSandbox runs functions in the linux sandbox through the whole server.
func TestLinuxSandbox(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the linux sandbox tests need root (CI runs as root)")
	}
	dir := t.TempDir()
	s := startServer(t, dir, func(c *config.Config) { c.Sandbox = "linux" })
	if got := s.Sandbox(); got != "linux" {
		t.Fatalf("sandbox = %q, want linux", got)
	}
	c := newClient(s.URL())

	createFunction(t, c, "echo", "provided.al2023", "bootstrap", goEchoZip)
	if out := invoke(t, c, "echo", `{"in":"sandbox"}`); string(out.Payload) != `{"in":"sandbox"}` {
		t.Errorf("go echo in the sandbox = %s (%v)", out.Payload, aws.ToString(out.FunctionError))
	}

	// Idle, it is frozen (FreezeAfter, 100 ms by default); the next invoke thaws it.
	frozen := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if s.Workers().Stats().Frozen == 1 {
			frozen = true
			break
		}
	}
	if !frozen {
		t.Errorf("the idle environment was not frozen: %+v", s.Workers().Stats())
	}
	if out := invoke(t, c, "echo", `{"after":"thaw"}`, withTail); string(out.Payload) != `{"after":"thaw"}` || strings.Contains(decodeTail(t, out), "Init Duration") {
		t.Errorf("invoke of a frozen environment = %s (%v)", out.Payload, aws.ToString(out.FunctionError))
	}

	// Flint's own API on the host's loopback, which nothing in the sandbox may reach, and the
	// host's own address.
	api, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(api.Port())
	hostIP := "192.0.2.1" // documentation address: unroutable anyway, never contacted from the host
	createFunction(t, c, "probe", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: probePy}}),
		func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(512) })
	ev, _ := json.Marshal(map[string]any{"data": dir, "port": port, "host": hostIP})
	out := invoke(t, c, "probe", string(ev))
	var p struct {
		Hostname, Root, Task, Tmp, API string
		Pids                           []int
		Data, Home                     bool
		LoopbackOut                    string `json:"loopback_out"`
		Outside                        string
	}
	if err := json.Unmarshal(out.Payload, &p); err != nil {
		t.Fatalf("probe: %s (%v)", out.Payload, err)
	}
	host, _ := os.Hostname()
	if p.Hostname == host || !strings.HasPrefix(p.Hostname, "169.254.") {
		t.Errorf("hostname inside = %q (host %q)", p.Hostname, host)
	}
	if len(p.Pids) > 3 {
		t.Errorf("the function sees processes %v, want only its environment's", p.Pids)
	}
	if p.Root != "EROFS" || p.Task != "EROFS" || p.Tmp != "ok" {
		t.Errorf("writes: / %s, /var/task %s, /tmp %s; want EROFS, EROFS, ok", p.Root, p.Task, p.Tmp)
	}
	if p.Data || p.Home {
		t.Errorf("the data directory (%v) or the host's /root (%v) is visible", p.Data, p.Home)
	}
	if p.API != "127.0.0.1:9001" {
		t.Errorf("AWS_LAMBDA_RUNTIME_API = %q", p.API)
	}
	if p.LoopbackOut == "ok" || p.Outside == "ok" {
		t.Errorf("network reached the host: loopback %s, outside %s", p.LoopbackOut, p.Outside)
	}

	// The same from a Go bootstrap (aws-lambda-go), with the calls seccomp and the dropped
	// capabilities refuse.
	goProbe, err := buildGo(t.TempDir(), "./testdata/probe")
	if err != nil {
		t.Fatal(err)
	}
	createFunction(t, c, "goprobe", "provided.al2023", "bootstrap", goProbe)
	ev, _ = json.Marshal(map[string]any{"data": dir})
	out = invoke(t, c, "goprobe", string(ev))
	var g struct {
		Hostname, Root, Task, Tmp, Mount, Ptrace, Module, Reboot string
		Pids                                                     []int
		Ifaces                                                   []string
		Data                                                     bool
	}
	if err := json.Unmarshal(out.Payload, &g); err != nil {
		t.Fatalf("go probe: %s (%v)", out.Payload, err)
	}
	if g.Hostname == host || len(g.Pids) > 3 || g.Root != "EROFS" || g.Task != "EROFS" || g.Tmp != "ok" || g.Data {
		t.Errorf("go probe sees: %+v", g)
	}
	if g.Mount != "EPERM" || g.Ptrace != "EPERM" || g.Module != "EPERM" || g.Reboot != "EPERM" {
		t.Errorf("privileged calls: mount %s, ptrace %s, init_module %s, reboot %s; want EPERM", g.Mount, g.Ptrace, g.Module, g.Reboot)
	}
	if strings.Join(g.Ifaces, ",") != "lo" {
		t.Errorf("network interfaces %v, want only lo", g.Ifaces)
	}

	// Layers land read-only in /opt, on the paths the runtimes search.
	lay, err := c.PublishLayerVersion(context.Background(), &lambda.PublishLayerVersionInput{LayerName: aws.String("lib"),
		Content: &types.LayerVersionContentInput{ZipFile: mustZip(t, map[string]zipEntry{"python/helper.py": {body: "VALUE = 'from /opt'\n"}})}})
	if err != nil {
		t.Fatal(err)
	}
	createFunction(t, c, "layered", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: "import helper, os\ndef handler(e, c):\n    try:\n        open('/opt/x', 'w')\n        ro = False\n    except OSError:\n        ro = True\n    return [helper.VALUE, ro]\n"}}),
		func(in *lambda.CreateFunctionInput) {
			in.Layers = []string{aws.ToString(lay.LayerVersionArn)}
			in.MemorySize = aws.Int32(512)
		})
	if out := invoke(t, c, "layered", `{}`); string(out.Payload) != `["from /opt", true]` {
		t.Errorf("layer in the sandbox = %s (%s)", out.Payload, aws.ToString(out.FunctionError))
	}

	// Node runs too.
	createFunction(t, c, "node", "nodejs20.x", "index.handler", mustZip(t, map[string]zipEntry{"index.mjs": {body: "export const handler = async (e) => ({ok: e.n + 1})\n"}}),
		func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(512) })
	if out := invoke(t, c, "node", `{"n":1}`); string(out.Payload) != `{"ok":2}` {
		t.Errorf("node in the sandbox = %s", out.Payload)
	}

	// Over its memory: Runtime.OutOfMemory, and the next invoke runs in a fresh environment.
	createFunction(t, c, "hog", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    if e.get('hog'):\n        b = bytearray(400 * 1024 * 1024)\n        return len(b)\n    return 'fine'\n"}}),
		func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(256) })
	out = invoke(t, c, "hog", `{"hog":true}`, withTail)
	if e := functionError(t, out); e.ErrorType != "Runtime.OutOfMemory" {
		t.Errorf("over memory: %+v, want Runtime.OutOfMemory", e)
	}
	if tail := decodeTail(t, out); !strings.Contains(tail, "Max Memory Used: 25") {
		t.Logf("REPORT after OOM:\n%s", tail)
	}
	if out := invoke(t, c, "hog", `{}`); string(out.Payload) != `"fine"` {
		t.Errorf("after OOM = %s (%s)", out.Payload, aws.ToString(out.FunctionError))
	}
}

// TestFreezeRacesInvokes freezes environments as soon as they are idle (FreezeAfter 1 ms) while
// clients keep invoking with short pauses: an environment acquired while its freeze is under way
// must be thawed before the invocation is delivered (else it hangs until its timeout).
func TestFreezeRacesInvokes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the linux sandbox tests need root (CI runs as root)")
	}
	s := startServer(t, t.TempDir(), func(c *config.Config) { c.Sandbox = "linux"; c.FreezeAfter = time.Millisecond })
	c := newClient(s.URL())
	createFunction(t, c, "echo", "provided.al2023", "bootstrap", goEchoZip, func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(3) })
	const clients, each = 6, 60
	var wg sync.WaitGroup
	errs := make(chan error, clients*each)
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{"n":1}`)})
				if err == nil && out.FunctionError != nil {
					err = fmt.Errorf("%s: %s", aws.ToString(out.FunctionError), out.Payload)
				}
				if err != nil {
					errs <- fmt.Errorf("client %d invoke %d: %w", w, i, err)
					return
				}
				time.Sleep(time.Duration(i%4) * time.Millisecond) // idle long enough to be frozen, sometimes
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d invokes; environments: %+v", clients*each, s.Workers().Stats())
}

// TestLinuxInitDuration: every cold start's REPORT has an Init Duration that covers the
// runtime's own start (a static Go runtime takes about a millisecond to reach /next), also in
// a burst, where a runtime can call /next before the sandbox has told the worker it started
// (the clock used to start then, and said 0.00 ms).
func TestLinuxInitDuration(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the linux sandbox tests need root (CI runs as root)")
	}
	s := startServer(t, t.TempDir(), func(c *config.Config) { c.Sandbox = "linux" })
	c := newClient(s.URL())
	createFunction(t, c, "init", "provided.al2023", "bootstrap", goEchoZip)
	const burst = 8
	inits := make([]float64, burst)
	var wg sync.WaitGroup
	for i := range burst {
		wg.Go(func() {
			// Not invoke's t.Fatal: this is not the test's goroutine.
			out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("init"),
				Payload: []byte(`{"sleep_ms":300}`), LogType: types.LogTypeTail})
			if err != nil {
				t.Errorf("cold start %d: %v", i, err)
				return
			}
			tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
			m := initDuration.FindStringSubmatch(string(tail))
			if m == nil {
				t.Errorf("cold start %d: no Init Duration in %q", i, tail)
				return
			}
			inits[i], _ = strconv.ParseFloat(m[1], 64)
		})
	}
	wg.Wait()
	t.Logf("Init Duration of %d simultaneous cold starts (ms): %v", burst, inits)
	for i, d := range inits {
		if d < 0.1 {
			t.Errorf("cold start %d: Init Duration %.2f ms, less than a Go runtime's own start", i, d)
		}
	}
}
