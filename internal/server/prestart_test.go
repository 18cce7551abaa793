package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/server"
)

// prestartPy and prestartNode report what a function's module-level code saw, from a runtime that may
// have been pre-initialized (started before the function existed) and bound to it.
const prestartPy = `import os
import layermod  # the layer's module, imported at module level

GREETING = os.environ.get("GREETING")
INIT_TYPE = os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE")
if os.environ.get("ALLOC_MB"):  # module-level memory: INIT runs under the function's limit
    BIG = b"\x01" * (int(os.environ["ALLOC_MB"]) << 20)
with open("/tmp/" + os.environ["AWS_LAMBDA_FUNCTION_NAME"], "w") as f:
    f.write("mine")


def handler(event, context):
    return {"greeting": GREETING, "layer": layermod.VALUE, "init": INIT_TYPE, "pid": os.getpid(),
            "pidns": os.readlink("/proc/self/ns/pid"), "tmp": sorted(os.listdir("/tmp")),
            "fn": os.environ["AWS_LAMBDA_FUNCTION_NAME"], "token": os.environ["AWS_SESSION_TOKEN"],
            "cwd": os.getcwd(), "bind_fd": os.environ.get("_FLINT_BIND_FD"),
            "start_env": [v.decode() for v in open("/proc/self/environ", "rb").read().split(b"\0")
                          if v.startswith((b"GOGC=", b"GOMAXPROCS="))]}
`

const prestartNode = `const fs = require('fs');
const layermod = require('layermod'); // the layer's module, from NODE_PATH, at module level

const GREETING = process.env.GREETING;
const INIT_TYPE = process.env.AWS_LAMBDA_INITIALIZATION_TYPE;
fs.writeFileSync('/tmp/' + process.env.AWS_LAMBDA_FUNCTION_NAME, 'mine');
const TZ = Intl.DateTimeFormat().resolvedOptions().timeZone + ' ' + new Date(0).getTimezoneOffset();
let LOCALTIME = null;
try { LOCALTIME = fs.readlinkSync('/etc/localtime'); } catch (_) {}

exports.handler = async () => ({
  greeting: GREETING, layer: layermod.VALUE, init: INIT_TYPE, pid: process.pid,
  pidns: fs.readlinkSync('/proc/self/ns/pid'), tmp: fs.readdirSync('/tmp').sort(),
  fn: process.env.AWS_LAMBDA_FUNCTION_NAME, token: process.env.AWS_SESSION_TOKEN, cwd: process.cwd(),
  bind_fd: process.env._FLINT_BIND_FD ?? null, tz: TZ, localtime: LOCALTIME,
});
`

type prestartProbe struct {
	Greeting, Layer, Init, PIDNS, Fn, Token, Cwd string
	PID                                          int
	Tmp                                          []string
	BindFD                                       *string `json:"bind_fd"`
	// StartEnv: what of the linux sandbox's own start-up variables (its init's and exec
	// stage's GOGC, GOMAXPROCS) the runtime was exec'd with: nothing.
	StartEnv  []string `json:"start_env"`
	TZ        string   // Node's time zone and offset at module level
	Localtime *string  // where /etc/localtime links
}

// TestPrestartedRuntimes checks that a cold start bound to a pre-initialized runtime keeps
// Lambda's semantics, in both sandboxes: module-level code sees the function's variables, its
// layer's modules and AWS_LAMBDA_INITIALIZATION_TYPE; two functions never share a runtime (pid,
// /tmp, identity); and the function's memory limit holds during INIT, not the spare's.
func TestPrestartedRuntimes(t *testing.T) {
	for _, sb := range []string{"process", "linux"} {
		t.Run(sb, func(t *testing.T) {
			if sb == "linux" && os.Geteuid() != 0 {
				t.Skip("the linux sandbox tests need root (CI runs as root)")
			}
			testPrestarted(t, sb)
		})
	}
}

