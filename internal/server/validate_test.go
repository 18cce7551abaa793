package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	stypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
)

// apiError is the code and message of an SDK error ("" when err is not an API error).
func apiError(err error) (code, msg string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode(), ae.ErrorMessage()
	}
	return "", ""
}

// TestForeignARNs names a function by ARNs of another region and of another account through
// every kind of API that takes a FunctionName: each answers what AWS answers, none reaches the
// local function of that name, and nothing is created or changed.
func TestForeignARNs(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()
	py := mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return e\n"}})
	createFunction(t, c, "hello", "python3.12", "app.handler", py)
	layer, err := c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("deps"),
		Content: &types.LayerVersionContentInput{ZipFile: mustZip(t, map[string]zipEntry{"python/x.py": {body: "x=1"}})}})
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, c)

	const (
		otherRegion  = "arn:aws:lambda:eu-west-1:000000000000:function:hello"
		otherAccount = "arn:aws:lambda:us-east-1:111111111111:function:hello"
		regionMsg    = "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')"
		// AWS sends no message ("Message": null, checked on the wire below); the SDK says so.
		noMessage = "UnknownError"
	)
	denied := func(action, resource string) string {
		return "User: arn:aws:iam::000000000000:root is not authorized to perform: " + action + " on resource: " + resource +
			" because no resource-based policy allows the " + action + " action"
	}
	calls := map[string]func(fn string) error{
		"CreateFunction": func(fn string) error {
			_, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String(fn), Runtime: types.RuntimePython312,
				Handler: aws.String("app.handler"), Role: aws.String(role), Code: &types.FunctionCode{ZipFile: py}})
			return err
		},
		"GetFunction": func(fn string) error {
			_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(fn)})
			return err
		},
		"GetFunctionConfiguration": func(fn string) error {
			_, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(fn)})
			return err
		},
		"Invoke": func(fn string) error {
			_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{}`)})
			return err
		},
		"DeleteFunction": func(fn string) error {
			_, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(fn)})
			return err
		},
		"UpdateFunctionConfiguration": func(fn string) error {
			_, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(fn), Description: aws.String("changed")})
			return err
		},
		"PublishVersion": func(fn string) error {
			_, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(fn)})
			return err
		},
		"CreateAlias": func(fn string) error {
			_, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(fn), Name: aws.String("live"), FunctionVersion: aws.String("$LATEST")})
			return err
		},
		"AddPermission": func(fn string) error {
			_, err := c.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String(fn), StatementId: aws.String("s1"),
				Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("*")})
			return err
		},
		"PutFunctionConcurrency": func(fn string) error {
			_, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String(fn), ReservedConcurrentExecutions: aws.Int32(5)})
			return err
		},
		"CreateFunctionUrlConfig": func(fn string) error {
			_, err := c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String(fn), AuthType: types.FunctionUrlAuthTypeNone})
			return err
		},
		"ListTags": func(fn string) error {
			_, err := c.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String(fn)})
			return err
		},
		"CreateEventSourceMapping": func(fn string) error {
			_, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String(fn),
				EventSourceArn: aws.String("arn:flint:jetstream:us-east-1:000000000000:queue/orders")})
			return err
		},
	}
	tests := []struct {
		op, fn, code, msg string
	}{
		{"CreateFunction", "arn:aws:lambda:eu-west-1:000000000000:function:other", "ResourceNotFoundException", regionMsg},
		{"CreateFunction", "arn:aws:lambda:us-east-1:111111111111:function:other", "AccessDeniedException", noMessage},
		{"CreateFunction", "111111111111:function:other", "AccessDeniedException", noMessage},
		{"CreateEventSourceMapping", otherRegion, "ResourceNotFoundException", regionMsg},
		{"CreateEventSourceMapping", otherAccount, "AccessDeniedException", noMessage},
		{"UpdateFunctionConfiguration", otherRegion, "ResourceNotFoundException", regionMsg},
		{"UpdateFunctionConfiguration", otherAccount, "AccessDeniedException", noMessage},
		{"AddPermission", otherAccount, "AccessDeniedException", noMessage},
		{"CreateFunctionUrlConfig", otherAccount, "AccessDeniedException", noMessage},
	}
	for _, op := range []string{"GetFunction", "GetFunctionConfiguration", "Invoke", "DeleteFunction", "UpdateFunctionConfiguration",
		"PublishVersion", "CreateAlias", "AddPermission", "PutFunctionConcurrency", "CreateFunctionUrlConfig", "ListTags"} {
		tests = append(tests, struct{ op, fn, code, msg string }{op, otherRegion, "ResourceNotFoundException", regionMsg})
	}
	for op, action := range map[string]string{"GetFunction": "lambda:GetFunction", "GetFunctionConfiguration": "lambda:GetFunctionConfiguration",
		"Invoke": "lambda:InvokeFunction", "DeleteFunction": "lambda:DeleteFunction", "PublishVersion": "lambda:PublishVersion",
		"CreateAlias": "lambda:CreateAlias", "PutFunctionConcurrency": "lambda:PutFunctionConcurrency", "ListTags": "lambda:ListTags"} {
		tests = append(tests, struct{ op, fn, code, msg string }{op, otherAccount, "AccessDeniedException", denied(action, otherAccount)})
	}
	tests = append(tests, struct{ op, fn, code, msg string }{"Invoke", "111111111111:function:hello:7", "AccessDeniedException",
		denied("lambda:InvokeFunction", "arn:aws:lambda:us-east-1:111111111111:function:hello:7")})
	for _, tt := range tests {
		t.Run(tt.op+" "+tt.fn, func(t *testing.T) {
			code, msg := apiError(calls[tt.op](tt.fn))
			if code != tt.code || msg != tt.msg {
				t.Errorf("got %s %q, want %s %q", code, msg, tt.code, tt.msg)
			}
		})
	}

	// Layers of another region or account are not this region's layers.
	arn := aws.ToString(layer.LayerVersionArn)
	for _, tt := range []struct{ arn, code, msg string }{
		{strings.Replace(arn, ":us-east-1:", ":eu-west-1:", 1), "InvalidParameterValueException",
			"Layers are not in the same region as the function. Layers are expected to be in region us-east-1."},
		{strings.Replace(arn, ":000000000000:", ":111111111111:", 1), "AccessDeniedException",
			denied("lambda:GetLayerVersion", strings.Replace(arn, ":000000000000:", ":111111111111:", 1))},
	} {
		_, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("hello"), Layers: []string{tt.arn}})
		if code, msg := apiError(err); code != tt.code || msg != tt.msg {
			t.Errorf("Layers %s: got %s %q, want %s %q", tt.arn, code, msg, tt.code, tt.msg)
		}
	}

	// A schedule cannot target a function of another region or account either.
	sc := newSchedulerClient(s.URL())
	for _, target := range []string{otherRegion, otherAccount} {
		_, err := sc.CreateSchedule(ctx, &scheduler.CreateScheduleInput{Name: aws.String("x"), ScheduleExpression: aws.String("rate(1 minute)"),
			FlexibleTimeWindow: &stypes.FlexibleTimeWindow{Mode: stypes.FlexibleTimeWindowModeOff},
			Target:             &stypes.Target{Arn: aws.String(target), RoleArn: aws.String(role)}})
		if code, _ := apiError(err); code != "ValidationException" {
			t.Errorf("CreateSchedule targeting %s: %v, want ValidationException", target, err)
		}
	}

	// The wire shape of a denial without a reason: AWS sends the message as null.
	resp, err := http.Post(s.URL()+"/2015-03-31/functions", "application/json",
		strings.NewReader(`{"FunctionName":"111111111111:function:x","Role":"`+role+`","Runtime":"python3.12","Handler":"app.handler","Code":{"ZipFile":"UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("X-Amzn-ErrorType") != "AccessDeniedException" || string(body) != `{"Type":"User","Message":null,"message":null}` {
		t.Errorf("raw CreateFunction in another account: %d %s %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), body)
	}

	if diff := cmp.Diff(before, snapshot(t, c)); diff != "" {
		t.Errorf("state changed by requests naming other regions or accounts (-before +after):\n%s", diff)
	}
	// The local function is still reachable by its own ARN.
	out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("arn:aws:lambda:us-east-1:000000000000:function:hello"), Payload: []byte(`{"a":1}`)})
	if err != nil || string(out.Payload) != `{"a": 1}` {
		t.Errorf("Invoke by the local ARN = %v, %v", out, err)
	}
}

