package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/flint-run/flint/internal/build"
	"github.com/flint-run/flint/internal/sandbox/linux"
)

func TestMain(m *testing.M) {
	linux.Init() // a re-executed sandbox init runs here and never returns
	goleak.VerifyTestMain(m)
}

// runCLI runs the command line with args and returns the exit code and both streams.
func runCLI(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut}
	code = a.run(ctx, args)
	return code, out.String(), errOut.String()
}

// writeTree creates files under dir: a name ending in "/" is a directory, "->target" a
// symlink, anything else a file with that content. Modes are set explicitly (umask aside).
type treeEntry struct {
	name    string
	mode    fs.FileMode
	content string
}

func writeTree(t *testing.T, dir string, entries []treeEntry) {
	t.Helper()
	for _, e := range entries {
		p := filepath.Join(dir, filepath.FromSlash(e.name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(e.name, "/"):
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, e.mode); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(e.content, "->"):
			if err := os.Symlink(strings.TrimPrefix(e.content, "->"), p); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, []byte(e.content), e.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, e.mode); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestLoadPackage(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, []treeEntry{
		{name: "src/main.py", mode: 0o644, content: "print(1)"},
		{name: "pkg.zip", mode: 0o644, content: "PK\x05\x06" + strings.Repeat("\x00", 18)},
		{name: "PKG2.ZIP", mode: 0o644, content: "PK\x05\x06" + strings.Repeat("\x00", 18)},
		{name: "bootstrap", mode: 0o755, content: "binary"},
		{name: "srclink", content: "->src"},
	})
	wantDir, _, err := build.ZipDir(filepath.Join(dir, "src"), build.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path    string
		want    []byte
		wantErr bool
	}{
		{path: "src", want: wantDir},
		{path: "srclink", want: wantDir},
		{path: "pkg.zip", want: []byte("PK\x05\x06" + strings.Repeat("\x00", 18))},
		{path: "PKG2.ZIP", want: []byte("PK\x05\x06" + strings.Repeat("\x00", 18))},
		{path: "bootstrap", wantErr: true},
		{path: "missing", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := loadPackage(filepath.Join(dir, tt.path))
			if (err != nil) != tt.wantErr {
				t.Fatalf("loadPackage(%s) error = %v, want error %v", tt.path, err, tt.wantErr)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("loadPackage(%s) = %d bytes, want %d bytes", tt.path, len(got), len(tt.want))
			}
		})
	}
}

