package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/config"
)

// TestNATSListenExposesTheStore: with --nats-listen, an outside NATS client sees Flint's buckets.
func TestNATSListenExposesTheStore(t *testing.T) {
	s := startServer(t, t.TempDir(), func(c *config.Config) { c.NATSListen = "127.0.0.1:0" })
	createFunction(t, newClient(s.URL()), "visible", "python3.12", "app.handler",
		mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return e\n"}}))
	if s.NATSURL() == "" {
		t.Fatal("no NATS URL with NATSListen set")
	}
	nc, err := nats.Connect(s.NATSURL(), nats.Timeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, "flint_functions")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, "visible"); err != nil {
		t.Errorf("function not visible to an outside NATS client: %v", err)
	}

	// Without NATSListen nothing listens.
	if u := startServer(t, t.TempDir()).NATSURL(); u != "" {
		t.Errorf("NATS URL %q without NATSListen", u)
	}
}

// TestLogsEndpoint: every invocation's START..REPORT record is stored and served to `flint logs`.
func TestLogsEndpoint(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	createFunction(t, c, "logged", "python3.12", "app.handler",
		mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    print('line', e['n'])\n    return e\n"}}))
	invoke(t, c, "logged", `{"n":1}`)
	invoke(t, c, "logged", `{"n":2}`)
	var body string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) { // logs are published off the request path
		resp, err := http.Get(s.URL() + "/flint/v1/functions/logged/logs")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		if strings.Count(body, "REPORT RequestId:") == 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{"line 1", "line 2", "START RequestId:", "END RequestId:"} {
		if !strings.Contains(body, want) {
			t.Errorf("logs lack %q:\n%s", want, body)
		}
	}
	if strings.Index(body, "line 1") > strings.Index(body, "line 2") {
		t.Errorf("logs out of order:\n%s", body)
	}
	resp, err := http.Get(s.URL() + "/flint/v1/functions/nope/logs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("logs of an unknown function: status %d, want 404", resp.StatusCode)
	}
}

// TestMetrics: /metrics reports environments by state, invocations and throttles.
func TestMetrics(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	createFunction(t, c, "measured", "provided.al2023", "bootstrap", goEchoZip)
	invoke(t, c, "measured", `{}`)
	invoke(t, c, "measured", `{"fail":true}`)
	// Async events waiting behind reserved concurrency 1 show in the queue gauges.
	createFunction(t, c, "queued", "provided.al2023", "bootstrap", goEchoZip)
	if _, err := c.PutFunctionConcurrency(context.Background(), &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("queued"), ReservedConcurrentExecutions: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("queued"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"sleep_ms":2000}`)}); err != nil {
			t.Fatal(err)
		}
	}
	var body string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(s.URL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		if strings.Contains(body, `outcome="error"`) && strings.Contains(body, `flint_async_in_flight{function="queued"} 1`) {
			break
		}
	}
	for _, want := range []string{
		`flint_environments{state="idle"} 1`,
		`flint_invocations_total{function="measured",outcome="success",version="$LATEST"} 1`,
		`flint_invocations_total{function="measured",outcome="error",version="$LATEST"} 1`,
		`flint_cold_starts_total{function="measured"} 1`,
		`flint_async_in_flight{function="queued"} 1`,
		`flint_async_queue_depth{function="queued"} `,
		`flint_async_oldest_age_seconds{function="queued"} `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func httpGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
