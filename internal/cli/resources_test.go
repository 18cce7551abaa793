package cli

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// TestQueuesAndStreamsAgainstServer: flint queues and flint streams list what the SQS and
// Kinesis APIs made on a real in-process Flint, with depth, dead-letter queue, shards and the
// functions mapped to them.
func TestQueuesAndStreamsAgainstServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, _ := startServer(t, ctx, nil)
	creds := credentials.NewStaticCredentialsProvider("flint", "flint", "")
	q := sqs.New(sqs.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.URL()), Credentials: creds})
	k := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.URL()), Credentials: creds})

	for _, args := range [][]string{{"queues"}, {"streams"}, {"topics"}} {
		code, out, errOut := runCLI(t, ctx, args...)
		if code != 0 || out != "no "+args[0]+"\n" {
			t.Fatalf("flint %s with none: exit %d, %q %q", args[0], code, out, errOut)
		}
	}
	if _, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("jobs-dlq")}); err != nil {
		t.Fatal(err)
	}
	jobs, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("jobs"), Attributes: map[string]string{
		"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:jobs-dlq","maxReceiveCount":"3"}`}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: jobs.QueueUrl, MessageBody: aws.String("x")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := k.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("clicks"), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte("def handler(event, context):\n    return {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, ctx, "deploy", dir, "--name", "reader", "--runtime", "python3.12", "--handler", "app.handler"); code != 0 {
		t.Fatalf("deploy: %s", errOut)
	}
	lc, err := (&app{endpoint: s.URL()}).lambdaClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lc.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("reader"),
		EventSourceArn: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/clicks"), StartingPosition: types.EventSourcePositionTrimHorizon}); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runCLI(t, ctx, "queues")
	want := regexp.MustCompile(`(?m)^QUEUE +MESSAGES +IN-FLIGHT +DELAYED +DEAD-LETTER +FUNCTIONS\njobs +3 +0 +0 +jobs-dlq +-\njobs-dlq +0 +0 +0 +- +-\n$`)
	if code != 0 || !want.MatchString(out) {
		t.Fatalf("flint queues: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	want = regexp.MustCompile(`(?m)^STREAM +STATUS +MODE +SHARDS +RETENTION +FUNCTIONS\nclicks +ACTIVE +PROVISIONED +2 +24h +reader \(\d+ behind, oldest [^)]+\)\n$`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out, errOut = runCLI(t, ctx, "streams")
		if code == 0 && want.MatchString(out) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("flint streams: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
		}
		time.Sleep(200 * time.Millisecond) // the mapping's poller starts a moment after it is created
	}
	topics := sns.New(sns.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.URL()), Credentials: creds})
	topic, err := topics.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("news")})
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range []string{"arn:aws:sqs:us-east-1:000000000000:jobs", "arn:aws:lambda:us-east-1:000000000000:function:reader"} {
		proto := "sqs"
		if strings.Contains(ep, ":lambda:") {
			proto = "lambda"
		}
		if _, err := topics.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String(proto), Endpoint: aws.String(ep)}); err != nil {
			t.Fatal(err)
		}
	}
	if code, out, errOut := runCLI(t, ctx, "topics"); code != 0 || !regexp.MustCompile(`(?m)^TOPIC +SUBSCRIPTIONS +PENDING\nnews +lambda 1, sqs 1 +0\n$`).MatchString(out) {
		t.Fatalf("flint topics: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	if code, out, _ := runCLI(t, ctx, "queues", "--json"); code != 0 || !regexp.MustCompile(`^\{"queues":\[\{"name":"jobs",.*"messages":3,`).MatchString(out) {
		t.Fatalf("flint queues --json: exit %d, %s", code, out)
	}
}
