package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/config"
)

const queueArn = "arn:flint:jetstream:us-east-1:000000000000:queue/"

// esmWorker records every record it handles in DIR: "ok" (body, messageId, receive count) for
// successes, "failed" for reported failures, and "conc" the invocations running at each start.
// Messages whose number is a multiple of 10 fail on their first receive; "poison" always fails.
const esmWorker = `import os, time
D = os.environ['DIR']
def handler(event, context):
    run = os.path.join(D, 'run', context.aws_request_id)
    open(run, 'w').close()
    n = len(os.listdir(os.path.join(D, 'run')))
    with open(os.path.join(D, 'conc'), 'a') as f:
        f.write('%d\n' % n)
    time.sleep(0.02)
    fails, ok = [], []
    for r in event['Records']:
        assert r['eventSource'] == 'aws:sqs' and r['eventSourceARN'].endswith(':queue/jobs'), r
        b, rc = r['body'], int(r['attributes']['ApproximateReceiveCount'])
        if b == 'poison' or (int(b) % 10 == 0 and rc == 1):
            fails.append({'itemIdentifier': r['messageId']})
        else:
            ok.append('%s %s %d\n' % (b, r['messageId'], rc))
    with open(os.path.join(D, 'ok'), 'a') as f:
        f.write(''.join(ok))
    with open(os.path.join(D, 'failed'), 'a') as f:
        f.write(''.join(x['itemIdentifier'] + '\n' for x in fails))
    os.remove(run)
    return {'batchItemFailures': fails}
`

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(string(b), "\n", "\n "))
}

// okBodies maps each successfully processed body to its messageId.
func okBodies(t *testing.T, dir string) map[string]string {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(dir, "ok"))
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.Fields(line); len(f) == 3 {
			out[f[0]] = f[1]
		}
	}
	return out
}

func postJSON(t *testing.T, url string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// waitFor is eventually (cluster_test.go) for a condition without an error to report.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	eventually(t, timeout, what, func() error {
		if cond() {
			return nil
		}
		return errors.New("not yet")
	})
}