func testPrestarted(t *testing.T, sb string) {
	s := startServer(t, t.TempDir(), func(c *config.Config) { c.Sandbox = sb })
	c := newClient(s.URL())
	ctx := context.Background()
	layer := func(name string, files map[string]zipEntry) string {
		t.Helper()
		out, err := c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String(name),
			Content: &types.LayerVersionContentInput{ZipFile: mustZip(t, files)}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.LayerVersionArn)
	}
	pyLayer := layer("pylayer", map[string]zipEntry{"python/layermod.py": {body: "VALUE = 'from the layer'\n"}})
	nodeLayer := layer("nodelayer", map[string]zipEntry{"nodejs/node_modules/layermod/index.js": {body: "exports.VALUE = 'from the layer';\n"}})
	create := func(name, rt string, memMB int32, env map[string]string) {
		t.Helper()
		code, handler, l := map[string]zipEntry{"app.py": {body: prestartPy}}, "app.handler", pyLayer
		if strings.HasPrefix(rt, "nodejs") {
			code, handler, l = map[string]zipEntry{"index.js": {body: prestartNode}}, "index.handler", nodeLayer
		}
		createFunction(t, c, name, rt, handler, mustZip(t, code), func(in *lambda.CreateFunctionInput) {
			in.Layers = []string{l}
			in.MemorySize = aws.Int32(memMB)
			in.Environment = &types.Environment{Variables: env}
		})
	}
	create("py-a", "python3.11", 128, map[string]string{"GREETING": "hello a"})
	// Another runtime: where the node has a python3.12 of its own outside /usr (pyenv), its
	// installation is shown at /var/lang, which the binding's variables must follow.
	create("py-b", "python3.12", 128, map[string]string{"GREETING": "hello b"})
	// A time zone of the function's own: node resets its zone when TZ changes at the bind.
	create("node-a", "nodejs20.x", 128, map[string]string{"GREETING": "hello node", "TZ": "Asia/Tokyo"})

	// boundInvoke invokes name on a new environment until one was bound to a pre-initialized
	// runtime (the first cold start of a runtime teaches the server to keep one ready).
	boundInvoke := func(name string, mutate ...func(*lambda.InvokeInput)) *lambda.InvokeOutput {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			recycle(t, s, name)
			before := s.Workers().Stats().Bound
			out := invoke(t, c, name, `{}`, mutate...)
			if s.Workers().Stats().Bound > before {
				return out
			}
		}
		t.Fatalf("%s: no cold start was bound to a pre-initialized runtime within a minute", name)
		return nil
	}
	decode := func(out *lambda.InvokeOutput) prestartProbe {
		t.Helper()
		var p prestartProbe
		if out.FunctionError != nil || json.Unmarshal(out.Payload, &p) != nil {
			t.Fatalf("invoke: %s %s", aws.ToString(out.FunctionError), out.Payload)
		}
		return p
	}

	a := decode(boundInvoke("py-a"))
	b := decode(boundInvoke("py-b"))
	for _, tc := range []struct {
		p        prestartProbe
		fn, want string
	}{{a, "py-a", "hello a"}, {b, "py-b", "hello b"}} {
		if tc.p.Greeting != tc.want || tc.p.Layer != "from the layer" || tc.p.Init != "on-demand" || tc.p.Fn != tc.fn || tc.p.BindFD != nil || len(tc.p.StartEnv) > 0 {
			t.Errorf("%s saw at module level %+v, want GREETING %q, the layer's module, on-demand, its own name and no bind descriptor", tc.fn, tc.p, tc.want)
		}
	}
	if a.PID == b.PID && a.PIDNS == b.PIDNS {
		t.Errorf("py-a and py-b ran in one process (%d in %s)", a.PID, a.PIDNS)
	}
	if a.Token == b.Token {
		t.Error("py-a and py-b share an AWS_SESSION_TOKEN")
	}
	if sb == "linux" {
		// Isolation the process sandbox does not have: /tmp and the pid namespace are the
		// environment's own; the code is at /var/task.
		if a.PIDNS == b.PIDNS || strings.Join(b.Tmp, ",") != "py-b" || a.Cwd != "/var/task" {
			t.Errorf("py-a %+v / py-b %+v: want pid namespaces of their own, /tmp holding only the function's own file, cwd /var/task", a, b)
		}
	}

	// Provisioned concurrency binds its environments too, and says so to module-level code.
	ver, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("py-a")})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); s.Workers().Stats().Spares == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no pre-initialized runtime ready within 30 s")
		}
	}
	before := s.Workers().Stats().Bound
	if _, err := c.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String("py-a"),
		Qualifier: ver.Version, ProvisionedConcurrentExecutions: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got, err := c.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("py-a"), Qualifier: ver.Version})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == types.ProvisionedConcurrencyStatusEnumReady {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("provisioned concurrency not READY after 30 s: %+v", got)
		}
	}
	if s.Workers().Stats().Bound == before {
		t.Error("the provisioned environment was not bound to the pre-initialized runtime that was ready")
	}
	if p := decode(invoke(t, c, "py-a", `{}`, func(in *lambda.InvokeInput) { in.Qualifier = ver.Version })); p.Init != "provisioned-concurrency" || p.Greeting != "hello a" {
		t.Errorf("provisioned py-a saw %+v, want provisioned-concurrency", p)
	}

	n := decode(boundInvoke("node-a"))
	if n.Greeting != "hello node" || n.Layer != "from the layer" || n.Init != "on-demand" || n.Fn != "node-a" || n.BindFD != nil {
		t.Errorf("node-a saw at module level %+v, want its GREETING, the layer's module, on-demand, its own name", n)
	}
	if sb == "linux" && (strings.Join(n.Tmp, ",") != "node-a" || n.Cwd != "/var/task") {
		t.Errorf("node-a: /tmp %v, cwd %s; want only its own file, /var/task", n.Tmp, n.Cwd)
	}
	if n.TZ != "Asia/Tokyo -540" {
		t.Errorf("node-a's module-level code saw time zone %q, want its TZ Asia/Tokyo (-540)", n.TZ)
	}
	// The sandbox keeps a host's /etc/localtime link into /usr a link (a copy sends ICU
	// reading every file under /usr/share/zoneinfo to name the zone).
	if real, err := filepath.EvalSymlinks("/etc/localtime"); sb == "linux" && err == nil && strings.HasPrefix(real, "/usr/") {
		if n.Localtime == nil || *n.Localtime != real {
			t.Errorf("node-a: /etc/localtime links to %v, want %s as on the host", n.Localtime, real)
		}
	}

	if sb != "linux" {
		return // the process sandbox has no memory limit
	}
	// The spare started under a 128 MB limit: a 512 MB function's module-level 200 MB fits, as
	// its own limit applies before its code runs; a 128 MB function's does not.
	create("py-big", "python3.11", 512, map[string]string{"ALLOC_MB": "200"})
	create("py-small", "python3.11", 128, map[string]string{"ALLOC_MB": "200"})
	if p := decode(boundInvoke("py-big")); p.Fn != "py-big" {
		t.Errorf("py-big = %+v", p)
	}
	out := boundInvoke("py-small")
	if out.FunctionError == nil || !strings.Contains(string(out.Payload), "Runtime.") {
		t.Errorf("py-small allocating 200 MB at module level under 128 MB = %s %s, want a runtime error", aws.ToString(out.FunctionError), out.Payload)
	}
}

