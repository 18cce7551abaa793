package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/flint-run/flint/internal/stack"
)

// samWorker records every event it gets to DIR/<kind>-<n>.json, by the event's shape, and
// answers a probe with the environment the template's references filled in.
const samWorker = `import json, os, uuid
D = os.environ['DIR']
def rec(kind, e):
    with open(os.path.join(D, kind + '-' + uuid.uuid4().hex + '.json'), 'w') as f:
        json.dump(e, f)
def handler(event, context):
    if 'probe' in event:
        return {k: os.environ[k] for k in ('QUEUE_URL', 'QUEUE_NAME', 'TOPIC_ARN', 'STREAM', 'STREAM_ARN')}
    recs = event.get('Records') or [{}]
    if recs[0].get('eventSource') == 'aws:sqs':
        rec('sqs', event)
    elif recs[0].get('EventSource') == 'aws:sns':
        rec('sns', event)
    elif recs[0].get('eventSource') == 'aws:kinesis':
        rec('kinesis', event)
    elif event.get('source') == 'aws.events':
        rec('schedule', event)
    elif event.get('version') == '2.0' and 'requestContext' in event:
        rec('http', event)
        return {'statusCode': 200, 'body': 'hello ' + event['pathParameters']['name']}
    elif 'httpMethod' in event:
        rec('rest', event)
        return {'statusCode': 200, 'body': 'item ' + event['pathParameters']['id']}
    else:
        rec('other', event)
    return {}
`

const samEventsTemplate = `Transform: AWS::Serverless-2016-10-31
Resources:
  Jobs:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 20
  News:
    Type: AWS::SNS::Topic
  Clicks:
    Type: AWS::Kinesis::Stream
    Properties:
      ShardCount: 2
  Rest:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v1
      Variables: {color: blue}
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: sam-worker
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.12
      Timeout: 10
      AutoPublishAlias: live
      Environment:
        Variables:
          DIR: __DIR__
          QUEUE_URL: !Ref Jobs
          QUEUE_NAME: !GetAtt Jobs.QueueName
          TOPIC_ARN: !Ref News
          STREAM: !Ref Clicks
          STREAM_ARN: !GetAtt Clicks.Arn
      Events:
        Q:
          Type: SQS
          Properties: {Queue: !GetAtt Jobs.Arn, BatchSize: 5}
        N:
          Type: SNS
          Properties: {Topic: !Ref News}
        NQ:
          Type: SNS
          Properties: {Topic: !Ref News, SqsSubscription: true}
        K:
          Type: Kinesis
          Properties: {Stream: !GetAtt Clicks.Arn, StartingPosition: TRIM_HORIZON}
        Tick:
          Type: Schedule
          Properties: {Schedule: rate(1 minute)}
        Hello:
          Type: HttpApi
          Properties: {Path: "/hello/{name}", Method: GET, TimeoutInMillis: 10000}
        Item:
          Type: Api
          Properties: {Path: "/items/{id}", Method: get, RestApiId: !Ref Rest}
`

