package server_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// scaleWorker records one "BODY MESSAGEID RECEIVECOUNT" line per message it handles in DIR/ok
// and the messageId of each failure in DIR/failed. Bodies that are multiples of 10 fail on
// their first receive.
const scaleWorker = `import os
D = os.environ['DIR']
def handler(event, context):
    fails, ok = [], []
    for r in event['Records']:
        b, rc = r['body'], int(r['attributes']['ApproximateReceiveCount'])
        if int(b) % 10 == 0 and rc == 1:
            fails.append(r['messageId'])
        else:
            ok.append('%s %s %d\n' % (b, r['messageId'], rc))
    with open(os.path.join(D, 'ok'), 'a') as f:
        f.write(''.join(ok))
    if fails:
        with open(os.path.join(D, 'failed'), 'a') as f:
            f.write(''.join(x + '\n' for x in fails))
    return {'batchItemFailures': [{'itemIdentifier': x} for x in fails]}
`

// TestSQSMappingScaleRestart: 5,000 messages sent with SendMessageBatch to a queue mapped to a
// function (BatchSize 10, ReportBatchItemFailures), a tenth of them failing once, and the
// server stopped and started again on its data while batches are in flight. Every message is
// processed, each failed one retried with its messageId, duplicates stay within what
// at-least-once allows across a stop (the batches in flight at it), and the queue is empty
// after: nothing visible, in flight or delayed.
func TestSQSMappingScaleRestart(t *testing.T) {
	const n, conc = 5000, 4
	data, dir := t.TempDir(), t.TempDir()
	start := time.Now()
	s := startServer(t, data)
	c := newClient(s.URL())
	q := newSQS(s.URL())
	ctx := context.Background()
	url := createQueue(t, q, "scale", map[string]string{"VisibilityTimeout": "1"})
	createFunction(t, c, "scale-worker", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: scaleWorker}}),
		func(in *lambda.CreateFunctionInput) {
			in.Environment = &lambdatypes.Environment{Variables: map[string]string{"DIR": dir}}
		})
	m, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("scale-worker"),
		EventSourceArn: aws.String("arn:aws:sqs:us-east-1:000000000000:scale"), BatchSize: aws.Int32(10),
		FunctionResponseTypes: []lambdatypes.FunctionResponseType{"ReportBatchItemFailures"},
		ScalingConfig:         &lambdatypes.ScalingConfig{MaximumConcurrency: aws.Int32(conc)}})
	if err != nil {
		t.Fatal(err)
	}

	// Four senders, as a producer fleet would: 500 SendMessageBatch calls of 10.
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := w; b < n/10; b += 4 {
				entries := make([]types.SendMessageBatchRequestEntry, 0, 10)
				for i := b * 10; i < b*10+10; i++ {
					entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint("m", i)), MessageBody: aws.String(strconv.Itoa(i))})
				}
				out, err := q.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
				if err == nil && len(out.Failed) != 0 {
					err = fmt.Errorf("%d entries failed: %+v", len(out.Failed), out.Failed[0])
				}
				if err != nil {
					errs <- fmt.Errorf("SendMessageBatch %d: %w", b, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d messages sent in %v", n, time.Since(t0))

	// Stop the server mid-stream: the mapping is running batches.
	okLines := func() int { return strings.Count(readFile(t, filepath.Join(dir, "ok")), "\n") }
	waitFor(t, "a third of the messages processed, batches in flight", 2*time.Minute, func() bool {
		_, inflight, _ := queueCounts(t, q, url)
		return okLines() >= n/3 && inflight > 0
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := okLines()
	if before >= n {
		t.Fatalf("all %d messages were processed before the restart: it was not in the middle", before)
	}
	t1 := time.Now()
	s = startServer(t, data)
	c, q = newClient(s.URL()), newSQS(s.URL())
	t.Logf("%d messages processed before the restart (%v after the first send); restarted in %v", before, t1.Sub(t0), time.Since(t1))
	if got, err := c.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: m.UUID}); err != nil || aws.ToString(got.State) != "Enabled" {
		t.Fatalf("mapping after the restart: %v %v", got, err)
	}

	waitFor(t, "every message processed after the restart", 3*time.Minute, func() bool { return len(okBodies(t, dir)) >= n })
	waitFor(t, "queue empty", time.Minute, func() bool {
		v, inflight, delayed := queueCounts(t, q, url)
		return v+inflight+delayed == 0
	})
	total := time.Since(t0)

	// Every message processed with the messageId it was sent with; each tenth failed first.
	failed := map[string]int{}
	for _, id := range readLines(t, filepath.Join(dir, "failed")) {
		failed[id]++
	}
	seen := map[string]int{}
	ids := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(readFile(t, filepath.Join(dir, "ok"))), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("ok line %q", line)
		}
		seen[f[0]]++
		if prev, ok := ids[f[0]]; ok && prev != f[1] {
			t.Errorf("message %s processed as %s and as %s", f[0], prev, f[1])
		}
		ids[f[0]] = f[1]
	}
	dups, retried := 0, 0
	for i := range n {
		b := strconv.Itoa(i)
		switch {
		case seen[b] == 0:
			t.Errorf("message %d never processed", i)
		case i%10 == 0 && failed[ids[b]] == 0:
			t.Errorf("message %d (%s) was not failed once and retried with its messageId (first seen with ApproximateReceiveCount > 1?)", i, ids[b])
		}
		if i%10 == 0 && failed[ids[b]] > 0 && seen[b] > 0 {
			retried++
		}
		dups += max(seen[b]-1, 0)
	}
	// At least once: a message is processed twice only when its batch was running as the server
	// stopped (conc batches of 10 at most), or when a failed message's report was lost with it.
	if dups > conc*10 {
		t.Errorf("%d duplicate deliveries; at most %d (the batches in flight at the stop) are allowed", dups, conc*10)
	}
	if len(failed) < n/10 {
		t.Errorf("%d messages reported failed, want %d", len(failed), n/10)
	}
	t.Logf("%d messages: all processed in %v (test %v); %d failed once and retried; %d duplicate deliveries across the restart",
		n, total, time.Since(start), retried, dups)
}
