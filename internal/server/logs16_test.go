package server_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/nats-io/nats.go/jetstream"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/server"
)

// customStreamRE is a stream of a custom log group, as Lambda names them:
// YYYY/MM/DD/<function_name>[<function_version>][<execution_environment_GUID>].
var customStreamRE = regexp.MustCompile(`^\d{4}/\d{2}/\d{2}/(cg-[ab])\[\$LATEST\]\[[0-9a-f]{32}\]$`)

// TestCustomLogGroups: functions whose LoggingConfig.LogGroup names one custom group have their
// records served under that group, all of them, each function's in its own streams, and none
// under /aws/lambda/NAME; retention and deletion of the custom group act on its records only.
func TestCustomLogGroups(t *testing.T) {
	s := startServer(t, t.TempDir())
	e := &logsEnv{s: s, c: newClient(s.URL()), cw: newLogsClient(s.URL(), "AKIDFLINTTEST", "secret")}
	ctx := context.Background()
	const shared = "/shared/app"
	inShared := func(in *lambda.CreateFunctionInput) {
		in.LoggingConfig = &types.LoggingConfig{LogFormat: types.LogFormatText, LogGroup: aws.String(shared)}
	}
	told := map[string]string{} // function → the stream it was told (context.log_stream_name)
	for _, fn := range []string{"cg-a", "cg-b"} {
		createFunction(t, e.c, fn, "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: printer}}), inShared)
		out := invoke(t, e.c, fn, `{"lines":["hello from `+fn+`"]}`)
		var res struct{ Stream string }
		if out.FunctionError != nil || json.Unmarshal(out.Payload, &res) != nil {
			t.Fatalf("invoke %s: %s", fn, out.Payload)
		}
		told[fn] = res.Stream
	}
	e.fn(t, "cg-own", `{"lines":["hello from cg-own"]}`)

	filter := func(group string, mutate ...func(*cloudwatchlogs.FilterLogEventsInput)) ([]cwtypes.FilteredLogEvent, error) {
		in := &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group)}
		for _, m := range mutate {
			m(in)
		}
		var all []cwtypes.FilteredLogEvent
		for p := cloudwatchlogs.NewFilterLogEventsPaginator(e.cw, in); p.HasMorePages(); {
			out, err := p.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			all = append(all, out.Events...)
		}
		return all, nil
	}
	reports := func(group string) int {
		evs, err := filter(group, func(in *cloudwatchlogs.FilterLogEventsInput) { in.FilterPattern = aws.String("REPORT") })
		if err != nil {
			return -1
		}
		return len(evs)
	}
	waitFor(t, "both functions' records in "+shared, 20*time.Second, func() bool { return reports(shared) == 2 })
	e.waitEvents(t, "cg-own", "REPORT", 1)

	t.Run("served under the custom group", func(t *testing.T) {
		groups, err := e.cw.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String("/shared/")})
		if err != nil || len(groups.LogGroups) != 1 || aws.ToString(groups.LogGroups[0].LogGroupName) != shared ||
			aws.ToString(groups.LogGroups[0].LogGroupArn) != "arn:aws:logs:us-east-1:000000000000:log-group:"+shared {
			t.Errorf("DescribeLogGroups /shared/ = %+v, %v; want %s", groups, err, shared)
		}
		groups, err = e.cw.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String("/aws/lambda/cg-")})
		var names []string
		for _, g := range groups.LogGroups {
			names = append(names, aws.ToString(g.LogGroupName))
		}
		if err != nil || !slices.Equal(names, []string{"/aws/lambda/cg-own"}) {
			t.Errorf("groups /aws/lambda/cg-* = %q, %v; want only cg-own's (the others log to %s)", names, err, shared)
		}
		for _, fn := range []string{"cg-a", "cg-b"} {
			_, err := e.cw.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/" + fn)})
			var nf *cwtypes.ResourceNotFoundException
			if !errors.As(err, &nf) {
				t.Errorf("FilterLogEvents /aws/lambda/%s: %v, want ResourceNotFoundException", fn, err)
			}
		}

		streams, err := e.cw.DescribeLogStreams(ctx, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String(shared)})
		if err != nil || len(streams.LogStreams) != 2 {
			t.Fatalf("DescribeLogStreams %s = %+v, %v; want a stream per function", shared, streams, err)
		}
		for _, st := range streams.LogStreams {
			name := aws.ToString(st.LogStreamName)
			m := customStreamRE.FindStringSubmatch(name)
			if m == nil {
				t.Errorf("stream %q, want YYYY/MM/DD/NAME[$LATEST][<32 hex>]", name)
				continue
			}
			if told[m[1]] != name {
				t.Errorf("%s was told stream %q; the group has %q", m[1], told[m[1]], name)
			}
			got, err := e.cw.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(shared), LogStreamName: st.LogStreamName, StartFromHead: aws.Bool(true)})
			if err != nil {
				t.Fatalf("GetLogEvents %s: %v", name, err)
			}
			msgs := messages(got.Events, outputMsg)
			if len(msgs) != 4 || !strings.HasPrefix(msgs[0], "START RequestId: ") || msgs[1] != "hello from "+m[1] || !strings.HasPrefix(msgs[3], "REPORT RequestId: ") {
				t.Errorf("GetLogEvents %s = %q, want START, %s's line, END, REPORT", name, msgs, m[1])
			}
		}
		evs, err := filter(shared, func(in *cloudwatchlogs.FilterLogEventsInput) { in.FilterPattern = aws.String(`"hello from"`) })
		if got := messages(evs, filteredMsg); err != nil || len(got) != 2 || slices.Contains(got, "hello from cg-own") {
			t.Errorf("FilterLogEvents %s \"hello from\" = %q, %v; want cg-a's and cg-b's lines", shared, got, err)
		}
	})

	t.Run("AWSCLI tail", func(t *testing.T) {
		awsCLI := requireAWSCLI(t)
		out := string(runCLI(t, awsCLI, s.URL(), "AKIDFLINTTEST", "secret", "logs", "tail", shared, "--since", "1h", "--format", "short"))
		if !strings.Contains(out, "hello from cg-a") || !strings.Contains(out, "hello from cg-b") || strings.Contains(out, "cg-own") {
			t.Errorf("aws logs tail %s printed:\n%s", shared, out)
		}
	})

	t.Run("retention and deletion act on the custom group only", func(t *testing.T) {
		server.SetLogClock(s, func() time.Time { return time.Now().Add(48 * time.Hour) })
		defer server.SetLogClock(s, nil)
		if _, err := e.cw.PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String(shared), RetentionInDays: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
		if n := reports(shared); n != 0 {
			t.Errorf("%s after a 1-day retention two days on: %d reports, want none", shared, n)
		}
		if n := sharedRecords(t, s); n != 0 {
			t.Errorf("JetStream still holds %d records of %s past its retention", n, shared)
		}
		if n := storedRecords(t, s, "cg-own"); n != 1 {
			t.Errorf("cg-own's records after %s's retention: %d, want 1", shared, n)
		}
		groups, err := e.cw.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{})
		for _, g := range groups.LogGroups {
			switch name := aws.ToString(g.LogGroupName); {
			case name == shared && aws.ToInt32(g.RetentionInDays) != 1:
				t.Errorf("%s's retention = %v, want 1", name, g.RetentionInDays)
			case name != shared && g.RetentionInDays != nil:
				t.Errorf("%s took a retention: %d", name, aws.ToInt32(g.RetentionInDays))
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		server.SetLogClock(s, nil)

		e.invoke(t, "cg-b", `{"lines":["after the retention"]}`)
		waitFor(t, "cg-b's new record in "+shared, 20*time.Second, func() bool { return reports(shared) == 1 })
		if _, err := e.cw.DeleteLogGroup(ctx, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String(shared)}); err != nil {
			t.Fatal(err)
		}
		_, err = e.cw.DescribeLogStreams(ctx, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String(shared)})
		var nf *cwtypes.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Errorf("DescribeLogStreams %s after DeleteLogGroup: %v, want ResourceNotFoundException", shared, err)
		}
		if n := sharedRecords(t, s); n != 0 {
			t.Errorf("JetStream still holds %d records of the deleted %s", n, shared)
		}
		if n := storedRecords(t, s, "cg-own"); n != 1 {
			t.Errorf("cg-own's records after deleting %s: %d, want 1", shared, n)
		}
	})
}

