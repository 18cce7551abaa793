package server_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// removeValidation drops the SDK's client-side checks, so that the server's are what answers.
func removeValidation(st *middleware.Stack) error {
	_, err := st.Initialize.Remove("OperationInputValidation")
	return err
}

func wantAPIError(t *testing.T, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code {
		t.Fatalf("error %v, want %s", err, code)
	}
}

// TestCodeSigning drives code signing configurations through the real SDK: refusals leave
// nothing behind; a configuration in use cannot be deleted; Enforce refuses every deployment
// (Flint verifies no signature), Warn lets it through; the binding keeps the function's
// RevisionId and goes with the function.
func TestCodeSigning(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()
	zip := mustZip(t, map[string]zipEntry{"index.py": {body: "def handler(event, context):\n    return event\n"}})
	pubs := &types.AllowedPublishers{SigningProfileVersionArns: []string{"arn:aws:signer:us-east-1:000000000000:/signing-profiles/test"}}

	count := func() int {
		t.Helper()
		out, err := c.ListCodeSigningConfigs(ctx, &lambda.ListCodeSigningConfigsInput{})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.CodeSigningConfigs)
	}
	// Refused creations store nothing.
	for name, in := range map[string]*lambda.CreateCodeSigningConfigInput{
		"no publishers":  {},
		"bad policy":     {AllowedPublishers: pubs, CodeSigningPolicies: &types.CodeSigningPolicies{UntrustedArtifactOnDeployment: "Maybe"}},
		"bad profile":    {AllowedPublishers: &types.AllowedPublishers{SigningProfileVersionArns: []string{"profile"}}},
		"no profiles":    {AllowedPublishers: &types.AllowedPublishers{SigningProfileVersionArns: []string{}}},
		"long describes": {AllowedPublishers: pubs, Description: aws.String(string(make([]byte, 257)))},
	} {
		_, err := c.CreateCodeSigningConfig(ctx, in, func(o *lambda.Options) {
			o.APIOptions = append(o.APIOptions, removeValidation)
		})
		if err == nil {
			t.Fatalf("%s: created", name)
		}
		wantAPIError(t, err, "ValidationException")
	}
	if n := count(); n != 0 {
		t.Fatalf("refused creations left %d configurations", n)
	}

	enforce, err := c.CreateCodeSigningConfig(ctx, &lambda.CreateCodeSigningConfigInput{AllowedPublishers: pubs,
		CodeSigningPolicies: &types.CodeSigningPolicies{UntrustedArtifactOnDeployment: types.CodeSigningPolicyEnforce}})
	if err != nil {
		t.Fatal(err)
	}
	warn, err := c.CreateCodeSigningConfig(ctx, &lambda.CreateCodeSigningConfigInput{AllowedPublishers: pubs})
	if err != nil {
		t.Fatal(err)
	}
	if p := warn.CodeSigningConfig.CodeSigningPolicies.UntrustedArtifactOnDeployment; p != types.CodeSigningPolicyWarn {
		t.Fatalf("default policy %s, want Warn", p)
	}
	enfARN, warnARN := enforce.CodeSigningConfig.CodeSigningConfigArn, warn.CodeSigningConfig.CodeSigningConfigArn
	if id := *enforce.CodeSigningConfig.CodeSigningConfigId; len(id) != 21 || *enfARN != "arn:aws:lambda:us-east-1:000000000000:code-signing-config:"+id {
		t.Fatalf("id %s, ARN %s", id, *enfARN)
	}

	// CreateFunction under Enforce is refused before anything is stored; under Warn it binds.
	_, err = c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("enforced"), Runtime: types.RuntimePython312,
		Handler: aws.String("index.handler"), Role: aws.String(role), Code: &types.FunctionCode{ZipFile: zip}, CodeSigningConfigArn: enfARN})
	wantAPIError(t, err, "CodeVerificationFailedException")
	if _, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("enforced")}); err == nil {
		t.Fatal("a function refused by Enforce was stored")
	}
	createFunction(t, c, "warned", "python3.12", "index.handler", zip, func(in *lambda.CreateFunctionInput) { in.CodeSigningConfigArn = warnARN })
	if b, err := c.GetFunctionCodeSigningConfig(ctx, &lambda.GetFunctionCodeSigningConfigInput{FunctionName: aws.String("warned")}); err != nil || *b.CodeSigningConfigArn != *warnARN {
		t.Fatalf("binding after create: %+v, %v", b, err)
	}

	// Binding to Enforce keeps the RevisionId; the next code deployment is refused and the code
	// stays; Warn lets it through.
	before, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("warned")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutFunctionCodeSigningConfig(ctx, &lambda.PutFunctionCodeSigningConfigInput{FunctionName: aws.String("warned"), CodeSigningConfigArn: enfARN}); err != nil {
		t.Fatal(err)
	}
	other := mustZip(t, map[string]zipEntry{"index.py": {body: "def handler(event, context):\n    return 2\n"}})
	_, err = c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("warned"), ZipFile: other})
	wantAPIError(t, err, "CodeVerificationFailedException")
	after, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("warned")})
	if err != nil {
		t.Fatal(err)
	}
	if *after.RevisionId != *before.RevisionId || *after.CodeSha256 != *before.CodeSha256 {
		t.Fatalf("binding or refused update changed the function: %s/%s, was %s/%s", *after.RevisionId, *after.CodeSha256, *before.RevisionId, *before.CodeSha256)
	}
	if out := invoke(t, c, "warned", `{"a":1}`); string(out.Payload) != `{"a": 1}` {
		t.Fatalf("invoke after a refused update: %s", out.Payload)
	}
	if _, err := c.UpdateCodeSigningConfig(ctx, &lambda.UpdateCodeSigningConfigInput{CodeSigningConfigArn: enfARN,
		CodeSigningPolicies: &types.CodeSigningPolicies{UntrustedArtifactOnDeployment: types.CodeSigningPolicyWarn}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("warned"), ZipFile: other}); err != nil {
		t.Fatalf("update under Warn: %v", err)
	}

	// A configuration in use is not deleted; the function's deletion frees it.
	_, err = c.DeleteCodeSigningConfig(ctx, &lambda.DeleteCodeSigningConfigInput{CodeSigningConfigArn: enfARN})
	wantAPIError(t, err, "ResourceConflictException")
	if _, err := c.GetCodeSigningConfig(ctx, &lambda.GetCodeSigningConfigInput{CodeSigningConfigArn: enfARN}); err != nil {
		t.Fatalf("refused delete removed the configuration: %v", err)
	}
	if fns, err := c.ListFunctionsByCodeSigningConfig(ctx, &lambda.ListFunctionsByCodeSigningConfigInput{CodeSigningConfigArn: enfARN}); err != nil || len(fns.FunctionArns) != 1 {
		t.Fatalf("functions by configuration: %+v, %v", fns, err)
	}
	// A bad ARN or a missing configuration leaves the binding as it was.
	_, err = c.PutFunctionCodeSigningConfig(ctx, &lambda.PutFunctionCodeSigningConfigInput{FunctionName: aws.String("warned"),
		CodeSigningConfigArn: aws.String("arn:aws:lambda:us-east-1:000000000000:code-signing-config:csc-0123456789abcdefx")})
	wantAPIError(t, err, "CodeSigningConfigNotFoundException")
	_, err = c.PutFunctionCodeSigningConfig(ctx, &lambda.PutFunctionCodeSigningConfigInput{FunctionName: aws.String("warned"),
		CodeSigningConfigArn: aws.String("csc-1")}, func(o *lambda.Options) { o.APIOptions = append(o.APIOptions, removeValidation) })
	wantAPIError(t, err, "ValidationException")
	if b, err := c.GetFunctionCodeSigningConfig(ctx, &lambda.GetFunctionCodeSigningConfigInput{FunctionName: aws.String("warned")}); err != nil || *b.CodeSigningConfigArn != *enfARN {
		t.Fatalf("binding after refused puts: %+v, %v", b, err)
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("warned")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteCodeSigningConfig(ctx, &lambda.DeleteCodeSigningConfigInput{CodeSigningConfigArn: enfARN}); err != nil {
		t.Fatalf("delete once unused: %v", err)
	}
	_, err = c.GetCodeSigningConfig(ctx, &lambda.GetCodeSigningConfigInput{CodeSigningConfigArn: enfARN})
	wantAPIError(t, err, "ResourceNotFoundException")
	if n := count(); n != 1 {
		t.Fatalf("%d configurations left, want 1", n)
	}
}