func TestESMQueue(t *testing.T) {
	s := startServer(t, t.TempDir(), func(c *config.Config) { c.NATSListen = "127.0.0.1:0" })
	c := newClient(s.URL())
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	createFunction(t, c, "worker", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: esmWorker}}),
		func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"DIR": dir}}
		})

	const maxConc = 3
	status, created := postJSON(t, s.URL()+"/2015-03-31/event-source-mappings", map[string]any{
		"EventSourceArn": queueArn + "jobs", "FunctionName": "worker", "BatchSize": 10,
		"FunctionResponseTypes": []string{"ReportBatchItemFailures"}, "ScalingConfig": map[string]any{"MaximumConcurrency": maxConc},
		"DestinationConfig":        map[string]any{"OnFailure": map[string]any{"Destination": streamArn + "esm-dlq"}},
		"VisibilityTimeoutSeconds": 0.2, "MaximumReceiveCount": 4,
	})
	id, _ := created["UUID"].(string)
	if _, isNum := created["LastModified"].(float64); status != http.StatusAccepted || created["State"] != "Creating" || len(id) != 36 ||
		created["StateTransitionReason"] != "USER_INITIATED" || !isNum ||
		created["EventSourceMappingArn"] != "arn:aws:lambda:us-east-1:000000000000:event-source-mapping:"+id ||
		!strings.HasSuffix(created["FunctionArn"].(string), ":function:worker") || created["BatchSize"] != 10.0 {
		t.Fatalf("CreateEventSourceMapping = %d %v", status, created)
	}
	state := func() string {
		got, err := c.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(got.State)
	}
	waitFor(t, "Enabled", 10*time.Second, func() bool { return state() == "Enabled" })
	list, err := c.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{FunctionName: aws.String("worker")})
	if err != nil || len(list.EventSourceMappings) != 1 || aws.ToString(list.EventSourceMappings[0].UUID) != id ||
		aws.ToInt32(list.EventSourceMappings[0].ScalingConfig.MaximumConcurrency) != maxConc {
		t.Fatalf("ListEventSourceMappings = %+v, %v", list, err)
	}

	nc, err := nats.Connect(s.NATSURL(), nats.Token(s.NATSToken()))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	const n = 5000
	start := time.Now()
	for i := range n {
		if _, err := js.PublishAsync("flint.queues.jobs", []byte(strconv.Itoa(i)), stallWait); err != nil {
			t.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	if _, err := js.Publish(ctx, "flint.queues.jobs", []byte("poison")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every message processed", 3*time.Minute, func() bool { return len(okBodies(t, dir)) >= n })

	ok := okBodies(t, dir)
	for i := range n {
		if ok[strconv.Itoa(i)] == "" {
			t.Errorf("message %d never processed", i)
		}
	}
	failed := map[string]bool{}
	for _, id := range readLines(t, filepath.Join(dir, "failed")) {
		failed[id] = true
	}
	for i := 0; i < n; i += 10 {
		if mid := ok[strconv.Itoa(i)]; !failed[mid] {
			t.Errorf("message %d (%s) was not failed once and retried with the same messageId", i, mid)
		}
	}
	peak := 0
	for _, l := range readLines(t, filepath.Join(dir, "conc")) {
		peak = max(peak, must(strconv.Atoi(l)))
	}
	if peak > maxConc || peak == 0 {
		t.Errorf("peak concurrent batches %d, want 1..%d", peak, maxConc)
	}
	t.Logf("%d messages (10%% failed once) processed in %v; peak concurrent batches: %d", n, time.Since(start).Round(time.Millisecond), peak)

	// The poisoned message is received MaximumReceiveCount times, then dead-lettered.
	dlq := nextMsg(t, js, "esm-dlq")
	if string(dlq.Data()) != "poison" || dlq.Headers().Get("ApproximateReceiveCount") != "4" ||
		dlq.Headers().Get("Flint-Event-Source-Mapping") != id || !failed[dlq.Headers().Get("Flint-Message-Id")] {
		t.Errorf("dead letter = %q %v", dlq.Data(), dlq.Headers())
	}
	waitFor(t, "queue drained", 10*time.Second, func() bool {
		st, err := js.Stream(ctx, "jobs")
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		return err == nil && info.State.Msgs == 0
	})

	// Disabled: nothing is consumed.
	upd, err := c.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: aws.String(id), Enabled: aws.Bool(false)})
	if err != nil || aws.ToString(upd.State) != "Disabling" {
		t.Fatalf("UpdateEventSourceMapping = %+v, %v", upd, err)
	}
	waitFor(t, "Disabled", 10*time.Second, func() bool { return state() == "Disabled" })
	for i := n; i < n+20; i++ {
		if _, err := js.Publish(ctx, "flint.queues.jobs", []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1500 * time.Millisecond)
	if got := len(okBodies(t, dir)); got != n {
		t.Errorf("%d messages processed while disabled", got-n)
	}
	if _, err := c.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: aws.String(id), Enabled: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "processing after re-enabling", 30*time.Second, func() bool { return len(okBodies(t, dir)) == n+20 })

	del, err := c.DeleteEventSourceMapping(ctx, &lambda.DeleteEventSourceMappingInput{UUID: aws.String(id)})
	if err != nil || aws.ToString(del.State) != "Deleting" {
		t.Fatalf("DeleteEventSourceMapping = %+v, %v", del, err)
	}
	waitFor(t, "mapping deleted", 10*time.Second, func() bool {
		_, err := c.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: aws.String(id)})
		var nf *types.ResourceNotFoundException
		return errors.As(err, &nf)
	})
	// The mapping's consumer on the queue is Flint's own (outside clients may not look at it).
	if _, err := s.JetStream().Consumer(ctx, "jobs", "esm-"+id); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("consumer after delete: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func nextMsg(t *testing.T, js jetstream.JetStream, stream string) jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var st jetstream.Stream
	var err error
	waitFor(t, "stream "+stream, 30*time.Second, func() bool { st, err = js.Stream(ctx, stream); return err == nil })
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(30 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestESMRejectsBadInput(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()
	createFunction(t, c, "fn", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return 1\n"}}))
	for _, tc := range []struct {
		name string
		in   lambda.CreateEventSourceMappingInput
		want string
	}{
		{"unknown arn", lambda.CreateEventSourceMappingInput{EventSourceArn: aws.String("arn:aws:sqs:us-east-1:000000000000:q")}, "InvalidParameterValueException"},
		{"stream not yet", lambda.CreateEventSourceMappingInput{EventSourceArn: aws.String(streamArn + "s")}, "InvalidParameterValueException"},
		{"missing function", lambda.CreateEventSourceMappingInput{FunctionName: aws.String("nope")}, "InvalidParameterValueException"},
		{"batch size 0", lambda.CreateEventSourceMappingInput{BatchSize: aws.Int32(0)}, "ValidationException"},
		{"batch size too big", lambda.CreateEventSourceMappingInput{BatchSize: aws.Int32(10001), MaximumBatchingWindowInSeconds: aws.Int32(1)}, "ValidationException"},
		{"big batch without window", lambda.CreateEventSourceMappingInput{BatchSize: aws.Int32(100)}, "InvalidParameterValueException"},
		{"window too long", lambda.CreateEventSourceMappingInput{MaximumBatchingWindowInSeconds: aws.Int32(301)}, "ValidationException"},
		{"concurrency 1", lambda.CreateEventSourceMappingInput{ScalingConfig: &types.ScalingConfig{MaximumConcurrency: aws.Int32(1)}}, "ValidationException"},
		{"bad destination", lambda.CreateEventSourceMappingInput{DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String("arn:aws:sqs:us-east-1:000000000000:dlq")}}}, "InvalidParameterValueException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if in.EventSourceArn == nil {
				in.EventSourceArn = aws.String(queueArn + "q")
			}
			if in.FunctionName == nil {
				in.FunctionName = aws.String("fn")
			}
			_, err := c.CreateEventSourceMapping(ctx, &in)
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tc.want {
				t.Errorf("CreateEventSourceMapping error = %v, want %s", err, tc.want)
			}
		})
	}
	list, err := c.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{})
	if err != nil || len(list.EventSourceMappings) != 0 {
		t.Errorf("after rejections: %+v, %v", list, err)
	}
	if _, err := c.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: aws.String("00000000-0000-0000-0000-000000000000")}); err == nil {
		t.Error("GetEventSourceMapping of an unknown UUID succeeded")
	}
	// A mapping per queue.
	if _, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{EventSourceArn: aws.String(queueArn + "q"), FunctionName: aws.String("fn")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{EventSourceArn: aws.String(queueArn + "q"), FunctionName: aws.String("fn")})
	var conflict *types.ResourceConflictException
	if !errors.As(err, &conflict) {
		t.Errorf("second mapping on a queue: %v", err)
	}
}

