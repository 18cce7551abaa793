package runtimes

import (
	"encoding/json"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const pyRuntime = "python3.11"

// pyError is the body the Python client posts to /error and /init/error.
type pyError struct {
	ErrorMessage string   `json:"errorMessage"`
	ErrorType    string   `json:"errorType"`
	RequestID    *string  `json:"requestId"`
	StackTrace   []string `json:"stackTrace"`
}

func decodePyError(t *testing.T, p post) pyError {
	t.Helper()
	var e pyError
	if err := json.Unmarshal([]byte(p.Body), &e); err != nil {
		t.Fatalf("error body %q: %v", p.Body, err)
	}
	if e.RequestID == nil || e.StackTrace == nil {
		t.Errorf("error body %s: want requestId and stackTrace present", p.Body)
	}
	return e
}

// pyLogLine matches AWS's Python log format for one record.
func pyLogLine(level, requestID, message string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^\[` + level + `\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t` +
		regexp.QuoteMeta(requestID) + `\t` + regexp.QuoteMeta(message) + `$`)
}

func TestPythonInvoke(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		files   map[string]string
		handler string
		env     []string
		event   event
		check   func(t *testing.T, got post, out string)
	}{
		{
			name:    "echo",
			files:   map[string]string{"app.py": "def handler(event, context):\n    return event\n"},
			handler: "app.handler",
			event:   event{ID: "echo-1", Body: `{"a":1,"b":[true,null,"x"],"s":"é"}`},
			check: func(t *testing.T, got post, out string) {
				wantResponse(t, got, `{"a": 1, "b": [true, null, "x"], "s": "\u00e9"}`)
				if ct := got.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
			},
		},
		{
			name: "context",
			files: map[string]string{"app.py": `import os, time
def handler(event, context):
    r1 = context.get_remaining_time_in_millis()
    time.sleep(0.02)
    r2 = context.get_remaining_time_in_millis()
    return {
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "identity_pool": context.identity.cognito_identity_pool_id,
        "custom": context.client_context.custom,
        "installation_id": context.client_context.client.installation_id,
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        "r1": r1, "r2": r2,
    }
`},
			handler: "app.handler",
			event: event{
				ID:              "ctx-1",
				Body:            `{}`,
				ARN:             "arn:aws:lambda:us-east-1:123456789012:function:fn:live",
				TraceID:         "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1",
				ClientContext:   `{"client":{"installation_id":"inst-1"},"custom":{"k":"v"},"env":{}}`,
				CognitoIdentity: `{"cognitoIdentityId":"id-1","cognitoIdentityPoolId":"pool-1"}`,
			},
			check: func(t *testing.T, got post, out string) {
				if got.Kind != "response" {
					t.Fatalf("post kind %q (%s), want response", got.Kind, got.Body)
				}
				var ctx struct {
					RequestID      string            `json:"aws_request_id"`
					FunctionName   string            `json:"function_name"`
					Version        string            `json:"function_version"`
					ARN            string            `json:"invoked_function_arn"`
					Memory         string            `json:"memory_limit_in_mb"`
					LogGroup       string            `json:"log_group_name"`
					LogStream      string            `json:"log_stream_name"`
					IdentityPool   string            `json:"identity_pool"`
					Custom         map[string]string `json:"custom"`
					InstallationID string            `json:"installation_id"`
					Trace          string            `json:"trace"`
					R1, R2         int64
				}
				if err := json.Unmarshal([]byte(got.Body), &ctx); err != nil {
					t.Fatalf("response %q: %v", got.Body, err)
				}
				if ctx.R1 <= 0 || ctx.R2 <= 0 || ctx.R2 >= ctx.R1 {
					t.Errorf("remaining time %d then %d, want positive and decreasing", ctx.R1, ctx.R2)
				}
				ctx.R1, ctx.R2 = 0, 0
				want := ctx
				want.RequestID = "ctx-1"
				want.FunctionName = "fn"
				want.Version = "$LATEST"
				want.ARN = "arn:aws:lambda:us-east-1:123456789012:function:fn:live"
				want.Memory = "256"
				want.LogGroup = "/aws/lambda/fn"
				want.LogStream = "2026/01/02/[$LATEST]0123456789abcdef"
				want.IdentityPool = "pool-1"
				want.Custom = map[string]string{"k": "v"}
				want.InstallationID = "inst-1"
				want.Trace = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
				if diff := cmp.Diff(want, ctx); diff != "" {
					t.Errorf("context (-want +got):\n%s", diff)
				}
			},
		},
		{
			name:    "raise",
			files:   map[string]string{"app.py": "def handler(event, context):\n    raise ValueError(\"boom\")\n"},
			handler: "app.handler",
			event:   event{ID: "raise-1", Body: `{}`},
			check: func(t *testing.T, got post, out string) {
				if got.Kind != "error" {
					t.Fatalf("post kind %q (%s), want error", got.Kind, got.Body)
				}
				if h := got.Header.Get("Lambda-Runtime-Function-Error-Type"); h != "ValueError" {
					t.Errorf("error type header = %q, want ValueError", h)
				}
				e := decodePyError(t, got)
				if e.ErrorType != "ValueError" || e.ErrorMessage != "boom" || *e.RequestID != "raise-1" {
					t.Errorf("error = %+v, want ValueError boom raise-1", e)
				}
				if len(e.StackTrace) != 1 ||
					!strings.HasPrefix(e.StackTrace[0], `  File "`) ||
					!strings.HasSuffix(e.StackTrace[0], "/app.py\", line 2, in handler\n    raise ValueError(\"boom\")\n") {
					t.Errorf("stackTrace = %q, want the handler's frame only", e.StackTrace)
				}
				want := "[ERROR] ValueError: boom\rTraceback (most recent call last):\r\u00a0\u00a0File \""
				if got := lines(out, "[ERROR]"); len(got) != 1 || !strings.HasPrefix(got[0], want) {
					t.Errorf("error log lines = %q, want one starting %q", got, want)
				}
			},
		},
		{
			name: "raise custom from nested call",
			files: map[string]string{"app.py": `class PaymentDeclined(Exception):
    pass

def charge():
    raise PaymentDeclined("card declined")

def handler(event, context):
    charge()
`},
			handler: "app.handler",
			event:   event{Body: `{}`},
			check: func(t *testing.T, got post, out string) {
				e := decodePyError(t, got)
				if got.Kind != "error" || e.ErrorType != "PaymentDeclined" || e.ErrorMessage != "card declined" {
					t.Errorf("post %s %s, want error PaymentDeclined", got.Kind, got.Body)
				}
				if len(e.StackTrace) != 2 || !strings.Contains(e.StackTrace[1], "in charge") {
					t.Errorf("stackTrace = %q, want handler then charge", e.StackTrace)
				}
			},
		},
		{
			name:    "unserialisable result",
			files:   map[string]string{"app.py": "def handler(event, context):\n    return {1, 2}\n"},
			handler: "app.handler",
			event:   event{Body: `{}`},
			check: func(t *testing.T, got post, out string) {
				e := decodePyError(t, got)
				want := "Unable to marshal response: Object of type set is not JSON serializable"
				if got.Kind != "error" || e.ErrorType != "Runtime.MarshalError" || e.ErrorMessage != want {
					t.Errorf("post %s %s, want error Runtime.MarshalError %q", got.Kind, got.Body, want)
				}
			},
		},
		{
			name:    "bytes result",
			files:   map[string]string{"app.py": "def handler(event, context):\n    return b'raw'\n"},
			handler: "app.handler",
			event:   event{Body: `{}`},
			check: func(t *testing.T, got post, out string) {
				wantResponse(t, got, "raw")
			},
		},
		{
			name:    "decimal and none",
			files:   map[string]string{"app.py": "import decimal\ndef handler(event, context):\n    return [decimal.Decimal('1.5'), decimal.Decimal('2'), None]\n"},
			handler: "app.handler",
			event:   event{Body: `{}`},
			check: func(t *testing.T, got post, out string) {
				wantResponse(t, got, `[1.5, 2, null]`)
			},
		},
		{
			name:    "package module",
			files:   map[string]string{"pkg/__init__.py": "", "pkg/mod.py": "def handler(event, context):\n    return 'pkg'\n"},
			handler: "pkg.mod.handler",
			event:   event{Body: `{}`},
			check:   func(t *testing.T, got post, out string) { wantResponse(t, got, `"pkg"`) },
		},
		{
			name:    "module in directory",
			files:   map[string]string{"src/fn/main.py": "def handler(event, context):\n    return 'dir'\n"},
			handler: "src/fn/main.handler",
			event:   event{Body: `{}`},
			check:   func(t *testing.T, got post, out string) { wantResponse(t, got, `"dir"`) },
		},
		{
			name: "logging and print",
			files: map[string]string{"app.py": `import logging
logger = logging.getLogger()
logger.setLevel(logging.INFO)
logger.info("at init")

def handler(event, context):
    print("printed")
    logger.info("hello %s", "world")
    logging.getLogger("child").warning("careful")
    logging.debug("hidden")
`},
			handler: "app.handler",
			event:   event{ID: "log-1", Body: `{}`},
			check: func(t *testing.T, got post, out string) {
				wantResponse(t, got, "null")
				for _, re := range []*regexp.Regexp{
					pyLogLine("INFO", "", "at init"),
					regexp.MustCompile(`(?m)^printed$`),
					pyLogLine("INFO", "log-1", "hello world"),
					pyLogLine("WARNING", "log-1", "careful"),
				} {
					if !re.MatchString(out) {
						t.Errorf("output does not match %s", re)
					}
				}
				if strings.Contains(out, "hidden") {
					t.Errorf("output has a DEBUG record below the root level")
				}
			},
		},
		{
			name: "logging default level is WARNING as on Lambda",
			files: map[string]string{"app.py": `import logging
def handler(event, context):
    logging.info("quiet")
    logging.warning("loud")
`},
			handler: "app.handler",
			event:   event{ID: "log-2", Body: `{}`},
			check: func(t *testing.T, got post, out string) {
				if strings.Contains(out, "quiet") || !pyLogLine("WARNING", "log-2", "loud").MatchString(out) {
					t.Errorf("output %q: want only the WARNING record", out)
				}
			},
		},
		{
			name: "AWS_LAMBDA_LOG_LEVEL",
			files: map[string]string{"app.py": `import logging
def handler(event, context):
    logging.debug("verbose")
`},
			handler: "app.handler",
			env:     []string{"AWS_LAMBDA_LOG_LEVEL=DEBUG"},
			event:   event{ID: "log-3", Body: `{}`},
			check: func(t *testing.T, got post, out string) {
				if !pyLogLine("DEBUG", "log-3", "verbose").MatchString(out) {
					t.Errorf("output %q: want the DEBUG record", out)
				}
			},
		},
		{
			name:    "task root first on sys.path",
			files:   map[string]string{"bootstrap.py": "def handler(event, context):\n    return 'user'\n"},
			handler: "bootstrap.handler",
			event:   event{Body: `{}`},
			check:   func(t *testing.T, got post, out string) { wantResponse(t, got, `"user"`) },
		},
		{
			// Large enough that the peer sends /next chunked.
			name:    "large event and response",
			files:   map[string]string{"app.py": "def handler(event, context):\n    return event\n"},
			handler: "app.handler",
			event:   event{Body: largeJSON},
			check:   func(t *testing.T, got post, out string) { wantResponse(t, got, largeJSON) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := startPeer(t)
			p := start(t, api, fnConfig{runtime: pyRuntime, handler: tt.handler, files: tt.files, env: tt.env})
			got := api.invoke(t, tt.event)
			tt.check(t, got, p.Output(t))
		})
	}
}

