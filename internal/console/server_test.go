package console_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/console"
	"github.com/flint-run/flint/internal/server"
	"github.com/flint-run/flint/internal/sigv4"
)

// The tests share two real servers: one in local-development mode (no access keys) and one
// with an access key, each started on first use and closed by TestMain.
var (
	devOnce, keyedOnce sync.Once
	dev, keyed         *server.Server
	devErr, keyedErr   error
	key                sigv4.Credentials
	keyedDir           string
	tmpDirs            []string
	closers            []func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, c := range closers {
		c()
	}
	for _, d := range tmpDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// start runs a real Flint on 127.0.0.1:0 with the process sandbox; before, when set, runs on
// the data directory first, and mutate changes the configuration.
func start(before func(dir string) error, mutate ...func(*config.Config)) (*server.Server, error) {
	dir, err := os.MkdirTemp("", "flint-console-test")
	if err != nil {
		return nil, err
	}
	tmpDirs = append(tmpDirs, dir)
	if before != nil {
		if err := before(dir); err != nil {
			return nil, err
		}
	}
	cfg := config.Default()
	cfg.Listen, cfg.DataDir, cfg.Sandbox = "127.0.0.1:0", dir, "process"
	cfg.CgroupParent = "flint-test-" + filepath.Base(dir)
	for _, m := range mutate {
		m(&cfg)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := server.New(cfg, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	closers = append(closers, func() { s.Close() })
	return s, nil
}

// devServer is the shared server in local-development mode.
func devServer(t testing.TB) *server.Server {
	t.Helper()
	devOnce.Do(func() { dev, devErr = start(nil) })
	if devErr != nil {
		t.Fatalf("start the development server: %v", devErr)
	}
	return dev
}

// keyedServer is the shared server with one access key (key), made before it starts.
func keyedServer(t testing.TB) *server.Server {
	t.Helper()
	keyedOnce.Do(func() {
		keyed, keyedErr = start(func(dir string) error {
			keyedDir = dir
			keys, err := sigv4.Load(filepath.Join(dir, "access-keys.json"))
			if err != nil {
				return err
			}
			key, err = keys.Create("console test")
			return err
		})
	})
	if keyedErr != nil {
		t.Fatalf("start the server with keys: %v", keyedErr)
	}
	return keyed
}

// handler logs a marker line and answers with the event; {"fail": true} raises.
const handler = `import json, time
def handler(event, context):
    print("console-marker " + json.dumps(event, sort_keys=True))
    time.sleep(event.get("sleep", 0))
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {"echo": event}
`

func pyZip(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("app.py")
	if err == nil {
		_, err = io.WriteString(w, handler)
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func lambdaClient(s *server.Server, id, secret string) *lambda.Client {
	return lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.URL()),
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""), RetryMaxAttempts: 1})
}

func createFunction(t testing.TB, c *lambda.Client, name string) {
	t.Helper()
	_, err := c.CreateFunction(context.Background(), &lambda.CreateFunctionInput{
		FunctionName: aws.String(name), Runtime: types.RuntimePython311, Handler: aws.String("app.handler"),
		Role: aws.String("arn:aws:iam::000000000000:role/flint"), Code: &types.FunctionCode{ZipFile: pyZip(t)},
		Timeout: aws.Int32(10)})
	if err != nil {
		t.Fatalf("CreateFunction %s: %v", name, err)
	}
}

func invoke(t testing.TB, c *lambda.Client, name, payload string) *lambda.InvokeOutput {
	t.Helper()
	out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(payload)})
	if err != nil {
		t.Fatalf("Invoke %s: %v", name, err)
	}
	return out
}

// browserish is an HTTP client that behaves as the console's page does: cookies kept, Origin
// sent on POST, redirects not followed (the tests look at them).
type browserish struct {
	base string
	c    *http.Client
	csrf string
}