// TestNulRejected: a NUL byte in a handler or an environment value cannot reach a process (C
// strings end at NUL), so the API refuses it up front with AWS's ValidationException instead of
// storing a function that fails every invoke with a 500.
func TestNulRejected(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()
	py := mustZip(t, map[string]zipEntry{"app.py": {body: "import os\ndef handler(e, c):\n    return os.environ.get('VV', '')\n"}})
	createFunction(t, c, "env", "python3.12", "app.handler", py, func(in *lambda.CreateFunctionInput) {
		in.Environment = &types.Environment{Variables: map[string]string{"VV": "ok"}}
	})
	before := snapshot(t, c)
	const (
		valueMsg   = `1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: Map value must satisfy constraint: [Member must satisfy regular expression pattern: [^\x00]*]`
		keyMsg     = "1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]"
		handlerMsg = "1 validation error detected: Value 'app\x00.handler' at 'handler' failed to satisfy constraint: Member must satisfy regular expression pattern: [^\\s]+"
	)
	create := func(handler string, env map[string]string) error {
		_, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("nul"), Runtime: types.RuntimePython312,
			Handler: aws.String(handler), Role: aws.String(role), Code: &types.FunctionCode{ZipFile: py},
			Environment: &types.Environment{Variables: env}})
		return err
	}
	update := func(handler *string, env map[string]string) error {
		in := &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("env"), Handler: handler}
		if env != nil {
			in.Environment = &types.Environment{Variables: env}
		}
		_, err := c.UpdateFunctionConfiguration(ctx, in)
		return err
	}
	tests := []struct {
		name      string
		err       error
		code, msg string
	}{
		{"create env value", create("app.handler", map[string]string{"VV": "a\x00b"}), "ValidationException", valueMsg},
		{"create env value only NUL", create("app.handler", map[string]string{"VV": "\x00"}), "ValidationException", valueMsg},
		{"create handler", create("app\x00.handler", nil), "ValidationException", handlerMsg},
		{"create handler vertical tab", create("app\v.handler", nil), "ValidationException",
			"1 validation error detected: Value 'app\v.handler' at 'handler' failed to satisfy constraint: Member must satisfy regular expression pattern: [^\\s]+"},
		{"create env key", create("app.handler", map[string]string{"A\x00B": "x"}), "ValidationException", keyMsg},
		{"update env value", update(nil, map[string]string{"VV": "x\x00"}), "ValidationException", valueMsg},
		{"update handler", update(aws.String("app\x00.handler"), nil), "ValidationException", handlerMsg},
	}
	for _, tt := range tests {
		if code, msg := apiError(tt.err); code != tt.code || msg != tt.msg {
			t.Errorf("%s: got %s %q, want %s %q", tt.name, code, msg, tt.code, tt.msg)
		}
	}
	if diff := cmp.Diff(before, snapshot(t, c)); diff != "" {
		t.Errorf("rejected requests changed state (-before +after):\n%s", diff)
	}
	if got := string(invoke(t, c, "env", `{}`).Payload); got != `"ok"` {
		t.Errorf("invoke after rejected updates = %s", got)
	}
}

