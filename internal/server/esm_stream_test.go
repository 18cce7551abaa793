package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// streamWorker appends "KEY DATA SEQ" for every record it handles to DIR/recs and each batch's
// size to DIR/batches (one write each, so concurrent environments do not interleave lines). A
// record whose data is "poison" fails: the handler stops there and reports it, as AWS's
// ReportBatchItemFailures example does.
const streamWorker = `import os, base64, time
D = os.environ['DIR']
def append(name, text):
    fd = os.open(os.path.join(D, name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, text.encode())
    os.close(fd)
def handler(event, context):
    out, fail = [], None
    for r in event['Records']:
        k = r['kinesis']
        assert r['eventSource'] == 'aws:kinesis' and r['eventID'].endswith(':' + k['sequenceNumber']), r
        assert r['eventSourceARN'].endswith(':stream/events'), r
        data = base64.b64decode(k['data']).decode()
        if data == 'poison':
            fail = k['sequenceNumber']
            break
        out.append('%s %s %s\n' % (k['partitionKey'], data, k['sequenceNumber']))
    append('recs', ''.join(out))
    append('batches', '%d\n' % len(event['Records']))
    time.sleep(float(os.environ.get('SLEEP', '0')))
    return {'batchItemFailures': [{'itemIdentifier': fail}] if fail else []}
`

// checkStreamOrder checks DIR/recs: every record of every key present, and each key's records
// first seen in publish order (a replay of a batch in flight at a restart repeats records already
// seen, which at-least-once delivery allows; it is counted, never a reorder).
func checkStreamOrder(t *testing.T, dir string, keys, perKey int) (dups int) {
	t.Helper()
	next := map[string]int{}
	seen := map[string]bool{}
	b, _ := os.ReadFile(filepath.Join(dir, "recs"))
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("bad record line %q", line)
		}
		key, data := f[0], f[1]
		if seen[data] {
			dups++
			continue
		}
		seen[data] = true
		want := fmt.Sprintf("%s/%d", key, next[key])
		if data != want {
			t.Fatalf("key %s: got record %s, want %s next (order broken or record lost)", key, data, want)
		}
		next[key]++
	}
	for k := range keys {
		if key := fmt.Sprintf("k%d", k); next[key] != perKey {
			t.Errorf("key %s: %d of %d records processed", key, next[key], perKey)
		}
	}
	return dups
}