// TestSAMEventsDeploy deploys a SAM template with a queue, a topic, a stream and a function
// with SQS, SNS, Kinesis, Schedule and HttpApi events through stack.Deployer and the real SDK
// clients, against a server with an access key (so every call, the management API's PUT
// included, must be signed): each event reaches the function, the function's environment holds
// the resources' !Ref and !GetAtt values, a second deploy changes nothing, a template that
// would take another stack's queue or reshard the stream is refused before anything changes,
// and --prune removes what left the file.
func TestSAMEventsDeploy(t *testing.T) {
	data := t.TempDir()
	key := createAccessKey(t, data, "sam")
	s := startServer(t, data)
	url := s.URL()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	creds := credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, "")
	lc := lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: creds, RetryMaxAttempts: 1})
	sqc := sqs.New(sqs.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: creds, RetryMaxAttempts: 1})
	snc := sns.New(sns.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: creds, RetryMaxAttempts: 1})
	kc := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: creds, RetryMaxAttempts: 1})
	var out bytes.Buffer
	d := &stack.Deployer{Lambda: lc, SQS: sqc, SNS: snc, Kinesis: kc, Endpoint: url, MetricsURL: url + "/metrics",
		Scheduler: scheduler.New(scheduler.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: creds, RetryMaxAttempts: 1}),
		HTTP:      &http.Client{Timeout: time.Minute}, Out: &out}

	dir, rec := t.TempDir(), t.TempDir()
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("src/app.py", samWorker)
	deployAs := func(name, tmpl string, prune bool) (*stack.Result, error) {
		t.Helper()
		write("template.yaml", strings.Replace(tmpl, "__DIR__", rec, 1))
		st, err := stack.Load(filepath.Join(dir, "template.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		st.Name = name
		out.Reset()
		res, err := d.Deploy(ctx, st, stack.Options{Prune: prune})
		t.Logf("deploy:\n%s", out.String())
		return res, err
	}
	deploy := func(tmpl string, prune bool) (*stack.Result, error) {
		t.Helper()
		return deployAs("samtest", tmpl, prune)
	}
	changed := func(res *stack.Result) []string {
		var cs []string
		for _, c := range res.Changes {
			cs = append(cs, c.Kind+" "+c.Name+" "+c.Action)
		}
		slices.Sort(cs)
		return cs
	}

	res, err := deploy(samEventsTemplate, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"alias sam-worker created", "api samtest-Rest created", "api samtest-ServerlessHttpApi created", "function sam-worker created", "mapping sam-worker created",
		"mapping sam-worker created", "mapping sam-worker created", "queue samtest-Jobs created", "queue samtest-WorkerNQQueue created",
		"schedule sam-worker created", "stream samtest-Clicks created", "subscription samtest-News created", "subscription samtest-News created",
		"topic samtest-News created", "version sam-worker published"}
	if got := changed(res); !slices.Equal(got, want) {
		t.Errorf("first deploy changed\n%v\nwant\n%v", got, want)
	}

	// The events are wired on the alias, as SAM wires them.
	maps0, err := lc.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{})
	if err != nil || len(maps0.EventSourceMappings) != 3 {
		t.Fatalf("ListEventSourceMappings: %v %v", maps0, err)
	}
	for _, m := range maps0.EventSourceMappings {
		if !strings.HasSuffix(aws.ToString(m.FunctionArn), ":function:sam-worker:live") {
			t.Errorf("mapping from %s invokes %s, want the alias live", aws.ToString(m.EventSourceArn), aws.ToString(m.FunctionArn))
		}
	}
	subs, err := snc.ListSubscriptions(ctx, &sns.ListSubscriptionsInput{})
	if err != nil || len(subs.Subscriptions) != 2 {
		t.Fatalf("ListSubscriptions: %v %v", subs, err)
	}
	var endpoints []string
	for _, sub := range subs.Subscriptions {
		endpoints = append(endpoints, aws.ToString(sub.Protocol)+" "+aws.ToString(sub.Endpoint))
	}
	slices.Sort(endpoints)
	if want := []string{"lambda arn:aws:lambda:us-east-1:000000000000:function:sam-worker:live",
		"sqs arn:aws:sqs:us-east-1:000000000000:samtest-WorkerNQQueue"}; !slices.Equal(endpoints, want) {
		t.Errorf("subscriptions %v, want %v", endpoints, want)
	}

	// The references resolved to what the APIs say.
	qurl, err := sqc.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("samtest-Jobs")})
	if err != nil {
		t.Fatal(err)
	}
	qattrs, err := sqc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: qurl.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
	if err != nil || qattrs.Attributes["VisibilityTimeout"] != "20" {
		t.Errorf("queue attributes %v, %v; want VisibilityTimeout 20", qattrs, err)
	}
	stream, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("samtest-Clicks")})
	if err != nil || aws.ToInt32(stream.StreamDescriptionSummary.OpenShardCount) != 2 {
		t.Fatalf("DescribeStreamSummary: %v %v", stream, err)
	}
	probe, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("sam-worker"), Payload: []byte(`{"probe":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]string
	_ = json.Unmarshal(probe.Payload, &env)
	wantEnv := map[string]string{"QUEUE_URL": aws.ToString(qurl.QueueUrl), "QUEUE_NAME": "samtest-Jobs",
		"TOPIC_ARN": "arn:aws:sns:us-east-1:000000000000:samtest-News", "STREAM": "samtest-Clicks",
		"STREAM_ARN": aws.ToString(stream.StreamDescriptionSummary.StreamARN)}
	for k, v := range wantEnv {
		if env[k] != v || v == "" {
			t.Errorf("function env %s = %q, want %q (%s)", k, env[k], v, probe.Payload)
		}
	}

	// Each event reaches the function.
	if _, err := sqc.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: qurl.QueueUrl, MessageBody: aws.String("job-1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := snc.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(wantEnv["TOPIC_ARN"]), Message: aws.String("news-1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("samtest-Clicks"), PartitionKey: aws.String("k"),
		Data: []byte("click-1")}); err != nil {
		t.Fatal(err)
	}
	status, _, body := signed(t, "GET", url+"/flint/v1/apis/samtest-ServerlessHttpApi", key.AccessKeyID, key.SecretAccessKey, nil, time.Now(), nil)
	var api struct {
		APIID    string `json:"apiId"`
		Protocol string `json:"protocol"`
		Stage    string `json:"stage"`
		Tags     map[string]string
	}
	if err := json.Unmarshal(body, &api); status != 200 || err != nil || api.APIID == "" || api.Protocol != "HTTP" || api.Stage != "$default" ||
		api.Tags["flint:stack"] != "samtest" {
		t.Fatalf("GET /flint/v1/apis/samtest-ServerlessHttpApi: %d %s", status, body)
	}
	resp, err := http.Get(url + "/execute-api/" + api.APIID + "/hello/flint")
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(hb) != "hello flint" {
		t.Errorf("GET /hello/flint through the HTTP API: %d %q", resp.StatusCode, hb)
	}
	status, _, body = signed(t, "GET", url+"/flint/v1/apis/samtest-Rest", key.AccessKeyID, key.SecretAccessKey, nil, time.Now(), nil)
	if err := json.Unmarshal(body, &api); status != 200 || err != nil || api.Protocol != "REST" || api.Stage != "v1" {
		t.Fatalf("GET /flint/v1/apis/samtest-Rest: %d %s", status, body)
	}
	resp, err = http.Get(url + "/execute-api/" + api.APIID + "/v1/items/42")
	if err != nil {
		t.Fatal(err)
	}
	hb, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(hb) != "item 42" {
		t.Errorf("GET /v1/items/42 through the REST API: %d %q", resp.StatusCode, hb)
	}
	events := func(kind string) []map[string]any {
		files, _ := filepath.Glob(filepath.Join(rec, kind+"-*.json"))
		var out []map[string]any
		for _, f := range files {
			b, err := os.ReadFile(f)
			var e map[string]any
			if err == nil && json.Unmarshal(b, &e) == nil {
				out = append(out, e)
			}
		}
		return out
	}
	record := func(e map[string]any) map[string]any {
		rs, _ := e["Records"].([]any)
		if len(rs) == 0 {
			return nil
		}
		r, _ := rs[0].(map[string]any)
		return r
	}
	for _, kind := range []string{"sqs", "sns", "kinesis", "http", "rest", "schedule"} {
		waitFor(t, kind+" event", 100*time.Second, func() bool { return len(events(kind)) > 0 })
	}
	// The queue's message, and the topic's through the SqsSubscription queue (SNS's envelope).
	waitFor(t, "both SQS events", 30*time.Second, func() bool { return len(events("sqs")) == 2 })
	for _, e := range events("sqs") {
		r := record(e)
		switch src, _ := r["eventSourceARN"].(string); {
		case strings.HasSuffix(src, ":samtest-Jobs"):
			if r["body"] != "job-1" {
				t.Errorf("SQS event record %v", r)
			}
		case strings.HasSuffix(src, ":samtest-WorkerNQQueue"):
			var env map[string]any
			if body, _ := r["body"].(string); json.Unmarshal([]byte(body), &env) != nil || env["Type"] != "Notification" || env["Message"] != "news-1" {
				t.Errorf("SqsSubscription's record %v", r)
			}
		default:
			t.Errorf("SQS event from %s", src)
		}
	}
	if r := record(events("sns")[0]); r["Sns"].(map[string]any)["Message"] != "news-1" {
		t.Errorf("SNS event record %v", r)
	}
	if r := record(events("kinesis")[0]); r["kinesis"].(map[string]any)["data"] != base64.StdEncoding.EncodeToString([]byte("click-1")) {
		t.Errorf("Kinesis event record %v", r)
	}
	if e := events("http")[0]; e["rawPath"] != "/hello/flint" || e["routeKey"] != "GET /hello/{name}" {
		t.Errorf("HTTP API event %v", e)
	}
	if e := events("rest")[0]; e["resource"] != "/items/{id}" || e["stageVariables"].(map[string]any)["color"] != "blue" ||
		e["requestContext"].(map[string]any)["stage"] != "v1" {
		t.Errorf("REST API event %v", e)
	}
	if e := events("schedule")[0]; e["detail-type"] != "Scheduled Event" {
		t.Errorf("schedule event %v", e)
	}
	if others := events("other"); len(others) > 0 {
		t.Errorf("events of no known shape: %v", others)
	}

	// An unchanged template changes nothing.
	res, err = deploy(samEventsTemplate, false)
	if err != nil || len(res.Changes) != 0 {
		t.Errorf("second deploy: %v, changes %v", err, changed(res))
	}

	// Another stack's queue is refused before anything changes.
	theirs := "Resources:\n  Mine:\n    Type: AWS::SQS::Queue\n  Theirs:\n    Type: AWS::SQS::Queue\n    Properties: {QueueName: samtest-Jobs}\n" +
		"  Fn:\n    Type: AWS::Serverless::Function\n    Properties: {FunctionName: other-fn, CodeUri: src/, Handler: app.handler, Runtime: python3.12}\n"
	if res, err := deployAs("other", theirs, false); err == nil || !strings.Contains(err.Error(), "queue samtest-Jobs belongs to stack samtest") || len(res.Changes) != 0 {
		t.Errorf("deploy of another stack's queue: %v, changes %v; want a refusal and no change", err, changed(res))
	}
	if _, err := sqc.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("other-Mine")}); err == nil {
		t.Error("the refused deploy created queue other-Mine")
	}

	// Resharding is refused before anything changes: the new queue is not created.
	reshard := strings.Replace(samEventsTemplate, "ShardCount: 2", "ShardCount: 3", 1) +
		"  Extra:\n    Type: AWS::SQS::Queue\n"
	if res, err := deploy(reshard, false); err == nil || !strings.Contains(err.Error(), "cannot reshard") || len(res.Changes) != 0 {
		t.Errorf("resharding deploy: %v, changes %v; want a refusal and no change", err, changed(res))
	}
	if _, err := sqc.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("samtest-Extra")}); err == nil {
		t.Error("the refused deploy created queue samtest-Extra")
	}

	// The function's other events leave with the template's resources: without --prune they
	// are listed, with it deleted.
	slim := samEventsTemplate[:strings.Index(samEventsTemplate, "  Jobs:")] + samEventsTemplate[strings.Index(samEventsTemplate, "  Worker:"):]
	slim = slim[:strings.Index(slim, "      Environment:")] + "      Environment:\n        Variables:\n          DIR: __DIR__\n" +
		"      Events:\n        Tick:\n          Type: Schedule\n          Properties: {Schedule: rate(1 minute)}\n"
	res, err = deploy(slim, false)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"alias sam-worker shifted", "function sam-worker updated", "mapping sam-worker deleted", "mapping sam-worker deleted",
		"mapping sam-worker deleted", "subscription samtest-News deleted", "subscription samtest-News deleted", "version sam-worker published"}
	if got := changed(res); !slices.Equal(got, want) {
		t.Errorf("deploy without the events changed\n%v\nwant\n%v", got, want)
	}
	wantUnpruned := []string{"api samtest-Rest", "api samtest-ServerlessHttpApi", "queue samtest-Jobs", "queue samtest-WorkerNQQueue",
		"topic samtest-News", "stream samtest-Clicks"}
	if !slices.Equal(res.Unpruned, wantUnpruned) {
		t.Errorf("unpruned %v, want %v", res.Unpruned, wantUnpruned)
	}
	res, err = deploy(slim, true)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"api samtest-Rest deleted", "api samtest-ServerlessHttpApi deleted", "queue samtest-Jobs deleted",
		"queue samtest-WorkerNQQueue deleted", "stream samtest-Clicks deleted", "topic samtest-News deleted"}
	if got := changed(res); !slices.Equal(got, want) {
		t.Errorf("deploy --prune changed\n%v\nwant\n%v", got, want)
	}
	if _, err := sqc.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("samtest-Jobs")}); err == nil {
		t.Error("queue samtest-Jobs survived --prune")
	}
	if _, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("samtest-Clicks")}); err == nil {
		t.Error("stream samtest-Clicks survived --prune")
	}
	topics, err := snc.ListTopics(ctx, &sns.ListTopicsInput{})
	if err != nil || len(topics.Topics) != 0 {
		t.Errorf("topics after --prune: %v %v", topics, err)
	}
	if status, _, body := signed(t, "GET", url+"/flint/v1/apis/samtest-ServerlessHttpApi", key.AccessKeyID, key.SecretAccessKey, nil, time.Now(), nil); status != 404 {
		t.Errorf("the API after --prune: %d %s", status, body)
	}
	ms, err := lc.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms.EventSourceMappings {
		if aws.ToString(m.State) != "Deleting" {
			t.Errorf("mapping %s from %s survived", aws.ToString(m.UUID), aws.ToString(m.EventSourceArn))
		}
	}
	res, err = deploy(slim, true)
	if err != nil || len(res.Changes) != 0 {
		t.Errorf("deploy after --prune: %v, changes %v", err, changed(res))
	}
}
