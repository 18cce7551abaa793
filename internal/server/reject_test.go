package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/google/go-cmp/cmp"
)

// TestRejections sends bad input through the real SDK and checks AWS's error code and that the
// stored state did not change.
func TestRejections(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()
	py := mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return e\n"}})
	createFunction(t, c, "existing", "python3.12", "app.handler", py, func(in *lambda.CreateFunctionInput) {
		in.Environment = &types.Environment{Variables: map[string]string{"KEEP": "me"}}
	})
	before := snapshot(t, c)

	big := strings.Repeat("x", 4100)
	create := func(mut func(*lambda.CreateFunctionInput)) func() error {
		return func() error {
			in := &lambda.CreateFunctionInput{FunctionName: aws.String("newfn"), Runtime: types.RuntimePython312,
				Handler: aws.String("app.handler"), Role: aws.String(role), Code: &types.FunctionCode{ZipFile: py}}
			mut(in)
			_, err := c.CreateFunction(ctx, in)
			return err
		}
	}
	updateConfig := func(mut func(*lambda.UpdateFunctionConfigurationInput)) func() error {
		return func() error {
			in := &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("existing")}
			mut(in)
			_, err := c.UpdateFunctionConfiguration(ctx, in)
			return err
		}
	}
	updateCode := func(zip []byte) func() error {
		return func() error {
			_, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("existing"), ZipFile: zip})
			return err
		}
	}
	slip := mustZip(t, map[string]zipEntry{"../evil.py": {body: "x"}, "app.py": {body: "x"}})
	linkOut := mustZip(t, map[string]zipEntry{"app.py": {body: "x"}, "passwd": {body: "/etc/passwd", symlink: true}})
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"corrupt zip", create(func(in *lambda.CreateFunctionInput) { in.Code.ZipFile = []byte("not a zip") }), "InvalidParameterValueException"},
		{"zip slip", create(func(in *lambda.CreateFunctionInput) { in.Code.ZipFile = slip }), "InvalidParameterValueException"},
		{"symlink out", create(func(in *lambda.CreateFunctionInput) { in.Code.ZipFile = linkOut }), "InvalidParameterValueException"},
		{"unknown runtime", create(func(in *lambda.CreateFunctionInput) { in.Runtime = "cobol85" }), "InvalidParameterValueException"},
		{"empty handler", create(func(in *lambda.CreateFunctionInput) { in.Handler = aws.String("") }), "InvalidParameterValueException"},
		{"memory too small", create(func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(64) }), "ValidationException"},
		{"memory too large", create(func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(10241) }), "ValidationException"},
		{"timeout zero", create(func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(0) }), "ValidationException"},
		{"timeout too long", create(func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(901) }), "ValidationException"},
		{"reserved env", create(func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"AWS_REGION": "x"}}
		}), "InvalidParameterValueException"},
		{"env over 4 KB", create(func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"BIG": big}}
		}), "InvalidParameterValueException"},
		{"bad env name", create(func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"1BAD": "x"}}
		}), "ValidationException"},
		{"invalid name", create(func(in *lambda.CreateFunctionInput) { in.FunctionName = aws.String("bad name!") }), "ValidationException"},
		// AWS: InvalidParameterValueException for a 65-character name (LocalStack's recording,
		// test_function_arns long_function_name_exc).
		{"name too long", create(func(in *lambda.CreateFunctionInput) { in.FunctionName = aws.String(strings.Repeat("a", 65)) }), "InvalidParameterValueException"},
		{"duplicate", create(func(in *lambda.CreateFunctionInput) { in.FunctionName = aws.String("existing") }), "ResourceConflictException"},
		{"image package", create(func(in *lambda.CreateFunctionInput) { in.PackageType = types.PackageTypeImage }), "InvalidParameterValueException"},
		{"update memory", updateConfig(func(in *lambda.UpdateFunctionConfigurationInput) { in.MemorySize = aws.Int32(20000) }), "ValidationException"},
		{"update reserved env", updateConfig(func(in *lambda.UpdateFunctionConfigurationInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"LAMBDA_TASK_ROOT": "/"}}
		}), "InvalidParameterValueException"},
		{"update stale revision", updateConfig(func(in *lambda.UpdateFunctionConfigurationInput) {
			in.Description = aws.String("x")
			in.RevisionId = aws.String("00000000-0000-0000-0000-000000000000")
		}), "PreconditionFailedException"},
		{"update corrupt code", updateCode([]byte("PK\x03\x04garbage")), "InvalidParameterValueException"},
		{"update zip slip", updateCode(slip), "InvalidParameterValueException"},
		{"update unknown", func() error {
			_, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("nope"), ZipFile: py})
			return err
		}, "ResourceNotFoundException"},
		{"get unknown", func() error {
			_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("nope")})
			return err
		}, "ResourceNotFoundException"},
		{"delete unknown", func() error {
			_, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("nope")})
			return err
		}, "ResourceNotFoundException"},
		{"invoke unknown", func() error {
			_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("nope"), Payload: []byte(`{}`)})
			return err
		}, "ResourceNotFoundException"},
		{"invoke unknown version", func() error {
			_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("existing"), Qualifier: aws.String("7"), Payload: []byte(`{}`)})
			return err
		}, "ResourceNotFoundException"},
		{"payload not JSON", func() error {
			_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("existing"), Payload: []byte(`{not json`)})
			return err
		}, "InvalidRequestContentException"},
		{"payload over 6 MB", func() error {
			p := []byte(`"` + strings.Repeat("a", 6*1024*1024) + `"`)
			_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("existing"), Payload: p})
			return err
		}, "RequestTooLargeException"},
		{"bad client context", func() error {
			_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("existing"), Payload: []byte(`{}`), ClientContext: aws.String("%%%")})
			return err
		}, "InvalidRequestContentException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if got := apiErrorCode(err); got != tt.want {
				t.Errorf("error = %v (code %q), want %s", err, got, tt.want)
			}
		})
	}
	if diff := cmp.Diff(before, snapshot(t, c)); diff != "" {
		t.Errorf("stored state changed after rejected requests (-before +after):\n%s", diff)
	}
	// The function still works as before.
	if got := string(invoke(t, c, "existing", `{"ok":1}`).Payload); got != `{"ok": 1}` {
		t.Errorf("existing function returned %s", got)
	}
}

