package server_test

import (
	"bytes"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

var (
	uuidPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	timePattern = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000`)
	hostPattern = regexp.MustCompile(`127\.0\.0\.1:\d+`)
)

// normalize replaces what differs between runs: ids, times, ports.
func normalize(s string) string {
	s = uuidPattern.ReplaceAllString(s, "<uuid>")
	s = timePattern.ReplaceAllString(s, "<time>")
	return hostPattern.ReplaceAllString(s, "<host>")
}

// dump renders a response as status line, sorted headers (minus Date) and body.
func dump(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range resp.Header {
		if k != "Date" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", resp.Status)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(resp.Header[k], ","))
	}
	fmt.Fprintf(&b, "\n%s\n", body)
	return normalize(b.String())
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (-update to accept):\ngot:\n%s\nwant:\n%s", name, path, got, want)
	}
}

// TestWireGolden pins the exact wire shapes real clients parse.
func TestWireGolden(t *testing.T) {
	s := startServer(t, t.TempDir())
	zip := mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    print('hi')\n    if e.get('fail'):\n        raise KeyError('k')\n    return e\n"}})
	do := func(method, path, body string, hdr ...string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	create := fmt.Sprintf(`{"FunctionName":"wire","Runtime":"python3.12","Handler":"app.handler","Role":%q,"Code":{"ZipFile":%q},"Environment":{"Variables":{"GREETING":"hi"}},"Description":"golden"}`,
		role, base64.StdEncoding.EncodeToString(zip))
	golden(t, "create_function", dump(t, do("POST", "/2015-03-31/functions", create)))
	golden(t, "get_function_configuration", dump(t, do("GET", "/2015-03-31/functions/wire/configuration", "")))
	golden(t, "list_functions", dump(t, do("GET", "/2015-03-31/functions/?MaxItems=1", "")))
	golden(t, "get_account_settings", dump(t, do("GET", "/2016-08-19/account-settings", "")))
	golden(t, "invoke", dump(t, do("POST", "/2015-03-31/functions/wire/invocations", `{"x":1}`)))
	golden(t, "invoke_dry_run", dump(t, do("POST", "/2015-03-31/functions/wire/invocations", `{}`, "X-Amz-Invocation-Type", "DryRun")))

	// The error body carries a stack trace with host paths; pin the headers and the type.
	resp := do("POST", "/2015-03-31/functions/wire/invocations", `{"fail":true}`)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("X-Amz-Function-Error") != "Unhandled" || !bytes.Contains(body, []byte(`"errorType": "KeyError"`)) {
		t.Errorf("function error: %v %s", resp.Header, body)
	}
	golden(t, "error_not_json", dump(t, do("POST", "/2015-03-31/functions/wire/invocations", `{nope`)))
	golden(t, "error_validation", dump(t, do("PUT", "/2015-03-31/functions/wire/configuration", `{"MemorySize":64}`)))
	golden(t, "error_conflict", dump(t, do("POST", "/2015-03-31/functions", create)))
	golden(t, "error_unknown_operation", dump(t, do("GET", "/2099-01-01/nothing", "")))
}
