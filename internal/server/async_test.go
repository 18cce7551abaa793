package server_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/config"
	invokesvc "github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/server"
)

const streamArn = "arn:flint:jetstream:us-east-1:000000000000:stream/"

// records reads n destination records from a stream through an outside NATS client.
func records(t *testing.T, s *server.Server, stream string, n int) []asyncq.Record {
	t.Helper()
	var out []asyncq.Record
	for _, msg := range destinationMsgs(t, s, stream, n) {
		var r asyncq.Record
		if err := json.Unmarshal(msg.Data(), &r); err != nil {
			t.Fatalf("record %s: %v", msg.Data(), err)
		}
		out = append(out, r)
	}
	return out
}

// destinationMsgs reads n messages of a destination stream through an outside NATS client.
func destinationMsgs(t *testing.T, s *server.Server, stream string, n int) []jetstream.Msg {
	t.Helper()
	nc, err := nats.Connect(s.NATSURL(), nats.Token(s.NATSToken()))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var st jetstream.Stream
	for st == nil {
		if st, err = js.Stream(ctx, stream); err != nil {
			if ctx.Err() != nil {
				t.Fatalf("stream %s never appeared: %v", stream, err)
			}
			st = nil
			time.Sleep(20 * time.Millisecond)
		}
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for len(out) < n {
		msg, err := cons.Next(jetstream.FetchMaxWait(60 * time.Second))
		if err != nil {
			t.Fatalf("%d of %d records from %s: %v", len(out), n, stream, err)
		}
		out = append(out, msg)
	}
	return out
}

func TestAsyncInvocation(t *testing.T) {
	s := startServer(t, t.TempDir(), func(c *config.Config) {
		c.NATSListen = "127.0.0.1:0"
		c.AsyncRetryDelay = 50 * time.Millisecond
	})
	c := newClient(s.URL())
	ctx := context.Background()
	createFunction(t, c, "good", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return {'ok': e['n'], 'rid': c.aws_request_id}\n"}}))
	createFunction(t, c, "bad", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    print('attempt', c.aws_request_id)\n    raise RuntimeError('always fails')\n"}}),
		func(in *lambda.CreateFunctionInput) {
			in.DeadLetterConfig = &types.DeadLetterConfig{TargetArn: aws.String(streamArn + "dlq")}
		})
	for _, fn := range []string{"good", "bad"} {
		if _, err := c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(fn),
			MaximumRetryAttempts: aws.Int32(2), DestinationConfig: &types.DestinationConfig{
				OnSuccess: &types.OnSuccess{Destination: aws.String(streamArn + fn + "-ok")},
				OnFailure: &types.OnFailure{Destination: aws.String(streamArn + fn + "-failed")}}}); err != nil {
			t.Fatal(err)
		}
	}
	// The node that took the writes answered once its views held them (GET /flint/v1/views).
	body, err := httpGet(s.URL() + "/flint/v1/views")
	if err != nil {
		t.Fatal(err)
	}
	var views struct{ Views []invokesvc.ViewState }
	if err := json.Unmarshal([]byte(body), &views); err != nil {
		t.Fatalf("GET /flint/v1/views: %s: %v", body, err)
	}
	seen := map[string]invokesvc.ViewState{}
	for _, v := range views.Views {
		seen[v.View] = v
		if v.Applied != v.Stored {
			t.Errorf("view %+v is not current", v)
		}
	}
	if v := seen["event invoke configs"]; len(views.Views) != 8 || v.Stored < 2 || seen["functions"].Stored < 2 {
		t.Errorf("GET /flint/v1/views = %s", body)
	}
	got, err := c.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("good")})
	if err != nil || aws.ToInt32(got.MaximumRetryAttempts) != 2 || !strings.HasSuffix(aws.ToString(got.FunctionArn), ":good:$LATEST") || got.LastModified == nil {
		t.Errorf("GetFunctionEventInvokeConfig = %+v, %v", got, err)
	}

	const n = 20
	ids := map[string]bool{}
	for i := range n {
		out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("good"), InvocationType: types.InvocationTypeEvent,
			Payload: []byte(`{"n":` + string(rune('0'+i%10)) + `}`)})
		if err != nil || out.StatusCode != 202 || len(out.Payload) != 0 {
			t.Fatalf("Event invoke: %+v, %v", out, err)
		}
	}
	for _, r := range records(t, s, "good-ok", n) {
		ids[r.RequestContext.RequestID] = true
		if r.RequestContext.Condition != "Success" || r.RequestContext.ApproximateInvokeCount != 1 || r.Version != "1.0" ||
			!strings.HasSuffix(r.RequestContext.FunctionArn, ":function:good:$LATEST") || r.Response == nil || r.Response.StatusCode != 200 ||
			!strings.Contains(string(r.ResponsePayload), r.RequestContext.RequestID) {
			t.Errorf("success record = %+v (%s)", r, r.ResponsePayload)
		}
	}
	if len(ids) != n {
		t.Errorf("%d distinct successful events, want %d", len(ids), n)
	}
	// A destination stream deleted behind Flint's back (by an operator of an external NATS
	// cluster) is created again for the next record: Flint remembers the streams it opened, and
	// a publish to a deleted one gets no answer.
	{
		if err := server.DeleteStream(ctx, s, "good-ok"); err != nil {
			t.Fatal(err)
		}
		out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("good"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"n":7}`)})
		if err != nil {
			t.Fatal(err)
		}
		rid, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
		if r := records(t, s, "good-ok", 1)[0]; r.RequestContext.RequestID != rid {
			t.Errorf("record in the recreated stream is of %s, want %s", r.RequestContext.RequestID, rid)
		}
	}

	out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("bad"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"x":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	_ = out
	fail := records(t, s, "bad-failed", 1)[0]
	if fail.RequestContext.Condition != "RetriesExhausted" || fail.RequestContext.ApproximateInvokeCount != 3 ||
		fail.Response == nil || fail.Response.FunctionError != "Unhandled" || string(fail.RequestPayload) != `{"x":1}` ||
		!strings.Contains(string(fail.ResponsePayload), "always fails") {
		t.Errorf("failure record = %+v (%s)", fail, fail.ResponsePayload)
	}
	// Three executions, all with the event's request id.
	var logs string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		logs = fetchLogs(t, s.URL(), "bad")
		if strings.Count(logs, "REPORT RequestId: ") >= 3 {
			break
		}
	}
	if got := strings.Count(logs, "attempt "+fail.RequestContext.RequestID); got != 3 {
		t.Errorf("the failing function ran %d times with request id %s, want 3:\n%s", got, fail.RequestContext.RequestID, logs)
	}
	// The dead-letter stream gets the original event.
	nc, _ := nats.Connect(s.NATSURL(), nats.Token(s.NATSToken()))
	defer nc.Close()
	js, _ := jetstream.New(nc)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, err := js.Stream(ctx, "dlq")
		if err == nil {
			m, err := st.GetMsg(ctx, 1)
			if err == nil {
				if string(m.Data) != `{"x":1}` || m.Header.Get("RequestID") != fail.RequestContext.RequestID || m.Header.Get("ErrorMessage") == "" {
					t.Errorf("DLQ message %s %v", m.Data, m.Header)
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing reached the dead-letter stream")
		}
	}

	// Rejections.
	big := make([]byte, 1024*1024+10)
	for i := range big {
		big[i] = ' '
	}
	big[0], big[len(big)-1] = '"', '"'
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("good"), InvocationType: types.InvocationTypeEvent, Payload: big}); apiErrorCode(err) != "RequestTooLargeException" {
		t.Errorf("1 MB+ Event payload: %v", err)
	}
	if _, err := c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("good"), MaximumRetryAttempts: aws.Int32(3)}); apiErrorCode(err) != "ValidationException" {
		t.Errorf("MaximumRetryAttempts 3: %v", err)
	}
	if _, err := c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("good"), MaximumEventAgeInSeconds: aws.Int32(30)}); apiErrorCode(err) != "ValidationException" {
		t.Errorf("MaximumEventAgeInSeconds 30: %v", err)
	}
	if _, err := c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("good"),
		DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String("arn:aws:sqs:us-east-1:000000000000:q")}}}); apiErrorCode(err) != "InvalidParameterValueException" {
		t.Errorf("SQS destination: %v", err)
	}
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("nope"), InvocationType: types.InvocationTypeEvent}); apiErrorCode(err) != "ResourceNotFoundException" {
		t.Errorf("Event invoke of an unknown function: %v", err)
	}
	list, err := c.ListFunctionEventInvokeConfigs(ctx, &lambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String("good")})
	if err != nil || len(list.FunctionEventInvokeConfigs) != 1 {
		t.Errorf("ListFunctionEventInvokeConfigs = %+v, %v", list, err)
	}
	if _, err := c.DeleteFunctionEventInvokeConfig(ctx, &lambda.DeleteFunctionEventInvokeConfigInput{FunctionName: aws.String("good")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("good")}); apiErrorCode(err) != "ResourceNotFoundException" {
		t.Errorf("get after delete: %v", err)
	}
}

func fetchLogs(t *testing.T, url, fn string) string {
	t.Helper()
	resp, err := httpGet(url + "/flint/v1/functions/" + fn + "/logs")
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