func TestPythonInitError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		files      map[string]string
		handler    string
		wantType   string
		wantPrefix string // of errorMessage
	}{
		{"missing module", nil, "missing.handler", "Runtime.ImportModuleError",
			"Unable to import module 'missing': No module named 'missing'"},
		{"missing dependency", map[string]string{"app.py": "import notthere\n"}, "app.handler", "Runtime.ImportModuleError",
			"Unable to import module 'app': No module named 'notthere'"},
		{"syntax error", map[string]string{"app.py": "def handler(event, context)\n    return 1\n"}, "app.handler", "Runtime.UserCodeSyntaxError",
			"Syntax error in module 'app': "},
		{"handler not found", map[string]string{"app.py": "x = 1\n"}, "app.nope", "Runtime.HandlerNotFound",
			"Handler 'nope' missing on module 'app'"},
		{"malformed handler", nil, "app", "Runtime.MalformedHandlerName",
			"Bad handler 'app': not enough values to unpack (expected 2, got 1)"},
		{"built-in module", nil, "sys.handler", "Runtime.BuiltInModuleConflict",
			"Cannot use built-in module sys as a handler module"},
		{"exception at import", map[string]string{"app.py": "raise RuntimeError('init failed')\n"}, "app.handler", "RuntimeError",
			"init failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := startPeer(t)
			p := start(t, api, fnConfig{runtime: pyRuntime, handler: tt.handler, files: tt.files})
			got := api.wait(t)
			if got.Kind != "init/error" {
				t.Fatalf("post kind %q (%s), want init/error", got.Kind, got.Body)
			}
			if h := got.Header.Get("Lambda-Runtime-Function-Error-Type"); h != tt.wantType {
				t.Errorf("error type header = %q, want %q", h, tt.wantType)
			}
			e := decodePyError(t, got)
			if e.ErrorType != tt.wantType || !strings.HasPrefix(e.ErrorMessage, tt.wantPrefix) || *e.RequestID != "" {
				t.Errorf("error = %s, want type %q, message starting %q, empty requestId", got.Body, tt.wantType, tt.wantPrefix)
			}
			if code := p.Wait(t); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if want := "[ERROR] " + tt.wantType + ": " + tt.wantPrefix; !strings.Contains(p.Output(t), want) {
				t.Errorf("output does not contain %q", want)
			}
		})
	}
}

func TestPythonWarm(t *testing.T) {
	t.Parallel()
	api := startPeer(t)
	p := start(t, api, fnConfig{runtime: pyRuntime, handler: "app.handler", files: map[string]string{"app.py": `count = 0
def handler(event, context):
    global count
    count += 1
    if event.get("fail"):
        raise KeyError("x")
    return {"count": count, "id": context.aws_request_id}
`}})
	wantResponse(t, api.invoke(t, event{ID: "w-1", Body: `{}`}), `{"count": 1, "id": "w-1"}`)
	if got := api.invoke(t, event{ID: "w-2", Body: `{"fail":true}`}); got.Kind != "error" {
		t.Errorf("second invoke: post kind %q, want error", got.Kind)
	}
	wantResponse(t, api.invoke(t, event{ID: "w-3", Body: `{}`}), `{"count": 3, "id": "w-3"}`)

	// SIGTERM while waiting on /next ends the process cleanly.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.Wait(t); code != 0 {
		t.Errorf("exit code after SIGTERM %d, want 0", code)
	}
}

func wantResponse(t *testing.T, got post, body string) {
	t.Helper()
	if got.Kind != "response" || got.Body != body {
		t.Errorf("post %s %q, want response %q", got.Kind, got.Body, body)
	}
}
