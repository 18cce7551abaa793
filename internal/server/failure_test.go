package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

type lambdaError struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorType    string `json:"errorType"`
}

func functionError(t *testing.T, out *lambda.InvokeOutput) lambdaError {
	t.Helper()
	if got := aws.ToString(out.FunctionError); got != "Unhandled" {
		t.Errorf("FunctionError = %q, want Unhandled (payload %s)", got, out.Payload)
	}
	var e lambdaError
	if err := json.Unmarshal(out.Payload, &e); err != nil {
		t.Fatalf("error payload %s: %v", out.Payload, err)
	}
	return e
}

// pyBootstrap is a custom runtime written as a Python bootstrap script; action runs after /next.
func pyBootstrap(action string) string {
	return `#!/usr/bin/python3
import os, sys, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    r = urllib.request.urlopen(api + "next")
    rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
    body = r.read()
` + action + `
    urllib.request.urlopen(urllib.request.Request(api + rid + "/response", data=body, method="POST"))
`
}

func TestFunctionFailures(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	tests := []struct {
		name     string
		runtime  string
		handler  string
		files    map[string]zipEntry
		timeout  int32
		payload  string
		wantType string
		wantMsg  string
		wantLog  string
	}{
		{
			name: "timeout", runtime: "provided.al2023", handler: "bootstrap", timeout: 1,
			payload: `{"sleep_ms":3000}`, wantType: "Sandbox.Timedout", wantMsg: "Task timed out after 1.00 seconds",
			wantLog: "Status: timeout",
		},
		{
			name: "crash during invoke", runtime: "provided.al2023", handler: "bootstrap",
			files:    map[string]zipEntry{"bootstrap": {body: pyBootstrap("    print('dying', flush=True); os._exit(3)"), mode: 0o755}},
			wantType: "Runtime.ExitError", wantMsg: "Runtime exited with error: exit status 3", wantLog: "dying",
		},
		{
			name: "exit during init", runtime: "provided.al2", handler: "bootstrap",
			files:    map[string]zipEntry{"bootstrap": {body: "#!/bin/sh\necho init failing\nexit 7\n", mode: 0o755}},
			wantType: "Runtime.ExitError", wantMsg: "Runtime exited with error: exit status 7", wantLog: "init failing",
		},
		{
			name: "no bootstrap", runtime: "provided.al2023", handler: "bootstrap",
			files:    map[string]zipEntry{"README": {body: "nothing to run"}},
			wantType: "Runtime.InvalidEntrypoint", wantMsg: "bootstrap",
		},
		{
			name: "bootstrap of no executable format", runtime: "provided.al2023", handler: "bootstrap",
			files:    map[string]zipEntry{"bootstrap": {body: "just text\n", mode: 0o755}},
			wantType: "Runtime.InvalidEntrypoint", wantMsg: "fork/exec /var/task/bootstrap: exec format error",
		},
		{
			name: "bootstrap interpreter missing", runtime: "provided.al2", handler: "bootstrap",
			files:    map[string]zipEntry{"bootstrap": {body: "#!/nonexistent/sh\n", mode: 0o755}},
			wantType: "Runtime.InvalidEntrypoint", wantMsg: "fork/exec /var/task/bootstrap: no such file or directory",
		},
		{
			name: "bootstrap not executable", runtime: "provided.al2023", handler: "bootstrap",
			files:    map[string]zipEntry{"bootstrap": {body: "#!/bin/sh\necho hi\n", mode: 0o644}},
			wantType: "Runtime.InvalidEntrypoint", wantMsg: "/var/task/bootstrap",
		},
		{
			name: "python import error", runtime: "python3.12", handler: "missing.handler",
			files:    map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return e\n"}},
			wantType: "Runtime.ImportModuleError", wantMsg: "Unable to import module 'missing'",
		},
		{
			name: "python handler not found", runtime: "python3.11", handler: "app.nothere",
			files:    map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return e\n"}},
			wantType: "Runtime.HandlerNotFound", wantMsg: "nothere",
		},
		{
			name: "python exception", runtime: "python3.13", handler: "app.handler",
			files:    map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    raise ValueError('bad value')\n"}},
			wantType: "ValueError", wantMsg: "bad value", wantLog: "ValueError",
		},
		{
			name: "node throws", runtime: "nodejs20.x", handler: "index.handler",
			files:    map[string]zipEntry{"index.mjs": {body: "export const handler = async () => { throw new TypeError('nope') }\n"}},
			wantType: "TypeError", wantMsg: "nope",
		},
		{
			name: "node missing module", runtime: "nodejs22.x", handler: "gone.handler",
			files:    map[string]zipEntry{"index.mjs": {body: "export const handler = async () => 1\n"}},
			wantType: "Runtime.ImportModuleError", wantMsg: "gone",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			zip := goEchoZip
			if tt.files != nil {
				zip = mustZip(t, tt.files)
			}
			fn := strings.ReplaceAll(tt.name, " ", "-")
			createFunction(t, c, fn, tt.runtime, tt.handler, zip, func(in *lambda.CreateFunctionInput) {
				if tt.timeout > 0 {
					in.Timeout = aws.Int32(tt.timeout)
				}
			})
			payload := tt.payload
			if payload == "" {
				payload = `{}`
			}
			out := invoke(t, c, fn, payload, withTail)
			e := functionError(t, out)
			if e.ErrorType != tt.wantType || !strings.Contains(e.ErrorMessage, tt.wantMsg) {
				t.Errorf("error = %+v, want type %s and a message containing %q", e, tt.wantType, tt.wantMsg)
			}
			tail := decodeTail(t, out)
			if !strings.Contains(tail, "REPORT RequestId: ") || !strings.Contains(tail, tt.wantLog) {
				t.Errorf("log tail lacks REPORT or %q:\n%s", tt.wantLog, tail)
			}
		})
	}

	// After a timeout the function is served again by a fresh environment.
	out := invoke(t, c, "timeout", `{"after":"timeout"}`)
	if out.FunctionError != nil || string(out.Payload) != `{"after":"timeout"}` {
		t.Errorf("invoke after timeout = %s (error %v)", out.Payload, aws.ToString(out.FunctionError))
	}
}