func newBrowserish(t testing.TB, s *server.Server) *browserish {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browserish{base: s.URL(), c: &http.Client{Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browserish) do(t testing.TB, method, path string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Origin", b.base)
		if b.csrf != "" {
			req.Header.Set("X-Flint-Csrf", b.csrf)
		}
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

func (b *browserish) getJSON(t testing.TB, path string, v any) {
	t.Helper()
	resp, body := b.do(t, http.MethodGet, path, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// TestFunctionsList pages through the functions with their statistics: one request per page,
// each row with the function's last hour, moved by invocations made through the Lambda API.
func TestFunctionsList(t *testing.T) {
	s := devServer(t)
	c := lambdaClient(s, "AKIDFLINTTEST", "secret")
	const n = 25
	for i := range n {
		createFunction(t, c, fmt.Sprintf("list-%02d", i))
	}
	invoke(t, c, "list-03", `{"a":1}`)
	invoke(t, c, "list-03", `{"a":2}`)
	if out := invoke(t, c, "list-03", `{"fail":true}`); out.FunctionError == nil {
		t.Fatal("the failing invoke did not fail")
	}
	b := newBrowserish(t, s)
	var names []string
	var row3 *console.FunctionRow
	marker, pages := "", 0
	for {
		var page console.FunctionPage
		b.getJSON(t, "/console/api/functions?limit=10&marker="+url.QueryEscape(marker), &page)
		pages++
		for i, f := range page.Functions {
			if !strings.HasPrefix(f.Name, "list-") {
				continue // other tests' functions
			}
			names = append(names, f.Name)
			if f.Name == "list-03" {
				row3 = &page.Functions[i]
			}
		}
		if page.Environments == nil {
			t.Error("the page has no environment counts")
		}
		if page.NextMarker == "" {
			break
		}
		marker = page.NextMarker
		if pages > 20 {
			t.Fatal("paging does not end")
		}
	}
	if len(names) != n {
		t.Fatalf("paging saw %d list- functions: %v; want %d, each once", len(names), names, n)
	}
	for i, name := range names {
		if want := fmt.Sprintf("list-%02d", i); name != want {
			t.Fatalf("function %d is %s; want %s (in name order, no repeats)", i, name, want)
		}
	}
	if row3 == nil {
		t.Fatal("list-03 not listed")
	}
	// The log record is written (and the observer told) after the caller has its answer.
	waitFor(t, "list-03's three invocations", func() bool {
		var page console.FunctionPage
		b.getJSON(t, "/console/api/functions?limit=1&marker=list-02", &page)
		row3 = &page.Functions[0]
		return row3.Stats.Invocations == 3
	})
	st := row3.Stats
	if st.Invocations != 3 || st.Errors != 1 || st.ColdStarts != 1 || st.P50Ms <= 0 || st.P99Ms < st.P50Ms {
		t.Errorf("list-03's stats = %+v; want 3 invocations, 1 error, 1 cold start, 0 < p50 <= p99", st)
	}
	for _, bad := range []string{"0", "201", "x"} {
		if resp, body := b.do(t, http.MethodGet, "/console/api/functions?limit="+bad, nil, nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("limit=%s: %d %s; want 400", bad, resp.StatusCode, body)
		}
	}
}

// TestFunctionsListAtScale: with 1,000 functions the list is 20 requests of 50 functions, each
// row with its figures (no request per function), in name order, each function once.
func TestFunctionsListAtScale(t *testing.T) {
	s := devServer(t)
	c := lambdaClient(s, "AKIDFLINTTEST", "secret")
	const n = 1000
	created := time.Now()
	var wg sync.WaitGroup
	names := make(chan string)
	for range 8 {
		wg.Go(func() {
			for name := range names {
				createFunction(t, c, name)
			}
		})
	}
	for i := range n {
		names <- fmt.Sprintf("scale-%04d", i)
	}
	close(names)
	wg.Wait()
	t.Logf("created %d functions in %v", n, time.Since(created).Round(time.Millisecond))
	invoke(t, c, "scale-0999", `{}`)
	b := newBrowserish(t, s)
	waitFor(t, "scale-0999's invocation in the statistics", func() bool {
		var page console.FunctionPage
		b.getJSON(t, "/console/api/functions?limit=1&marker=scale-0998", &page)
		return page.Functions[0].Stats.Invocations == 1
	})
	listed := time.Now()
	var seen []string
	var last console.FunctionRow
	requests, marker := 0, "scale-" // the functions before scale-0000 sort before "scale-"
	for {
		var page console.FunctionPage
		b.getJSON(t, "/console/api/functions?limit=50&marker="+url.QueryEscape(marker), &page)
		requests++
		for _, f := range page.Functions {
			if strings.HasPrefix(f.Name, "scale-") {
				seen = append(seen, f.Name)
				last = f
			}
		}
		if page.NextMarker == "" || len(seen) >= n || requests > n { // functions after scale-0999 are other tests'
			break
		}
		marker = page.NextMarker
	}
	t.Logf("listed %d functions in %d requests, %v", len(seen), requests, time.Since(listed).Round(time.Millisecond))
	if len(seen) != n || requests != n/50 {
		t.Fatalf("saw %d functions in %d requests; want %d in %d", len(seen), requests, n, n/50)
	}
	for i, name := range seen {
		if want := fmt.Sprintf("scale-%04d", i); name != want {
			t.Fatalf("function %d is %s; want %s", i, name, want)
		}
	}
	if last.Name != "scale-0999" || last.Stats.Invocations != 1 || last.Stats.ColdStarts != 1 {
		t.Errorf("the last row = %+v; want scale-0999 with its invocation", last)
	}
}

// TestFunctionDetail: the function page's data has the configuration, every version, the
// aliases with their routing weights, the statistics and the recent invocations.
func TestFunctionDetail(t *testing.T) {
	s := devServer(t)
	ctx := context.Background()
	c := lambdaClient(s, "AKIDFLINTTEST", "secret")
	createFunction(t, c, "detail")
	for i := range 2 {
		if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("detail"),
			Description: aws.String(fmt.Sprint("v", i+1))}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the update", func() bool {
			out, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("detail")})
			return err == nil && out.Configuration.LastUpdateStatus == types.LastUpdateStatusSuccessful
		})
		if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("detail")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("detail"), Name: aws.String("live"),
		FunctionVersion: aws.String("1"), RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 0.25}}}); err != nil {
		t.Fatal(err)
	}
	invoke(t, c, "detail", `{"x":1}`)
	b := newBrowserish(t, s)
	var d console.FunctionDetail
	waitFor(t, "the invocation in the statistics", func() bool {
		b.getJSON(t, "/console/api/functions/detail", &d)
		return d.Stats.Invocations == 1
	})
	if d.Configuration.FunctionName != "detail" || d.Configuration.Runtime != "python3.11" || d.Configuration.Handler != "app.handler" {
		t.Errorf("configuration = %+v", d.Configuration)
	}
	var versions []string
	for _, v := range d.Versions {
		versions = append(versions, v.Version)
	}
	if strings.Join(versions, ",") != "$LATEST,1,2" {
		t.Errorf("versions = %v; want $LATEST, 1, 2", versions)
	}
	if len(d.Aliases) != 1 || d.Aliases[0].Name != "live" || d.Aliases[0].FunctionVersion != "1" ||
		d.Aliases[0].RoutingConfig == nil || d.Aliases[0].RoutingConfig.AdditionalVersionWeights["2"] != 0.25 {
		t.Errorf("aliases = %+v; want live → 1 with 25%% on 2", d.Aliases)
	}
	if len(d.Series) != console.Window || d.Series[console.Window-1].Invocations+d.Series[console.Window-2].Invocations != 1 {
		t.Errorf("series: %d points, last two %+v; want %d with the invocation at the end", len(d.Series), d.Series[len(d.Series)-2:], console.Window)
	}
	if len(d.Recent) != 1 || !d.Recent[0].Cold || d.Recent[0].Outcome != "success" || d.Recent[0].DurationMs <= 0 ||
		len(d.Recent[0].RequestID) != 36 || d.Recent[0].InitMs <= 0 {
		t.Errorf("recent = %+v; want one cold success with its request ID and Init Duration", d.Recent)
	}
	if e := d.FunctionEnvironments; e == nil || e.Idle+e.Frozen+e.Busy != 1 {
		t.Errorf("the function's environments = %+v; want its one environment", e)
	}
	if d.Environments == nil || d.Environments.Idle+d.Environments.Frozen+d.Environments.Busy < 1 {
		t.Errorf("environments = %+v; want the invocation's environment", d.Environments)
	}
	resp, body := b.do(t, http.MethodGet, "/console/api/functions/missing", nil, nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "ResourceNotFoundException") {
		t.Errorf("unknown function: %d %s; want 404 ResourceNotFoundException", resp.StatusCode, body)
	}
}