func TestParseEnv(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    map[string]string
		wantErr bool
	}{
		{name: "none", in: nil, want: map[string]string{}},
		{name: "one", in: []string{"A=1"}, want: map[string]string{"A": "1"}},
		{name: "empty value", in: []string{"A="}, want: map[string]string{"A": ""}},
		{name: "equals and commas in value", in: []string{"DSN=a=b,c=d"}, want: map[string]string{"DSN": "a=b,c=d"}},
		{name: "later wins", in: []string{"A=1", "B=2", "A=3"}, want: map[string]string{"A": "3", "B": "2"}},
		{name: "no equals", in: []string{"A"}, wantErr: true},
		{name: "no key", in: []string{"=1"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseEnv(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseEnv(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseEnv(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// TestUsageErrors checks that every misuse exits 2 with one line on stderr, before any request.
func TestUsageErrors(t *testing.T) {
	// An endpoint that nothing listens on: a usage error must not get as far as a request.
	t.Setenv("FLINT_ENDPOINT", "http://127.0.0.1:1")
	payload := filepath.Join(t.TempDir(), "event.json")
	if err := os.WriteFile(payload, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `flint: unknown command "bogus" (see 'flint --help')`},
		{[]string{"--bogus"}, `flint: unknown flag: --bogus (see 'flint --help')`},
		{[]string{"--endpoint", "ftp://x", "ls"}, `flint: --endpoint "ftp://x" must be an http:// or https:// URL (see 'flint ls --help')`},
		{[]string{"deploy"}, `flint: missing PATH (a directory or a .zip file) (see 'flint deploy --help')`},
		{[]string{"deploy", "a", "b"}, `flint: unexpected argument "b" (see 'flint deploy --help')`},
		{[]string{"deploy", "."}, `flint: --name is required (see 'flint deploy --help')`},
		{[]string{"deploy", ".", "--name", "f", "--env", "NOPE"}, `flint: --env "NOPE": want KEY=VALUE (see 'flint deploy --help')`},
		{[]string{"deploy", ".", "--name", "f", "--memory", "lots"}, `flint: invalid argument "lots" for "--memory" flag: strconv.ParseInt: parsing "lots": invalid syntax (see 'flint deploy --help')`},
		{[]string{"deploy", ".", "--name", "f", "--runtime", ""}, `flint: --runtime must not be empty (see 'flint deploy --help')`},
		{[]string{"invoke"}, `flint: missing function NAME (see 'flint invoke --help')`},
		{[]string{"invoke", "f", "{}", "extra"}, `flint: unexpected argument "extra" (see 'flint invoke --help')`},
		{[]string{"invoke", "f", "{}", "--payload-file", payload}, `flint: give the event as an argument or with --payload-file, not both (see 'flint invoke --help')`},
		{[]string{"bench"}, `flint: missing function NAME (see 'flint bench --help')`},
		{[]string{"bench", "f", "-c", "0"}, `flint: --concurrency must be at least 1 (see 'flint bench --help')`},
		{[]string{"bench", "f", "-c", "4", "-n", "3"}, `flint: --requests must be at least --concurrency (4) (see 'flint bench --help')`},
		{[]string{"bench", "f", "--warmup", "-1"}, `flint: --warmup must not be negative (see 'flint bench --help')`},
		{[]string{"bench", "f", "{}", "--payload-file", payload}, `flint: give the event as an argument or with --payload-file, not both (see 'flint bench --help')`},
		{[]string{"bench", "f", "--cold", "--burst", "4"}, `flint: --cold, --burst and --async are different measurements: give one (see 'flint bench --help')`},
		{[]string{"bench", "f", "--async", "--cold"}, `flint: --cold, --burst and --async are different measurements: give one (see 'flint bench --help')`},
		{[]string{"bench", "f", "--durability", "fsync"}, `flint: --durability applies to --async only (see 'flint bench --help')`},
		{[]string{"bench", "f", "--async", "--durability", "disk"}, `flint: --durability must be os or fsync (see 'flint bench --help')`},
		{[]string{"bench", "f", "--burst", "0"}, `flint: --burst must be at least 1 (see 'flint bench --help')`},
		{[]string{"bench", "f", "--burst", "4", "-n", "10"}, `flint: --burst N sends N invokes at once: --concurrency, --requests and --warmup do not apply (see 'flint bench --help')`},
		{[]string{"bench", "f", "--cold", "-c", "2"}, `flint: --cold measures one cold start at a time: --concurrency must be 1 (--burst N starts N at once) (see 'flint bench --help')`},
		{[]string{"bench", "f", "--cold", "--warmup", "5"}, `flint: --warmup does not apply to --cold (see 'flint bench --help')`},
		{[]string{"bench", "f", "--cold", "-n", "0"}, `flint: --requests must be at least --concurrency (1) (see 'flint bench --help')`},
		{[]string{"ls", "x"}, `flint: unexpected argument "x" (see 'flint ls --help')`},
		{[]string{"rm"}, `flint: missing function NAME (see 'flint rm --help')`},
		{[]string{"logs"}, `flint: missing function NAME (see 'flint logs --help')`},
		{[]string{"logs", "f", "--tail", "-1"}, `flint: --tail must not be negative (see 'flint logs --help')`},
		{[]string{"serve", "x"}, `flint: unexpected argument "x" (see 'flint serve --help')`},
		{[]string{"serve", "--log-level", "loud"}, `flint: --log-level "loud": want debug, info, warn or error (see 'flint serve --help')`},
		{[]string{"serve", "--keep-alive", "soon"}, `flint: invalid argument "soon" for "--keep-alive" flag: time: invalid duration "soon" (see 'flint serve --help')`},
		{[]string{"serve", "--listen", "nowhere", "--region", "moon"}, `flint: invalid configuration: listen "nowhere": address nowhere: missing port in address; region "moon" is not a region name like us-east-1 (see 'flint serve --help')`},
		{[]string{"version", "now"}, `flint: unexpected argument "now" (see 'flint version --help')`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := runCLI(t, context.Background(), tt.args...)
			if code != exitUsage {
				t.Errorf("exit code = %d, want %d", code, exitUsage)
			}
			if got := strings.TrimSuffix(stderr, "\n"); got != tt.want {
				t.Errorf("stderr:\n got %q\nwant %q", stderr, tt.want+"\n")
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	tests := []struct {
		args       []string
		wantPrefix string
	}{
		{nil, "Flint runs AWS Lambda functions"},
		{[]string{"--help"}, "Flint runs AWS Lambda functions"},
		{[]string{"deploy", "--help"}, "Create a function"},
		{[]string{"version"}, "flint "},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := runCLI(t, context.Background(), tt.args...)
			if code != exitOK || stderr != "" {
				t.Errorf("exit code %d, stderr %q; want 0 and nothing", code, stderr)
			}
			if !strings.HasPrefix(stdout, tt.wantPrefix) {
				t.Errorf("stdout = %q, want it to start with %q", stdout, tt.wantPrefix)
			}
		})
	}
}

// apiResponseError wraps an API error as the SDK returns it from an operation.
func apiResponseError(status int, err error) error {
	return &smithy.OperationError{ServiceID: "Lambda", OperationName: "GetFunction", Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      err,
		},
		RequestID: "5f1c9b1e-0000-0000-0000-000000000000",
	}}
}

func TestErrorLine(t *testing.T) {
	const endpoint = "http://127.0.0.1:9000"
	arn := "arn:aws:lambda:us-east-1:000000000000:function:nope"
	tests := []struct {
		name string
		err  error
		want string
	}{
		{
			name: "generic API error",
			err:  &smithy.GenericAPIError{Code: "ServiceException", Message: "An internal error occurred."},
			want: "flint: ServiceException: An internal error occurred.",
		},
		{
			name: "typed API error from an operation",
			err:  apiResponseError(404, &types.ResourceNotFoundException{Message: aws.String("Function not found: " + arn)}),
			want: "flint: ResourceNotFoundException: Function not found: " + arn,
		},
		{
			name: "API error without a message",
			err:  apiResponseError(409, &smithy.GenericAPIError{Code: "ResourceConflictException"}),
			want: "flint: ResourceConflictException",
		},
		{
			name: "wrapped API error",
			err:  fmt.Errorf("deploy: %w", &types.InvalidParameterValueException{Message: aws.String("Runtime is not supported")}),
			want: "flint: InvalidParameterValueException: Runtime is not supported",
		},
		{
			name: "unreachable",
			err: apiResponseError(0, &smithyhttp.RequestSendError{Err: &net.OpError{
				Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9000}, Err: errors.New("connect: connection refused"),
			}}),
			want: "flint: cannot reach Flint at http://127.0.0.1:9000 (is 'flint serve' running?): dial tcp 127.0.0.1:9000: connect: connection refused",
		},
		{
			name: "multi-line",
			err:  errors.Join(errors.New("first"), errors.New("second\n")),
			want: "flint: first; second",
		},
		{
			name: "plain",
			err:  errors.New("function error (Unhandled)"),
			want: "flint: function error (Unhandled)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errorLine(tt.err, endpoint); got != tt.want {
				t.Errorf("errorLine:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestRetryer(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"not found", apiResponseError(404, &types.ResourceNotFoundException{}), false},
		{"throttled", apiResponseError(429, &types.TooManyRequestsException{}), false},
		{"conflict", apiResponseError(409, &smithy.GenericAPIError{Code: "ResourceConflictException"}), false},
		{"service unavailable", apiResponseError(503, &smithy.GenericAPIError{Code: "ServiceException"}), true},
		{"connection refused", apiResponseError(0, &smithyhttp.RequestSendError{Err: &net.OpError{Op: "dial", Err: errors.New("refused")}}), true},
	}
	r := newRetryer()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.IsErrorRetryable(tt.err); got != tt.want {
				t.Errorf("IsErrorRetryable = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNormalizeEndpoint(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "http://127.0.0.1:9000", want: "http://127.0.0.1:9000"},
		{in: "http://127.0.0.1:9000/", want: "http://127.0.0.1:9000"},
		{in: "https://flint.example.com//", want: "https://flint.example.com"},
		{in: "127.0.0.1:9000", want: "http://127.0.0.1:9000"},
		{in: " ", wantErr: true},
		{in: "ftp://x", wantErr: true},
	}
	for _, tt := range tests {
		got, err := normalizeEndpoint(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("normalizeEndpoint(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestLogs drives `flint logs` against an HTTP server speaking the logs endpoint's protocol.
func TestLogs(t *testing.T) {
	const records = "START RequestId: 1 Version: $LATEST\nhello\nEND RequestId: 1\n"
	var (
		mu       sync.Mutex
		gotQuery string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotQuery = r.URL.RawQuery
		mu.Unlock()
		switch r.URL.Path {
		case "/flint/v1/functions/echo/logs":
		case "/flint/v1/functions/broken/logs":
			http.Error(w, "store unavailable\nretry later", http.StatusInternalServerError)
			return
		default:
			w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"Type":"User","Message":"Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope","message":"Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope"}`)
			return
		}
		fmt.Fprint(w, records)
		if r.URL.Query().Get("follow") == "true" {
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}
	}))
	defer srv.Close()

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantQuery  string
		wantStdout string
		wantStderr string
	}{
		{name: "all", args: []string{"logs", "echo"}, wantQuery: "", wantStdout: records},
		{name: "tail", args: []string{"logs", "echo", "--tail", "5"}, wantQuery: "tail=5", wantStdout: records},
		{name: "tail zero", args: []string{"logs", "echo", "--tail", "0"}, wantQuery: "tail=0", wantStdout: records},
		{name: "not found", args: []string{"logs", "nope"}, wantCode: 1,
			wantStderr: "flint: ResourceNotFoundException: Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope\n"},
		{name: "server failure", args: []string{"logs", "broken"}, wantCode: 1,
			wantStderr: "flint: /flint/v1/functions/broken/logs 500 Internal Server Error: store unavailable; retry later\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, context.Background(), append(tt.args, "--endpoint", srv.URL)...)
			if code != tt.wantCode || stdout != tt.wantStdout || stderr != tt.wantStderr {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, stdout, stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
			mu.Lock()
			defer mu.Unlock()
			if tt.wantCode == 0 && gotQuery != tt.wantQuery {
				t.Errorf("query = %q, want %q", gotQuery, tt.wantQuery)
			}
		})
	}

	t.Run("follow until interrupted", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := &signalWriter{wrote: make(chan struct{})}
		var errOut bytes.Buffer
		a := &app{stdin: strings.NewReader(""), stdout: out, stderr: &errOut}
		done := make(chan int)
		go func() { done <- a.run(ctx, []string{"logs", "echo", "-f", "--endpoint", srv.URL}) }()
		select {
		case <-out.wrote:
		case <-time.After(30 * time.Second):
			t.Fatal("no log output while following")
		}
		cancel() // as Ctrl-C does
		if code := <-done; code != exitOK {
			t.Errorf("exit code = %d, want 0; stderr %q", code, errOut.String())
		}
		mu.Lock()
		defer mu.Unlock()
		if gotQuery != "follow=true" {
			t.Errorf("query = %q, want follow=true", gotQuery)
		}
		if got := out.String(); got != records {
			t.Errorf("stdout = %q, want %q", got, records)
		}
	})
}

// signalWriter is a buffer that closes wrote on the first write.
type signalWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	once  sync.Once
	wrote chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.once.Do(func() { close(w.wrote) })
	return w.buf.Write(p)
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