// TestESMStream publishes 10,000 records over 20 partition keys with a plain NATS client, one of
// them poisoned, and restarts the server mid-stream: every other record reaches the function
// once in per-key order in batches of the configured size, and the poisoned one, isolated by
// bisection, ends in the on-failure destination after its retries.
func TestESMStream(t *testing.T) {
	data, dir := t.TempDir(), t.TempDir()
	opts := func(c *config.Config) { c.NATSListen = "127.0.0.1:0"; c.StreamRetryDelay = 20 * time.Millisecond }
	s := startServer(t, data, opts)
	c := newClient(s.URL())
	ctx := context.Background()
	createFunction(t, c, "reader", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: streamWorker}}),
		func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"DIR": dir, "SLEEP": "0.03"}}
		})
	const batch, lanes = 100, 4
	created, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{
		EventSourceArn: aws.String(streamArn + "events"), FunctionName: aws.String("reader"),
		StartingPosition: types.EventSourcePositionTrimHorizon, BatchSize: aws.Int32(batch),
		MaximumBatchingWindowInSeconds: aws.Int32(1), ParallelizationFactor: aws.Int32(lanes),
		FunctionResponseTypes:      []types.FunctionResponseType{types.FunctionResponseTypeReportBatchItemFailures},
		BisectBatchOnFunctionError: aws.Bool(true), MaximumRetryAttempts: aws.Int32(2),
		DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String(streamArn + "stream-dlq")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(created.State) != "Creating" || aws.ToInt32(created.BatchSize) != batch || aws.ToInt32(created.ParallelizationFactor) != lanes ||
		created.StartingPosition != types.EventSourcePositionTrimHorizon || aws.ToInt32(created.MaximumRecordAgeInSeconds) != -1 {
		t.Fatalf("CreateEventSourceMapping = %+v", created)
	}

	nc, err := nats.Connect(s.NATSURL(), nats.Token(s.NATSToken()))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	const keys, perKey = 20, 500
	var poisonSeq uint64
	for i := range perKey {
		for k := range keys {
			subject := fmt.Sprintf("flint.streams.events.k%d", k)
			if i == perKey/2 && k == 7 {
				ack, err := js.Publish(ctx, subject, []byte("poison"))
				if err != nil {
					t.Fatal(err)
				}
				poisonSeq = ack.Sequence
			}
			if _, err := js.PublishAsync(subject, fmt.Appendf(nil, "k%d/%d", k, i), stallWait); err != nil {
				t.Fatal(err)
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		t.Fatal("publishing did not complete")
	}
	nc.Close()

	processed := func() int { return len(readLines(t, filepath.Join(dir, "batches"))) }
	waitFor(t, "some batches", time.Minute, func() bool { return processed() >= 10 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := len(readLines(t, filepath.Join(dir, "recs"))) / 3
	s = startServer(t, data, opts)
	total := keys * perKey
	waitFor(t, "every record", 3*time.Minute, func() bool {
		unique := map[string]bool{}
		lines := readLines(t, filepath.Join(dir, "recs"))
		for i := 1; i < len(lines); i += 3 {
			unique[lines[i]] = true
		}
		return len(unique) >= total
	})
	dups := checkStreamOrder(t, dir, keys, perKey)
	t.Logf("%d records processed before the restart, %d replayed after it", before, dups)
	if dups > lanes*batch {
		t.Errorf("%d records replayed after the restart; at most the %d of the batches in flight may be", dups, lanes*batch)
	}

	var sizes []int
	full, inBatches := 0, 0
	for _, f := range readLines(t, filepath.Join(dir, "batches")) {
		n, _ := strconv.Atoi(f)
		sizes = append(sizes, n)
		if n > batch || n < 1 {
			t.Errorf("a batch of %d records (BatchSize %d)", n, batch)
		}
		inBatches += n
		if n == batch {
			full += n
		}
	}
	t.Logf("%d batches; %d of %d records delivered in full batches of %d", len(sizes), full, inBatches, batch)
	if full < inBatches*3/4 {
		t.Errorf("only %d of %d records came in full batches of %d: %v", full, inBatches, batch, sizes)
	}

	// The poisoned record, alone after bisection, went to the destination after 1 + 2 attempts.
	msg := nextMsg(t, must(jetstream.New(must(nats.Connect(s.NATSURL(), nats.Token(s.NATSToken()))))), "stream-dlq")
	var failure struct {
		RequestContext struct {
			Condition string `json:"condition"`
			Attempts  int    `json:"approximateInvokeCount"`
		} `json:"requestContext"`
	}
	if err := json.Unmarshal(msg.Data(), &failure); err != nil {
		t.Fatal(err)
	}
	var raw map[string]map[string]any
	_ = json.Unmarshal(msg.Data(), &raw)
	info := raw["KinesisBatchInfo"]
	seq := strconv.FormatUint(poisonSeq, 10)
	if failure.RequestContext.Condition != "RetryAttemptsExhausted" || failure.RequestContext.Attempts != 3 ||
		info["startSequenceNumber"] != seq || info["endSequenceNumber"] != seq || info["batchSize"] != 1.0 ||
		info["streamArn"] != streamArn+"events" || info["shardId"] != "shardId-000000000000" {
		t.Errorf("on-failure record = %s; want the poisoned record %s alone after 3 attempts", msg.Data(), seq)
	}
}

// TestESMStreamPositions checks LATEST and AT_TIMESTAMP: only records from the given moment on.
func TestESMStreamPositions(t *testing.T) {
	s := startServer(t, t.TempDir(), func(c *config.Config) { c.NATSListen = "127.0.0.1:0" })
	c := newClient(s.URL())
	ctx := context.Background()
	nc, err := nats.Connect(s.NATSURL(), nats.Token(s.NATSToken()))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	// Outside clients cannot create streams: a first (disabled) mapping makes it, so that
	// records can be published before the mappings under test exist.
	createFunction(t, c, "keeper", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: streamWorker}}),
		func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"DIR": t.TempDir()}}
		})
	if _, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{EventSourceArn: aws.String(streamArn + "events"),
		FunctionName: aws.String("keeper"), StartingPosition: types.EventSourcePositionLatest, Enabled: aws.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	publish := func(k, from, to int) {
		for i := from; i < to; i++ {
			if _, err := js.Publish(ctx, fmt.Sprintf("flint.streams.events.k%d", k), fmt.Appendf(nil, "k%d/%d", k, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(0, 0, 5) // before both mappings: neither sees these
	time.Sleep(20 * time.Millisecond)
	at := time.Now()
	time.Sleep(20 * time.Millisecond)
	publish(1, 0, 3) // after the timestamp, before LATEST's creation
	dirs := map[string]string{}
	for _, pos := range []types.EventSourcePosition{types.EventSourcePositionLatest, types.EventSourcePositionAtTimestamp} {
		name := "reader-" + strings.ToLower(strings.ReplaceAll(string(pos), "_", "-"))
		dirs[name] = t.TempDir()
		createFunction(t, c, name, "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: streamWorker}}),
			func(in *lambda.CreateFunctionInput) {
				in.Environment = &types.Environment{Variables: map[string]string{"DIR": dirs[name]}}
			})
		in := &lambda.CreateEventSourceMappingInput{EventSourceArn: aws.String(streamArn + "events"), FunctionName: aws.String(name), StartingPosition: pos}
		if pos == types.EventSourcePositionAtTimestamp {
			in.StartingPositionTimestamp = aws.Time(at)
		}
		if _, err := c.CreateEventSourceMapping(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	publish(2, 0, 4) // after both
	publish(9, 0, 1) // the end: with one lane (ParallelizationFactor 1) records arrive in stream order
	want := map[string][]string{"reader-latest": {"k2/0", "k2/1", "k2/2", "k2/3", "k9/0"},
		"reader-at-timestamp": {"k1/0", "k1/1", "k1/2", "k2/0", "k2/1", "k2/2", "k2/3", "k9/0"}}
	for name, w := range want {
		var got []string
		waitFor(t, name+" to reach the end record", time.Minute, func() bool {
			lines := readLines(t, filepath.Join(dirs[name], "recs"))
			got = got[:0]
			for i := 1; i < len(lines); i += 3 {
				got = append(got, lines[i])
			}
			return len(got) > 0 && got[len(got)-1] == "k9/0"
		})
		if strings.Join(got, ",") != strings.Join(w, ",") {
			t.Errorf("%s got %v, want %v", name, got, w)
		}
	}
}

// TestESMStreamRejectsBadInput covers the stream parameters' validation: AWS's errors, nothing
// created.
func TestESMStreamRejectsBadInput(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()
	createFunction(t, c, "fn", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: streamWorker}}))
	arn := aws.String(streamArn + "s")
	for _, tc := range []struct {
		name string
		in   lambda.CreateEventSourceMappingInput
		code string
	}{
		{"no starting position", lambda.CreateEventSourceMappingInput{}, "InvalidParameterValueException"},
		{"bad starting position", lambda.CreateEventSourceMappingInput{StartingPosition: "NOW"}, "ValidationException"},
		{"AT_TIMESTAMP without a timestamp", lambda.CreateEventSourceMappingInput{StartingPosition: types.EventSourcePositionAtTimestamp}, "InvalidParameterValueException"},
		{"parallelization 11", lambda.CreateEventSourceMappingInput{StartingPosition: types.EventSourcePositionLatest, ParallelizationFactor: aws.Int32(11)}, "ValidationException"},
		{"retries -2", lambda.CreateEventSourceMappingInput{StartingPosition: types.EventSourcePositionLatest, MaximumRetryAttempts: aws.Int32(-2)}, "ValidationException"},
		{"record age 30", lambda.CreateEventSourceMappingInput{StartingPosition: types.EventSourcePositionLatest, MaximumRecordAgeInSeconds: aws.Int32(30)}, "InvalidParameterValueException"},
		{"batch 10001", lambda.CreateEventSourceMappingInput{StartingPosition: types.EventSourcePositionLatest, BatchSize: aws.Int32(10001)}, "ValidationException"},
		{"queue-only scaling config", lambda.CreateEventSourceMappingInput{StartingPosition: types.EventSourcePositionLatest, ScalingConfig: &types.ScalingConfig{MaximumConcurrency: aws.Int32(5)}}, "InvalidParameterValueException"},
		{"bad destination", lambda.CreateEventSourceMappingInput{StartingPosition: types.EventSourcePositionLatest,
			DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String("arn:aws:sqs:us-east-1:000000000000:q")}}}, "InvalidParameterValueException"},
		{"missing function", lambda.CreateEventSourceMappingInput{StartingPosition: types.EventSourcePositionLatest, FunctionName: aws.String("nope")}, "InvalidParameterValueException"},
	} {
		in := tc.in
		in.EventSourceArn = arn
		if in.FunctionName == nil {
			in.FunctionName = aws.String("fn")
		}
		_, err := c.CreateEventSourceMapping(ctx, &in)
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tc.code {
			t.Errorf("%s: got %v, want %s", tc.name, err, tc.code)
		}
	}
	// Flint's own streams are neither event sources nor destinations.
	for _, src := range []string{streamArn + "FLINT_ASYNC", streamArn + "KV_flint_functions", queueArn + "FLINT_LOGS"} {
		_, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{EventSourceArn: aws.String(src),
			FunctionName: aws.String("fn"), StartingPosition: types.EventSourcePositionLatest})
		if apiErrorCode(err) != "InvalidParameterValueException" {
			t.Errorf("mapping from %s: %v", src, err)
		}
	}
	if _, err := c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("fn"),
		DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String(streamArn + "KV_flint_functions")}}}); apiErrorCode(err) != "InvalidParameterValueException" {
		t.Errorf("destination KV_flint_functions: %v", err)
	}
	// Stream-only parameters on a queue mapping.
	_, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{EventSourceArn: aws.String(queueArn + "q"),
		FunctionName: aws.String("fn"), StartingPosition: types.EventSourcePositionLatest})
	var invalid *types.InvalidParameterValueException
	if !errors.As(err, &invalid) || !strings.Contains(aws.ToString(invalid.Message), "Unsupported StartingPosition") {
		t.Errorf("StartingPosition on a queue: %v", err)
	}
	list, err := c.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{})
	if err != nil || len(list.EventSourceMappings) != 0 {
		t.Fatalf("after rejections: %+v, %v", list, err)
	}
	// One mapping per stream and function; another function may map the same stream.
	in := &lambda.CreateEventSourceMappingInput{EventSourceArn: arn, FunctionName: aws.String("fn"), StartingPosition: types.EventSourcePositionLatest}
	if _, err := c.CreateEventSourceMapping(ctx, in); err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateEventSourceMapping(ctx, in)
	var conflict *types.ResourceConflictException
	if !errors.As(err, &conflict) {
		t.Errorf("second mapping of fn on the stream: %v", err)
	}
}
