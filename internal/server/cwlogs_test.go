package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/server"
)

// printer prints what the event asks: text lines, then JSON documents one per line.
const printer = `import json
def handler(event, context):
    for line in event.get("lines", []):
        print(line)
    for doc in event.get("json", []):
        print(json.dumps(doc))
    return {"stream": context.log_stream_name}
`

var streamNameRE = regexp.MustCompile(`^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$`)

// logsEnv is the one server the CloudWatch Logs tests share, with its clients.
type logsEnv struct {
	s  *server.Server
	c  *lambda.Client
	cw *cloudwatchlogs.Client
}

func newLogsClient(url, id, secret string) *cloudwatchlogs.Client {
	return cloudwatchlogs.New(cloudwatchlogs.Options{Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""), RetryMaxAttempts: 1})
}

// fn creates a Python printer function and invokes it with each event in turn.
func (e *logsEnv) fn(t *testing.T, name string, events ...string) {
	t.Helper()
	createFunction(t, e.c, name, "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: printer}}))
	for _, ev := range events {
		e.invoke(t, name, ev)
	}
}

func (e *logsEnv) invoke(t *testing.T, name, payload string) {
	t.Helper()
	if out := invoke(t, e.c, name, payload); out.FunctionError != nil {
		t.Fatalf("invoke %s: %s", name, out.Payload)
	}
}

// filter returns every event FilterLogEvents finds in NAME's group with in's settings, all pages.
func (e *logsEnv) filter(t *testing.T, name string, mutate ...func(*cloudwatchlogs.FilterLogEventsInput)) []cwtypes.FilteredLogEvent {
	t.Helper()
	in := &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/" + name)}
	for _, m := range mutate {
		m(in)
	}
	var all []cwtypes.FilteredLogEvent
	p := cloudwatchlogs.NewFilterLogEventsPaginator(e.cw, in)
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("FilterLogEvents %s: %v", name, err)
		}
		all = append(all, out.Events...)
	}
	return all
}

// waitEvents waits until NAME's group holds at least n events starting with prefix.
func (e *logsEnv) waitEvents(t *testing.T, name, prefix string, n int) []cwtypes.FilteredLogEvent {
	t.Helper()
	var got []cwtypes.FilteredLogEvent
	waitFor(t, fmt.Sprintf("%d %q events of %s", n, prefix, name), 20*time.Second, func() bool {
		_, err := e.cw.DescribeLogStreams(context.Background(), &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String("/aws/lambda/" + name)})
		if err != nil {
			return false
		}
		got = nil
		for _, ev := range e.filter(t, name) {
			if strings.HasPrefix(aws.ToString(ev.Message), prefix) {
				got = append(got, ev)
			}
		}
		return len(got) >= n
	})
	return got
}

func messages[T any](evs []T, msg func(T) *string) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, strings.TrimSuffix(aws.ToString(msg(e)), "\n"))
	}
	return out
}

func filteredMsg(e cwtypes.FilteredLogEvent) *string { return e.Message }
func outputMsg(e cwtypes.OutputLogEvent) *string     { return e.Message }