// sharedRecords counts the records of functions' custom log groups in JetStream's FLINT_LOGS.
func sharedRecords(t *testing.T, s *server.Server) uint64 {
	t.Helper()
	st, err := s.JetStream().Stream(context.Background(), "FLINT_LOGS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter("flint.logs.*.*"))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

// TestThrottleSpan: with OTLP export on, an invocation refused with TooManyRequestsException
// has its "invoke" span in the caller's trace, with an error status and the throttle's reason.
func TestThrottleSpan(t *testing.T) {
	recv := startReceiver(t)
	s := startServer(t, t.TempDir(), func(c *config.Config) { c.OTLPEndpoint = recv.url })
	c := newClient(s.URL())
	ctx := context.Background()
	createFunction(t, c, "throttled", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: printer}}))
	if _, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("throttled"),
		ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	const h = "Root=1-5759e988-bd862e3fe1be46a994272795;Parent=53995c3f42cd8ad8;Sampled=1"
	_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("throttled"), Payload: []byte(`{}`)}, withTraceHeader(h))
	var tmr *types.TooManyRequestsException
	if !errors.As(err, &tmr) || tmr.Reason != types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded {
		t.Fatalf("invoke at reserved concurrency 0: %v, want TooManyRequestsException", err)
	}
	var spans []*tracepb.Span
	waitFor(t, "the throttled invocation's span", 20*time.Second, func() bool {
		spans = recv.trace("5759e988bd862e3fe1be46a994272795")
		return len(spans) > 0
	})
	sp := spans[0]
	attrs := map[string]string{}
	for _, kv := range sp.GetAttributes() {
		attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	if len(spans) != 1 || sp.GetName() != "invoke" || sp.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR ||
		!strings.Contains(sp.GetStatus().GetMessage(), "ReservedFunctionConcurrentInvocationLimitExceeded") ||
		attrs["flint.throttle_reason"] != "ReservedFunctionConcurrentInvocationLimitExceeded" || attrs["faas.name"] != "throttled" ||
		hex.EncodeToString(sp.GetParentSpanId()) != "53995c3f42cd8ad8" {
		t.Errorf("spans %v: want one invoke span, child of the caller's, with an error status and the reason", spans)
	}
}
