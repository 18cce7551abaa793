package runtimes

import (
	"encoding/json"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const nodeRuntime = "nodejs20.x"

// nodeError is the body the Node client posts to /error and /init/error.
type nodeError struct {
	ErrorType    string   `json:"errorType"`
	ErrorMessage string   `json:"errorMessage"`
	Trace        []string `json:"trace"`
}

func decodeNodeError(t *testing.T, p post) nodeError {
	t.Helper()
	var e nodeError
	if err := json.Unmarshal([]byte(p.Body), &e); err != nil {
		t.Fatalf("error body %q: %v", p.Body, err)
	}
	return e
}

// nodeLogLine matches AWS's Node console format for one call.
func nodeLogLine(requestID, level, message string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t` + regexp.QuoteMeta(requestID) +
		`\t` + level + `\t` + regexp.QuoteMeta(message) + `$`)
}

// wantNodeError checks an invocation error's header and body.
func wantNodeError(t *testing.T, got post, errorType, message string) nodeError {
	t.Helper()
	if got.Kind != "error" {
		t.Fatalf("post %s %s, want error", got.Kind, got.Body)
	}
	if h := got.Header.Get("Lambda-Runtime-Function-Error-Type"); h != errorType {
		t.Errorf("error type header = %q, want %q", h, errorType)
	}
	e := decodeNodeError(t, got)
	if e.ErrorType != errorType || e.ErrorMessage != message {
		t.Errorf("error = %s, want errorType %q errorMessage %q", got.Body, errorType, message)
	}
	return e
}

func TestNodeInvoke(t *testing.T) {
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
			name:    "async echo",
			files:   map[string]string{"index.js": "exports.handler = async (event) => event;\n"},
			handler: "index.handler",
			event:   event{Body: `{"a":1,"b":[true,null,"x"],"s":"é"}`},
			check: func(t *testing.T, got post, out string) {
				wantResponse(t, got, `{"a":1,"b":[true,null,"x"],"s":"é"}`)
			},
		},
		{
			name: "callback",
			files: map[string]string{"index.js": `exports.handler = (event, context, callback) => {
  setTimeout(() => console.log("timer done"), 50);
  callback(null, { waited: context.callbackWaitsForEmptyEventLoop });
};
`},
			handler: "index.handler",
			event:   event{ID: "cb-1", Body: `{}`},
			check: func(t *testing.T, got post, out string) {
				wantResponse(t, got, `{"waited":true}`)
				// The response waits for the event loop to empty, so the timer has run.
				if !nodeLogLine("cb-1", "INFO", "timer done").MatchString(out) {
					t.Errorf("output %q: want the timer's log before the response", out)
				}
			},
		},
		{
			name: "callback without waiting for the event loop",
			files: map[string]string{"index.js": `exports.handler = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = false;
  setTimeout(() => {}, 10 * 60 * 1000);
  callback(null, "early");
};
`},
			handler: "index.handler",
			event:   event{Body: `{}`},
			check:   func(t *testing.T, got post, out string) { wantResponse(t, got, `"early"`) },
		},
		{
			name:    "sync handler that never calls back returns null",
			files:   map[string]string{"index.js": "exports.handler = (event, context, callback) => { setTimeout(() => {}, 10); };\n"},
			handler: "index.handler",
			event:   event{Body: `{}`},
			check:   func(t *testing.T, got post, out string) { wantResponse(t, got, "null") },
		},
		{
			name:    "context.succeed",
			files:   map[string]string{"index.js": "exports.handler = (event, context) => { context.succeed({ok: 1}); };\n"},
			handler: "index.handler",
			event:   event{Body: `{}`},
			check:   func(t *testing.T, got post, out string) { wantResponse(t, got, `{"ok":1}`) },
		},
		{
			name:    "undefined result",
			files:   map[string]string{"index.js": "exports.handler = async () => {};\n"},
			handler: "index.handler",
			event:   event{Body: `{}`},
			check:   func(t *testing.T, got post, out string) { wantResponse(t, got, "null") },
		},
		{
			name:    "ES module .mjs",
			files:   map[string]string{"app.mjs": "export const handler = async (event) => ({ esm: true, n: event.n });\n"},
			handler: "app.handler",
			event:   event{Body: `{"n":7}`},
			check:   func(t *testing.T, got post, out string) { wantResponse(t, got, `{"esm":true,"n":7}`) },
		},
		{
			// The loader reads modules synchronously while the handler's module imports: its own
			// imports still resolve relative to it, its top-level fs.promises reads still work, and
			// afterwards fs.promises.readFile is Node's again.
			name: "ES module importing its own modules, reading files at top level",
			files: map[string]string{
				"app.mjs": `import { readFile } from 'node:fs/promises';
import fs from 'node:fs';
import { greet } from './lib/greet.mjs';
const own = await readFile(new URL(import.meta.url));
const text = await fs.promises.readFile('lib/data.txt', 'utf8');
let missing;
try { await readFile(new URL('./nope.txt', import.meta.url)); } catch (e) { missing = e.code; }
const during = fs.promises.readFile;
export const handler = async () => ({
  greeting: greet(text.trim()), own: own.toString().startsWith('import'), missing,
  restored: fs.promises.readFile !== during,
});
`,
				"lib/greet.mjs":  "import { suffix } from './suffix.mjs';\nexport const greet = (s) => 'hello ' + s + suffix;\n",
				"lib/suffix.mjs": "export const suffix = '!';\n",
				"lib/data.txt":   "world\n",
			},
			handler: "app.handler",
			event:   event{Body: `{}`},
			check: func(t *testing.T, got post, out string) {
				wantResponse(t, got, `{"greeting":"hello world!","own":true,"missing":"ENOENT","restored":true}`)
			},
		},
		{
			name: "ES module that replaces fs.promises.readFile keeps its replacement",
			files: map[string]string{
				"app.mjs": `import fs from 'node:fs';
const mine = async () => 'mocked';
fs.promises.readFile = mine;
export const handler = async () => ({ kept: fs.promises.readFile === mine, read: await fs.promises.readFile('x') });
`,
			},
			handler: "app.handler",
			event:   event{Body: `{}`},
			check:   func(t *testing.T, got post, out string) { wantResponse(t, got, `{"kept":true,"read":"mocked"}`) },
		},
		{
			name: "ES module .js with package.json type module",
			files: map[string]string{
				"package.json": `{"type":"module"}`,
				"index.js":     "export async function handler() { return typeof require; }\n",
			},
			handler: "index.handler",
			event:   event{Body: `{}`},
			check:   func(t *testing.T, got post, out string) { wantResponse(t, got, `"undefined"`) },
		},
		{
			name:    "CommonJS .cjs",
			files:   map[string]string{"lib.cjs": "module.exports.handler = async () => 'cjs';\n"},
			handler: "lib.handler",
			event:   event{Body: `{}`},
			check:   func(t *testing.T, got post, out string) { wantResponse(t, got, `"cjs"`) },
		},
		{
			name:    "nested export in subdirectory",
			files:   map[string]string{"src/fn/index.js": "exports.api = { v1: { handler: async () => 'nested' } };\n"},
			handler: "src/fn/index.api.v1.handler",
			event:   event{Body: `{}`},
			check:   func(t *testing.T, got post, out string) { wantResponse(t, got, `"nested"`) },
		},
		{
			name: "context",
			files: map[string]string{"index.js": `exports.handler = async (event, context) => {
  const r1 = context.getRemainingTimeInMillis();
  await new Promise((resolve) => setTimeout(resolve, 20));
  const r2 = context.getRemainingTimeInMillis();
  return {
    awsRequestId: context.awsRequestId,
    functionName: context.functionName,
    functionVersion: context.functionVersion,
    invokedFunctionArn: context.invokedFunctionArn,
    memoryLimitInMB: context.memoryLimitInMB,
    logGroupName: context.logGroupName,
    logStreamName: context.logStreamName,
    identityPool: context.identity.cognitoIdentityPoolId,
    custom: context.clientContext.custom,
    trace: process.env._X_AMZN_TRACE_ID,
    methods: [typeof context.succeed, typeof context.fail, typeof context.done],
    r1, r2,
  };
};
`},
			handler: "index.handler",
			event: event{
				ID:              "ctx-1",
				Body:            `{}`,
				ARN:             "arn:aws:lambda:us-east-1:123456789012:function:fn:live",
				TraceID:         "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1",
				ClientContext:   `{"client":{},"custom":{"k":"v"},"env":{}}`,
				CognitoIdentity: `{"cognitoIdentityId":"id-1","cognitoIdentityPoolId":"pool-1"}`,
			},
			check: func(t *testing.T, got post, out string) {
				if got.Kind != "response" {
					t.Fatalf("post kind %q (%s), want response", got.Kind, got.Body)
				}
				var ctx struct {
					AWSRequestID       string            `json:"awsRequestId"`
					FunctionName       string            `json:"functionName"`
					FunctionVersion    string            `json:"functionVersion"`
					InvokedFunctionArn string            `json:"invokedFunctionArn"`
					MemoryLimitInMB    string            `json:"memoryLimitInMB"`
					LogGroupName       string            `json:"logGroupName"`
					LogStreamName      string            `json:"logStreamName"`
					IdentityPool       string            `json:"identityPool"`
					Custom             map[string]string `json:"custom"`
					Trace              string            `json:"trace"`
					Methods            []string          `json:"methods"`
					R1, R2             int64
				}
				if err := json.Unmarshal([]byte(got.Body), &ctx); err != nil {
					t.Fatalf("response %q: %v", got.Body, err)
				}
				if ctx.R1 <= 0 || ctx.R2 <= 0 || ctx.R2 >= ctx.R1 {
					t.Errorf("remaining time %d then %d, want positive and decreasing", ctx.R1, ctx.R2)
				}
				ctx.R1, ctx.R2 = 0, 0
				want := ctx
				want.AWSRequestID = "ctx-1"
				want.FunctionName = "fn"
				want.FunctionVersion = "$LATEST"
				want.InvokedFunctionArn = "arn:aws:lambda:us-east-1:123456789012:function:fn:live"
				want.MemoryLimitInMB = "256"
				want.LogGroupName = "/aws/lambda/fn"
				want.LogStreamName = "2026/01/02/[$LATEST]0123456789abcdef"
				want.IdentityPool = "pool-1"
				want.Custom = map[string]string{"k": "v"}
				want.Trace = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
				want.Methods = []string{"function", "function", "function"}
				if diff := cmp.Diff(want, ctx); diff != "" {
					t.Errorf("context (-want +got):\n%s", diff)
				}
			},
		},
		{
			name:    "async throw",
			files:   map[string]string{"index.js": "exports.handler = async () => { throw new TypeError('bad input'); };\n"},
			handler: "index.handler",
			event:   event{ID: "throw-1", Body: `{}`},
			check: func(t *testing.T, got post, out string) {
				e := wantNodeError(t, got, "TypeError", "bad input")
				if len(e.Trace) < 2 || e.Trace[0] != "TypeError: bad input" || !strings.Contains(e.Trace[1], "index.js") {
					t.Errorf("trace = %q, want the error's stack lines", e.Trace)
				}
				want := "\tthrow-1\tERROR\tInvoke Error \t{\"errorType\":\"TypeError\",\"errorMessage\":\"bad input\",\"stack\":[\"TypeError: bad input\""
				if l := lines(out, "Invoke Error"); len(l) != 1 || !strings.Contains(l[0], want) {
					t.Errorf("Invoke Error log lines = %q, want one containing %q", l, want)
				}
			},
		},
		{
			name:    "sync throw",
			files:   map[string]string{"index.js": "exports.handler = (event) => { throw new Error('sync boom'); };\n"},
			handler: "index.handler",
			event:   event{Body: `{}`},
			check:   func(t *testing.T, got post, out string) { wantNodeError(t, got, "Error", "sync boom") },
		},
		{
			name: "callback error",
			files: map[string]string{"index.js": `class Declined extends Error { constructor(m) { super(m); this.name = "PaymentDeclined"; } }
exports.handler = (event, context, callback) => callback(new Declined("card declined"));
`},
			handler: "index.handler",
			event:   event{Body: `{}`},
			check:   func(t *testing.T, got post, out string) { wantNodeError(t, got, "PaymentDeclined", "card declined") },
		},
		{
			name:    "callback with a string error",
			files:   map[string]string{"index.js": "exports.handler = (event, context, callback) => callback('plain failure');\n"},
			handler: "index.handler",
			event:   event{Body: `{}`},
			check: func(t *testing.T, got post, out string) {
				if e := wantNodeError(t, got, "string", "plain failure"); len(e.Trace) != 0 {
					t.Errorf("trace = %q, want empty", e.Trace)
				}
			},
		},
		{
			name:    "unserialisable result",
			files:   map[string]string{"index.js": "exports.handler = async () => { const a = {}; a.self = a; return a; };\n"},
			handler: "index.handler",
			event:   event{Body: `{}`},
			check: func(t *testing.T, got post, out string) {
				wantNodeError(t, got, "Error", "Unable to stringify response body")
			},
		},
		{
			name: "console format",
			files: map[string]string{"index.js": `console.log("at init");
exports.handler = async () => {
  console.log("hello %s", "world", 42);
  console.info("info");
  console.warn("warn");
  console.error("multi\nline");
  console.debug("debug");
  console.trace("trace");
  return "ok";
};
`},
			handler: "index.handler",
			event:   event{ID: "log-1", Body: `{}`},
			check: func(t *testing.T, got post, out string) {
				wantResponse(t, got, `"ok"`)
				for _, re := range []*regexp.Regexp{
					nodeLogLine("undefined", "INFO", "at init"),
					nodeLogLine("log-1", "INFO", "hello world 42"),
					nodeLogLine("log-1", "INFO", "info"),
					nodeLogLine("log-1", "WARN", "warn"),
					nodeLogLine("log-1", "ERROR", "multi\rline"),
					nodeLogLine("log-1", "DEBUG", "debug"),
					nodeLogLine("log-1", "TRACE", "trace"),
				} {
					if !re.MatchString(out) {
						t.Errorf("output does not match %s", re)
					}
				}
			},
		},
		{
			name: "AWS_LAMBDA_LOG_LEVEL",
			files: map[string]string{"index.js": `exports.handler = async () => { console.debug("hidden"); console.warn("shown"); };
`},
			handler: "index.handler",
			env:     []string{"AWS_LAMBDA_LOG_LEVEL=warn"},
			event:   event{ID: "log-2", Body: `{}`},
			check: func(t *testing.T, got post, out string) {
				if strings.Contains(out, "hidden") || !nodeLogLine("log-2", "WARN", "shown").MatchString(out) {
					t.Errorf("output %q: want only the WARN line", out)
				}
			},
		},
		{
			name:    "async handler whose promise never settles",
			files:   map[string]string{"index.js": "exports.handler = async () => new Promise(() => {});\n"},
			handler: "index.handler",
			event:   event{Body: `{}`},
			check: func(t *testing.T, got post, out string) {
				e := decodeNodeError(t, got)
				if got.Kind != "error" || e.ErrorType != "Runtime.NodeJsExit" {
					t.Errorf("post %s %s, want error Runtime.NodeJsExit", got.Kind, got.Body)
				}
			},
		},
		{
			name:    "task module shadows NODE_PATH",
			files:   map[string]string{"index.js": "exports.handler = async () => require('dep').name;\n", "node_modules/dep/index.js": "exports.name = 'task-dep';\n"},
			handler: "index.handler",
			event:   event{Body: `{}`},
			check:   func(t *testing.T, got post, out string) { wantResponse(t, got, `"task-dep"`) },
		},
		{
			// Large enough that the peer sends /next chunked.
			name:    "large event and response",
			files:   map[string]string{"index.js": "exports.handler = async (event) => event;\n"},
			handler: "index.handler",
			event:   event{Body: largeJSON},
			check:   func(t *testing.T, got post, out string) { wantResponse(t, got, largeJSON) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := startPeer(t)
			p := start(t, api, fnConfig{runtime: nodeRuntime, handler: tt.handler, files: tt.files, env: tt.env})
			got := api.invoke(t, tt.event)
			tt.check(t, got, p.Output(t))
		})
	}
}

func TestNodeInitError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		files      map[string]string
		handler    string
		wantType   string
		wantPrefix string // of errorMessage
	}{
		{"missing module", nil, "missing.handler", "Runtime.ImportModuleError",
			"Error: Cannot find module 'missing'\nRequire stack:\n- "},
		{"missing dependency", map[string]string{"index.js": "require('notthere');\n"}, "index.handler", "Runtime.ImportModuleError",
			"Error: Cannot find module 'notthere'\nRequire stack:\n- "},
		{"syntax error", map[string]string{"index.js": "exports.handler = async () => {\n"}, "index.handler", "Runtime.UserCodeSyntaxError",
			"SyntaxError: "},
		{"syntax error in ES module", map[string]string{"index.mjs": "export const handler = ;\n"}, "index.handler", "Runtime.UserCodeSyntaxError",
			"SyntaxError: "},
		{"handler not found", map[string]string{"index.js": "exports.other = () => 1;\n"}, "index.handler", "Runtime.HandlerNotFound",
			"index.handler is undefined or not exported"},
		{"handler not a function", map[string]string{"index.js": "exports.handler = 1;\n"}, "index.handler", "Runtime.HandlerNotFound",
			"index.handler is not a function"},
		{"malformed handler", nil, "index", "Runtime.MalformedHandlerName", "Bad handler"},
		{"relative path in handler", nil, "../index.handler", "Runtime.MalformedHandlerName",
			"'../index.handler' is not a valid handler name. Use absolute paths when specifying root directories in handler names."},
		{"exception at load", map[string]string{"index.js": "throw new RangeError('init failed');\n"}, "index.handler", "RangeError",
			"init failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := startPeer(t)
			p := start(t, api, fnConfig{runtime: nodeRuntime, handler: tt.handler, files: tt.files})
			got := api.wait(t)
			if got.Kind != "init/error" {
				t.Fatalf("post kind %q (%s), want init/error", got.Kind, got.Body)
			}
			if h := got.Header.Get("Lambda-Runtime-Function-Error-Type"); h != tt.wantType {
				t.Errorf("error type header = %q, want %q", h, tt.wantType)
			}
			e := decodeNodeError(t, got)
			if e.ErrorType != tt.wantType || !strings.HasPrefix(e.ErrorMessage, tt.wantPrefix) || len(e.Trace) == 0 {
				t.Errorf("error = %s, want type %q, message starting %q, a trace", got.Body, tt.wantType, tt.wantPrefix)
			}
			if code := p.Wait(t); code != 129 {
				t.Errorf("exit code %d, want 129", code)
			}
			want := "\tundefined\tERROR\tUncaught Exception \t{\"errorType\":\"" + tt.wantType + "\""
			if !strings.Contains(p.Output(t), want) {
				t.Errorf("output does not contain %q", want)
			}
		})
	}
}

func TestNodeFatalInvokeError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		code     string
		wantType string
		wantMsg  string
		wantExit int
	}{
		{
			name:     "unhandled rejection",
			code:     "exports.handler = async () => { Promise.reject(new Error('nope')); await new Promise((r) => setTimeout(r, 60000)); };\n",
			wantType: "Runtime.UnhandledPromiseRejection",
			wantMsg:  "Error: nope",
			wantExit: 128,
		},
		{
			name:     "uncaught exception",
			code:     "exports.handler = (event, context, callback) => { setTimeout(() => { throw new Error('kaboom'); }, 0); };\n",
			wantType: "Error",
			wantMsg:  "kaboom",
			wantExit: 129,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := startPeer(t)
			p := start(t, api, fnConfig{runtime: nodeRuntime, handler: "index.handler", files: map[string]string{"index.js": tt.code}})
			wantNodeError(t, api.invoke(t, event{Body: `{}`}), tt.wantType, tt.wantMsg)
			if code := p.Wait(t); code != tt.wantExit {
				t.Errorf("exit code %d, want %d", code, tt.wantExit)
			}
		})
	}
}

func TestNodeWarm(t *testing.T) {
	t.Parallel()
	api := startPeer(t)
	p := start(t, api, fnConfig{runtime: nodeRuntime, handler: "index.handler", files: map[string]string{"index.js": `let count = 0;
exports.handler = async (event, context) => {
  count++;
  if (event.fail) throw new Error("x");
  return { count, id: context.awsRequestId };
};
`}})
	wantResponse(t, api.invoke(t, event{ID: "w-1", Body: `{}`}), `{"count":1,"id":"w-1"}`)
	if got := api.invoke(t, event{ID: "w-2", Body: `{"fail":true}`}); got.Kind != "error" {
		t.Errorf("second invoke: post kind %q, want error", got.Kind)
	}
	wantResponse(t, api.invoke(t, event{ID: "w-3", Body: `{}`}), `{"count":3,"id":"w-3"}`)

	// SIGTERM while waiting on /next ends the process cleanly.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.Wait(t); code != 0 {
		t.Errorf("exit code after SIGTERM %d, want 0", code)
	}
}