func TestRuntimesAndContext(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	createFunction(t, c, "py", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: `import os
def handler(event, context):
    print("hello from python")
    return {"event": event, "rid": context.aws_request_id, "name": context.function_name,
            "mem": context.memory_limit_in_mb, "arn": context.invoked_function_arn,
            "left": context.get_remaining_time_in_millis() > 0, "custom": os.environ.get("GREETING"),
            "cc": context.client_context.custom if context.client_context else None,
            "region": os.environ["AWS_REGION"], "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"]}
`}}), func(in *lambda.CreateFunctionInput) {
		in.MemorySize = aws.Int32(256)
		in.Environment = &types.Environment{Variables: map[string]string{"GREETING": "hi"}}
	})
	createFunction(t, c, "node-cb", "nodejs20.x", "lib/handler.main", mustZip(t, map[string]zipEntry{"lib/handler.js": {body: `
exports.main = function (event, context, callback) {
  console.log("hello from node");
  callback(null, {event, rid: context.awsRequestId, name: context.functionName, left: context.getRemainingTimeInMillis() > 0});
};
`}}))

	cc := base64.StdEncoding.EncodeToString([]byte(`{"custom":{"k":"v"}}`))
	out := invoke(t, c, "py", `{"x":1}`, withTail, func(in *lambda.InvokeInput) { in.ClientContext = aws.String(cc) })
	var py struct {
		Event           map[string]int `json:"event"`
		RID, Name, Mem  string
		ARN             string            `json:"arn"`
		Left            bool              `json:"left"`
		Custom          string            `json:"custom"`
		CC              map[string]string `json:"cc"`
		Region, Version string
	}
	if err := json.Unmarshal(out.Payload, &py); err != nil {
		t.Fatalf("%s: %v", out.Payload, err)
	}
	if py.Event["x"] != 1 || py.Name != "py" || py.Mem != "256" || !py.Left || py.Custom != "hi" || py.CC["k"] != "v" ||
		py.Region != "us-east-1" || py.Version != "$LATEST" || py.ARN != "arn:aws:lambda:us-east-1:000000000000:function:py" {
		t.Errorf("python context = %+v (%s)", py, out.Payload)
	}
	tail := decodeTail(t, out)
	if !strings.Contains(tail, "START RequestId: "+py.RID) || !strings.Contains(tail, "hello from python") || !strings.Contains(tail, "Memory Size: 256 MB") {
		t.Errorf("python log tail:\n%s", tail)
	}

	out = invoke(t, c, "node-cb", `{"y":2}`, withTail)
	var node struct {
		Event map[string]int `json:"event"`
		RID   string         `json:"rid"`
		Name  string         `json:"name"`
		Left  bool           `json:"left"`
	}
	if err := json.Unmarshal(out.Payload, &node); err != nil {
		t.Fatalf("%s: %v", out.Payload, err)
	}
	if node.Event["y"] != 2 || node.Name != "node-cb" || !node.Left || node.RID == "" {
		t.Errorf("node context = %+v", node)
	}
	if tail := decodeTail(t, out); !strings.Contains(tail, node.RID+"\tINFO\thello from node") {
		t.Errorf("node log tail:\n%s", tail)
	}

	// DryRun validates and runs nothing.
	dry := invoke(t, c, "py", `{}`, func(in *lambda.InvokeInput) { in.InvocationType = "DryRun" })
	if dry.StatusCode != 204 {
		t.Errorf("DryRun status = %d, want 204", dry.StatusCode)
	}
	_ = context.Background()
}
