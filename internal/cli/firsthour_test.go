package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	stypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/server"
)

// syncBuffer collects a server's operator log.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServer runs a real Flint on 127.0.0.1:0 with cfg's changes and points the CLI at it.
func startServer(t *testing.T, ctx context.Context, change func(*config.Config)) (*server.Server, *syncBuffer) {
	t.Helper()
	cfg := config.Default()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Sandbox = "process"
	if change != nil {
		change(&cfg)
	}
	var oplog syncBuffer
	s, err := server.New(cfg, slog.New(slog.NewTextHandler(&oplog, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	t.Setenv("FLINT_ENDPOINT", s.URL())
	return s, &oplog
}

// onlySystemInterpreters makes the servers started next see only the system's interpreters
// (/usr/bin): no pyenv, nvm or user PATH, so that a version the system lacks is absent.
func onlySystemInterpreters(t *testing.T) {
	t.Setenv("PATH", "/usr/bin:/bin")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("PYENV_ROOT", "")
	t.Setenv("NVM_DIR", "")
}

// systemPython is the system Python's runtime (python3.11 on Debian 12) and one of the
// catalogue it is not.
func systemPython(t *testing.T) (have, absent, version string) {
	t.Helper()
	out, err := exec.Command("/usr/bin/python3", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])").Output()
	if err != nil {
		t.Skipf("no /usr/bin/python3: %v", err)
	}
	version = strings.TrimSpace(string(out))
	p := strings.Split(version, ".")
	have = "python" + p[0] + "." + p[1]
	absent = "python3.13"
	if have == absent {
		absent = "python3.9"
	}
	return have, absent, version
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRuntimeVersionsAgainstServer: a runtime whose version the node lacks runs on the nearest
// one, and deploy says so (CLI and server log); flint runtimes shows the mapping; a strict node
// refuses it with Lambda's InvalidParameterValueException. python3.13 once ran on Python 3.11
// without a word.
func TestRuntimeVersionsAgainstServer(t *testing.T) {
	have, absent, pyVersion := systemPython(t)
	onlySystemInterpreters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, oplog := startServer(t, ctx, nil)

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "app.py"), "import os, sys\ndef handler(event, context):\n"+
		"    return {'python': '%d.%d.%d' % sys.version_info[:3], 'env': os.environ['AWS_EXECUTION_ENV']}\n")
	code, out, errOut := runCLI(t, ctx, "deploy", dir, "--name", "py", "--runtime", absent)
	want := absent + " runs on Python " + pyVersion + " (/usr/bin/python" + have[len("python"):] + ") on this Flint node: no Python " + absent[len("python"):] + " interpreter was found"
	if code != 0 || !strings.HasPrefix(out, "created py") || !strings.Contains(errOut, "flint: warning: "+want) {
		t.Errorf("deploy %s: exit %d, stdout %q, stderr %q; want created and the warning %q", absent, code, out, errOut, want)
	}
	if !strings.Contains(oplog.String(), "function runs on another runtime version") || !strings.Contains(oplog.String(), want) {
		t.Errorf("server log lacks the runtime warning:\n%s", oplog.String())
	}
	code, out, errOut = runCLI(t, ctx, "invoke", "py")
	if code != 0 || !strings.Contains(out, `"python": "`+pyVersion+`"`) || !strings.Contains(out, "AWS_Lambda_"+absent) {
		t.Errorf("invoke: exit %d, %q, %q", code, out, errOut)
	}
	// A runtime the node has: no warning.
	code, out, errOut = runCLI(t, ctx, "deploy", dir, "--name", "py-ok", "--runtime", have)
	if code != 0 || strings.Contains(errOut, "warning") {
		t.Errorf("deploy %s: exit %d, %q, %q; want no warning", have, code, out, errOut)
	}

	code, out, errOut = runCLI(t, ctx, "runtimes")
	if code != 0 || !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(have)+` +`+regexp.QuoteMeta(pyVersion)+` +/usr/bin/python\S+ +PATH +ok$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(absent)+` +`+regexp.QuoteMeta(pyVersion)+` +/usr/bin/python\S+ +PATH +runs on `+regexp.QuoteMeta(pyVersion)+`: no `+regexp.QuoteMeta(absent[len("python"):])+` found$`).MatchString(out) {
		t.Errorf("flint runtimes: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	code, out, _ = runCLI(t, ctx, "runtimes", "--json")
	var table runtimeTable
	if err := json.Unmarshal([]byte(out), &table); code != 0 || err != nil || table.Strict || len(table.Runtimes) == 0 {
		t.Errorf("flint runtimes --json: exit %d, %v, %q", code, err, out)
	}

	// A strict node refuses the runtime, with AWS's error type, through the CLI and the SDK.
	strict, _ := startServer(t, ctx, func(c *config.Config) { c.StrictRuntimes = true })
	code, _, errOut = runCLI(t, ctx, "deploy", dir, "--name", "py", "--runtime", absent)
	wantErr := "flint: InvalidParameterValueException: The runtime parameter of " + absent + " is not available on this Flint node"
	if code != 1 || !strings.Contains(errOut, wantErr) {
		t.Errorf("deploy on a strict node: exit %d, stderr %q; want %q", code, errOut, wantErr)
	}
	client, err := (&app{endpoint: strict.URL()}).lambdaClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, ctx, "deploy", dir, "--name", "py", "--runtime", have); code != 0 {
		t.Fatalf("deploy %s on a strict node: %s", have, errOut)
	}
	_, err = client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("py"), Runtime: types.Runtime(absent)})
	var ipv *types.InvalidParameterValueException
	if !errors.As(err, &ipv) || !strings.HasPrefix(aws.ToString(ipv.Message), "The runtime parameter of "+absent+" is not available") {
		t.Errorf("UpdateFunctionConfiguration to %s on a strict node: %v", absent, err)
	}
	if got, err := client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("py")}); err != nil || string(got.Runtime) != have {
		t.Errorf("after the refused update: %v, %v; want runtime %s unchanged", got, err, have)
	}
	code, out, _ = runCLI(t, ctx, "runtimes")
	if code != 0 || !strings.Contains(out, "refused: no "+absent[len("python"):]+" (--strict-runtimes)") {
		t.Errorf("flint runtimes on a strict node:\n%s", out)
	}

	// --runtime-path is RUNTIME=PATH; a server with a bad one does not start.
	code, _, errOut = runCLI(t, ctx, "serve", "--runtime-path", "python3.12")
	if code != exitUsage || !strings.Contains(errOut, `--runtime-path "python3.12": want RUNTIME=PATH`) {
		t.Errorf("serve --runtime-path python3.12: exit %d, %q", code, errOut)
	}
	cfg := config.Default()
	cfg.Listen, cfg.DataDir, cfg.Sandbox = "127.0.0.1:0", t.TempDir(), "process"
	cfg.RuntimePaths = map[string]string{absent: "/usr/bin/python3"}
	s, err := server.New(cfg, nil)
	if err == nil {
		err = s.Start(ctx)
		s.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "that is version "+pyVersion+", not "+absent[len("python"):]) {
		t.Errorf("server with --runtime-path %s=/usr/bin/python3: %v", absent, err)
	}
}

// TestPyenvAndInstalledInterpretersInLinuxSandbox: interpreters outside the host directories
// the linux sandbox shows (pyenv's, and those `flint runtimes install` puts in the data
// directory) run there, from /var/lang, without showing the host's paths.
func TestPyenvAndInstalledInterpretersInLinuxSandbox(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the linux sandbox needs root")
	}
	home, _ := os.UserHomeDir()
	var pyenvPython, pyenvVersion string
	for _, v := range []string{"3.12", "3.13", "3.10", "3.9"} {
		m, _ := filepath.Glob(filepath.Join(home, ".pyenv", "versions", v+".*", "bin", "python"+v))
		if len(m) > 0 {
			pyenvPython, pyenvVersion = m[len(m)-1], v
			break
		}
	}
	nodeOut, err := exec.Command("/usr/bin/node", "--version").Output()
	if err != nil {
		t.Skipf("no /usr/bin/node: %v", err)
	}
	nodeMajor := strings.Split(strings.TrimPrefix(strings.TrimSpace(string(nodeOut)), "v"), ".")[0]
	data := t.TempDir()
	// As `flint runtimes install` leaves it: DATA/runtimes/nodejsNN.x/bin/node.
	installed := filepath.Join(data, "runtimes", "nodejs"+nodeMajor+".x", "bin", "node")
	if err := os.MkdirAll(filepath.Dir(installed), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link("/usr/bin/node", installed); err != nil {
		t.Skipf("cannot link /usr/bin/node into the data directory: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, oplog := startServer(t, ctx, func(c *config.Config) { c.Sandbox, c.DataDir = "linux", data })
	defer func() {
		if t.Failed() {
			t.Logf("server log:\n%s", oplog)
		}
	}()

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "index.mjs"), "import { existsSync } from 'node:fs';\n"+
		"export const handler = async (e) => ({ exe: process.execPath, v: process.version, data: existsSync(e.data) });\n")
	rt := "nodejs" + nodeMajor + ".x"
	if code, _, errOut := runCLI(t, ctx, "deploy", dir, "--name", "node-installed", "--runtime", rt); code != 0 {
		t.Fatalf("deploy: %s", errOut)
	}
	// It runs at /var/lang, where AWS keeps its runtimes; the data directory stays out of sight.
	code, out, errOut := runCLI(t, ctx, "invoke", "node-installed", `{"data":"`+data+`"}`)
	if code != 0 || !strings.Contains(out, `"exe":"/var/lang/bin/node"`) || !strings.Contains(out, `"data":false`) {
		t.Errorf("invoke %s in the linux sandbox: exit %d, %q, %q; want it to run %s at /var/lang/bin/node", rt, code, out, errOut, installed)
	}

	if pyenvPython == "" {
		t.Log("no pyenv Python here: the pyenv half is not run")
		return
	}
	pdir := t.TempDir()
	writeFile(t, filepath.Join(pdir, "app.py"), "import os, sys, ssl, json\ndef handler(event, context):\n"+
		"    return {'exe': sys.executable, 'v': '%d.%d' % sys.version_info[:2], 'prefix': sys.prefix, 'home': os.path.exists('/root')}\n")
	if code, _, errOut := runCLI(t, ctx, "deploy", pdir, "--name", "py-pyenv", "--runtime", "python"+pyenvVersion); code != 0 {
		t.Fatalf("deploy: %s", errOut)
	}
	code, out, errOut = runCLI(t, ctx, "invoke", "py-pyenv")
	want := `{"exe": "/var/lang/bin/python` + pyenvVersion + `", "v": "` + pyenvVersion + `", "prefix": "/var/lang", "home": false}`
	if code != 0 || strings.TrimSpace(out) != want {
		t.Errorf("invoke python%s in the linux sandbox: exit %d, %q, %q; want pyenv's %s at /var/lang: %s", pyenvVersion, code, out, errOut, pyenvPython, want)
	}
}

// TestDeployHandlerDetection: deploy without --handler takes the one handler the sources
// define (main.py's lambda_handler was once taken for main.handler), and asks for --handler,
// listing what it found, when there are several.
func TestDeployHandlerDetection(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	startServer(t, ctx, nil)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.py"), "HANDLER_NAME = 'x'\n\ndef lambda_handler(event, context):\n    return 'found'\n")
	if code, out, errOut := runCLI(t, ctx, "deploy", dir, "--name", "detect"); code != 0 || !strings.HasPrefix(out, "created detect") {
		t.Fatalf("deploy: exit %d, %q, %q", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, ctx, "invoke", "detect"); code != 0 || strings.TrimSpace(out) != `"found"` {
		t.Errorf("invoke: exit %d, %q, %q", code, out, errOut)
	}
	writeFile(t, filepath.Join(dir, "app.py"), "def handler(event, context):\n    return 1\n")
	code, _, errOut := runCLI(t, ctx, "deploy", dir, "--name", "detect2")
	want := "--handler is required for runtime python3.12: " + dir + " defines app.handler, main.lambda_handler; pass the one Lambda should call"
	if code != exitUsage || !strings.Contains(errOut, want) {
		t.Errorf("deploy with two candidates: exit %d, %q; want %q", code, errOut, want)
	}
	// A stack says the same of a function whose handler it cannot tell.
	stack := filepath.Join(t.TempDir(), "flint.yaml")
	writeFile(t, stack, "functions:\n  detect3:\n    code: "+dir+"\n    runtime: python3.12\n")
	code, _, errOut = runCLI(t, ctx, "deploy", "-f", stack)
	want = "handler is required: the sources define app.handler, main.lambda_handler; name the one Lambda should call"
	if code == 0 || !strings.Contains(errOut, want) {
		t.Errorf("stack deploy with two candidates: exit %d, %q; want %q", code, errOut, want)
	}
}

// TestCLIAffordancesAgainstServer: deploy says what it did, invoke --async and --qualifier,
// ls with versions, aliases and triggers, queue when empty, --json on each.
func TestCLIAffordancesAgainstServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, _ := startServer(t, ctx, nil)
	client, err := (&app{endpoint: s.URL()}).lambdaClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, ctx, "queue"); code != 0 || out != "nothing queued\n" {
		t.Errorf("queue on a fresh server: exit %d, %q, %q", code, out, errOut)
	}

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "app.py"), "import os\ndef handler(event, context):\n    return {'v': os.environ.get('VV'), 'fn': context.function_version}\n")
	for _, st := range []struct {
		args []string
		want string
	}{
		{[]string{"--env", "VV=1"}, `^created aff \(runtime python3.12, CodeSha256 \S+, \d+ bytes\)$`},
		{[]string{"--env", "VV=1"}, `^unchanged aff \(`},
		{[]string{"--env", "VV=2", "--memory", "256", "--timeout", "3"}, `^updated aff: configuration \(Environment, MemorySize\) \(`},
	} {
		code, out, errOut := runCLI(t, ctx, append([]string{"deploy", dir, "--name", "aff", "--handler", "app.handler"}, st.args...)...)
		if code != 0 || !regexp.MustCompile(st.want).MatchString(strings.TrimSpace(out)) {
			t.Errorf("deploy %v: exit %d, stdout %q, stderr %q; want %s", st.args, code, out, errOut, st.want)
		}
	}
	writeFile(t, filepath.Join(dir, "extra.txt"), "new code")
	code, out, errOut := runCLI(t, ctx, "deploy", dir, "--name", "aff", "--json", "--description", "d")
	var dr deployResult
	if err := json.Unmarshal([]byte(out), &dr); code != 0 || err != nil || dr.Action != "updated" || !dr.Code ||
		strings.Join(dr.Configuration, ",") != "Description" || dr.Runtime != "python3.12" || dr.CodeSha256 == "" {
		t.Errorf("deploy --json: exit %d, %v, %q, %q", code, err, out, errOut)
	}

	// A version, an alias on it, a URL, a queue mapping and a schedule.
	v, err := client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("aff")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("aff"), Name: aws.String("live"), FunctionVersion: v.Version}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("aff"), AuthType: types.FunctionUrlAuthTypeAwsIam}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("aff"),
		EventSourceArn: aws.String("arn:flint:jetstream:us-east-1:000000000000:queue/orders")}); err != nil {
		t.Fatal(err)
	}
	lo := client.Options()
	sc := scheduler.New(scheduler.Options{Region: lo.Region, Credentials: lo.Credentials, HTTPClient: lo.HTTPClient, BaseEndpoint: aws.String(s.URL())})
	if _, err := sc.CreateSchedule(ctx, &scheduler.CreateScheduleInput{Name: aws.String("nightly"), ScheduleExpression: aws.String("cron(0 3 * * ? *)"),
		FlexibleTimeWindow: &stypes.FlexibleTimeWindow{Mode: stypes.FlexibleTimeWindowModeOff},
		Target: &stypes.Target{Arn: aws.String("arn:aws:lambda:us-east-1:000000000000:function:aff:live"),
			RoleArn: aws.String("arn:aws:iam::000000000000:role/flint")}}); err != nil {
		t.Fatal(err)
	}

	code, out, errOut = runCLI(t, ctx, "ls")
	row := regexp.MustCompile(`(?m)^aff +python3\.12 +256MB +3s +1 +live=1 +url\(AWS_IAM\) queue:orders schedule:nightly +\S+$`)
	if code != 0 || !regexp.MustCompile(`^NAME +RUNTIME +MEMORY +TIMEOUT +VERSIONS +ALIASES +TRIGGERS +LAST-MODIFIED\n`).MatchString(out) || !row.MatchString(out) {
		t.Errorf("ls: exit %d, stderr %q, stdout:\n%s\nwant a row matching %s", code, errOut, out, row)
	}
	code, out, _ = runCLI(t, ctx, "ls", "--json")
	var listed []struct {
		FunctionName        string
		Versions            []string
		Aliases             []struct{ Name, FunctionVersion string }
		EventSourceMappings []struct{ EventSourceArn string }
		FunctionUrls        []struct{ AuthType string }
		Schedules           []struct{ Name string }
	}
	if err := json.Unmarshal([]byte(out), &listed); code != 0 || err != nil || len(listed) != 1 || listed[0].FunctionName != "aff" ||
		strings.Join(listed[0].Versions, ",") != "1" || len(listed[0].Aliases) != 1 || listed[0].Aliases[0].Name != "live" ||
		len(listed[0].EventSourceMappings) != 1 || len(listed[0].FunctionUrls) != 1 || len(listed[0].Schedules) != 1 {
		t.Errorf("ls --json: exit %d, %v, %s", code, err, out)
	}

	// invoke --qualifier reaches the alias's version; --json carries the executed version.
	code, out, errOut = runCLI(t, ctx, "invoke", "aff", "--qualifier", "live", "--json")
	var ir invokeResult
	if err := json.Unmarshal([]byte(out), &ir); code != 0 || err != nil || ir.StatusCode != 200 || ir.ExecutedVersion != "1" ||
		!strings.Contains(string(ir.Payload), `"fn": "1"`) || ir.RequestID == "" {
		t.Errorf("invoke --qualifier live --json: exit %d, %v, %q, %q", code, err, out, errOut)
	}
	// --async queues the event (202) and prints its request id.
	code, out, errOut = runCLI(t, ctx, "invoke", "aff", `{"a":1}`, "--async", "--qualifier", "live")
	if code != 0 || !regexp.MustCompile(`^[0-9a-f-]{36}\n$`).MatchString(out) || !strings.Contains(errOut, "queued (202)") {
		t.Errorf("invoke --async: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = runCLI(t, ctx, "invoke", "aff", "--async", "--json")
	ir = invokeResult{}
	if err := json.Unmarshal([]byte(out), &ir); code != 0 || err != nil || ir.StatusCode != 202 || ir.RequestID == "" || len(ir.Payload) != 0 {
		t.Errorf("invoke --async --json: exit %d, %v, %q", code, err, out)
	}
	if code, _, errOut := runCLI(t, ctx, "invoke", "aff", "--async", "--tail"); code != exitUsage || !strings.Contains(errOut, "--tail needs a synchronous invoke") {
		t.Errorf("invoke --async --tail: exit %d, %q", code, errOut)
	}

	code, out, _ = runCLI(t, ctx, "version", "--json")
	var vi versionInfo
	if err := json.Unmarshal([]byte(out), &vi); code != 0 || err != nil || vi.Version == "" || vi.Go == "" {
		t.Errorf("version --json: exit %d, %v, %q", code, err, out)
	}
	code, out, _ = runCLI(t, ctx, "keys", "list", "--json", "--data", t.TempDir())
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("keys list --json with no keys: exit %d, %q", code, out)
	}
}

// TestDescribeBuild: flint version reads the version, commit and state Go records in the
// binary, and says how to get them when there are none.
func TestDescribeBuild(t *testing.T) {
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "8180e3c854691f9a100da29360060aca8843f90d"},
		{Key: "vcs.time", Value: "2026-12-06T13:50:52Z"}, {Key: "vcs.modified", Value: "true"},
		{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"}}
	for _, tt := range []struct {
		name string
		info *debug.BuildInfo
		link string
		want string
	}{
		{"tag", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}, Settings: vcs}, "",
			"flint v1.2.0 (commit 8180e3c85469, 2026-12-06T13:50:52Z, modified; go1.26.8 linux/arm64)"},
		{"link-time version wins", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs[:2]}, "v0.3.0-4-gabc",
			"flint v0.3.0-4-gabc (commit 8180e3c85469, 2026-12-06T13:50:52Z; go1.26.8 "},
		{"pseudo-version", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261206135052-8180e3c85469+dirty"}}, "",
			"flint v0.0.0-20261206135052-8180e3c85469+dirty (go1.26.8 "},
		{"nothing recorded", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, "",
			"flint devel (no version recorded: build with scripts/run.sh, or go build -buildvcs=true in a git clone; go1.26.8 "},
		{"no build info", nil, "", "flint devel (no version recorded"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := describeBuild(tt.info, tt.link).String(); !strings.HasPrefix(got, tt.want) {
				t.Errorf("got %q, want a line starting %q", got, tt.want)
			}
		})
	}
}