// TestCloudWatchLogs runs the CloudWatch Logs API against one real server with the real
// aws-sdk-go-v2 client and the AWS CLI v2 (/usr/bin/aws), unmodified.
func TestCloudWatchLogs(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	e := &logsEnv{s: s, c: newClient(s.URL()), cw: newLogsClient(s.URL(), "AKIDFLINTTEST", "secret")}
	ctx := context.Background()

	t.Run("StreamPerEnvironment", func(t *testing.T) {
		e.fn(t, "cw-envs", `{"lines":["first"]}`, `{"lines":["second"]}`)
		if n := s.Workers().Reap(time.Now().Add(24 * time.Hour)); n != 1 {
			t.Fatalf("reaped %d environments, want 1", n)
		}
		// The stream is the one the function is told (context.log_stream_name).
		var told struct{ Stream string }
		if out := invoke(t, e.c, "cw-envs", `{"lines":["third"]}`); out.FunctionError != nil || json.Unmarshal(out.Payload, &told) != nil {
			t.Fatalf("invoke: %s", out.Payload)
		}
		e.waitEvents(t, "cw-envs", "START RequestId: ", 3)
		out, err := e.cw.DescribeLogStreams(ctx, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String("/aws/lambda/cw-envs")})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.LogStreams) != 2 {
			t.Fatalf("streams = %d, want 2 (one per environment)", len(out.LogStreams))
		}
		if !slices.ContainsFunc(out.LogStreams, func(st cwtypes.LogStream) bool { return aws.ToString(st.LogStreamName) == told.Stream }) {
			t.Errorf("the function was told stream %q; the streams are %v", told.Stream, out.LogStreams)
		}
		perStream := map[string][]string{}
		for _, st := range out.LogStreams {
			name := aws.ToString(st.LogStreamName)
			if !streamNameRE.MatchString(name) {
				t.Errorf("stream name %q, want YYYY/MM/DD/[$LATEST]<32 hex>", name)
			}
			for _, ev := range e.filter(t, "cw-envs", func(in *cloudwatchlogs.FilterLogEventsInput) { in.LogStreamNames = []string{name} }) {
				if m := aws.ToString(ev.Message); !strings.HasPrefix(m, "START") && !strings.HasPrefix(m, "END") && !strings.HasPrefix(m, "REPORT") {
					perStream[name] = append(perStream[name], strings.TrimSpace(m))
				}
				if aws.ToInt64(ev.Timestamp) > aws.ToInt64(ev.IngestionTime) || aws.ToInt64(ev.Timestamp) == 0 {
					t.Errorf("event %q: timestamp %d after its ingestion %d", aws.ToString(ev.Message), aws.ToInt64(ev.Timestamp), aws.ToInt64(ev.IngestionTime))
				}
			}
		}
		got := [][]string{}
		for _, st := range out.LogStreams {
			got = append(got, perStream[aws.ToString(st.LogStreamName)])
		}
		slices.SortFunc(got, func(a, b []string) int { return len(b) - len(a) })
		if fmt.Sprint(got) != "[[first second] [third]]" {
			t.Errorf("function lines per stream = %v, want [[first second] [third]]", got)
		}
		groups, err := e.cw.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String("/aws/lambda/cw-envs")})
		if err != nil || len(groups.LogGroups) != 1 || aws.ToString(groups.LogGroups[0].LogGroupName) != "/aws/lambda/cw-envs" ||
			!strings.HasPrefix(aws.ToString(groups.LogGroups[0].Arn), "arn:aws:logs:us-east-1:") {
			t.Errorf("DescribeLogGroups = %+v, %v", groups, err)
		}
	})

	// Each line keeps the time it was written where the runtime stamps it (Node's console).
	t.Run("LineTimes", func(t *testing.T) {
		const nodeFn = `exports.handler = async () => {
  console.log("before the pause");
  await new Promise((r) => setTimeout(r, 400));
  console.log("after the pause");
  return "ok";
};
`
		createFunction(t, e.c, "cw-times", "nodejs20.x", "index.handler", mustZip(t, map[string]zipEntry{"index.js": {body: nodeFn}}))
		e.invoke(t, "cw-times", `{}`)
		e.waitEvents(t, "cw-times", "REPORT", 1)
		ts := map[string]int64{}
		for _, ev := range e.filter(t, "cw-times") {
			m := aws.ToString(ev.Message)
			for _, key := range []string{"START", "before the pause", "after the pause", "END", "REPORT"} {
				if strings.Contains(m, key) {
					ts[key] = aws.ToInt64(ev.Timestamp)
				}
			}
		}
		if len(ts) != 5 || ts["after the pause"]-ts["before the pause"] < 350 || ts["before the pause"] < ts["START"] ||
			ts["END"] < ts["after the pause"] || ts["REPORT"] != ts["END"] {
			t.Errorf("event times (ms) = %v: want START ≤ before, after ≥ before+350 ms, END = REPORT ≥ after", ts)
		}
	})

	t.Run("GetLogEventsPaging", func(t *testing.T) {
		e.fn(t, "cw-page", `{"lines":["l1","l2","l3","l4","l5"]}`)
		e.waitEvents(t, "cw-page", "REPORT", 1)
		out, err := e.cw.DescribeLogStreams(ctx, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String("/aws/lambda/cw-page")})
		if err != nil || len(out.LogStreams) != 1 {
			t.Fatalf("DescribeLogStreams = %+v, %v", out, err)
		}
		stream := out.LogStreams[0].LogStreamName
		get := func(token *string, head bool) *cloudwatchlogs.GetLogEventsOutput {
			t.Helper()
			res, err := e.cw.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String("/aws/lambda/cw-page"),
				LogStreamName: stream, Limit: aws.Int32(3), NextToken: token, StartFromHead: aws.Bool(head)})
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		short := func(evs []cwtypes.OutputLogEvent) string {
			var w []string
			for _, m := range messages(evs, outputMsg) {
				w = append(w, strings.Fields(m)[0])
			}
			return strings.Join(w, ",")
		}
		// Forward from the head, three at a time; at the end the same token comes back.
		var pages []string
		res := get(nil, true)
		for range 6 {
			pages = append(pages, short(res.Events))
			next := get(res.NextForwardToken, true)
			if len(next.Events) == 0 {
				if aws.ToString(next.NextForwardToken) != aws.ToString(res.NextForwardToken) {
					t.Errorf("at the end: forward token %s, want the one passed %s", aws.ToString(next.NextForwardToken), aws.ToString(res.NextForwardToken))
				}
				break
			}
			res = next
		}
		if got, want := strings.Join(pages, " | "), "START,l1,l2 | l3,l4,l5 | END,REPORT"; got != want {
			t.Errorf("forward pages = %s, want %s", got, want)
		}
		// Backward from the tail.
		pages = nil
		res = get(nil, false)
		for range 6 {
			pages = append(pages, short(res.Events))
			next := get(res.NextBackwardToken, false)
			if len(next.Events) == 0 {
				if aws.ToString(next.NextBackwardToken) != aws.ToString(res.NextBackwardToken) {
					t.Errorf("at the head: backward token %s, want the one passed %s", aws.ToString(next.NextBackwardToken), aws.ToString(res.NextBackwardToken))
				}
				break
			}
			res = next
		}
		if got, want := strings.Join(pages, " | "), "l5,END,REPORT | l2,l3,l4 | START,l1"; got != want {
			t.Errorf("backward pages = %s, want %s", got, want)
		}
		// The SDK's paginator follows forward tokens and stops on a repeated one.
		var all []cwtypes.OutputLogEvent
		p := cloudwatchlogs.NewGetLogEventsPaginator(e.cw, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String("/aws/lambda/cw-page"),
			LogStreamName: stream, Limit: aws.Int32(2), StartFromHead: aws.Bool(true)}, func(o *cloudwatchlogs.GetLogEventsPaginatorOptions) { o.StopOnDuplicateToken = true })
		for i := 0; p.HasMorePages() && i < 20; i++ {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, page.Events...)
		}
		if got := short(all); got != "START,l1,l2,l3,l4,l5,END,REPORT" {
			t.Errorf("paginator read %s", got)
		}
	})

	t.Run("FilterLogEvents", func(t *testing.T) {
		e.fn(t, "cw-filter", `{"lines":["[ERROR 400] BAD REQUEST","[ERROR 419] MISSING ARGUMENTS","[INFO 200] OK"],
			"json":[{"level":"ERROR","latency":700,"msg":"boom"},{"level":"INFO","latency":5},{"level":"ERROR","latency":10,"msg":"late"}]}`)
		all := e.waitEvents(t, "cw-filter", "REPORT", 1)
		all = e.filter(t, "cw-filter")
		const (
			e400 = "[ERROR 400] BAD REQUEST"
			e419 = "[ERROR 419] MISSING ARGUMENTS"
			i200 = "[INFO 200] OK"
			j1   = `{"level": "ERROR", "latency": 700, "msg": "boom"}`
			j2   = `{"level": "INFO", "latency": 5}`
			j3   = `{"level": "ERROR", "latency": 10, "msg": "late"}`
		)
		for _, tc := range []struct {
			pattern string
			want    []string
		}{
			{"ERROR ARGUMENTS", []string{e419}},
			{`"BAD REQUEST"`, []string{e400}},
			{"ERROR -ARGUMENTS -level", []string{e400}},
			{"?OK ?MISSING", []string{e419, i200}},
			{`{ $.level = "ERROR" }`, []string{j1, j3}},
			{`{ $.level = "ERROR" && $.latency > 100 }`, []string{j1}},
			{`{ $.level = ERR* || $.latency <= 5 }`, []string{j1, j2, j3}},
			{`{ $.level != "ERROR" }`, []string{j2}},
			{`%ERROR 4[0-9]+%`, []string{e400, e419}},
			{`[tag = "ERROR 4*", word, ...]`, []string{e400, e419}},
			{`[tag, word = BAD, ...]`, []string{e400}},
		} {
			got := messages(e.filter(t, "cw-filter", func(in *cloudwatchlogs.FilterLogEventsInput) {
				in.FilterPattern = aws.String(tc.pattern)
				in.Interleaved = aws.Bool(true)
			}), filteredMsg)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("pattern %s found %q, want %q", tc.pattern, got, tc.want)
			}
		}
		// Pages of two give the same events, with the same IDs, as one call.
		var paged []cwtypes.FilteredLogEvent
		var token *string
		for i := 0; i < 50; i++ {
			out, err := e.cw.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/cw-filter"), Limit: aws.Int32(2), NextToken: token})
			if err != nil {
				t.Fatal(err)
			}
			paged = append(paged, out.Events...)
			if token = out.NextToken; token == nil {
				break
			}
		}
		if len(paged) != len(all) || len(all) != 9 {
			t.Fatalf("paged %d events, unpaged %d, want 9", len(paged), len(all))
		}
		ids := map[string]bool{}
		for i := range all {
			if aws.ToString(paged[i].EventId) != aws.ToString(all[i].EventId) || aws.ToString(paged[i].Message) != aws.ToString(all[i].Message) {
				t.Errorf("event %d: paged %s %q, unpaged %s %q", i, aws.ToString(paged[i].EventId), aws.ToString(paged[i].Message), aws.ToString(all[i].EventId), aws.ToString(all[i].Message))
			}
			ids[aws.ToString(all[i].EventId)] = true
		}
		if len(ids) != len(all) {
			t.Errorf("event IDs are not unique: %d for %d events", len(ids), len(all))
		}
		// Times: startTime is inclusive, endTime exclusive.
		first, last := aws.ToInt64(all[0].Timestamp), aws.ToInt64(all[len(all)-1].Timestamp)
		if n := len(e.filter(t, "cw-filter", func(in *cloudwatchlogs.FilterLogEventsInput) { in.StartTime = aws.Int64(last + 1) })); n != 0 {
			t.Errorf("startTime after the last event: %d events", n)
		}
		if n := len(e.filter(t, "cw-filter", func(in *cloudwatchlogs.FilterLogEventsInput) { in.EndTime = aws.Int64(first) })); n != 0 {
			t.Errorf("endTime at the first event: %d events", n)
		}
		if n := len(e.filter(t, "cw-filter", func(in *cloudwatchlogs.FilterLogEventsInput) {
			in.StartTime, in.EndTime = aws.Int64(first), aws.Int64(last+1)
		})); n != len(all) {
			t.Errorf("[first, last+1): %d events, want %d", n, len(all))
		}
		stream := aws.ToString(all[0].LogStreamName)
		if n := len(e.filter(t, "cw-filter", func(in *cloudwatchlogs.FilterLogEventsInput) { in.LogStreamNamePrefix = aws.String(stream[:10]) })); n != len(all) {
			t.Errorf("logStreamNamePrefix %s: %d events, want %d", stream[:10], n, len(all))
		}
		if n := len(e.filter(t, "cw-filter", func(in *cloudwatchlogs.FilterLogEventsInput) { in.LogStreamNamePrefix = aws.String("1999/") })); n != 0 {
			t.Errorf("logStreamNamePrefix 1999/: %d events", n)
		}
		if n := len(e.filter(t, "cw-filter", func(in *cloudwatchlogs.FilterLogEventsInput) { in.LogStreamNames = []string{"nope"} })); n != 0 {
			t.Errorf("logStreamNames [nope]: %d events", n)
		}
	})

	t.Run("Retention", func(t *testing.T) {
		e.fn(t, "cw-retain", `{"lines":["old"]}`)
		e.waitEvents(t, "cw-retain", "REPORT", 1)
		// Two days later, a one-day retention leaves nothing, in JetStream too.
		server.SetLogClock(s, func() time.Time { return time.Now().Add(48 * time.Hour) })
		defer server.SetLogClock(s, nil)
		if _, err := e.cw.PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String("/aws/lambda/cw-retain"), RetentionInDays: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
		if evs := e.filter(t, "cw-retain"); len(evs) != 0 {
			t.Errorf("events past the retention returned: %q", messages(evs, filteredMsg))
		}
		if n := storedRecords(t, s, "cw-retain"); n != 0 {
			t.Errorf("JetStream still holds %d records past the retention", n)
		}
		groups, err := e.cw.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String("/aws/lambda/cw-retain")})
		if err != nil || len(groups.LogGroups) != 1 || aws.ToInt32(groups.LogGroups[0].RetentionInDays) != 1 {
			t.Fatalf("DescribeLogGroups after PutRetentionPolicy = %+v, %v", groups, err)
		}
		// The group outlives its records, with a creation time still.
		if ct := aws.ToInt64(groups.LogGroups[0].CreationTime); ct < time.Now().Add(-time.Hour).UnixMilli() || ct > time.Now().UnixMilli() {
			t.Errorf("creationTime of a group whose records expired: %d", ct)
		}
		// Today's records are kept.
		server.SetLogClock(s, nil)
		e.invoke(t, "cw-retain", `{"lines":["new"]}`)
		if got := e.waitEvents(t, "cw-retain", "new", 1); len(got) != 1 {
			t.Errorf("new events: %q", messages(got, filteredMsg))
		}
		if _, err := e.cw.DeleteRetentionPolicy(ctx, &cloudwatchlogs.DeleteRetentionPolicyInput{LogGroupName: aws.String("/aws/lambda/cw-retain")}); err != nil {
			t.Fatal(err)
		}
		groups, err = e.cw.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String("/aws/lambda/cw-retain")})
		if err != nil || len(groups.LogGroups) != 1 || groups.LogGroups[0].RetentionInDays != nil {
			t.Errorf("DescribeLogGroups after DeleteRetentionPolicy = %+v, %v", groups, err)
		}
	})

	t.Run("DeleteLogGroup", func(t *testing.T) {
		e.fn(t, "cw-del", `{"lines":["doomed"]}`)
		e.waitEvents(t, "cw-del", "REPORT", 1)
		if _, err := e.cw.DeleteLogGroup(ctx, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String("/aws/lambda/cw-del")}); err != nil {
			t.Fatal(err)
		}
		_, err := e.cw.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/cw-del")})
		var nf *cwtypes.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Errorf("FilterLogEvents after DeleteLogGroup: %v, want ResourceNotFoundException", err)
		}
		if n := storedRecords(t, s, "cw-del"); n != 0 {
			t.Errorf("JetStream still holds %d records of a deleted group", n)
		}
		// The function logs again: its group is back, with only the new lines.
		e.invoke(t, "cw-del", `{"lines":["reborn"]}`)
		got := e.waitEvents(t, "cw-del", "reborn", 1)
		if all := messages(e.filter(t, "cw-del", func(in *cloudwatchlogs.FilterLogEventsInput) { in.FilterPattern = aws.String("doomed") }), filteredMsg); len(all) != 0 || len(got) != 1 {
			t.Errorf("after DeleteLogGroup and a new invoke: old lines %q, new %d", all, len(got))
		}
	})

	t.Run("Rejections", func(t *testing.T) {
		e.fn(t, "cw-rej", `{"lines":["kept"]}`)
		e.waitEvents(t, "cw-rej", "REPORT", 1)
		if _, err := e.cw.PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String("/aws/lambda/cw-rej"), RetentionInDays: aws.Int32(7)}); err != nil {
			t.Fatal(err)
		}
		before := e.filter(t, "cw-rej")
		missing := aws.String("/aws/lambda/nope")
		check := func(what string, err error, code, msg string) {
			t.Helper()
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != code || msg != "" && ae.ErrorMessage() != msg {
				t.Errorf("%s: %v, want %s %q", what, err, code, msg)
			}
		}
		const nf = "The specified log group does not exist."
		_, err := e.cw.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: missing})
		check("FilterLogEvents of an unknown group", err, "ResourceNotFoundException", nf)
		_, err = e.cw.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: missing, LogStreamName: aws.String("x")})
		check("GetLogEvents of an unknown group", err, "ResourceNotFoundException", nf)
		_, err = e.cw.DescribeLogStreams(ctx, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: missing})
		check("DescribeLogStreams of an unknown group", err, "ResourceNotFoundException", nf)
		_, err = e.cw.PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: missing, RetentionInDays: aws.Int32(1)})
		check("PutRetentionPolicy of an unknown group", err, "ResourceNotFoundException", nf)
		_, err = e.cw.DeleteRetentionPolicy(ctx, &cloudwatchlogs.DeleteRetentionPolicyInput{LogGroupName: missing})
		check("DeleteRetentionPolicy of an unknown group", err, "ResourceNotFoundException", nf)
		_, err = e.cw.DeleteLogGroup(ctx, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: missing})
		check("DeleteLogGroup of an unknown group", err, "ResourceNotFoundException", nf)
		_, err = e.cw.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String("/aws/lambda/cw-rej"), LogStreamName: aws.String("2020/01/01/[$LATEST]00")})
		check("GetLogEvents of an unknown stream", err, "ResourceNotFoundException", "The specified log stream does not exist.")
		_, err = e.cw.PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String("/aws/lambda/cw-rej"), RetentionInDays: aws.Int32(2)})
		check("a retention of 2 days", err, "InvalidParameterException", "")
		_, err = e.cw.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/cw-rej"), NextToken: aws.String("garbage")})
		check("FilterLogEvents with a bad token", err, "InvalidParameterException", "The specified nextToken is invalid.")
		_, err = e.cw.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String("/aws/lambda/cw-rej"), LogStreamName: before[0].LogStreamName, NextToken: aws.String("f/123/s")})
		check("GetLogEvents with a bad token", err, "InvalidParameterException", "The specified nextToken is invalid.")
		for _, p := range []string{`{ $.level = }`, `"unterminated`, `{ $.latency > fast }`} {
			_, err = e.cw.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/cw-rej"), FilterPattern: aws.String(p)})
			check("pattern "+p, err, "InvalidParameterException", "")
		}
		_, err = e.cw.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/cw-rej"),
			LogStreamNames: []string{"a"}, LogStreamNamePrefix: aws.String("a")})
		check("logStreamNames with a prefix", err, "InvalidParameterException", "")
		// Nothing changed.
		groups, err := e.cw.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String("/aws/lambda/cw-rej")})
		if err != nil || len(groups.LogGroups) != 1 || aws.ToInt32(groups.LogGroups[0].RetentionInDays) != 7 {
			t.Errorf("after the rejections: groups %+v, %v", groups, err)
		}
		if after := e.filter(t, "cw-rej"); len(after) != len(before) {
			t.Errorf("after the rejections: %d events, want %d", len(after), len(before))
		}
		// The wire: JSON 1.1's error shape, status 400.
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/", strings.NewReader(`{"logGroupName":"/aws/lambda/nope"}`))
		req.Header.Set("X-Amz-Target", "Logs_20140328.FilterLogEvents")
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var shape map[string]string
		if resp.StatusCode != 400 || json.Unmarshal(body, &shape) != nil || shape["__type"] != "ResourceNotFoundException" || shape["message"] != nf {
			t.Errorf("raw error: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("AWSCLI", func(t *testing.T) {
		awsCLI := requireAWSCLI(t)
		e.fn(t, "cw-cli", `{"lines":["hello from the start"]}`)
		e.waitEvents(t, "cw-cli", "REPORT", 1)
		tail := startCLI(t, awsCLI, s.URL(), "AKIDFLINTTEST", "secret", "logs", "tail", "/aws/lambda/cw-cli", "--follow", "--format", "short")
		waitFor(t, "aws logs tail to print the first invocation", 30*time.Second, func() bool { return strings.Contains(tail.out(), "hello from the start") })
		for i := range 2 {
			marker := fmt.Sprintf("followed line %d", i)
			e.invoke(t, "cw-cli", `{"lines":["`+marker+`"]}`)
			waitFor(t, "aws logs tail --follow to print "+marker, 30*time.Second, func() bool { return strings.Contains(tail.out(), marker) })
		}
		if out := tail.out(); strings.Count(out, "hello from the start") != 1 || strings.Count(out, "followed line 0") != 1 {
			t.Errorf("aws logs tail printed a line twice or not at all:\n%s", out)
		}
		if !regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d START RequestId: `).MatchString(tail.out()) {
			t.Errorf("aws logs tail --format short printed:\n%s", tail.out())
		}

		e.invoke(t, "cw-cli", `{"json":[{"level":"ERROR","msg":"bad"},{"level":"INFO","msg":"fine"},{"level":"ERROR","msg":"worse"}]}`)
		e.waitEvents(t, "cw-cli", `{"level": "ERROR", "msg": "worse"}`, 1)
		out := runCLI(t, awsCLI, s.URL(), "AKIDFLINTTEST", "secret", "logs", "filter-log-events", "--log-group-name", "/aws/lambda/cw-cli",
			"--filter-pattern", `{ $.level = "ERROR" }`, "--output", "json")
		var fle struct {
			Events []struct{ Message, EventId, LogStreamName string }
		}
		if err := json.Unmarshal(out, &fle); err != nil {
			t.Fatalf("filter-log-events output: %v\n%s", err, out)
		}
		var found []string
		for _, ev := range fle.Events {
			found = append(found, strings.TrimSpace(ev.Message))
		}
		if want := []string{`{"level": "ERROR", "msg": "bad"}`, `{"level": "ERROR", "msg": "worse"}`}; fmt.Sprint(found) != fmt.Sprint(want) {
			t.Errorf("aws logs filter-log-events found %q, want %q", found, want)
		}

		out = runCLI(t, awsCLI, s.URL(), "AKIDFLINTTEST", "secret", "logs", "describe-log-streams", "--log-group-name", "/aws/lambda/cw-envs", "--output", "json")
		var dls struct {
			LogStreams []struct{ LogStreamName string }
		}
		if err := json.Unmarshal(out, &dls); err != nil || len(dls.LogStreams) != 2 {
			t.Errorf("aws logs describe-log-streams of a function run in 2 environments: %v\n%s", err, out)
		}
		for _, st := range dls.LogStreams {
			if !streamNameRE.MatchString(st.LogStreamName) {
				t.Errorf("stream %q", st.LogStreamName)
			}
		}
	})

	// Last: it turns signature checks on for the shared server.
	t.Run("SignedWithKeys", func(t *testing.T) {
		awsCLI := requireAWSCLI(t)
		e.fn(t, "cw-signed", `{"lines":["signed"]}`)
		e.waitEvents(t, "cw-signed", "REPORT", 1)
		key := createAccessKey(t, dir, "cwlogs test")
		waitFor(t, "the server to load the access key", 10*time.Second, func() bool { return !s.DevMode() })
		good := newLogsClient(s.URL(), key.AccessKeyID, key.SecretAccessKey)
		if _, err := good.DescribeLogStreams(ctx, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String("/aws/lambda/cw-signed")}); err != nil {
			t.Errorf("signed with the key (service logs): %v", err)
		}
		// Refusals are in JSON 1.1's shape too: clients read the code from __type.
		_, err := newLogsClient(s.URL(), key.AccessKeyID, "wrong").DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{})
		if code := apiErrorCode(err); code != "InvalidSignatureException" {
			t.Errorf("a wrong secret: %v, want InvalidSignatureException", err)
		}
		_, err = newLogsClient(s.URL(), "AKIDUNKNOWN", "x").DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{})
		if code := apiErrorCode(err); code != "UnrecognizedClientException" {
			t.Errorf("an unknown key: %v, want UnrecognizedClientException", err)
		}
		out := runCLI(t, awsCLI, s.URL(), key.AccessKeyID, key.SecretAccessKey, "logs", "describe-log-streams", "--log-group-name", "/aws/lambda/cw-signed", "--output", "json")
		if !bytes.Contains(out, []byte(`"logStreamName"`)) {
			t.Errorf("aws logs with the key: %s", out)
		}
		cmd := cliCommand(t, awsCLI, s.URL(), key.AccessKeyID, "wrong", "logs", "describe-log-groups")
		if b, err := cmd.CombinedOutput(); err == nil || !bytes.Contains(b, []byte("(InvalidSignatureException)")) {
			t.Errorf("aws logs with a wrong secret: %v: %s; want InvalidSignatureException", err, b)
		}
		// The other JSON 1.1 API on the endpoint answers the same way.
		cmd = cliCommand(t, awsCLI, s.URL(), key.AccessKeyID, "wrong", "secretsmanager", "list-secrets")
		if b, err := cmd.CombinedOutput(); err == nil || !bytes.Contains(b, []byte("(InvalidSignatureException)")) {
			t.Errorf("aws secretsmanager with a wrong secret: %v: %s; want InvalidSignatureException", err, b)
		}
	})
}

// storedRecords counts NAME's records in JetStream's FLINT_LOGS.
func storedRecords(t *testing.T, s *server.Server, name string) uint64 {
	t.Helper()
	st, err := s.JetStream().Stream(context.Background(), "FLINT_LOGS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter("flint.logs."+name))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects["flint.logs."+name]
}

// requireAWSCLI returns AWS CLI v2 from Debian's awscli (never a v1 shim on PATH).
func requireAWSCLI(t *testing.T) string {
	t.Helper()
	const path = "/usr/bin/aws"
	out, err := exec.Command(path, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "aws-cli/2.") {
		t.Fatalf("AWS CLI v2 not at %s: run scripts/tools.sh's ensure_tools test (it installs Debian's awscli): %v %s", path, err, out)
	}
	return path
}

func cliCommand(t *testing.T, awsCLI, url, id, secret string, args ...string) *exec.Cmd {
	cmd := exec.Command(awsCLI, append([]string{"--endpoint-url", url, "--no-cli-pager", "--color", "off"}, args...)...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "AWS_CONFIG_FILE="+home+"/config", "AWS_SHARED_CREDENTIALS_FILE="+home+"/credentials",
		"AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_MAX_ATTEMPTS=1", "AWS_PAGER=")
	return cmd
}

func runCLI(t *testing.T, awsCLI, url, id, secret string, args ...string) []byte {
	t.Helper()
	cmd := cliCommand(t, awsCLI, url, id, secret, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// cliProc is a running aws command whose output is collected.
type cliProc struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (p *cliProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Write(b)
}

func (p *cliProc) out() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// startCLI starts a long-running aws command (logs tail --follow), stopped at the test's end.
func startCLI(t *testing.T, awsCLI, url, id, secret string, args ...string) *cliProc {
	t.Helper()
	cmd := cliCommand(t, awsCLI, url, id, secret, args...)
	p := &cliProc{}
	cmd.Stdout, cmd.Stderr = p, p
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Logf("aws %s printed:\n%s", strings.Join(args, " "), p.out())
	})
	return p
}