// TestInvokeInputsNever5xx sends odd but possible Invoke requests, through the SDK and raw HTTP:
// each is answered with a 2xx or a 4xx of AWS's types, never a ServiceException.
func TestInvokeInputsNever5xx(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()
	py := mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return {'cc': c.client_context is not None}\n"}})
	createFunction(t, c, "fn", "python3.12", "app.handler", py)
	b64 := func(s string) string {
		return base64Std(s)
	}
	sdk := []struct {
		name string
		in   *lambda.InvokeInput
	}{
		{"client context not an object", &lambda.InvokeInput{ClientContext: aws.String(b64(`[1,2]`))}},
		{"client context with newline", &lambda.InvokeInput{ClientContext: aws.String(b64("{\"custom\":\r\n{\"a\":\"b\"}}"))}},
		{"client context invalid utf-8", &lambda.InvokeInput{ClientContext: aws.String(b64("{\"a\":\"\xff\xfe\"}"))}},
		{"client context too long", &lambda.InvokeInput{ClientContext: aws.String(b64(`{"a":"` + strings.Repeat("x", 4000) + `"}`))}},
		{"qualifier $LATEST", &lambda.InvokeInput{Qualifier: aws.String("$LATEST")}},
		{"qualifier unknown alias", &lambda.InvokeInput{Qualifier: aws.String("nope")}},
		{"qualifier bad", &lambda.InvokeInput{Qualifier: aws.String("a:b")}},
		{"payload null", &lambda.InvokeInput{Payload: []byte(`null`)}},
		{"payload string", &lambda.InvokeInput{Payload: []byte(`"\u0000"`)}},
		{"payload invalid utf-8", &lambda.InvokeInput{Payload: []byte("\"\xff\"")}},
		{"payload NUL byte", &lambda.InvokeInput{Payload: []byte("{\x00}")}},
		{"payload whitespace", &lambda.InvokeInput{Payload: []byte(" \n ")}},
		{"dry run", &lambda.InvokeInput{InvocationType: types.InvocationTypeDryRun}},
		{"event", &lambda.InvokeInput{InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"a":1}`)}},
		{"event over 1 MB", &lambda.InvokeInput{InvocationType: types.InvocationTypeEvent, Payload: []byte(`"` + strings.Repeat("e", 1100*1024) + `"`)}},
		{"event unknown version", &lambda.InvokeInput{InvocationType: types.InvocationTypeEvent, Qualifier: aws.String("9")}},
		{"event with tail", &lambda.InvokeInput{InvocationType: types.InvocationTypeEvent, LogType: types.LogTypeTail}},
		{"event unknown function", &lambda.InvokeInput{FunctionName: aws.String("nope"), InvocationType: types.InvocationTypeEvent}},
		{"dry run unknown function", &lambda.InvokeInput{FunctionName: aws.String("nope"), InvocationType: types.InvocationTypeDryRun}},
		{"version 0", &lambda.InvokeInput{FunctionName: aws.String("fn:0")}},
		{"qualifier in name and query differ", &lambda.InvokeInput{FunctionName: aws.String("fn:$LATEST"), Qualifier: aws.String("1")}},
		{"client context at the limit", &lambda.InvokeInput{ClientContext: aws.String(b64(`{"a":"` + strings.Repeat("x", 2678) + `"}`))}},
		{"unknown invocation type", &lambda.InvokeInput{InvocationType: "Sometimes"}},
		{"unknown log type", &lambda.InvokeInput{LogType: "Loud"}},
	}
	for _, tt := range sdk {
		in := *tt.in
		if in.FunctionName == nil {
			in.FunctionName = aws.String("fn")
		}
		_, err := c.Invoke(ctx, &in)
		var re interface{ HTTPStatusCode() int }
		if err != nil && (!errors.As(err, &re) || re.HTTPStatusCode() >= 500) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	raw := []struct {
		name    string
		path    string
		headers map[string]string
		body    string
	}{
		{"name with NUL", "/2015-03-31/functions/fn%00x/invocations", nil, `{}`},
		{"name with newline", "/2015-03-31/functions/fn%0Ax/invocations", nil, `{}`},
		{"name over 256", "/2015-03-31/functions/" + strings.Repeat("a", 300) + "/invocations", nil, `{}`},
		{"qualifier query with NUL", "/2015-03-31/functions/fn/invocations?Qualifier=%00", nil, `{}`},
		{"trace id odd", "/2015-03-31/functions/fn/invocations", map[string]string{"X-Amzn-Trace-Id": "Root=\x01;;;=" + strings.Repeat("z", 5000)}, `{}`},
		{"client context not base64", "/2015-03-31/functions/fn/invocations", map[string]string{"X-Amz-Client-Context": "!!!"}, `{}`},
		{"client context NUL JSON", "/2015-03-31/functions/fn/invocations", map[string]string{"X-Amz-Client-Context": base64Std("{\x00}")}, `{}`},
		{"chunked huge", "/2015-03-31/functions/fn/invocations", map[string]string{"Transfer-Encoding": "chunked"}, `"` + strings.Repeat("b", 6*1024*1024+10) + `"`},
		{"content-type odd", "/2015-03-31/functions/fn/invocations", map[string]string{"Content-Type": "text/\x7f"}, `{}`},
		{"invoke-async legacy bad body", "/2014-11-13/functions/fn/invoke-async/", nil, `{nope`},
	}
	for _, tt := range raw {
		status, b := rawPost(t, s.URL(), tt.path, tt.headers, tt.body)
		if status >= 500 || status == 0 {
			t.Errorf("%s: %d %s", tt.name, status, b)
		}
	}
	// And the function still answers.
	if got := string(invoke(t, c, "fn", `{}`).Payload); got != `{"cc": false}` {
		t.Errorf("invoke afterwards = %s", got)
	}
}

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// rawPost writes an HTTP/1.1 request byte for byte (Go's client refuses control characters in
// header values, a hostile client does not) and returns the response's status and body.
func rawPost(t *testing.T, base, path string, headers map[string]string, body string) (int, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var req bytes.Buffer
	req.WriteString("POST " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n")
	chunked := headers["Transfer-Encoding"] == "chunked"
	for k, v := range headers {
		req.WriteString(k + ": " + v + "\r\n")
	}
	if chunked {
		req.WriteString("\r\n" + strconv.FormatInt(int64(len(body)), 16) + "\r\n" + body + "\r\n0\r\n\r\n")
	} else {
		req.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	}
	go func() { _, _ = conn.Write(req.Bytes()) }() // the server may answer before reading it all
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
