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
