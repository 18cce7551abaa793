package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

func TestFormatAge(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "-"},
		{-time.Second, "-"},
		{350*time.Millisecond + 400*time.Microsecond, "350ms"},
		{1234 * time.Millisecond, "1.2s"},
		{59*time.Second + 960*time.Millisecond, "1m0s"},
		{3*time.Minute + 400*time.Millisecond, "3m0s"},
		{2*time.Hour + 5*time.Minute + 7*time.Second + 600*time.Millisecond, "2h5m8s"},
	}
	for _, tt := range tests {
		if got := formatAge(tt.in); got != tt.want {
			t.Errorf("formatAge(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestQueueOutput drives `flint queue` against an HTTP server speaking the endpoint's protocol,
// for exact output.
func TestQueueOutput(t *testing.T) {
	const body = `{"functions":[{"function":"a-long-function-name","depth":1200,"in_flight":16,"oldest_age_ns":180400000000},` +
		`{"function":"b","depth":3,"in_flight":1,"oldest_age_ns":1234000000},{"function":"c","depth":0,"in_flight":1,"oldest_age_ns":0}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/flint/v1/async" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	}))
	defer srv.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Amzn-ErrorType", "ServiceException")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `{"Type":"Service","message":"An internal error occurred."}`)
	}))
	defer broken.Close()
	empty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"functions":[]}`)
	}))
	defer empty.Close()
	notJSON := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<html>`)
	}))
	defer notJSON.Close()

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "table", args: []string{"queue", "--endpoint", srv.URL}, wantStdout: "" +
			"FUNCTION              DEPTH  IN-FLIGHT  OLDEST\n" +
			"a-long-function-name  1200   16         3m0s\n" +
			"b                     3      1          1.2s\n" +
			"c                     0      1          -\n"},
		{name: "json", args: []string{"queue", "--json", "--endpoint", srv.URL}, wantStdout: body + "\n"},
		{name: "empty", args: []string{"queue", "--endpoint", empty.URL}, wantStdout: "nothing queued\n"},
		{name: "empty json", args: []string{"queue", "--json", "--endpoint", empty.URL}, wantStdout: `{"functions":[]}` + "\n"},
		{name: "wrong path", args: []string{"queue", "--endpoint", srv.URL + "/base"}, wantCode: 1,
			wantStderr: "flint: /base/flint/v1/async 404 Not Found: 404 page not found\n"},
		{name: "AWS error", args: []string{"queue", "--endpoint", broken.URL}, wantCode: 1,
			wantStderr: "flint: ServiceException: An internal error occurred.\n"},
		{name: "not JSON", args: []string{"queue", "--endpoint", notJSON.URL}, wantCode: 1,
			wantStderr: "flint: decode the async queue: invalid character '<' looking for beginning of value\n"},
		{name: "unreachable", args: []string{"queue", "--endpoint", "http://127.0.0.1:1"}, wantCode: 1,
			wantStderr: "flint: cannot reach Flint at http://127.0.0.1:1 (is 'flint serve' running?): dial tcp 127.0.0.1:1: connect: connection refused\n"},
		{name: "argument", args: []string{"queue", "x"}, wantCode: exitUsage,
			wantStderr: "flint: unexpected argument \"x\" (see 'flint queue --help')\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, context.Background(), tt.args...)
			if code != tt.wantCode || stdout != tt.wantStdout || stderr != tt.wantStderr {
				t.Errorf("exit %d, stdout:\n%s\nstderr %q\nwant exit %d, stdout:\n%s\nstderr %q",
					code, stdout, stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
		})
	}
}

// TestQueueAgainstServer queues Event invokes behind a slow function with reserved concurrency 1
// on a real in-process Flint and reads them back with `flint queue`.
func TestQueueAgainstServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, _ := startServer(t, ctx, nil)

	dir := t.TempDir()
	// Long enough for the queue to be seen with its first event running. (Server.Close currently
	// waits for a running invocation to end, so this is also how long the test may take.)
	if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte("import time\ndef handler(event, context):\n    time.sleep(10)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, ctx, "deploy", dir, "--name", "slow", "--runtime", "python3.12", "--handler", "app.handler", "--timeout", "30"); code != 0 {
		t.Fatalf("deploy: %s", errOut)
	}
	client, err := (&app{endpoint: s.URL()}).lambdaClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("slow"),
		ReservedConcurrentExecutions: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	const n = 4
	for range n {
		out, err := client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("slow"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{}`)})
		if err != nil || out.StatusCode != http.StatusAccepted {
			t.Fatalf("Event invoke: %+v, %v", out, err)
		}
	}

	// One event runs, the others wait their turn (throttled ones are counted in flight only
	// for the moment they try): poll until the queue shows exactly that.
	var got []queueStats
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		code, out, errOut := runCLI(t, ctx, "queue", "--json")
		if code != 0 {
			t.Fatalf("flint queue --json: exit %d, %s", code, errOut)
		}
		var st struct{ Functions []queueStats }
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("flint queue --json printed %q: %v", out, err)
		}
		got = st.Functions
		if len(got) == 1 && got[0].Function == "slow" && got[0].Depth == n && got[0].InFlight == 1 && got[0].OldestAge > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("flint queue --json never showed %d queued and 1 running: last %+v", n, got)
		}
	}
	code, out, errOut := runCLI(t, ctx, "queue")
	if code != 0 || errOut != "" {
		t.Fatalf("flint queue: exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	row := regexp.MustCompile(`^slow +[1-4] +[1-4] +(\d+ms|\d+(\.\d)?s|\d+m\d+s)$`)
	if len(lines) != 2 || !regexp.MustCompile(`^FUNCTION +DEPTH +IN-FLIGHT +OLDEST$`).MatchString(lines[0]) || !row.MatchString(lines[1]) {
		t.Errorf("flint queue printed:\n%s\nwant a header and a row matching %s", out, row)
	}
}
