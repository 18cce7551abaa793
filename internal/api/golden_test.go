package api_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/server"
)

// The handler tests send requests as AWS's clients put them on the wire to a real Flint server
// (process sandbox, embedded NATS, local-development mode) and compare each answer (status, the
// error-type header, the JSON body) with a golden file under testdata/golden. Values that differ
// on every run (request and revision IDs, times, hashes of generated code) are replaced by
// placeholders first. `go test ./internal/api -run Golden -update` rewrites the files; review
// their diff as you would code.
var update = flag.Bool("update", false, "rewrite the golden files with the answers received")

var (
	serverOnce sync.Once
	serverURL  string
	serverErr  error
	stopServer func()
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if stopServer != nil {
		stopServer()
	}
	os.Exit(code)
}

// sharedServer starts one Flint server for every handler test of the package; each test uses
// resources of its own names.
func sharedServer(t *testing.T) string {
	t.Helper()
	serverOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flint-api-golden-")
		if err != nil {
			serverErr = err
			return
		}
		cfg := config.Default()
		cfg.Listen = "127.0.0.1:0"
		cfg.DataDir = dir
		cfg.Sandbox = "process"
		cfg.CgroupParent = "flint-test-" + filepath.Base(dir)
		s, err := server.New(cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			serverErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if serverErr = s.Start(ctx); serverErr != nil {
			return
		}
		serverURL = s.URL()
		stopServer = func() { _ = s.Close(); _ = os.RemoveAll(dir) }
	})
	if serverErr != nil {
		t.Fatal(serverErr)
	}
	return serverURL
}

// step is one request of a golden test.
type step struct {
	name   string // the golden file: testdata/golden/TEST/NAME.golden
	method string
	path   string // with its query
	body   string // JSON; "" for none
}

// runGolden sends the steps in order and compares each answer with its golden file.
func runGolden(t *testing.T, steps []step) {
	t.Helper()
	url := sharedServer(t)
	for _, s := range steps {
		req, err := http.NewRequest(s.method, url+s.path, strings.NewReader(s.body))
		if err != nil {
			t.Fatal(err)
		}
		if s.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		got := render(resp, body)
		file := filepath.Join("testdata", "golden", t.Name(), s.name+".golden")
		if *update {
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("%s: %v (run with -update to create it)", s.name, err)
		}
		if got != string(want) {
			t.Errorf("%s %s %s: answer differs from %s\n--- got\n%s\n--- want\n%s", s.name, s.method, s.path, file, got, want)
		}
	}
}

var (
	uuidPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	timePattern = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)`)
)

// scrubs replace further values that change per run (a pattern and its replacement, as
// regexp.ReplaceAllString takes them); a test file adds those of its resources in an init.
var scrubs = []scrub{
	// A download link (GetFunction's Code.Location, a layer's Content.Location) holds the
	// server's address, an expiry and a signature.
	{regexp.MustCompile(`http://127\.0\.0\.1:\d+(/[^?"]*)\?X-Flint-Expires=\d+&X-Flint-Signature=[0-9a-f]+`), "<link>$1"},
	// Times as epoch seconds (mappings, schedules, event invoke configs).
	{regexp.MustCompile(`("(?:LastModified|CreationDate|LastModificationDate)": )\d+(?:\.\d+)?(?:e[+-]?\d+)?`), "${1}<epoch>"},
	// GetAccountSettings counts every function of the shared server, other tests' too.
	{regexp.MustCompile(`"(TotalCodeSize|FunctionCount|UnreservedConcurrentExecutions)": \d+`), `"$1": <n>`},
}

type scrub struct {
	pattern *regexp.Regexp
	with    string
}

