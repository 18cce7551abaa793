package runtimeapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/google/go-cmp/cmp"
)

// The test binary doubles as a real aws-lambda-go runtime (see TestMain).
const (
	helperEnv       = "FLINT_RUNTIMEAPI_TEST_HELPER"
	helperGoRuntime = "aws-lambda-go"
)

type goEvent struct {
	Op      string          `json:"op"`
	Data    json.RawMessage `json:"data,omitempty"`
	Message string          `json:"message,omitempty"`
}

// brokenReader yields some bytes, then fails: aws-lambda-go reports that in the trailers.
type brokenReader struct {
	data []byte
	err  error
}

func (r *brokenReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func runGoRuntime() {
	lambda.StartWithOptions(func(ctx context.Context, ev goEvent) (any, error) {
		switch ev.Op {
		case "echo":
			return ev.Data, nil
		case "fail":
			return nil, errors.New(ev.Message)
		case "broken-stream":
			return &brokenReader{data: []byte("partial"), err: errors.New(ev.Message)}, nil
		case "context":
			lc, _ := lambdacontext.FromContext(ctx)
			dl, _ := ctx.Deadline()
			trace, _ := ctx.Value("x-amzn-trace-id").(string)
			return map[string]any{
				"requestId":     lc.AwsRequestID,
				"arn":           lc.InvokedFunctionArn,
				"deadlineMs":    dl.UnixMilli(),
				"traceId":       trace,
				"identityId":    lc.Identity.CognitoIdentityID,
				"identityPool":  lc.Identity.CognitoIdentityPoolID,
				"installation":  lc.ClientContext.Client.InstallationID,
				"custom":        lc.ClientContext.Custom,
				"clientContext": lc.ClientContext.Env,
			}, nil
		}
		return nil, errors.New("unknown op " + ev.Op)
	}, lambda.WithEnableSIGTERM(func() {}))
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestGoRuntime runs the real aws-lambda-go client (lambda.Start with WithEnableSIGTERM) in a
// child process against the server for several invocations.
func TestGoRuntime(t *testing.T) {
	e := newEnv(t)
	var stderr lockedBuffer
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+helperGoRuntime, "AWS_LAMBDA_RUNTIME_API="+e.addr,
		"AWS_LAMBDA_FUNCTION_NAME=fn", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST")
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Closing the server ends the runtime: its /next fails and aws-lambda-go exits.
		_ = e.srv.Close()
		exited := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(exited)
		}()
		select {
		case <-exited:
		case <-time.After(wait):
			t.Error("the runtime did not exit after Close")
			_ = cmd.Process.Kill()
			<-exited
		}
		t.Logf("runtime stderr:\n%s", stderr.String())
	})

	streamErr := `{"errorMessage":"stream broke","errorType":"errorString"}`
	tests := []struct {
		name  string
		event string
		want  result
	}{
		{name: "echo", event: `{"op":"echo","data":{"a":1}}`,
			want: result{Body: `{"a":1}`, ContentType: "application/json"}},
		{name: "function error", event: `{"op":"fail","message":"boom"}`,
			want: result{Body: `{"errorMessage":"boom","errorType":"errorString"}`, ContentType: "application/json", ErrorType: "Unhandled"}},
		{name: "reader fails midway", event: `{"op":"broken-stream","message":"stream broke"}`,
			want: result{Body: streamErr, ContentType: "application/json", ErrorType: "errorString"}},
		{name: "echo after errors", event: `{"op":"echo","data":"again"}`,
			want: result{Body: `"again"`, ContentType: "application/json"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv := newInvocation("req-"+tc.name, tc.event)
			o := outcomeOf(t, e.invoke(inv))
			if o.err != nil {
				t.Fatalf("invocation %d: %v", i, o.err)
			}
			if diff := cmp.Diff(tc.want, o.res); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("context", func(t *testing.T) {
		inv := newInvocation("req-context", `{"op":"context"}`)
		inv.Deadline = time.Now().Add(time.Hour).Truncate(time.Millisecond)
		inv.TraceID = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
		inv.ClientContext = `{"client":{"installation_id":"i-1"},"custom":{"k":"v"},"env":{"platform":"linux"}}`
		inv.CognitoIdentity = `{"cognitoIdentityId":"id-1","cognitoIdentityPoolId":"pool-1"}`
		o := outcomeOf(t, e.invoke(inv))
		if o.err != nil || o.res.ErrorType != "" {
			t.Fatalf("Invoke = %+v, %v", o.res, o.err)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(o.res.Body), &got); err != nil {
			t.Fatalf("result %s: %v", o.res.Body, err)
		}
		want := map[string]any{
			"requestId":     "req-context",
			"arn":           inv.InvokedARN,
			"deadlineMs":    float64(inv.Deadline.UnixMilli()),
			"traceId":       inv.TraceID,
			"identityId":    "id-1",
			"identityPool":  "pool-1",
			"installation":  "i-1",
			"custom":        map[string]any{"k": "v"},
			"clientContext": map[string]any{"platform": "linux"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("what the handler saw (-want +got):\n%s", diff)
		}
	})

	if got := e.hooks.ready.Load(); got != 1 {
		t.Errorf("Ready called %d times, want 1", got)
	}
	if s := stderr.String(); strings.Contains(s, "Failed to register internal extension") {
		t.Errorf("aws-lambda-go could not register its SIGTERM extension:\n%s", s)
	}
}