// TestESMQueueSurvivesRestart stops the server while batches are in flight: the durable consumer
// picks up after the restart and no message is lost.
func TestESMQueueSurvivesRestart(t *testing.T) {
	data, dir := t.TempDir(), t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	natsListen := func(c *config.Config) { c.NATSListen = "127.0.0.1:0" }
	s := startServer(t, data, natsListen)
	c := newClient(s.URL())
	ctx := context.Background()
	createFunction(t, c, "worker", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: esmWorker}}),
		func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"DIR": dir}}
		})
	if status, out := postJSON(t, s.URL()+"/2015-03-31/event-source-mappings", map[string]any{
		"EventSourceArn": queueArn + "jobs", "FunctionName": "worker", "BatchSize": 5,
		"FunctionResponseTypes": []string{"ReportBatchItemFailures"}, "ScalingConfig": map[string]any{"MaximumConcurrency": 2},
		"VisibilityTimeoutSeconds": 0.2,
	}); status != http.StatusAccepted {
		t.Fatalf("CreateEventSourceMapping = %d %v", status, out)
	}
	nc, err := nats.Connect(s.NATSURL(), nats.Token(s.NATSToken()))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	const n = 200
	for i := range n {
		if _, err := js.Publish(ctx, "flint.queues.jobs", []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	nc.Close()
	waitFor(t, "some messages processed", time.Minute, func() bool { return len(okBodies(t, dir)) > 20 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := len(okBodies(t, dir))
	s = startServer(t, data, natsListen)
	waitFor(t, "every message processed after the restart", 2*time.Minute, func() bool { return len(okBodies(t, dir)) >= n })
	t.Logf("%d messages processed before the restart", before)
	ok := okBodies(t, dir)
	for i := range n {
		if ok[strconv.Itoa(i)] == "" {
			t.Errorf("message %d lost", i)
		}
	}
}

// stallWait lets a test's burst of async publishes wait for acks when the machine is slow,
// instead of failing after the client's default 200 ms with too many outstanding.
var stallWait = jetstream.WithStallWait(time.Minute)
