package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// TestThrottlesCountedOnce: a throttle is the same thing, counted once in the same metric,
// whichever way the invocation came (Invoke, a function URL, an async event): every way goes
// through invoke.Service.Invoke.
func TestThrottlesCountedOnce(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()
	createFunction(t, c, "stopped", "provided.al2023", "bootstrap", goEchoZip)
	if _, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("stopped"), ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("stopped"), Payload: []byte(`{}`)}); apiErrorCode(err) != "TooManyRequestsException" {
		t.Fatalf("sync Invoke with reserved concurrency 0: %v", err)
	}
	cfg, err := c.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("stopped"), AuthType: types.FunctionUrlAuthTypeNone})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("stopped"), StatementId: aws.String("public"),
		Action: aws.String("lambda:InvokeFunctionUrl"), Principal: aws.String("*"), FunctionUrlAuthType: types.FunctionUrlAuthTypeNone}); err != nil {
		t.Fatal(err)
	}
	fu, err := url.Parse(aws.ToString(cfg.FunctionUrl))
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := strings.Cut(fu.Hostname(), ".")
	resp, err := http.Post(s.URL()+"/lambda-url/"+id+"/", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("function URL with reserved concurrency 0: status %d, want 429", resp.StatusCode)
	}
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("stopped"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	// The async event is refused once (reserved concurrency 0 sends it to on-failure at once).
	want := `flint_throttles_total{function="stopped",reason="ReservedFunctionConcurrentInvocationLimitExceeded",version="$LATEST"} 3`
	var body string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if body, err = httpGet(s.URL() + "/metrics"); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(body, want) {
			return
		}
	}
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "flint_throttles_total") {
			t.Log(l)
		}
	}
	t.Fatalf("/metrics lacks %q", want)
}