// TestAsyncQueueShown: an async event waiting or running shows on its function's page and in
// the resources' queue list, and leaves them when it is done.
func TestAsyncQueueShown(t *testing.T) {
	s := devServer(t)
	c := lambdaClient(s, "AKIDFLINTTEST", "secret")
	createFunction(t, c, "queued")
	if _, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("queued"),
		InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"sleep": 2}`)}); err != nil {
		t.Fatal(err)
	}
	b := newBrowserish(t, s)
	waitFor(t, "the event on the function page", func() bool {
		var d console.FunctionDetail
		b.getJSON(t, "/console/api/functions/queued", &d)
		return d.Async != nil && d.Async.Depth == 1
	})
	var res console.Resources
	b.getJSON(t, "/console/api/resources", &res)
	found := false
	for _, q := range res.Async {
		found = found || (q.Function == "queued" && q.Depth == 1)
	}
	if !found {
		t.Errorf("resources' async queue = %+v; want queued with depth 1", res.Async)
	}
	waitFor(t, "the event to finish", func() bool {
		var d console.FunctionDetail // fresh: Unmarshal leaves a field the answer omits as it was
		b.getJSON(t, "/console/api/functions/queued", &d)
		return d.Async == nil && d.Stats.Invocations == 1
	})
}

// TestInvokeAndLogTail invokes through the console and finds the invocation's log record, with
// its request ID and report, in the live tail (server-sent events).
func TestInvokeAndLogTail(t *testing.T) {
	s := devServer(t)
	c := lambdaClient(s, "AKIDFLINTTEST", "secret")
	createFunction(t, c, "tail")
	b := newBrowserish(t, s)

	// A filter pattern the grammar refuses is the caller's error, before any stream.
	if resp, body := b.do(t, http.MethodGet, "/console/api/functions/tail/logs?filter="+url.QueryEscape(`{ $.level = `), nil, nil); resp.StatusCode != http.StatusBadRequest ||
		!strings.Contains(string(body), "InvalidParameterValueException") {
		t.Errorf("a bad filter pattern: %d %s; want 400 InvalidParameterValueException", resp.StatusCode, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/console/api/functions/tail/logs", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("logs: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	type event struct {
		Text   string          `json:"text"`
		Report *console.Report `json:"report"`
	}
	events := make(chan event, 16)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev event
				if json.Unmarshal([]byte(data), &ev) == nil {
					events <- ev
				}
			}
		}
	}()

	r, body := b.do(t, http.MethodPost, "/console/api/functions/tail/invoke", strings.NewReader(`{"n": 7}`), nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("invoke: %d %s", r.StatusCode, body)
	}
	var out console.InvokeResult
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	if out.FunctionError != "" || out.Payload != `{"echo": {"n": 7}}` || out.RequestID == "" || out.ExecutedVersion != "$LATEST" || out.LogTail == "" {
		t.Errorf("invoke result = %+v", out)
	}
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("the log stream ended before the invocation's record")
			}
			if !strings.Contains(ev.Text, `console-marker {"n": 7}`) {
				continue
			}
			if ev.Report == nil || ev.Report.RequestID != out.RequestID || ev.Report.Status != "success" || ev.Report.InitDurationMs <= 0 {
				t.Errorf("the record's report = %+v; want request %s, success, cold", ev.Report, out.RequestID)
			}
			return
		case <-ctx.Done():
			t.Fatal("no log record with the invocation's line within a minute")
		}
	}
}

// TestInvokeRefusals: the console's Invoke refuses a cross-site POST (no Origin, or another
// one), a payload that is not JSON, and an unknown function, with nothing invoked.
func TestInvokeRefusals(t *testing.T) {
	s := devServer(t)
	c := lambdaClient(s, "AKIDFLINTTEST", "secret")
	createFunction(t, c, "refuse")
	b := newBrowserish(t, s)
	for _, tc := range []struct {
		name   string
		path   string
		body   string
		hdr    map[string]string
		status int
	}{
		{"no origin", "refuse", `{}`, map[string]string{"Origin": ""}, http.StatusForbidden},
		{"other origin", "refuse", `{}`, map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"other referer", "refuse", `{}`, map[string]string{"Origin": "", "Referer": "http://evil.example/page"}, http.StatusForbidden},
		{"not json", "refuse", `{nope`, nil, http.StatusBadRequest},
		{"unknown function", "nothing-here", `{}`, nil, http.StatusNotFound},
		{"bad qualifier", "refuse?qualifier=9", `{}`, nil, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name, query, _ := strings.Cut(tc.path, "?")
			resp, body := b.do(t, http.MethodPost, "/console/api/functions/"+name+"/invoke?"+query, strings.NewReader(tc.body), tc.hdr)
			if resp.StatusCode != tc.status {
				t.Errorf("%d %s; want %d", resp.StatusCode, body, tc.status)
			}
		})
	}
	var d console.FunctionDetail
	b.getJSON(t, "/console/api/functions/refuse", &d)
	if d.Stats.Invocations != 0 {
		t.Errorf("refused invokes ran: %+v", d.Stats)
	}
	for path, want := range map[string]int{"/console/assets/app.js": 200, "/console/assets/chart.js": 200, "/console/assets/style.css": 200,
		"/console/assets/": 404, "/console/assets/nothing.js": 404, "/console/signin": 303, "/console": 301} {
		if resp, _ := b.do(t, http.MethodGet, path, nil, nil); resp.StatusCode != want {
			t.Errorf("GET %s in development mode: %d; want %d", path, resp.StatusCode, want)
		}
	}
	// DNS rebinding: a page served from another host name that resolves to 127.0.0.1.
	resp, _ := b.do(t, http.MethodGet, "/console/api/functions", nil, nil)
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/console/api/functions", nil)
	req.Host = "rebound.example"
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if resp.StatusCode != http.StatusOK || r2.StatusCode != http.StatusForbidden {
		t.Errorf("Host 127.0.0.1: %d, Host rebound.example: %d; want 200 and 403", resp.StatusCode, r2.StatusCode)
	}
}

// TestResources lists the async queue, the event source mappings and the secrets by name,
// never a secret's value.
func TestResources(t *testing.T) {
	s := devServer(t)
	ctx := context.Background()
	sm := secretsmanager.New(secretsmanager.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDFLINTTEST", "secret", ""), RetryMaxAttempts: 1})
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("prod/db"),
		Description: aws.String("the database"), SecretString: aws.String("hunter2-value")}); err != nil {
		t.Fatal(err)
	}
	b := newBrowserish(t, s)
	resp, body := b.do(t, http.MethodGet, "/console/api/resources", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("resources: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(string(body), "hunter2") {
		t.Fatalf("the resources page carries a secret's value: %s", body)
	}
	var res console.Resources
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	var db *console.SecretRow
	for i := range res.Secrets { // other tests' secrets too
		if res.Secrets[i].Name == "prod/db" {
			db = &res.Secrets[i]
		}
	}
	if db == nil || db.Description != "the database" || !strings.Contains(db.ARN, ":secret:prod/db-") || db.LastChangedDate == 0 {
		t.Errorf("secrets = %+v; want prod/db with its description, ARN and date", res.Secrets)
	}
	if res.Async == nil || res.Mappings == nil {
		t.Errorf("async %v, mappings %v: want lists", res.Async, res.Mappings)
	}
}

// TestSignIn: with access keys, nothing of the console is served without a session; a
// sign-in with a key's secret makes one (HttpOnly, SameSite=Strict cookie), whose POSTs need
// the session's CSRF token; signing out ends it.
func TestSignIn(t *testing.T) {
	s := keyedServer(t)
	b := newBrowserish(t, s)
	for _, path := range []string{"/console/", "/console/api/functions", "/console/api/session", "/console/assets/app.js",
		"/console/api/functions/x/logs", "/console/api/resources"} {
		resp, body := b.do(t, http.MethodGet, path, nil, nil)
		switch {
		case path == "/console/" && (resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/signin"):
			t.Errorf("GET %s unsigned: %d → %q; want 303 to the sign-in page", path, resp.StatusCode, resp.Header.Get("Location"))
		case path != "/console/" && resp.StatusCode != http.StatusUnauthorized:
			t.Errorf("GET %s unsigned: %d %.80s; want 401", path, resp.StatusCode, body)
		}
	}
	if resp, _ := b.do(t, http.MethodPost, "/console/api/functions/x/invoke", strings.NewReader(`{}`), nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned invoke: %d; want 401", resp.StatusCode)
	}
	if resp, body := b.do(t, http.MethodGet, "/console/signin", nil, nil); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `name="access_key_id"`) {
		t.Errorf("sign-in page: %d %.200s", resp.StatusCode, body)
	}
	form := func(id, secret string) io.Reader {
		return strings.NewReader(url.Values{"access_key_id": {id}, "secret_access_key": {secret}}.Encode())
	}
	formHdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for _, tc := range []struct {
		name       string
		body       io.Reader
		hdr        map[string]string
		status     int
		wantCookie bool
	}{
		{"wrong secret", form(key.AccessKeyID, "wrong"), formHdr, http.StatusUnauthorized, false},
		{"unknown key", form("AKIDNOBODY", key.SecretAccessKey), formHdr, http.StatusUnauthorized, false},
		{"empty secret", form(key.AccessKeyID, ""), formHdr, http.StatusUnauthorized, false},
		{"cross-site", form(key.AccessKeyID, key.SecretAccessKey), map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"}, http.StatusForbidden, false},
		{"oversized", strings.NewReader("access_key_id=" + strings.Repeat("A", 8<<10)), formHdr, http.StatusBadRequest, false},
		{"right", form(key.AccessKeyID, key.SecretAccessKey), formHdr, http.StatusSeeOther, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := b.do(t, http.MethodPost, "/console/signin", tc.body, tc.hdr)
			if resp.StatusCode != tc.status {
				t.Errorf("%d %.200s; want %d", resp.StatusCode, body, tc.status)
			}
			var ck *http.Cookie
			for _, c := range resp.Cookies() {
				if c.Name == "flint_console" {
					ck = c
				}
			}
			if (ck != nil) != tc.wantCookie {
				t.Fatalf("session cookie %v; want one: %v", ck, tc.wantCookie)
			}
			if ck != nil && (!ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/console/" || len(ck.Value) != 43 || ck.Secure) {
				t.Errorf("cookie %+v; want HttpOnly, SameSite=Strict, Path /console/, 256 random bits, not Secure over HTTP", ck)
			}
		})
	}
	var sess struct {
		DevMode bool   `json:"devMode"`
		KeyID   string `json:"accessKeyId"`
		CSRF    string `json:"csrf"`
	}
	b.getJSON(t, "/console/api/session", &sess)
	if sess.DevMode || sess.KeyID != key.AccessKeyID || len(sess.CSRF) != 43 {
		t.Fatalf("session = %+v", sess)
	}
	createFunction(t, lambdaClient(s, key.AccessKeyID, key.SecretAccessKey), "signed")
	var page console.FunctionPage
	b.getJSON(t, "/console/api/functions", &page)
	if len(page.Functions) == 0 {
		t.Error("signed in: no functions listed")
	}
	if resp, body := b.do(t, http.MethodPost, "/console/api/functions/signed/invoke", strings.NewReader(`{}`), nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("invoke without the CSRF token: %d %s; want 403", resp.StatusCode, body)
	}
	if resp, body := b.do(t, http.MethodPost, "/console/api/functions/signed/invoke", strings.NewReader(`{}`), map[string]string{"X-Flint-Csrf": "guess"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("invoke with a wrong CSRF token: %d %s; want 403", resp.StatusCode, body)
	}
	b.csrf = sess.CSRF
	if resp, body := b.do(t, http.MethodPost, "/console/api/functions/signed/invoke", strings.NewReader(`{"k":1}`), nil); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `\"k\": 1`) {
		t.Errorf("invoke with the session's token: %d %s", resp.StatusCode, body)
	}
	u, _ := url.Parse(s.URL() + "/console/")
	cookies := b.c.Jar.Cookies(u)
	if len(cookies) != 1 {
		t.Fatalf("jar holds %v; want the session cookie", cookies)
	}
	if resp, body := b.do(t, http.MethodPost, "/console/signout", nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("sign out: %d %s", resp.StatusCode, body)
	}
	if left := b.c.Jar.Cookies(u); len(left) != 0 {
		t.Errorf("the cookie is still set after sign-out: %v", left)
	}
	// Replay the old cookie by hand: the server forgot the session.
	replay := newBrowserish(t, s)
	replay.c.Jar.SetCookies(u, cookies)
	if resp, body := replay.do(t, http.MethodGet, "/console/api/functions", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the signed-out session's cookie: %d %.80s; want 401", resp.StatusCode, body)
	}
}

