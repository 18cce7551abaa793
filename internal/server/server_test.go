package server_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/sandbox/linux"
	"github.com/flint-run/flint/internal/server"
)

const role = "arn:aws:iam::000000000000:role/flint"

// goEchoZip is the examples/go-echo function built with aws-lambda-go, zipped as "bootstrap".
var goEchoZip []byte

func TestMain(m *testing.M) {
	linux.Init() // a re-executed sandbox init runs here and never returns
	dir, err := os.MkdirTemp("", "flint-test-build")
	if err != nil {
		panic(err)
	}
	goEchoZip, err = buildGo(dir, "../../examples/go-echo")
	if err != nil {
		os.Stderr.WriteString("building examples/go-echo: " + err.Error() + "\n")
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildGo builds a Go Lambda function for linux into a zip holding "bootstrap".
func buildGo(dir, pkg string) ([]byte, error) {
	out := filepath.Join(dir, "bootstrap")
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(goBin, "build", "-tags", "lambda.norpc", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, errors.New(string(b))
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	return zipFiles(map[string]zipEntry{"bootstrap": {body: string(bin), mode: 0o755}})
}

type zipEntry struct {
	body    string
	mode    os.FileMode
	symlink bool
}

func zipFiles(files map[string]zipEntry) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, f := range files {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		mode := f.mode
		if mode == 0 {
			mode = 0o644
		}
		if f.symlink {
			mode |= os.ModeSymlink
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, err
		}
		if _, err := io.WriteString(w, f.body); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func mustZip(t testing.TB, files map[string]zipEntry) []byte {
	t.Helper()
	b, err := zipFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startServer runs a real Flint in-process on 127.0.0.1:0 with its data in dir.
func startServer(t testing.TB, dir string, mutate ...func(*config.Config)) *server.Server {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = dir
	// Most tests need no isolation (and some write host files from functions); the linux
	// sandbox has tests of its own (linux_test.go).
	cfg.Sandbox = "process"
	cfg.CgroupParent = "flint-test-" + filepath.Base(dir)
	for _, m := range mutate {
		m(&cfg)
	}
	log := slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := server.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newClient is aws-sdk-go-v2's real Lambda client pointed at Flint.
func newClient(url string) *lambda.Client {
	return lambda.New(lambda.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(url),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDFLINTTEST", "secret", ""),
		RetryMaxAttempts: 1,
	})
}

func createFunction(t testing.TB, c *lambda.Client, name, rt, handler string, zip []byte, mutate ...func(*lambda.CreateFunctionInput)) *lambda.CreateFunctionOutput {
	t.Helper()
	in := &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Runtime:      types.Runtime(rt),
		Handler:      aws.String(handler),
		Role:         aws.String(role),
		Code:         &types.FunctionCode{ZipFile: zip},
		Timeout:      aws.Int32(10),
	}
	for _, m := range mutate {
		m(in)
	}
	out, err := c.CreateFunction(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateFunction %s: %v", name, err)
	}
	return out
}

func invoke(t testing.TB, c *lambda.Client, name, payload string, mutate ...func(*lambda.InvokeInput)) *lambda.InvokeOutput {
	t.Helper()
	in := &lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(payload)}
	for _, m := range mutate {
		m(in)
	}
	out, err := c.Invoke(context.Background(), in)
	if err != nil {
		t.Fatalf("Invoke %s: %v", name, err)
	}
	return out
}

func withTail(in *lambda.InvokeInput) { in.LogType = types.LogTypeTail }

func decodeTail(t testing.TB, out *lambda.InvokeOutput) string {
	t.Helper()
	if out.LogResult == nil {
		t.Fatal("no LogResult")
	}
	b, err := base64.StdEncoding.DecodeString(*out.LogResult)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func apiErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestGoFunctionLifecycle(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()

	created := createFunction(t, c, "echo", "provided.al2023", "bootstrap", goEchoZip)
	if got, want := created.State, types.StateActive; got != want {
		t.Errorf("State = %q, want %q", got, want)
	}
	if err := lambda.NewFunctionActiveV2Waiter(c).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("echo")}, 10*time.Second); err != nil {
		t.Fatalf("function-active-v2 waiter: %v", err)
	}

	out := invoke(t, c, "echo", `{"hello":"world"}`, withTail)
	if got, want := string(out.Payload), `{"hello":"world"}`; got != want {
		t.Errorf("payload = %s, want %s", got, want)
	}
	if out.FunctionError != nil {
		t.Errorf("FunctionError = %q, want none", *out.FunctionError)
	}
	if got, want := aws.ToString(out.ExecutedVersion), "$LATEST"; got != want {
		t.Errorf("ExecutedVersion = %q, want %q", got, want)
	}
	tail := decodeTail(t, out)
	for _, want := range []string{"START RequestId: ", "Version: $LATEST", "END RequestId: ", "REPORT RequestId: ", "Init Duration: ", "echo 17 bytes"} {
		if !strings.Contains(tail, want) {
			t.Errorf("log tail lacks %q:\n%s", want, tail)
		}
	}
	if strings.Contains(tail, "Max Memory Used: 0 MB") {
		t.Errorf("REPORT without Max Memory Used:\n%s", tail)
	}

	// Warm: no Init Duration the second time.
	tail = decodeTail(t, invoke(t, c, "echo", `{"n":2}`, withTail))
	if strings.Contains(tail, "Init Duration") {
		t.Errorf("warm invoke reported Init Duration:\n%s", tail)
	}

	// A failing handler: 200, X-Amz-Function-Error: Unhandled, Lambda's error body.
	out = invoke(t, c, "echo", `{"fail":true}`)
	if got := aws.ToString(out.FunctionError); got != "Unhandled" {
		t.Errorf("FunctionError = %q, want Unhandled", got)
	}
	var fe struct{ ErrorMessage, ErrorType string }
	if err := json.Unmarshal(out.Payload, &fe); err != nil || fe.ErrorMessage != "you asked me to fail" || fe.ErrorType == "" {
		t.Errorf("error payload = %s (%v), want errorMessage 'you asked me to fail' and an errorType", out.Payload, err)
	}

	// Update to a Python handler and get the new behaviour.
	py := mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(event, context):\n    return {'v': 2, 'got': event}\n"}})
	if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("echo"), ZipFile: py}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("echo"), Runtime: types.RuntimePython312, Handler: aws.String("app.handler"),
		Environment: &types.Environment{Variables: map[string]string{"GREETING": "hi"}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := lambda.NewFunctionUpdatedV2Waiter(c).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("echo")}, 10*time.Second); err != nil {
		t.Fatalf("function-updated-v2 waiter: %v", err)
	}
	out = invoke(t, c, "echo", `{"a":1}`)
	if got, want := string(out.Payload), `{"v": 2, "got": {"a": 1}}`; got != want {
		t.Errorf("after update payload = %s, want %s", got, want)
	}

	list, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Functions) != 1 || aws.ToString(list.Functions[0].FunctionName) != "echo" {
		t.Errorf("ListFunctions = %+v, want [echo]", list.Functions)
	}

	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("echo")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{}`)})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("Invoke after delete: err = %v, want ResourceNotFoundException", err)
	}
	_, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("echo")})
	if !errors.As(err, &nf) {
		t.Errorf("GetFunction after delete: err = %v, want ResourceNotFoundException", err)
	}
}

func TestConcurrentInvokesUseManyEnvironments(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	createFunction(t, c, "sleepy", "provided.al2023", "bootstrap", goEchoZip)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("sleepy"), Payload: []byte(`{"sleep_ms":200}`)})
			if err == nil && out.FunctionError != nil {
				err = errors.New("function error: " + string(out.Payload))
			}
			errs <- err
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	st := s.Workers().Stats()
	t.Logf("50 concurrent 200 ms invokes took %v; environments idle=%d busy=%d", elapsed, st.Idle, st.Busy)
	// Serialised through one environment they would take 10 s; a generous bound that still
	// proves the invokes ran side by side.
	if elapsed > 8*time.Second {
		t.Errorf("50 concurrent invokes took %v: they were queued, not run in parallel", elapsed)
	}
	if st.Idle < 10 {
		t.Errorf("only %d environments after 50 concurrent invokes", st.Idle)
	}
}

func TestRestartKeepsFunctions(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	c := newClient(s.URL())
	createFunction(t, c, "keep", "provided.al2023", "bootstrap", goEchoZip)
	createFunction(t, c, "keep-py", "python3.12", "app.handler",
		mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return e\n"}}))
	invoke(t, c, "keep", `{}`)
	s.Close()

	s2 := startServer(t, dir)
	c2 := newClient(s2.URL())
	list, err := c2.ListFunctions(context.Background(), &lambda.ListFunctionsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range list.Functions {
		names = append(names, aws.ToString(f.FunctionName))
	}
	if got, want := strings.Join(names, ","), "keep,keep-py"; got != want {
		t.Errorf("after restart ListFunctions = %s, want %s", got, want)
	}
	for _, fn := range []string{"keep", "keep-py"} {
		if got := string(invoke(t, c2, fn, `{"again":true}`).Payload); !strings.Contains(got, `"again"`) {
			t.Errorf("%s after restart returned %s", fn, got)
		}
	}
}

func TestIdleEnvironmentsAreReaped(t *testing.T) {
	s := startServer(t, t.TempDir(), func(c *config.Config) { c.KeepAlive = time.Minute })
	c := newClient(s.URL())
	createFunction(t, c, "reaped", "provided.al2023", "bootstrap", goEchoZip)
	invoke(t, c, "reaped", `{}`)
	if got := s.Workers().Stats().Idle; got != 1 {
		t.Fatalf("idle environments = %d, want 1", got)
	}
	if n := s.Workers().Reap(time.Now()); n != 0 {
		t.Errorf("Reap within the keep-alive destroyed %d environments", n)
	}
	if n := s.Workers().Reap(time.Now().Add(2 * time.Minute)); n != 1 {
		t.Errorf("Reap after the keep-alive destroyed %d environments, want 1", n)
	}
	if got := s.Workers().Stats(); got.Idle+got.Busy+got.Starting != 0 {
		t.Errorf("environments after reaping: %+v", got)
	}
	// The next invoke cold-starts a new environment.
	if tail := decodeTail(t, invoke(t, c, "reaped", `{}`, withTail)); !strings.Contains(tail, "Init Duration") {
		t.Errorf("invoke after reaping was not a cold start:\n%s", tail)
	}
}

// TestSettingsKeepEnvironmentsWarm: publishing a version, reserving concurrency, tagging, a code
// signing configuration and the recursion setting change $LATEST's record but nothing its
// environments see: they stay warm, as on AWS; a
// configuration change starts new ones.
func TestSettingsKeepEnvironmentsWarm(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()
	out := createFunction(t, c, "warm", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return 1\n"}}),
		func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"KEY": "v"}}
		})
	cold := func() bool {
		t.Helper()
		res := invoke(t, c, "warm", `{}`, withTail)
		return strings.Contains(decodeTail(t, res), "Init Duration")
	}
	if !cold() {
		t.Fatal("the first invoke was not a cold start")
	}
	if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("warm")}); err != nil {
		t.Fatal(err)
	}
	if cold() {
		t.Error("publishing a version restarted $LATEST's environments")
	}
	if _, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("warm"), ReservedConcurrentExecutions: aws.Int32(5)}); err != nil {
		t.Fatal(err)
	}
	if cold() {
		t.Error("reserving concurrency restarted the environments")
	}
	if _, err := c.TagResource(ctx, &lambda.TagResourceInput{Resource: out.FunctionArn, Tags: map[string]string{"team": "a"}}); err != nil {
		t.Fatal(err)
	}
	if cold() {
		t.Error("tagging restarted the environments")
	}
	csc, err := c.CreateCodeSigningConfig(ctx, &lambda.CreateCodeSigningConfigInput{AllowedPublishers: &types.AllowedPublishers{
		SigningProfileVersionArns: []string{"arn:aws:signer:us-east-1:000000000000:/signing-profiles/p"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutFunctionCodeSigningConfig(ctx, &lambda.PutFunctionCodeSigningConfigInput{FunctionName: aws.String("warm"),
		CodeSigningConfigArn: csc.CodeSigningConfig.CodeSigningConfigArn}); err != nil {
		t.Fatal(err)
	}
	if cold() {
		t.Error("binding a code signing configuration restarted the environments")
	}
	if _, err := c.PutFunctionRecursionConfig(ctx, &lambda.PutFunctionRecursionConfigInput{FunctionName: aws.String("warm"),
		RecursiveLoop: types.RecursiveLoopAllow}); err != nil {
		t.Fatal(err)
	}
	if cold() {
		t.Error("the recursion setting restarted the environments")
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("warm"),
		Environment: &types.Environment{Variables: map[string]string{"KEY": "w"}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a cold start after the configuration change", 10*time.Second, cold)
}

// TestTags: TagResource, ListTags, UntagResource and GetFunction's Tags, with AWS's errors.
func TestTags(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()
	out := createFunction(t, c, "tagged", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return 1\n"}}),
		func(in *lambda.CreateFunctionInput) { in.Tags = map[string]string{"team": "a"} })
	arn := out.FunctionArn
	if _, err := c.TagResource(ctx, &lambda.TagResourceInput{Resource: arn, Tags: map[string]string{"env": "prod", "team": "b"}}); err != nil {
		t.Fatal(err)
	}
	list, err := c.ListTags(ctx, &lambda.ListTagsInput{Resource: arn})
	if err != nil || len(list.Tags) != 2 || list.Tags["team"] != "b" || list.Tags["env"] != "prod" {
		t.Fatalf("ListTags = %v, %v", list, err)
	}
	if _, err := c.UntagResource(ctx, &lambda.UntagResourceInput{Resource: arn, TagKeys: []string{"env"}}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("tagged")})
	if err != nil || len(got.Tags) != 1 || got.Tags["team"] != "b" {
		t.Fatalf("GetFunction tags = %v, %v", got.Tags, err)
	}
	for name, tc := range map[string]struct {
		arn  string
		tags map[string]string
		code string
	}{
		"missing function": {strings.Replace(aws.ToString(arn), "tagged", "nope", 1), map[string]string{"a": "b"}, "ResourceNotFoundException"},
		"qualified ARN":    {aws.ToString(arn) + ":1", map[string]string{"a": "b"}, "InvalidParameterValueException"},
		"not an ARN":       {"tagged", map[string]string{"a": "b"}, "ValidationException"},
		"aws: prefix":      {aws.ToString(arn), map[string]string{"aws:x": "b"}, "InvalidParameterValueException"},
		"long key":         {aws.ToString(arn), map[string]string{strings.Repeat("k", 129): "b"}, "InvalidParameterValueException"},
	} {
		if _, err := c.TagResource(ctx, &lambda.TagResourceInput{Resource: aws.String(tc.arn), Tags: tc.tags}); apiErrorCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", name, err, tc.code)
		}
	}
	if list, _ := c.ListTags(ctx, &lambda.ListTagsInput{Resource: arn}); len(list.Tags) != 1 {
		t.Errorf("the rejections changed the tags: %v", list.Tags)
	}
}