// recycle retires every environment of name (POST /flint/v1/functions/NAME/recycle): the next
// invoke is a cold start.
func recycle(t testing.TB, s *server.Server, name string) {
	t.Helper()
	res, err := http.Post(s.URL()+"/flint/v1/functions/"+name+"/recycle", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("recycle %s: %s", name, res.Status)
	}
}

// TestSparesFollowNewEnvironments checks how many pre-initialized runtimes a runtime keeps after
// new environments that ran at once but whose INITs did not overlap (the shape of a burst once
// spares make INIT short): one per environment, not one per INIT in flight. Each cold start
// begins once the one before has finished its INIT and is running (blocked on a file), so at
// most one INIT is ever in flight while four new environments run together.
func TestSparesFollowNewEnvironments(t *testing.T) {
	s := startServer(t, t.TempDir(), func(c *config.Config) { c.Sandbox = "process" })
	c := newClient(s.URL())
	release := filepath.Join(t.TempDir(), "release")
	createFunction(t, c, "overlap", "python3.11", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: `import os, time

def handler(event, context):
    while not os.path.exists(` + strconv.Quote(release) + `):
        time.sleep(0.01)
    return {}
`}}))
	const n = 4
	errs := make(chan error, n)
	for i := range n {
		go func() {
			out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("overlap")})
			if err == nil && out.FunctionError != nil {
				err = errors.New(string(out.Payload))
			}
			errs <- err
		}()
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if st := s.Workers().Stats(); st.Busy == i+1 && st.Starting == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("environment %d not running within a minute: %+v", i+1, s.Workers().Stats())
			}
		}
	}
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(60 * time.Second); s.Workers().Stats().Spares < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d pre-initialized runtimes kept after %d new environments ran at once, want %d", s.Workers().Stats().Spares, n, n)
		}
	}
}
