package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// TestResourcePolicy drives AddPermission, GetPolicy and RemovePermission with the SDK: AWS's
// statement shapes, revision checks and errors, nothing stored on a rejection, and a public
// NONE function URL closed again when its permission goes.
func TestResourcePolicy(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()
	createFunction(t, c, "fn", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return 'ok'\n"}}))
	add := func(in lambda.AddPermissionInput) (*lambda.AddPermissionOutput, error) {
		if in.FunctionName == nil {
			in.FunctionName = aws.String("fn")
		}
		return c.AddPermission(ctx, &in)
	}
	out, err := add(lambda.AddPermissionInput{StatementId: aws.String("s3"), Action: aws.String("lambda:InvokeFunction"),
		Principal: aws.String("s3.amazonaws.com"), SourceArn: aws.String("arn:aws:s3:::bucket"), SourceAccount: aws.String("123456789012")})
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(out.Statement)), &st); err != nil {
		t.Fatal(err)
	}
	want := `{"Action":"lambda:InvokeFunction","Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::bucket"},"StringEquals":{"AWS:SourceAccount":"123456789012"}},"Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Resource":"arn:aws:lambda:us-east-1:000000000000:function:fn","Sid":"s3"}`
	if b, _ := json.Marshal(st); string(b) != want {
		t.Errorf("statement = %s\nwant        %s", b, want)
	}
	if _, err := add(lambda.AddPermissionInput{StatementId: aws.String("acct"), Action: aws.String("lambda:*"), Principal: aws.String("111122223333")}); err != nil {
		t.Fatal(err)
	}
	pol, err := c.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String("fn")})
	if err != nil || !strings.Contains(aws.ToString(pol.Policy), `"Version":"2012-10-17"`) ||
		!strings.Contains(aws.ToString(pol.Policy), `{"AWS":"arn:aws:iam::111122223333:root"}`) || aws.ToString(pol.RevisionId) == "" {
		t.Fatalf("GetPolicy = %v, %v", pol, err)
	}

	for _, tc := range []struct {
		name string
		in   lambda.AddPermissionInput
		code string
	}{
		{"duplicate sid", lambda.AddPermissionInput{StatementId: aws.String("s3"), Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("*")}, "ResourceConflictException"},
		{"bad action", lambda.AddPermissionInput{StatementId: aws.String("x"), Action: aws.String("s3:GetObject"), Principal: aws.String("*")}, "ValidationException"},
		{"bad sid", lambda.AddPermissionInput{StatementId: aws.String("a b"), Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("*")}, "ValidationException"},
		{"bad principal", lambda.AddPermissionInput{StatementId: aws.String("x"), Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("nobody")}, "InvalidParameterValueException"},
		{"stale revision", lambda.AddPermissionInput{StatementId: aws.String("x"), Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("*"), RevisionId: aws.String("stale")}, "PreconditionFailedException"},
		{"missing function", lambda.AddPermissionInput{FunctionName: aws.String("nope"), StatementId: aws.String("x"), Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("*")}, "ResourceNotFoundException"},
		{"missing alias", lambda.AddPermissionInput{Qualifier: aws.String("live"), StatementId: aws.String("x"), Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("*")}, "ResourceNotFoundException"},
		{"$LATEST", lambda.AddPermissionInput{Qualifier: aws.String("$LATEST"), StatementId: aws.String("x"), Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("*")}, "InvalidParameterValueException"},
	} {
		if _, err := add(tc.in); apiErrorCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	if again, err := c.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String("fn")}); err != nil || aws.ToString(again.RevisionId) != aws.ToString(pol.RevisionId) {
		t.Errorf("the rejections changed the policy: %v %v", again, err)
	}

	// A public URL, closed again when its permission is removed.
	u, err := c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("fn"), AuthType: types.FunctionUrlAuthTypeNone})
	if err != nil {
		t.Fatal(err)
	}
	id := strings.SplitN(strings.TrimPrefix(aws.ToString(u.FunctionUrl), "http://"), ".", 2)[0]
	status := func() int {
		resp, err := http.Get(s.URL() + "/lambda-url/" + id + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(); got != 403 {
		t.Errorf("NONE URL before the public permission: %d", got)
	}
	if _, err := add(lambda.AddPermissionInput{StatementId: aws.String("FunctionURLAllowPublicAccess"), Action: aws.String("lambda:InvokeFunctionUrl"),
		Principal: aws.String("*"), FunctionUrlAuthType: types.FunctionUrlAuthTypeNone}); err != nil {
		t.Fatal(err)
	}
	if got := status(); got != 200 {
		t.Errorf("NONE URL with the public permission: %d", got)
	}
	if _, err := c.RemovePermission(ctx, &lambda.RemovePermissionInput{FunctionName: aws.String("fn"), StatementId: aws.String("FunctionURLAllowPublicAccess")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the URL to close", 10*time.Second, func() bool { return status() == 403 })

	if _, err := c.RemovePermission(ctx, &lambda.RemovePermissionInput{FunctionName: aws.String("fn"), StatementId: aws.String("nope")}); apiErrorCode(err) != "ResourceNotFoundException" {
		t.Errorf("RemovePermission of a missing statement: %v", err)
	}
	for _, sid := range []string{"s3", "acct"} {
		if _, err := c.RemovePermission(ctx, &lambda.RemovePermissionInput{FunctionName: aws.String("fn"), StatementId: aws.String(sid)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String("fn")}); apiErrorCode(err) != "ResourceNotFoundException" {
		t.Errorf("GetPolicy after the last statement went: %v", err)
	}
}