// snapshot is every function's full stored configuration.
func snapshot(t *testing.T, c *lambda.Client) map[string]string {
	t.Helper()
	out := map[string]string{}
	list, err := c.ListFunctions(context.Background(), &lambda.ListFunctionsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range list.Functions {
		g, err := c.GetFunctionConfiguration(context.Background(), &lambda.GetFunctionConfigurationInput{FunctionName: f.FunctionName})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(g)
		out[aws.ToString(f.FunctionName)] = string(b)
	}
	return out
}

// TestErrorWireFormat checks the raw wire shape of an error (what botocore and the CLI read).
func TestErrorWireFormat(t *testing.T) {
	s := startServer(t, t.TempDir())
	resp, err := http.Post(s.URL()+"/2015-03-31/functions/nope/invocations", "application/json", bytes.NewReader([]byte(`{}`)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 404 {
		t.Errorf("status = %d, want 404", resp.StatusCode)
	}
	if got := resp.Header.Get("X-Amzn-ErrorType"); got != "ResourceNotFoundException" {
		t.Errorf("X-Amzn-ErrorType = %q", got)
	}
	if resp.Header.Get("X-Amzn-Requestid") == "" {
		t.Error("no x-amzn-RequestId")
	}
	// AWS's Invoke names the version an unqualified invoke runs ($LATEST).
	want := `{"Type":"User","Message":"Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope:$LATEST","message":"Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope:$LATEST"}`
	if string(body) != want {
		t.Errorf("body = %s\nwant   %s", body, want)
	}
}
