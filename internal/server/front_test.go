package server_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmw "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/flint-run/flint/internal/server"
)

// TestInvokeThroughFrontDoor drives the API's front door (httpfront) with the real SDK: a client
// that only invokes, on connections of its own, with SigV4 keys in force. Every answer is the
// one net/http's server gave before (statuses, AWS's error types, request ids, the tail), and
// all of them come from the front door: no connection of that client is handed to net/http.
func TestInvokeThroughFrontDoor(t *testing.T) {
	data := t.TempDir()
	key := createAccessKey(t, data, "test")
	s := startServer(t, data)
	ctx := context.Background()
	createFunction(t, clientWith(s.URL(), key.AccessKeyID, key.SecretAccessKey), "front-echo", "provided.al2023", "bootstrap", goEchoZip)

	before, ok := server.FrontStats(s)
	if !ok {
		t.Fatal("a plain-HTTP server has no front door")
	}
	invoker := func(secret string) *lambda.Client {
		return lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.URL()),
			Credentials: credentials.NewStaticCredentialsProvider(key.AccessKeyID, secret, ""), RetryMaxAttempts: 1,
			HTTPClient: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}})
	}
	c := invoker(key.SecretAccessKey)
	requests := 0
	call := func(in *lambda.InvokeInput) (*lambda.InvokeOutput, error) {
		requests++
		return c.Invoke(ctx, in)
	}

	out, err := call(&lambda.InvokeInput{FunctionName: aws.String("front-echo"), Payload: []byte(`{"a":1}`), LogType: types.LogTypeTail})
	if err != nil {
		t.Fatal(err)
	}
	if string(out.Payload) != `{"a":1}` || out.StatusCode != 200 || aws.ToString(out.ExecutedVersion) != "$LATEST" || out.FunctionError != nil {
		t.Fatalf("sync invoke: %d %q version %q error %v", out.StatusCode, out.Payload, aws.ToString(out.ExecutedVersion), out.FunctionError)
	}
	if id, _ := awsmw.GetRequestIDMetadata(out.ResultMetadata); id == "" || !strings.Contains(decodeTail(t, out), "REPORT RequestId: "+id) {
		t.Fatalf("request id %q, tail %q", id, decodeTail(t, out))
	}
	if out, err = call(&lambda.InvokeInput{FunctionName: aws.String("front-echo"), Qualifier: aws.String("$LATEST"), Payload: []byte(`{}`),
		InvocationType: types.InvocationTypeEvent}); err != nil || out.StatusCode != 202 {
		t.Fatalf("Event invoke: %v %+v", err, out)
	}
	if out, err = call(&lambda.InvokeInput{FunctionName: aws.String("front-echo"), InvocationType: types.InvocationTypeDryRun}); err != nil || out.StatusCode != 204 {
		t.Fatalf("DryRun: %v %+v", err, out)
	}
	for _, tc := range []struct {
		name string
		in   *lambda.InvokeInput
		code string
	}{
		{"unknown function", &lambda.InvokeInput{FunctionName: aws.String("front-none")}, "ResourceNotFoundException"},
		{"payload not JSON", &lambda.InvokeInput{FunctionName: aws.String("front-echo"), Payload: []byte("{")}, "InvalidRequestContentException"},
		{"payload over 6 MB", &lambda.InvokeInput{FunctionName: aws.String("front-echo"),
			Payload: append(append([]byte(`"`), bytes.Repeat([]byte("x"), 6<<20)...), '"')}, "RequestTooLargeException"},
	} {
		if _, err := call(tc.in); apiErrorCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	// The connection carries on after those errors.
	if out, err = call(&lambda.InvokeInput{FunctionName: aws.String("front-echo"), Payload: []byte(`[2]`)}); err != nil || string(out.Payload) != `[2]` {
		t.Fatalf("invoke after the errors: %v %+v", err, out)
	}
	c = invoker("wrong secret")
	if _, err := call(&lambda.InvokeInput{FunctionName: aws.String("front-echo")}); apiErrorCode(err) != "InvalidSignatureException" {
		t.Errorf("wrong secret: %v, want InvalidSignatureException", err)
	}

	after, _ := server.FrontStats(s)
	if served := after.Served - before.Served; served < uint64(requests) {
		t.Errorf("the front door served %d of the %d invokes", served, requests)
	}
	if after.HandedOver != before.HandedOver {
		t.Errorf("%d connections of an invoking client were handed to net/http", after.HandedOver-before.HandedOver)
	}
}