// TestRecursionConfig: Terminate by default, Allow once put; a bad value changes nothing; the
// setting keeps the function's RevisionId and survives a configuration update.
func TestRecursionConfig(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()
	zip := mustZip(t, map[string]zipEntry{"index.py": {body: "def handler(event, context):\n    return event\n"}})
	created := createFunction(t, c, "loop", "python3.12", "index.handler", zip)
	get := func() types.RecursiveLoop {
		t.Helper()
		out, err := c.GetFunctionRecursionConfig(ctx, &lambda.GetFunctionRecursionConfigInput{FunctionName: aws.String("loop")})
		if err != nil {
			t.Fatal(err)
		}
		return out.RecursiveLoop
	}
	if got := get(); got != types.RecursiveLoopTerminate {
		t.Fatalf("default %s, want Terminate", got)
	}
	_, err := c.PutFunctionRecursionConfig(ctx, &lambda.PutFunctionRecursionConfigInput{FunctionName: aws.String("loop"), RecursiveLoop: "Sometimes"})
	wantAPIError(t, err, "ValidationException")
	if got := get(); got != types.RecursiveLoopTerminate {
		t.Fatalf("after a refused put %s, want Terminate", got)
	}
	out, err := c.PutFunctionRecursionConfig(ctx, &lambda.PutFunctionRecursionConfigInput{FunctionName: aws.String("loop"), RecursiveLoop: types.RecursiveLoopAllow})
	if err != nil || out.RecursiveLoop != types.RecursiveLoopAllow {
		t.Fatalf("put: %+v, %v", out, err)
	}
	cfg, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("loop")})
	if err != nil || *cfg.RevisionId != *created.RevisionId {
		t.Fatalf("RevisionId after put: %v, was %s (%v)", cfg.RevisionId, *created.RevisionId, err)
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("loop"), Description: aws.String("d")}); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != types.RecursiveLoopAllow {
		t.Fatalf("after a configuration update %s, want Allow", got)
	}
	_, err = c.GetFunctionRecursionConfig(ctx, &lambda.GetFunctionRecursionConfigInput{FunctionName: aws.String("nope")})
	wantAPIError(t, err, "ResourceNotFoundException")
}
