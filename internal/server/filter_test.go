package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// bodyRecorder appends each SQS record's body to DIR/bodies, one per line.
const bodyRecorder = `import os
def handler(event, context):
    with open(os.path.join(os.environ['DIR'], 'bodies'), 'a') as f:
        for r in event['Records']:
            f.write(r['body'] + '\n')
`

// TestSQSMappingFilterCriteria: a mapping's FilterCriteria decide which messages reach the
// function (JSON bodies by their fields, plain ones as strings); the others are deleted from
// the queue without running it, as on Lambda. Invalid criteria are refused with Lambda's error
// and create nothing; FilterCriteria {} removes filtering.
func TestSQSMappingFilterCriteria(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	q := newSQS(s.URL())
	ctx := context.Background()
	dir := t.TempDir()
	url := createQueue(t, q, "filtered", map[string]string{"VisibilityTimeout": "5"})
	createFunction(t, c, "picky", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: bodyRecorder}}),
		func(in *lambda.CreateFunctionInput) {
			in.Environment = &lambdatypes.Environment{Variables: map[string]string{"DIR": dir}}
		})
	const arn = "arn:aws:sqs:us-east-1:000000000000:filtered"
	filters := func(patterns ...string) *lambdatypes.FilterCriteria {
		fc := &lambdatypes.FilterCriteria{}
		for _, p := range patterns {
			fc.Filters = append(fc.Filters, lambdatypes.Filter{Pattern: aws.String(p)})
		}
		return fc
	}
	for _, bad := range []*lambdatypes.FilterCriteria{
		filters(`{"body": {"kind": "keep"}}`), // a rule must be an array
		filters(`not json`),
		filters(`{"body": [{"numeric": ["<", 1, ">", 5]}]}`),
		filters(`{"a":["1"]}`, `{"a":["2"]}`, `{"a":["3"]}`, `{"a":["4"]}`, `{"a":["5"]}`, `{"a":["6"]}`),
	} {
		_, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{EventSourceArn: aws.String(arn),
			FunctionName: aws.String("picky"), FilterCriteria: bad})
		wantCode(t, err, "InvalidParameterValueException")
	}
	if out, err := c.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{}); err != nil || len(out.EventSourceMappings) != 0 {
		t.Fatalf("after refused creates: %d mappings, %v", len(out.EventSourceMappings), err)
	}

	m, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{EventSourceArn: aws.String(arn),
		FunctionName: aws.String("picky"), FilterCriteria: filters(`{"body": {"kind": ["keep"], "n": [{"numeric": [">", 0]}]}}`,
			`{"body": [{"prefix": "plain-keep"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.FilterCriteria; got == nil || len(got.Filters) != 2 || !strings.Contains(aws.ToString(got.Filters[1].Pattern), "plain-keep") {
		t.Fatalf("CreateEventSourceMapping answered FilterCriteria %+v", got)
	}
	for _, body := range []string{`{"kind": "keep", "n": 1}`, `{"kind": "drop", "n": 2}`, `plain-keep-3`, `plain-drop-4`,
		`{"kind": "keep", "n": -5}`, `{"kind": "keep", "n": 6}`, `{"kind": ["keep", "x"], "n": 7}`} {
		if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{`plain-keep-3`, `{"kind": "keep", "n": 1}`, `{"kind": "keep", "n": 6}`, `{"kind": ["keep", "x"], "n": 7}`}
	slices.Sort(want)
	var got []string
	waitFor(t, "the matching messages to reach the function and the others to be deleted", 30*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "bodies"))
		got = strings.Split(strings.TrimSpace(string(b)), "\n")
		slices.Sort(got)
		visible, inflight, delayed := queueCounts(t, q, url)
		return len(got) >= len(want) && visible+inflight+delayed == 0
	})
	if !slices.Equal(got, want) {
		t.Fatalf("the function got %q, want %q", got, want)
	}

	// FilterCriteria {} removes filtering.
	up, err := c.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: m.UUID, FilterCriteria: &lambdatypes.FilterCriteria{}})
	if err != nil {
		t.Fatal(err)
	}
	if up.FilterCriteria != nil && len(up.FilterCriteria.Filters) != 0 {
		t.Fatalf("after FilterCriteria {}: %+v", up.FilterCriteria)
	}
	// As on Lambda, the update applies once the mapping is Enabled again: until then the poller
	// with the old filters may still take (and drop) a message.
	waitFor(t, "the update to apply (State Enabled)", 10*time.Second, func() bool {
		got, err := c.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: m.UUID})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(got.State) == "Enabled"
	})
	if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("plain-drop-8")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "an unfiltered message to reach the function", 30*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "bodies"))
		return strings.Contains(string(b), "plain-drop-8\n")
	})
}

// TestKinesisMappingFilterCriteria: a stream mapping's FilterCriteria match the records' data
// (JSON, decoded from base64 as Lambda does); the others, and data that is not JSON, are
// skipped.
func TestKinesisMappingFilterCriteria(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	kc := newKinesisClient(s.URL())
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("events"), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	createFunction(t, c, "orders", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: kinesisWorker}}),
		func(in *lambda.CreateFunctionInput) {
			in.Environment = &lambdatypes.Environment{Variables: map[string]string{"DIR": dir}}
		})
	var recs []ktypes.PutRecordsRequestEntry
	var want []string
	for i := range 40 {
		typ := []string{"buy", "sell"}[i%2]
		data := fmt.Sprintf(`{"order": {"type": %q, "n": %d}}`, typ, i)
		recs = append(recs, ktypes.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("k%d", i%5)), Data: []byte(data)})
		if typ == "buy" && i >= 10 {
			want = append(want, data)
		}
	}
	recs = append(recs, ktypes.PutRecordsRequestEntry{PartitionKey: aws.String("k0"), Data: []byte("not json")})
	if out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("events"), Records: recs}); err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("PutRecords: %v", err)
	}
	if _, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{
		EventSourceArn: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/events"), FunctionName: aws.String("orders"),
		StartingPosition: lambdatypes.EventSourcePositionTrimHorizon, BatchSize: aws.Int32(7),
		FilterCriteria: &lambdatypes.FilterCriteria{Filters: []lambdatypes.Filter{
			{Pattern: aws.String(`{"data": {"order": {"type": ["buy"], "n": [{"numeric": [">=", 10]}]}}}`)}}},
	}); err != nil {
		t.Fatal(err)
	}
	read := func() []string {
		b, _ := os.ReadFile(filepath.Join(dir, "recs"))
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if f := strings.SplitN(line, " ", 2); len(f) == 2 {
				got = append(got, strings.Join(strings.Fields(f[1])[:len(strings.Fields(f[1]))-2], " "))
			}
		}
		slices.Sort(got)
		return got
	}
	slices.Sort(want)
	waitFor(t, "the matching records", 30*time.Second, func() bool { return len(read()) >= len(want) })
	time.Sleep(300 * time.Millisecond) // anything else would have come with them
	if got := read(); !slices.Equal(got, want) {
		t.Fatalf("the function got %q, want %q", got, want)
	}
}
