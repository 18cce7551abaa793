package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
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

// TestNATSOutsideClients is the regression test for unauthenticated NATS: with --nats-listen
// on loopback and access keys set, a client without the token (or with a wrong one) is
// refused; a client with the token publishes to an event source (its mapping delivers the
// message) and reads a destination stream with a pull consumer, and nothing more: not the logs,
// not the functions bucket (a forged record never reaches the API), not the object store, not
// Flint's inboxes, no consumer on Flint's streams, no push consumer delivering into them, no
// stream created or deleted.
func TestNATSOutsideClients(t *testing.T) {
	data := t.TempDir()
	key := createAccessKey(t, data, "test")
	s := startServer(t, data, func(c *config.Config) { c.NATSListen = "127.0.0.1:0" })
	c := clientWith(s.URL(), key.AccessKeyID, key.SecretAccessKey)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	createFunction(t, c, "victim", "python3.12", "app.handler",
		mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    print('got', e)\n    return e\n"}}),
		func(in *lambda.CreateFunctionInput) {
			in.Description = aws.String("original")
			in.Environment = &types.Environment{Variables: map[string]string{"SECRET": "s3cr3t"}}
		})
	if _, err := c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("victim"),
		DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String(streamArn + "results")}}}); err != nil {
		t.Fatal(err)
	}
	if s.NATSToken() == "" {
		t.Fatal("no NATS token with NATSListen set")
	}
	if tok, err := os.ReadFile(filepath.Join(data, "nats-token")); err != nil || strings.TrimSpace(string(tok)) != s.NATSToken() {
		t.Fatalf("DATA/nats-token: %q, %v", tok, err)
	}

	// (a), (b): no token, a wrong one, or a made-up user: refused.
	for name, opts := range map[string][]nats.Option{
		"no token":    nil,
		"wrong token": {nats.Token("wrong" + s.NATSToken())},
		"user":        {nats.UserInfo("flint", s.NATSToken())},
	} {
		nc, err := nats.Connect(s.NATSURL(), append(opts, nats.Timeout(5*time.Second), nats.NoReconnect())...)
		if err == nil {
			nc.Close()
			t.Errorf("%s: connected", name)
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("%s: %v, want an authorization violation", name, err)
		}
	}

	nc, err := nats.Connect(s.NATSURL(), nats.Token(s.NATSToken()), nats.Timeout(5*time.Second),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})) // permission violations are expected
	if err != nil {
		t.Fatalf("with the token: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// Flint's replies (KV reads of the function among them) never reach an outside inbox.
	other, err := nats.Connect(s.NATSURL(), nats.Token(s.NATSToken()))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	snoop, err := other.SubscribeSync("_INBOX.>")
	if err != nil {
		t.Fatal(err)
	}

	// (c) An event source: a message published to the queue reaches the function.
	m, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{
		EventSourceArn: aws.String(queueArn + "jobs"), FunctionName: aws.String("victim"), BatchSize: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the mapping", 30*time.Second, func() bool {
		got, err := c.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: m.UUID})
		return err == nil && aws.ToString(got.State) == "Enabled"
	})
	if _, err := js.Publish(ctx, "flint.queues.jobs", []byte(`{"from":"outside"}`)); err != nil {
		t.Fatalf("publish to the queue: %v", err)
	}
	waitFor(t, "the queued message to reach the function", time.Minute, func() bool {
		_, _, body := signed(t, "GET", s.URL()+"/flint/v1/functions/victim/logs", key.AccessKeyID, key.SecretAccessKey, nil, time.Now(), nil)
		return strings.Contains(string(body), `{"from":"outside"}`)
	})
	// (c) A destination: read with a durable pull consumer, acknowledged.
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("victim"), InvocationType: types.InvocationTypeEvent,
		Payload: []byte(`{"n":1}`)}); err != nil {
		t.Fatal(err)
	}
	var results jetstream.Stream
	waitFor(t, "the destination stream", 30*time.Second, func() bool { results, err = js.Stream(ctx, "results"); return err == nil })
	cons, err := results.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "reader", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("pull consumer on a destination: %v", err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(30 * time.Second))
	if err != nil {
		t.Fatalf("read a destination: %v", err)
	}
	if !strings.Contains(string(msg.Data()), `"Success"`) {
		t.Errorf("destination record %s", msg.Data())
	}
	if err := msg.DoubleAck(ctx); err != nil {
		t.Errorf("ack: %v", err)
	}
	if info, err := cons.Info(ctx); err != nil || info.AckFloor.Consumer != 1 {
		t.Errorf("consumer after the ack: %+v, %v", info, err)
	}
	ordered, err := js.OrderedConsumer(ctx, "results", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer on a destination: %v", err)
	}
	if _, err := ordered.Next(jetstream.FetchMaxWait(10 * time.Second)); err != nil {
		t.Errorf("ordered read of a destination: %v", err)
	}

	// (d) Everything else is refused.
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 3*time.Second) }
	forged := []byte(`{"Config":{"FunctionName":"victim","Description":"forged","Handler":"evil.handler"}}`)
	denied := map[string]func(context.Context) error{
		"functions bucket": func(ctx context.Context) error { _, err := js.KeyValue(ctx, "flint_functions"); return err },
		"KV put": func(ctx context.Context) error {
			_, err := js.Publish(ctx, "$KV.flint_functions.victim", forged)
			return err
		},
		"KV get": func(ctx context.Context) error {
			return jsAPIError(nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET.KV_flint_functions.$KV.flint_functions.victim", nil))
		},
		"object store": func(ctx context.Context) error { _, err := js.ObjectStore(ctx, "flint_code"); return err },
		"logs stream":  func(ctx context.Context) error { _, err := js.Stream(ctx, "FLINT_LOGS"); return err },
		"logs consumer": func(ctx context.Context) error {
			_, err := js.OrderedConsumer(ctx, "FLINT_LOGS", jetstream.OrderedConsumerConfig{})
			return err
		},
		"async consumer": func(ctx context.Context) error {
			_, err := js.CreateOrUpdateConsumer(ctx, "FLINT_ASYNC", jetstream.ConsumerConfig{Durable: "steal"})
			return err
		},
		"async pull": func(ctx context.Context) error {
			return jsAPIError(nc.RequestWithContext(ctx, "$JS.API.CONSUMER.MSG.NEXT.FLINT_ASYNC.flint-async", []byte(`{"batch":1}`)))
		},
		"queue read": func(ctx context.Context) error {
			_, err := js.OrderedConsumer(ctx, "jobs", jetstream.OrderedConsumerConfig{})
			return err
		},
		"stream delete": func(ctx context.Context) error { return js.DeleteStream(ctx, "results") },
		"stream create": func(ctx context.Context) error {
			_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "evil", Subjects: []string{"evil.>"}})
			return err
		},
		"stream list": func(ctx context.Context) error {
			names := js.StreamNames(ctx)
			for range names.Name() {
			}
			return names.Err()
		},
		"consumer delete": func(ctx context.Context) error { return js.DeleteConsumer(ctx, "results", "reader") },
		// A push consumer would make JetStream publish the stream's records to any subject of
		// Flint's account, a KV bucket's included.
		"push consumer": func(ctx context.Context) error {
			return jsAPIError(nc.RequestWithContext(ctx, "$JS.API.CONSUMER.CREATE.results.push",
				[]byte(`{"stream_name":"results","config":{"name":"push","deliver_subject":"$KV.flint_functions.victim","ack_policy":"none"}}`)))
		},
		"subscribe logs": func(ctx context.Context) error {
			sub, err := nc.SubscribeSync("flint.logs.>")
			if err != nil {
				return err
			}
			_ = nc.Flush()
			invoke(t, c, "victim", `{"n":2}`)
			_, err = sub.NextMsg(2 * time.Second)
			if errors.Is(err, nats.ErrTimeout) {
				return nil // nothing delivered: refused (the violation is reported asynchronously)
			}
			return errors.New("a log record reached an outside subscriber")
		},
	}
	for name, try := range denied {
		ctx, cancel := short()
		err := try(ctx)
		cancel()
		if name == "subscribe logs" {
			if err != nil {
				t.Error(err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: allowed to an outside client", name)
		} else if name == "push consumer" || name == "KV get" || name == "logs consumer" {
			if !strings.Contains(err.Error(), "open to NATS clients of Flint") {
				t.Errorf("%s: %v, want Flint's refusal", name, err)
			}
		}
	}
	if n, _, _ := snoop.Pending(); n > 0 {
		for range n {
			m, _ := snoop.NextMsg(time.Second)
			if m != nil && (strings.Contains(string(m.Data), `"FunctionName"`) || strings.Contains(string(m.Data), "s3cr3t")) {
				t.Errorf("Flint's reply reached an outside inbox: %s %.200s", m.Subject, m.Data)
			}
		}
	}
	got, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("victim")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.Description) != "original" || aws.ToString(got.Handler) != "app.handler" ||
		got.Environment == nil || got.Environment.Variables["SECRET"] != "s3cr3t" {
		t.Errorf("the API serves %q %q %+v, want the stored configuration", aws.ToString(got.Description), aws.ToString(got.Handler), got.Environment)
	}

	// Without NATSListen nothing listens.
	if u := startServer(t, t.TempDir()).NATSURL(); u != "" {
		t.Errorf("NATS URL %q without NATSListen", u)
	}
}

// apiError turns a JetStream API reply carrying an error into an error.
func jsAPIError(m *nats.Msg, err error) error {
	if err != nil {
		return err
	}
	var resp struct {
		Error *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if json.Unmarshal(m.Data, &resp) == nil && resp.Error != nil {
		return errors.New(resp.Error.Description)
	}
	if m.Header.Get("Status") != "" {
		return fmt.Errorf("status %s %s", m.Header.Get("Status"), m.Header.Get("Description"))
	}
	return nil
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
		`flint_cold_starts_total{function="measured",version="$LATEST"} 1`,
		`flint_init_duration_seconds_count{function="measured",version="$LATEST"} 1`,
		`flint_function_environments{function="measured",state="idle",version="$LATEST"} 1`,
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