// render is an answer as its golden file holds it: the status line, the error type, the body
// (indented JSON, its keys sorted) with the values that change per run replaced; a body that is
// not JSON (a zip, log lines) as its Content-Type, length and SHA-256.
func render(resp *http.Response, body []byte) string {
	if ct := resp.Header.Get("Content-Type"); ct != "" && ct != "application/json" {
		sum := sha256.Sum256(body)
		return fmt.Sprintf("%d\nContent-Type: %s\nContent-Length: %s\n\n%d bytes, sha256 %s\n", resp.StatusCode, ct,
			resp.Header.Get("Content-Length"), len(body), hex.EncodeToString(sum[:]))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d\n", resp.StatusCode)
	if et := resp.Header.Get("X-Amzn-Errortype"); et != "" {
		fmt.Fprintf(&b, "X-Amzn-Errortype: %s\n", et)
	}
	b.WriteString("\n")
	if len(body) > 0 {
		var v any
		if err := json.Unmarshal(body, &v); err == nil {
			var out bytes.Buffer
			enc := json.NewEncoder(&out)
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			_ = enc.Encode(v)
			body = out.Bytes()
		}
		s := uuidPattern.ReplaceAllString(string(body), "<uuid>")
		s = timePattern.ReplaceAllString(s, "<time>")
		for _, r := range scrubs {
			s = r.pattern.ReplaceAllString(s, r.with)
		}
		b.WriteString(s)
	}
	return b.String()
}

// TestGoldenAliases: CreateAlias, GetAlias, UpdateAlias, ListAliases, DeleteAlias and their
// rejections, as AWS answers them.
func TestGoldenAliases(t *testing.T) {
	runGolden(t, append(createFunction("golden-alias"), []step{
		{"publish", "POST", "/2015-03-31/functions/golden-alias/versions", `{}`},
		{"create", "POST", "/2015-03-31/functions/golden-alias/aliases", `{"Name":"live","FunctionVersion":"1","Description":"prod"}`},
		{"create-taken", "POST", "/2015-03-31/functions/golden-alias/aliases", `{"Name":"live","FunctionVersion":"1"}`},
		{"create-no-version", "POST", "/2015-03-31/functions/golden-alias/aliases", `{"Name":"x"}`},
		{"create-missing-version", "POST", "/2015-03-31/functions/golden-alias/aliases", `{"Name":"x","FunctionVersion":"7"}`},
		{"create-numeric-name", "POST", "/2015-03-31/functions/golden-alias/aliases", `{"Name":"12","FunctionVersion":"1"}`},
		{"create-bad-json", "POST", "/2015-03-31/functions/golden-alias/aliases", `{"Name":`},
		{"create-missing-function", "POST", "/2015-03-31/functions/golden-nope/aliases", `{"Name":"x","FunctionVersion":"1"}`},
		{"get", "GET", "/2015-03-31/functions/golden-alias/aliases/live", ""},
		{"get-missing", "GET", "/2015-03-31/functions/golden-alias/aliases/gone", ""},
		{"update-stale", "PUT", "/2015-03-31/functions/golden-alias/aliases/live", `{"Description":"x","RevisionId":"stale"}`},
		{"update", "PUT", "/2015-03-31/functions/golden-alias/aliases/live", `{"Description":"new"}`},
		{"update-missing", "PUT", "/2015-03-31/functions/golden-alias/aliases/gone", `{"Description":"x"}`},
		{"list", "GET", "/2015-03-31/functions/golden-alias/aliases", ""},
		{"list-bad-max", "GET", "/2015-03-31/functions/golden-alias/aliases?MaxItems=0", ""},
		{"delete", "DELETE", "/2015-03-31/functions/golden-alias/aliases/live", ""},
		{"delete-again", "DELETE", "/2015-03-31/functions/golden-alias/aliases/live", ""},
		{"list-empty", "GET", "/2015-03-31/functions/golden-alias/aliases", ""},
	}...))
}

// createFunction is the step that creates a Python function named name from a fixed package
// (the same bytes every run, so its CodeSha256 is stable).
func createFunction(name string) []step {
	body, _ := json.Marshal(map[string]any{"FunctionName": name, "Runtime": "python3.12", "Handler": "app.handler",
		"Role": "arn:aws:iam::123456789012:role/golden", "Code": map[string]any{"ZipFile": fixedZip("app.py", "def handler(event, context):\n    return event\n")}})
	return []step{{"create-function", "POST", "/2015-03-31/functions", string(body)}}
}

// fixedZip is a package (base64, as a request carries it) holding one file: the same bytes
// every run, so its CodeSha256 is stable.
func fixedZip(file, body string) string {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: file, Method: zip.Deflate, Modified: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err == nil {
		_, err = w.Write([]byte(body))
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}