// TestSecureCookieOverTLS: over HTTPS the session cookie is Secure.
func TestSecureCookieOverTLS(t *testing.T) {
	var dir string
	var creds sigv4.Credentials
	s, err := start(func(d string) error {
		dir = d
		keys, err := sigv4.Load(filepath.Join(d, "access-keys.json"))
		if err == nil {
			creds, err = keys.Create("tls")
		}
		return err
	}, func(c *config.Config) { c.TLSSelfSigned = true })
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(filepath.Join(dir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	b := newBrowserish(t, s)
	b.c.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	if !strings.HasPrefix(b.base, "https://") {
		t.Fatalf("URL %s is not https", b.base)
	}
	resp, body := b.do(t, http.MethodPost, "/console/signin", strings.NewReader(url.Values{"access_key_id": {creds.AccessKeyID},
		"secret_access_key": {creds.SecretAccessKey}}.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in over TLS: %d %s", resp.StatusCode, body)
	}
	cks := resp.Cookies()
	if len(cks) != 1 || !cks[0].Secure || !cks[0].HttpOnly || cks[0].SameSite != http.SameSiteStrictMode {
		t.Errorf("cookies over TLS = %v; want one Secure, HttpOnly, SameSite=Strict", cks)
	}
	var page console.FunctionPage
	b.getJSON(t, "/console/api/functions", &page)
}

// TestSessionEndsWithKey: deleting the access key a browser signed in with ends its session.
func TestSessionEndsWithKey(t *testing.T) {
	s := keyedServer(t)
	keys, err := sigv4.Load(filepath.Join(keyedDir, "access-keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	late, err := keys.Create("deleted soon")
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowserish(t, s)
	signIn := url.Values{"access_key_id": {late.AccessKeyID}, "secret_access_key": {late.SecretAccessKey}}.Encode()
	formHdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	waitFor(t, "the new key to be accepted", func() bool {
		resp, _ := b.do(t, http.MethodPost, "/console/signin", strings.NewReader(signIn), formHdr)
		return resp.StatusCode == http.StatusSeeOther
	})
	if resp, body := b.do(t, http.MethodGet, "/console/api/functions", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("signed in: %d %s", resp.StatusCode, body)
	}
	if err := keys.Delete(late.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the session to end with its key", func() bool {
		resp, _ := b.do(t, http.MethodGet, "/console/api/functions", nil, nil)
		return resp.StatusCode == http.StatusUnauthorized
	})
}

// waitFor polls cond for up to 30 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
