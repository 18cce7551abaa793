package esm

import (
	"log/slog"
	"testing"

	"github.com/flint-run/flint/internal/lambda"
)

func TestQueueName(t *testing.T) {
	for _, tc := range []struct {
		arn, want string
		ok        bool
	}{
		{"arn:flint:jetstream:us-east-1:000000000000:queue/jobs", "jobs", true},
		{"arn:flint:jetstream:::queue/a_b-1", "a_b-1", true},
		{"arn:flint:jetstream:us-east-1:000000000000:stream/jobs", "", false},
		{"arn:aws:sqs:us-east-1:000000000000:jobs", "", false},
		{"arn:flint:jetstream:us-east-1:000000000000:queue/a.b", "", false},
		{"arn:flint:jetstream:us-east-1:000000000000:queue/FLINT_ASYNC", "", false}, // Flint's own
		{"arn:flint:jetstream:us-east-1:000000000000:queue/KV_flint_functions", "", false},
	} {
		got, err := QueueName(tc.arn)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("QueueName(%q) = %q, %v; want %q, ok %v", tc.arn, got, err, tc.want, tc.ok)
		}
	}
}

func TestFailures(t *testing.T) {
	p := &poller{es: lambda.EventSourceMapping{FunctionResponseTypes: []string{"ReportBatchItemFailures"}}, log: slog.New(slog.DiscardHandler)}
	items := []item{{id: "a"}, {id: "b"}}
	for _, tc := range []struct {
		payload string
		failed  []string
		ok      bool
	}{
		{``, nil, true},
		{`null`, nil, true},
		{`{}`, nil, true},
		{`{"batchItemFailures":[]}`, nil, true},
		{`{"batchItemFailures":[{"itemIdentifier":"b"}]}`, []string{"b"}, true},
		{`{"batchItemFailures":[{"itemIdentifier":"zzz"}]}`, nil, false},
		{`{"batchItemFailures":[{"itemIdentifier":""}]}`, nil, false},
		{`{"batchItemFailures":[{"id":"a"}]}`, nil, false},
	} {
		failed, ok := p.failures(items, []byte(tc.payload))
		if ok != tc.ok || len(failed) != len(tc.failed) {
			t.Errorf("failures(%s) = %v, %v; want %v, %v", tc.payload, failed, ok, tc.failed, tc.ok)
		}
		for _, id := range tc.failed {
			if !failed[id] {
				t.Errorf("failures(%s): %s not failed", tc.payload, id)
			}
		}
	}
}

func TestCheckpointResume(t *testing.T) {
	for _, tc := range []struct {
		cp   checkpoint
		want uint64
	}{
		{checkpoint{}, 1},
		{checkpoint{Start: 42}, 42},                              // LATEST fixed at creation, no lane yet
		{checkpoint{Start: 42, Lanes: []uint64{0, 0}}, 42},       // lanes that did nothing start there
		{checkpoint{Start: 1, Lanes: []uint64{90, 70, 120}}, 71}, // the slowest lane
		{checkpoint{Start: 50, Lanes: []uint64{90, 0}}, 50},      // an idle lane keeps the start
	} {
		if got := tc.cp.resume(); got != tc.want {
			t.Errorf("%+v.resume() = %d, want %d", tc.cp, got, tc.want)
		}
	}
	// Every record of a key on one lane.
	for _, key := range []string{"a", "k7", "x.y.z"} {
		if laneOf(key, 4) != laneOf(key, 4) || laneOf(key, 1) != 0 {
			t.Errorf("laneOf(%q) unstable", key)
		}
	}
}

func TestReservedStreams(t *testing.T) {
	for _, name := range []string{"FLINT_ASYNC", "FLINT_LOGS", "KV_flint_functions", "OBJ_flint_code"} {
		arn := "arn:flint:jetstream:us-east-1:000000000000:stream/" + name
		if _, ok := StreamName(arn); ok || ValidFailureDestination(arn) {
			t.Errorf("%s accepted as a stream", arn)
		}
	}
	if _, ok := StreamName("arn:flint:jetstream:us-east-1:000000000000:stream/flint_async"); !ok {
		t.Error("a user stream refused")
	}
}

// TestLaneBuffer checks that read-ahead is two batches for a few lanes and bounded in total for
// the many lanes of a Kinesis stream with many shards.
func TestLaneBuffer(t *testing.T) {
	for _, tc := range []struct{ batch, lanes, want int }{
		{100, 1, 200}, {10000, 10, 20000}, {10000, 4, 20000}, {10000, 5000, 40}, {100, 20000, 16},
	} {
		if got := laneBuffer(tc.batch, tc.lanes); got != tc.want {
			t.Errorf("laneBuffer(%d, %d) = %d, want %d", tc.batch, tc.lanes, got, tc.want)
		}
		if total := laneBuffer(tc.batch, tc.lanes) * tc.lanes; total > 400000 {
			t.Errorf("laneBuffer(%d, %d): %d records buffered in all", tc.batch, tc.lanes, total)
		}
	}
}
