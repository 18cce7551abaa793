package server_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/server"
)

// newSQS is aws-sdk-go-v2's real SQS client (JSON 1.0) pointed at Flint.
func newSQS(url string) *sqs.Client {
	return sqs.New(sqs.Options{Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDFLINTTEST", "secret", ""), RetryMaxAttempts: 1})
}

func createQueue(t testing.TB, c *sqs.Client, name string, attrs map[string]string) string {
	t.Helper()
	out, err := c.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatalf("CreateQueue %s: %v", name, err)
	}
	return *out.QueueUrl
}

func queueCounts(t testing.TB, c *sqs.Client, url string) (visible, inflight, delayed int) {
	t.Helper()
	out, err := c.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	n := func(k string) int { v, _ := strconv.Atoi(out.Attributes[k]); return v }
	return n("ApproximateNumberOfMessages"), n("ApproximateNumberOfMessagesNotVisible"), n("ApproximateNumberOfMessagesDelayed")
}

func receive(t testing.TB, c *sqs.Client, url string, n int32, wait int32, mutate ...func(*sqs.ReceiveMessageInput)) []types.Message {
	t.Helper()
	in := &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: n, WaitTimeSeconds: wait,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"}}
	for _, m := range mutate {
		m(in)
	}
	out, err := c.ReceiveMessage(context.Background(), in)
	if err != nil {
		t.Fatalf("ReceiveMessage: %v", err)
	}
	return out.Messages
}

// TestSQSQueueLifecycle drives a standard queue through the real SDK client: create, send (one
// and a batch, with attributes), long-poll receive, visibility expiry and redelivery, change
// visibility, delete, purge, the counts, and the same message published by a NATS client.
func TestSQSQueueLifecycle(t *testing.T) {
	s := startServer(t, t.TempDir(), func(c *config.Config) { c.NATSListen = "127.0.0.1:0" })
	c := newSQS(s.URL())
	ctx := context.Background()
	url := createQueue(t, c, "orders", map[string]string{"VisibilityTimeout": "2"})
	if want := s.URL() + "/000000000000/orders"; url != want {
		t.Errorf("QueueUrl %s, want %s", url, want)
	}
	// CreateQueue again with the same attributes is the same queue; other values are refused.
	if again := createQueue(t, c, "orders", map[string]string{"VisibilityTimeout": "2"}); again != url {
		t.Errorf("second CreateQueue: %s", again)
	}
	_, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("orders"), Attributes: map[string]string{"VisibilityTimeout": "3"}})
	wantCode(t, err, "QueueAlreadyExists")
	got, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("orders")})
	if err != nil || *got.QueueUrl != url {
		t.Fatalf("GetQueueUrl: %v %v", got, err)
	}

	// The SDK checks MD5OfMessageBody; MD5OfMessageAttributes is checked against AWS's value.
	sent, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("first"),
		MessageAttributes: map[string]types.MessageAttributeValue{
			"kind": {DataType: aws.String("String"), StringValue: aws.String("order")},
			"n":    {DataType: aws.String("Number"), StringValue: aws.String("42")},
			"blob": {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	// The MD5 of these three attributes as computed by AWS's documented algorithm (checked in
	// internal/sqs's unit test against botocore's implementation).
	if sent.MD5OfMessageAttributes == nil || len(*sent.MD5OfMessageAttributes) != 32 {
		t.Errorf("MD5OfMessageAttributes %v", sent.MD5OfMessageAttributes)
	}
	batch, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: []types.SendMessageBatchRequestEntry{
		{Id: aws.String("a"), MessageBody: aws.String("second")},
		{Id: aws.String("b"), MessageBody: aws.String("third")},
	}})
	if err != nil || len(batch.Successful) != 2 || len(batch.Failed) != 0 {
		t.Fatalf("SendMessageBatch: %v %+v", err, batch)
	}
	// A NATS client's message on the queue's subject is the same kind of message.
	nc, err := nats.Connect(s.NATSURL(), nats.Token(s.NATSToken()))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "flint.queues.orders", Header: nats.Header{"color": {"red"}}, Data: []byte("from nats")}); err != nil {
		t.Fatal(err)
	}
	if v, inflight, _ := queueCounts(t, c, url); v != 4 || inflight != 0 {
		t.Errorf("counts after sending 4: visible %d, in flight %d", v, inflight)
	}

	msgs := receive(t, c, url, 10, 1)
	if len(msgs) != 4 {
		t.Fatalf("received %v, want 4 messages", bodies(msgs))
	}
	if m := msgs[3]; *m.Body != "from nats" || *m.MessageAttributes["color"].StringValue != "red" {
		t.Errorf("the NATS client's message reads %q %+v", *m.Body, m.MessageAttributes)
	}
	if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: msgs[3].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	msgs = msgs[:3]
	if *msgs[0].Body != "first" || *msgs[0].MessageId != *sent.MessageId {
		t.Errorf("first message %s %s, want first %s", *msgs[0].Body, *msgs[0].MessageId, *sent.MessageId)
	}
	if *msgs[0].MD5OfMessageAttributes != *sent.MD5OfMessageAttributes || *msgs[0].MessageAttributes["kind"].StringValue != "order" ||
		string(msgs[0].MessageAttributes["blob"].BinaryValue) != "\x00\x01\x02" {
		t.Errorf("attributes came back as %+v (md5 %s, sent %s)", msgs[0].MessageAttributes, *msgs[0].MD5OfMessageAttributes, *sent.MD5OfMessageAttributes)
	}
	if msgs[0].Attributes["ApproximateReceiveCount"] != "1" {
		t.Errorf("ApproximateReceiveCount %q", msgs[0].Attributes["ApproximateReceiveCount"])
	}
	if v, inflight, _ := queueCounts(t, c, url); v != 0 || inflight != 3 {
		t.Errorf("counts after receiving 3: visible %d, in flight %d", v, inflight)
	}
	// Delete the first; keep the second invisible longer; let the third's 2 s run out.
	if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: msgs[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url),
		ReceiptHandle: msgs[1].ReceiptHandle, VisibilityTimeout: 30}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	again := receive(t, c, url, 10, 10)
	if len(again) != 1 || *again[0].Body != "third" || again[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("after the visibility timeout got %v, want third once more", bodies(again))
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("third came back after %s, before its 2 s visibility timeout", d)
	}
	// Making it visible at once (0) hands it back to the next receive.
	if _, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url),
		ReceiptHandle: again[0].ReceiptHandle, VisibilityTimeout: 0}); err != nil {
		t.Fatal(err)
	}
	third := receive(t, c, url, 1, 5)
	if len(third) != 1 || *third[0].Body != "third" {
		t.Fatalf("after visibility 0: %v", bodies(third))
	}
	del, err := c.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: []types.DeleteMessageBatchRequestEntry{
		{Id: aws.String("x"), ReceiptHandle: third[0].ReceiptHandle}, {Id: aws.String("y"), ReceiptHandle: msgs[1].ReceiptHandle}}})
	if err != nil || len(del.Successful) != 2 {
		t.Fatalf("DeleteMessageBatch: %v %+v", err, del)
	}
	if v, inflight, _ := queueCounts(t, c, url); v != 0 || inflight != 0 {
		t.Errorf("counts after deleting all: visible %d, in flight %d", v, inflight)
	}

	// Purge empties the queue.
	for i := range 5 {
		if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: aws.String(url)}); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, c, url, 10, 0); len(m) != 0 {
		t.Errorf("after purge received %v", bodies(m))
	}
	list, err := c.ListQueues(ctx, &sqs.ListQueuesInput{})
	if err != nil || len(list.QueueUrls) != 1 || list.QueueUrls[0] != url {
		t.Errorf("ListQueues: %v %v", list, err)
	}
	if _, err := c.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(url)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("orders")})
	wantCode(t, err, "AWS.SimpleQueueService.NonExistentQueue")
	var dne *types.QueueDoesNotExist
	if !errors.As(err, &dne) {
		t.Errorf("GetQueueUrl of a deleted queue: %T %v, want *types.QueueDoesNotExist", err, err)
	}
}

func bodies(msgs []types.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, *m.Body)
	}
	return out
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want an API error %s", err, code)
	}
	if ae.ErrorCode() != code {
		t.Errorf("error code %s (%s), want %s", ae.ErrorCode(), ae.ErrorMessage(), code)
	}
}

// TestSQSQueryProtocolCLI runs Debian's AWS CLI v2, which speaks the query protocol to SQS
// (form bodies, XML answers): create, send, receive, delete, and an unknown queue's error.
func TestSQSQueryProtocolCLI(t *testing.T) {
	awsCLI := requireAWSCLI(t)
	s := startServer(t, t.TempDir())
	cli := func(args ...string) map[string]any {
		t.Helper()
		var out map[string]any
		b := runCLI(t, awsCLI, s.URL(), "AKIDFLINTTEST", "secret", append([]string{"sqs"}, args...)...)
		if len(strings.TrimSpace(string(b))) > 0 {
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatalf("aws sqs %s printed %s", strings.Join(args, " "), b)
			}
		}
		return out
	}
	created := cli("create-queue", "--queue-name", "cli-q", "--attributes", "VisibilityTimeout=5,DelaySeconds=0", "--tags", "team=a")
	url, _ := created["QueueUrl"].(string)
	if want := s.URL() + "/000000000000/cli-q"; url != want {
		t.Fatalf("create-queue: %v, want QueueUrl %s", created, want)
	}
	sent := cli("send-message", "--queue-url", url, "--message-body", "hello <cli> & co",
		"--message-attributes", `{"k":{"DataType":"String","StringValue":"v"},"b":{"DataType":"Binary","BinaryValue":"AAE="}}`)
	if sent["MD5OfMessageBody"] != bodyMD5Hex("hello <cli> & co") || sent["MessageId"] == "" || sent["MD5OfMessageAttributes"] == nil {
		t.Errorf("send-message: %v", sent)
	}
	got := cli("receive-message", "--queue-url", url, "--wait-time-seconds", "2", "--attribute-names", "All", "--message-attribute-names", "All")
	msgs, _ := got["Messages"].([]any)
	if len(msgs) != 1 {
		t.Fatalf("receive-message: %v", got)
	}
	m := msgs[0].(map[string]any)
	if m["Body"] != "hello <cli> & co" || m["MessageId"] != sent["MessageId"] || m["MD5OfMessageAttributes"] != sent["MD5OfMessageAttributes"] {
		t.Errorf("received %v, sent %v", m, sent)
	}
	if a := m["Attributes"].(map[string]any); a["ApproximateReceiveCount"] != "1" {
		t.Errorf("attributes %v", a)
	}
	cli("delete-message", "--queue-url", url, "--receipt-handle", m["ReceiptHandle"].(string))
	attrs := cli("get-queue-attributes", "--queue-url", url, "--attribute-names", "All")["Attributes"].(map[string]any)
	if attrs["ApproximateNumberOfMessages"] != "0" || attrs["ApproximateNumberOfMessagesNotVisible"] != "0" ||
		attrs["QueueArn"] != "arn:aws:sqs:us-east-1:000000000000:cli-q" || attrs["VisibilityTimeout"] != "5" {
		t.Errorf("get-queue-attributes after delete: %v", attrs)
	}
	if tags := cli("list-queue-tags", "--queue-url", url); fmt.Sprint(tags["Tags"]) != "map[team:a]" {
		t.Errorf("list-queue-tags: %v", tags)
	}
	// A batch of 11: refused whole, with AWS's code, in the query protocol's XML error.
	var entries []string
	for i := range 11 {
		entries = append(entries, fmt.Sprintf(`{"Id":"e%d","MessageBody":"x"}`, i))
	}
	cmd := cliCommand(t, awsCLI, s.URL(), "AKIDFLINTTEST", "secret", "sqs", "send-message-batch", "--queue-url", url, "--entries", "["+strings.Join(entries, ",")+"]")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "AWS.SimpleQueueService.TooManyEntriesInBatchRequest") {
		t.Errorf("send-message-batch of 11: %v %s", err, out)
	}
	// An unknown queue: the CLI prints AWS's code.
	cmd = cliCommand(t, awsCLI, s.URL(), "AKIDFLINTTEST", "secret", "sqs", "get-queue-url", "--queue-name", "nope")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "AWS.SimpleQueueService.NonExistentQueue") {
		t.Errorf("get-queue-url of a missing queue: %v %s", err, out)
	}
}

func bodyMD5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestSQSRejections sends every kind of bad input the SQS API refuses, through the SDK, and
// checks AWS's error codes and that nothing changed: no message sent, no queue made or altered.
func TestSQSRejections(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newSQS(s.URL())
	ctx := context.Background()
	url := createQueue(t, c, "strict", nil)
	// A Kinesis-like stream (limits retention, flint.streams.events.>) that a queue must not take.
	if _, err := s.JetStream().CreateStream(ctx, jetstream.StreamConfig{Name: "events", Subjects: []string{"flint.streams.events.>"}}); err != nil {
		t.Fatal(err)
	}
	streamsBefore := streamConfigs(t, s)
	entries := func(n int, id func(i int) string) []types.SendMessageBatchRequestEntry {
		var out []types.SendMessageBatchRequestEntry
		for i := range n {
			out = append(out, types.SendMessageBatchRequestEntry{Id: aws.String(id(i)), MessageBody: aws.String("x")})
		}
		return out
	}
	for _, tc := range []struct {
		name string
		call func() error
		code string
	}{
		{"unknown queue", func() error {
			_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(s.URL() + "/000000000000/missing"), MessageBody: aws.String("x")})
			return err
		}, "AWS.SimpleQueueService.NonExistentQueue"},
		{"another account's queue", func() error {
			_, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(s.URL() + "/111111111111/strict")})
			return err
		}, "AWS.SimpleQueueService.NonExistentQueue"},
		{"message over 256 KiB", func() error {
			_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(strings.Repeat("a", 262145))})
			return err
		}, "InvalidParameterValue"},
		{"attributes push it over", func() error {
			_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(strings.Repeat("a", 262140)),
				MessageAttributes: map[string]types.MessageAttributeValue{"key": {DataType: aws.String("String"), StringValue: aws.String("value")}}})
			return err
		}, "InvalidParameterValue"},
		{"batch of 11", func() error {
			_, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries(11, func(i int) string { return fmt.Sprint("e", i) })})
			return err
		}, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"},
		{"duplicate batch ids", func() error {
			_, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries(3, func(i int) string { return "same" })})
			return err
		}, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"},
		{"empty batch", func() error {
			_, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: []types.SendMessageBatchRequestEntry{}})
			return err
		}, "AWS.SimpleQueueService.EmptyBatchRequest"},
		{"empty delete batch", func() error {
			_, err := c.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: []types.DeleteMessageBatchRequestEntry{}})
			return err
		}, "AWS.SimpleQueueService.EmptyBatchRequest"},
		{"delay over 900", func() error {
			_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x"), DelaySeconds: 901})
			return err
		}, "InvalidParameterValue"},
		{"bad attribute type", func() error {
			_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x"),
				MessageAttributes: map[string]types.MessageAttributeValue{"k": {DataType: aws.String("Blob"), StringValue: aws.String("v")}}})
			return err
		}, "InvalidParameterValue"},
		{"a header in the trace header", func() error {
			_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x"),
				MessageSystemAttributes: map[string]types.MessageSystemAttributeValue{"AWSTraceHeader": {DataType: aws.String("String"),
					StringValue: aws.String("Root=1-5759e988-bd862e3fe1be46a994272793\r\nSqs-Message-Id: forged")}}})
			return err
		}, "InvalidParameterValue"},
		{"receive 11", func() error {
			_, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 11})
			return err
		}, "InvalidParameterValue"},
		{"wait 21 s", func() error {
			_, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 21})
			return err
		}, "InvalidParameterValue"},
		{"forged receipt handle", func() error {
			_, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: aws.String("not-a-handle")})
			return err
		}, "ReceiptHandleIsInvalid"},
		{"bad queue attribute value", func() error {
			_, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("bad"), Attributes: map[string]string{"VisibilityTimeout": "43201"}})
			return err
		}, "InvalidAttributeValue"},
		{"unknown queue attribute", func() error {
			_, err := c.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: map[string]string{"Colour": "red"}})
			return err
		}, "InvalidAttributeName"},
		{"redrive to a missing queue", func() error {
			_, err := c.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: map[string]string{
				"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:nowhere","maxReceiveCount":3}`}})
			return err
		}, "InvalidParameterValue"},
		{"bad queue name", func() error {
			_, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("no spaces")})
			return err
		}, "InvalidParameterValue"},
		{"a name of Flint's own streams", func() error {
			_, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("KV_flint_functions")})
			return err
		}, "InvalidParameterValue"},
		{"the async queue's stream", func() error {
			_, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("FLINT_ASYNC")})
			return err
		}, "InvalidParameterValue"},
		{"a stream that is not a queue", func() error {
			_, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("events")})
			return err
		}, "InvalidParameterValue"},
		{"fifo name without the attribute", func() error {
			_, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("q.fifo")})
			return err
		}, "InvalidParameterValue"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.call(), tc.code) })
	}
	// Nothing changed: the queue is empty, its attributes are the defaults, no other queue.
	if v, inflight, delayed := queueCounts(t, c, url); v+inflight+delayed != 0 {
		t.Errorf("after the rejections the queue holds %d/%d/%d messages", v, inflight, delayed)
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{"All"}})
	if err != nil || attrs.Attributes["RedrivePolicy"] != "" || attrs.Attributes["VisibilityTimeout"] != "30" {
		t.Errorf("attributes after the rejections: %v %v", attrs.Attributes, err)
	}
	list, err := c.ListQueues(ctx, &sqs.ListQueuesInput{})
	if err != nil || len(list.QueueUrls) != 1 {
		t.Errorf("queues after the rejections: %v %v", list.QueueUrls, err)
	}
	if d := cmp.Diff(streamsBefore, streamConfigs(t, s)); d != "" {
		t.Errorf("streams changed by rejected requests (-before +after):\n%s", d)
	}
	// The JSON protocol's wire: __type and the x-amzn-query-error header, as AWS sends them.
	req, _ := http.NewRequest("POST", s.URL()+"/", strings.NewReader(`{"QueueName":"missing"}`))
	req.Header.Set("X-Amz-Target", "AmazonSQS.GetQueueUrl")
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || resp.Header.Get("X-Amzn-Query-Error") != "AWS.SimpleQueueService.NonExistentQueue;Sender" ||
		!strings.Contains(string(b), `"__type":"com.amazonaws.sqs#QueueDoesNotExist"`) {
		t.Errorf("unsigned JSON GetQueueUrl of a missing queue: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	// The query protocol posted to the queue's URL without QueueUrl (older clients) names it.
	resp, err = http.Post(url, "application/x-www-form-urlencoded", strings.NewReader("Action=GetQueueAttributes&AttributeName.1=QueueArn&Version=2012-11-05"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `<GetQueueAttributesResult><Attribute><Name>QueueArn</Name><Value>arn:aws:sqs:us-east-1:000000000000:strict</Value></Attribute></GetQueueAttributesResult>`; resp.StatusCode != 200 || !strings.Contains(string(b), want) {
		t.Errorf("query GetQueueAttributes at the queue URL: %d %s", resp.StatusCode, b)
	}
}

// TestSQSFIFOAndDeadLetter: a FIFO queue keeps each group's order through a failure and
// deduplicates; a message received maxReceiveCount times moves to the dead-letter queue; a
// delayed message waits its DelaySeconds.
func TestSQSFIFOAndDeadLetter(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newSQS(s.URL())
	ctx := context.Background()
	fifo := createQueue(t, c, "jobs.fifo", map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true", "VisibilityTimeout": "1"})
	var want []string
	for i := range 6 {
		group := []string{"g1", "g2"}[i%2]
		body := fmt.Sprintf("%s-%d", group, i)
		want = append(want, body)
		if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(fifo), MessageBody: aws.String(body), MessageGroupId: aws.String(group)}); err != nil {
			t.Fatal(err)
		}
	}
	// The same body again (content-based deduplication): accepted, not delivered twice.
	dup, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(fifo), MessageBody: aws.String("g1-0"), MessageGroupId: aws.String("g1")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(fifo), MessageBody: aws.String("x")})
	wantCode(t, err, "MissingParameter")
	var got []string
	failedOnce := false
	for len(got) < len(want) {
		msgs := receive(t, c, fifo, 10, 5)
		if len(msgs) == 0 {
			t.Fatalf("FIFO queue ran dry after %v", got)
		}
		for _, m := range msgs {
			if *m.Body == "g1-2" && !failedOnce { // not deleted: comes back after 1 s, before g1-4
				failedOnce = true
				continue
			}
			got = append(got, *m.Body)
			if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(fifo), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, g := range []string{"g1", "g2"} {
		var order []string
		for _, b := range got {
			if strings.HasPrefix(b, g) {
				order = append(order, b)
			}
		}
		for i := 1; i < len(order); i++ {
			if order[i-1] > order[i] {
				t.Errorf("group %s came in order %v", g, order)
			}
		}
	}
	if len(got) != 6 || dup.MessageId == nil {
		t.Errorf("FIFO delivered %v", got)
	}

	dlq := createQueue(t, c, "dead", nil)
	src := createQueue(t, c, "src", map[string]string{"VisibilityTimeout": "1",
		"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dead","maxReceiveCount":"2"}`})
	sent, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(src), MessageBody: aws.String("poison")})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if m := receive(t, c, src, 1, 5); len(m) != 1 {
			t.Fatalf("receive %d of the poison message: %v", i+1, bodies(m))
		}
	}
	if m := receive(t, c, src, 1, 3); len(m) != 0 {
		t.Errorf("a third receive got %v; it should have moved to the dead-letter queue", bodies(m))
	}
	// The policy reads back as AWS writes it (a number, though given as a string); the same
	// CreateQueue again is the same queue.
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(src), AttributeNames: []types.QueueAttributeName{"RedrivePolicy"}})
	if want := `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dead","maxReceiveCount":2}`; err != nil || attrs.Attributes["RedrivePolicy"] != want {
		t.Errorf("RedrivePolicy reads %q (%v), want %s", attrs.Attributes["RedrivePolicy"], err, want)
	}
	createQueue(t, c, "src", map[string]string{"VisibilityTimeout": "1",
		"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dead","maxReceiveCount":"2"}`})
	dead := receive(t, c, dlq, 1, 5)
	if len(dead) != 1 || *dead[0].Body != "poison" || *dead[0].MessageId != *sent.MessageId ||
		dead[0].Attributes["DeadLetterQueueSourceArn"] != "arn:aws:sqs:us-east-1:000000000000:src" {
		t.Fatalf("dead-letter queue holds %v", dead)
	}

	// DelaySeconds: the message is counted delayed, then arrives.
	if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(src), MessageBody: aws.String("later"), DelaySeconds: 2}); err != nil {
		t.Fatal(err)
	}
	if v, _, delayed := queueCounts(t, c, src); v != 0 || delayed != 1 {
		t.Errorf("a delayed message counts visible %d, delayed %d", v, delayed)
	}
	if m := receive(t, c, src, 1, 0); len(m) != 0 {
		t.Errorf("a delayed message was received at once: %v", bodies(m))
	}
	later := receive(t, c, src, 1, 10)
	if len(later) != 1 || *later[0].Body != "later" || later[0].Attributes["ApproximateReceiveCount"] != "1" {
		t.Fatalf("after the delay: %v", later)
	}
	if _, _, delayed := queueCounts(t, c, src); delayed != 0 {
		t.Errorf("delayed %d after delivery", delayed)
	}
}

// sqsWorker handles SQS events from arn:aws:sqs queues: it records "ok" lines (body, messageId,
// receive count) and reported failures in DIR. Bodies that are multiples of 10 fail on their
// first receive; "poison" always fails.
const sqsWorker = `import os, json
D = os.environ['DIR']
def handler(event, context):
    fails, ok = [], []
    for r in event['Records']:
        assert r['eventSource'] == 'aws:sqs' and r['eventSourceARN'] == 'arn:aws:sqs:us-east-1:000000000000:' + os.environ['QUEUE'], r
        assert r['messageAttributes']['n']['dataType'] == 'Number' and r['md5OfMessageAttributes'], r
        b, rc = r['body'], int(r['attributes']['ApproximateReceiveCount'])
        if b == 'poison' or (b.isdigit() and int(b) % 10 == 0 and rc == 1):
            fails.append({'itemIdentifier': r['messageId']})
        else:
            ok.append('%s %s %d\n' % (b, r['messageId'], rc))
    with open(os.path.join(D, 'ok'), 'a') as f:
        f.write(''.join(ok))
    with open(os.path.join(D, 'failed'), 'a') as f:
        f.write(''.join(x['itemIdentifier'] + '\n' for x in fails))
    return {'batchItemFailures': fails}
`

// TestSQSLambdaMapping maps a function to an arn:aws:sqs queue with ReportBatchItemFailures:
// 500 messages sent with SendMessageBatch, 10% failing once, are all processed, the failed ones
// retried with the same messageId, a poison message ends in the dead-letter queue after
// maxReceiveCount, and the queue is empty after. Bad mappings are refused.
func TestSQSLambdaMapping(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	q := newSQS(s.URL())
	ctx := context.Background()
	dir := t.TempDir()
	dlq := createQueue(t, q, "work-dlq", nil)
	url := createQueue(t, q, "work", map[string]string{"VisibilityTimeout": "1"})
	createFunction(t, c, "sqs-worker", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: sqsWorker}}),
		func(in *lambda.CreateFunctionInput) {
			in.Environment = &lambdatypes.Environment{Variables: map[string]string{"DIR": dir, "QUEUE": "work"}}
		})
	const arn = "arn:aws:sqs:us-east-1:000000000000:work"
	for _, bad := range []struct {
		name string
		in   lambda.CreateEventSourceMappingInput
		want string
	}{
		{"missing queue", lambda.CreateEventSourceMappingInput{EventSourceArn: aws.String(arn + "-nope")}, "InvalidParameterValueException"},
		{"batch over 10 without a window", lambda.CreateEventSourceMappingInput{EventSourceArn: aws.String(arn), BatchSize: aws.Int32(100)}, "InvalidParameterValueException"},
	} {
		in := bad.in
		in.FunctionName = aws.String("sqs-worker")
		_, err := c.CreateEventSourceMapping(ctx, &in)
		wantCode(t, err, bad.want)
	}
	// Flint's extensions for arn:flint queues: the SQS queue's own attributes decide instead.
	if status, out := postJSON(t, s.URL()+"/2015-03-31/event-source-mappings", map[string]any{
		"EventSourceArn": arn, "FunctionName": "sqs-worker", "MaximumReceiveCount": 3}); status != 400 || out["Type"] != "User" {
		t.Errorf("MaximumReceiveCount on an SQS mapping: %d %v", status, out)
	}
	if list, err := c.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{}); err != nil || len(list.EventSourceMappings) != 0 {
		t.Fatalf("mappings after the refusals: %v %v", list, err)
	}

	m, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("sqs-worker"),
		EventSourceArn: aws.String(arn), BatchSize: aws.Int32(10), FunctionResponseTypes: []lambdatypes.FunctionResponseType{"ReportBatchItemFailures"},
		ScalingConfig: &lambdatypes.ScalingConfig{MaximumConcurrency: aws.Int32(4)}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "mapping Enabled", 10*time.Second, func() bool {
		got, err := c.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: m.UUID})
		return err == nil && aws.ToString(got.State) == "Enabled"
	})
	// The dead-letter queue is set after the mapping started: the running mapping follows it.
	if _, err := q.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: map[string]string{
		"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:work-dlq","maxReceiveCount":3}`}}); err != nil {
		t.Fatal(err)
	}
	const n = 500
	for b := 0; b < n/10; b++ {
		var entries []types.SendMessageBatchRequestEntry
		for i := b * 10; i < b*10+10; i++ {
			entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint("m", i)), MessageBody: aws.String(strconv.Itoa(i)),
				MessageAttributes: map[string]types.MessageAttributeValue{"n": {DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(i))}}})
		}
		out, err := q.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
		if err != nil || len(out.Failed) != 0 {
			t.Fatalf("SendMessageBatch: %v %+v", err, out)
		}
	}
	if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("poison"),
		MessageAttributes: map[string]types.MessageAttributeValue{"n": {DataType: aws.String("Number"), StringValue: aws.String("-1")}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every message processed", 2*time.Minute, func() bool { return len(okBodies(t, dir)) >= n })
	ok := okBodies(t, dir)
	failed := map[string]bool{}
	for _, id := range readLines(t, filepath.Join(dir, "failed")) {
		failed[id] = true
	}
	for i := range n {
		mid := ok[strconv.Itoa(i)]
		switch {
		case mid == "":
			t.Errorf("message %d never processed", i)
		case i%10 == 0 && !failed[mid]:
			t.Errorf("message %d (%s) was not failed once and retried with the same messageId", i, mid)
		}
	}
	// The poison message is received maxReceiveCount (3) times, then moved.
	var dead []types.Message
	waitFor(t, "poison message in the dead-letter queue", time.Minute, func() bool {
		dead = receive(t, q, dlq, 1, 1)
		return len(dead) == 1
	})
	if *dead[0].Body != "poison" || dead[0].Attributes["DeadLetterQueueSourceArn"] != arn {
		t.Errorf("dead-letter queue holds %s %v", *dead[0].Body, dead[0].Attributes)
	}
	waitFor(t, "queue empty", 30*time.Second, func() bool {
		v, inflight, delayed := queueCounts(t, q, url)
		return v+inflight+delayed == 0
	})
	if got := len(readLines(t, filepath.Join(dir, "failed"))); got != n/10+3 {
		t.Errorf("%d failures reported, want %d (each tenth message once, poison 3 times)", got, n/10+3)
	}
}

// fifoWorker records "GROUP SEQ" for each record it handles in DIR/fifo. A message whose SEQ is
// 3 more than a multiple of 7 fails on its first receive, and so do the records after it of its
// group in the batch, as a FIFO handler must report them.
const fifoWorker = `import os
D = os.environ['DIR']
def handler(event, context):
    fails, ok, stopped = [], [], set()
    for r in event['Records']:
        g, rc = r['attributes']['MessageGroupId'], int(r['attributes']['ApproximateReceiveCount'])
        seq = int(r['body'].split(':')[1])
        if g in stopped or (seq % 7 == 3 and rc == 1):
            stopped.add(g)
            fails.append({'itemIdentifier': r['messageId']})
            continue
        ok.append('%s %d\n' % (g, seq))
    with open(os.path.join(D, 'fifo'), 'a') as f:
        f.write(''.join(ok))
    return {'batchItemFailures': fails}
`

// TestSQSFIFOMappingSurvivesRestart: a FIFO queue mapped to a function keeps each message
// group's order through failures, and loses nothing across a restart in the middle.
func TestSQSFIFOMappingSurvivesRestart(t *testing.T) {
	data, dir := t.TempDir(), t.TempDir()
	s := startServer(t, data)
	c := newClient(s.URL())
	q := newSQS(s.URL())
	ctx := context.Background()
	url := createQueue(t, q, "ordered.fifo", map[string]string{"FifoQueue": "true", "VisibilityTimeout": "1"})
	createFunction(t, c, "fifo-worker", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: fifoWorker}}),
		func(in *lambda.CreateFunctionInput) {
			in.Environment = &lambdatypes.Environment{Variables: map[string]string{"DIR": dir}}
		})
	if _, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("fifo-worker"),
		EventSourceArn: aws.String("arn:aws:sqs:us-east-1:000000000000:ordered.fifo"), BatchSize: aws.Int32(10),
		FunctionResponseTypes: []lambdatypes.FunctionResponseType{"ReportBatchItemFailures"}}); err != nil {
		t.Fatal(err)
	}
	const groups, per = 3, 15
	var entries []types.SendMessageBatchRequestEntry
	flush := func() {
		if len(entries) == 0 {
			return
		}
		out, err := q.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
		if err != nil || len(out.Failed) != 0 {
			t.Fatalf("SendMessageBatch: %v %+v", err, out)
		}
		entries = nil
	}
	for i := range per {
		for g := range groups {
			id := fmt.Sprintf("g%d-%d", g, i)
			entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(id), MessageBody: aws.String(fmt.Sprintf("g%d:%d", g, i)),
				MessageGroupId: aws.String(fmt.Sprint("g", g)), MessageDeduplicationId: aws.String(id)})
			if len(entries) == 10 {
				flush()
			}
		}
	}
	flush()
	lines := func() []string {
		return strings.Split(strings.TrimSpace(readFile(t, filepath.Join(dir, "fifo"))), "\n")
	}
	waitFor(t, "some messages processed", time.Minute, func() bool { return len(lines()) >= 10 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	before := len(lines())
	s = startServer(t, data)
	q = newSQS(s.URL())
	waitFor(t, "every message processed after the restart", 2*time.Minute, func() bool {
		seen := map[string]bool{}
		for _, l := range lines() {
			seen[l] = true
		}
		return len(seen) >= groups*per
	})
	t.Logf("%d messages processed before the restart", before)
	last := map[string]int{}
	for _, l := range lines() {
		var g string
		var n int
		if _, err := fmt.Sscanf(l, "%s %d", &g, &n); err != nil {
			t.Fatalf("line %q", l)
		}
		if prev, ok := last[g]; ok && n < prev {
			t.Errorf("group %s: %d after %d", g, n, prev)
		}
		last[g] = n
	}
	waitFor(t, "queue empty", 30*time.Second, func() bool {
		v, inflight, _ := queueCounts(t, q, s.URL()+"/000000000000/ordered.fifo")
		return v+inflight == 0
	})
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// TestSQSAttributesTagsAndLongPoll: a long poll returns as soon as a message comes, not at its
// end; SetQueueAttributes changes the visibility timeout receives get; ChangeMessageVisibility
// in a batch; tags; ListQueues by prefix and in pages.
func TestSQSAttributesTagsAndLongPoll(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newSQS(s.URL())
	ctx := context.Background()
	url := createQueue(t, c, "poll", nil)

	got := make(chan []types.Message, 1)
	start := time.Now()
	go func() {
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 20, MaxNumberOfMessages: 10,
			AttributeNames: []types.QueueAttributeName{"ApproximateReceiveCount"}}) // the older name of the system attributes
		if err != nil {
			t.Error(err)
		}
		got <- out.Messages
	}()
	time.Sleep(300 * time.Millisecond)
	if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("wake")}); err != nil {
		t.Fatal(err)
	}
	msgs := <-got
	if len(msgs) != 1 || *msgs[0].Body != "wake" || msgs[0].Attributes["ApproximateReceiveCount"] != "1" || len(msgs[0].Attributes) != 1 {
		t.Fatalf("long poll got %+v", msgs)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("the long poll returned after %s, not when the message came", d)
	}
	// The queue's visibility timeout, changed, applies to the next receives.
	if _, err := c.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: map[string]string{"VisibilityTimeout": "1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: msgs[0].ReceiptHandle, VisibilityTimeout: 0}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("two")}); err != nil {
		t.Fatal(err)
	}
	both := receive(t, c, url, 10, 5)
	for len(both) < 2 {
		more := receive(t, c, url, 10, 5)
		if len(more) == 0 {
			t.Fatalf("got %v, want wake and two", bodies(both))
		}
		both = append(both, more...)
	}
	// Keep both invisible for a minute in one batch call; a forged entry fails alone.
	res, err := c.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(url), Entries: []types.ChangeMessageVisibilityBatchRequestEntry{
		{Id: aws.String("a"), ReceiptHandle: both[0].ReceiptHandle, VisibilityTimeout: 60},
		{Id: aws.String("b"), ReceiptHandle: both[1].ReceiptHandle, VisibilityTimeout: 60},
		{Id: aws.String("c"), ReceiptHandle: aws.String("forged"), VisibilityTimeout: 60}}})
	if err != nil || len(res.Successful) != 2 || len(res.Failed) != 1 || aws.ToString(res.Failed[0].Code) != "ReceiptHandleIsInvalid" || !res.Failed[0].SenderFault {
		t.Fatalf("ChangeMessageVisibilityBatch: %v %+v", err, res)
	}
	if m := receive(t, c, url, 10, 2); len(m) != 0 {
		t.Errorf("messages kept invisible came back: %v", bodies(m))
	}
	if _, inflight, _ := queueCounts(t, c, url); inflight != 2 {
		t.Errorf("%d in flight, want 2", inflight)
	}

	if _, err := c.TagQueue(ctx, &sqs.TagQueueInput{QueueUrl: aws.String(url), Tags: map[string]string{"team": "a", "env": "dev"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UntagQueue(ctx, &sqs.UntagQueueInput{QueueUrl: aws.String(url), TagKeys: []string{"env"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := c.ListQueueTags(ctx, &sqs.ListQueueTagsInput{QueueUrl: aws.String(url)})
	if err != nil || len(tags.Tags) != 1 || tags.Tags["team"] != "a" {
		t.Errorf("ListQueueTags: %v %v", tags, err)
	}

	for _, n := range []string{"poll-b", "poll-c", "other"} {
		createQueue(t, c, n, nil)
	}
	var pages [][]string
	var token *string
	for {
		out, err := c.ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: aws.String("poll"), MaxResults: aws.Int32(2), NextToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, out.QueueUrls)
		if token = out.NextToken; token == nil {
			break
		}
	}
	want := [][]string{{url, s.URL() + "/000000000000/poll-b"}, {s.URL() + "/000000000000/poll-c"}}
	if fmt.Sprint(pages) != fmt.Sprint(want) {
		t.Errorf("ListQueues pages %v, want %v", pages, want)
	}
}

// TestSQSSigned: with access keys, the SDK (JSON 1.0) and the CLI (query protocol, a form body
// the signature covers) work with a valid key; a wrong secret is refused in each protocol's
// shape, and an unsigned SQS call too.
func TestSQSSigned(t *testing.T) {
	data := t.TempDir()
	key := createAccessKey(t, data, "test")
	s := startServer(t, data)
	ctx := context.Background()
	c := sqs.New(sqs.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.URL()),
		Credentials: credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, ""), RetryMaxAttempts: 1})
	url := createQueue(t, c, "signed", nil)
	if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("ok")}); err != nil {
		t.Fatal(err)
	}
	bad := sqs.New(sqs.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.URL()),
		Credentials: credentials.NewStaticCredentialsProvider(key.AccessKeyID, "wrong"+key.SecretAccessKey[5:], ""), RetryMaxAttempts: 1})
	_, err := bad.ListQueues(ctx, &sqs.ListQueuesInput{})
	wantCode(t, err, "InvalidSignatureException")

	awsCLI := requireAWSCLI(t)
	out := runCLI(t, awsCLI, s.URL(), key.AccessKeyID, key.SecretAccessKey, "sqs", "receive-message", "--queue-url", url, "--wait-time-seconds", "2")
	if !strings.Contains(string(out), `"Body": "ok"`) {
		t.Errorf("signed CLI receive-message printed %s", out)
	}
	cmd := cliCommand(t, awsCLI, s.URL(), key.AccessKeyID, "wrong"+key.SecretAccessKey[5:], "sqs", "list-queues")
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "InvalidSignatureException") {
		t.Errorf("CLI with a wrong secret: %v %s", err, b)
	}
	resp, err := http.Post(s.URL()+"/", "application/x-www-form-urlencoded", strings.NewReader("Action=ListQueues"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 400 || !strings.Contains(string(b), "<ErrorResponse") || resp.Header.Get("X-Amzn-Query-Error") == "" {
		t.Errorf("unsigned query call: %d %s", resp.StatusCode, b)
	}
}

// TestSQSRedriveMoveTask: messages that went to a dead-letter queue are listed by source, moved
// back by StartMessageMoveTask (to each message's source, ids kept), and a slow task can be
// cancelled; bad requests get AWS's errors.
func TestSQSRedriveMoveTask(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newSQS(s.URL())
	ctx := context.Background()
	dlq := createQueue(t, c, "rd-dlq", nil)
	const dlqArn = "arn:aws:sqs:us-east-1:000000000000:rd-dlq"
	src := createQueue(t, c, "rd-src", map[string]string{"VisibilityTimeout": "1",
		"RedrivePolicy": `{"deadLetterTargetArn":"` + dlqArn + `","maxReceiveCount":1}`})
	ids := map[string]bool{}
	for i := range 5 {
		out, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(src), MessageBody: aws.String(fmt.Sprint("m", i))})
		if err != nil {
			t.Fatal(err)
		}
		ids[*out.MessageId] = true
	}
	for got := 0; got < 5; {
		got += len(receive(t, c, src, 10, 2))
	}
	waitFor(t, "all five in the dead-letter queue", 30*time.Second, func() bool {
		receive(t, c, src, 10, 1) // the receive that finds them past maxReceiveCount moves them
		v, _, _ := queueCounts(t, c, dlq)
		return v == 5
	})
	srcs, err := c.ListDeadLetterSourceQueues(ctx, &sqs.ListDeadLetterSourceQueuesInput{QueueUrl: aws.String(dlq)})
	if err != nil || len(srcs.QueueUrls) != 1 || srcs.QueueUrls[0] != src {
		t.Errorf("ListDeadLetterSourceQueues: %v %v", srcs, err)
	}

	_, err = c.StartMessageMoveTask(ctx, &sqs.StartMessageMoveTaskInput{SourceArn: aws.String("arn:aws:sqs:us-east-1:000000000000:rd-src")})
	wantCode(t, err, "InvalidParameterValue") // not a dead-letter queue
	_, err = c.StartMessageMoveTask(ctx, &sqs.StartMessageMoveTaskInput{SourceArn: aws.String("arn:aws:sqs:us-east-1:000000000000:nope")})
	wantCode(t, err, "ResourceNotFoundException")

	// A slow task, cancelled after a message or two.
	slow, err := c.StartMessageMoveTask(ctx, &sqs.StartMessageMoveTaskInput{SourceArn: aws.String(dlqArn), MaxNumberOfMessagesPerSecond: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.StartMessageMoveTask(ctx, &sqs.StartMessageMoveTaskInput{SourceArn: aws.String(dlqArn)})
	wantCode(t, err, "AWS.SimpleQueueService.UnsupportedOperation") // one task at a time
	time.Sleep(1500 * time.Millisecond)
	if _, err := c.CancelMessageMoveTask(ctx, &sqs.CancelMessageMoveTaskInput{TaskHandle: slow.TaskHandle}); err != nil {
		t.Fatal(err)
	}
	task := func() types.ListMessageMoveTasksResultEntry {
		out, err := c.ListMessageMoveTasks(ctx, &sqs.ListMessageMoveTasksInput{SourceArn: aws.String(dlqArn)})
		if err != nil || len(out.Results) != 1 {
			t.Fatalf("ListMessageMoveTasks: %v %v", out, err)
		}
		return out.Results[0]
	}
	waitFor(t, "the slow task cancelled", 10*time.Second, func() bool { return aws.ToString(task().Status) == "CANCELLED" })
	if moved := task().ApproximateNumberOfMessagesMoved; moved < 1 || moved >= 5 {
		t.Errorf("the cancelled task moved %d of 5", moved)
	}

	// A task at full speed moves the rest back to rd-src.
	if _, err := c.StartMessageMoveTask(ctx, &sqs.StartMessageMoveTaskInput{SourceArn: aws.String(dlqArn)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the task completed", 10*time.Second, func() bool { return aws.ToString(task().Status) == "COMPLETED" })
	if e := task(); aws.ToInt64(e.ApproximateNumberOfMessagesToMove) != e.ApproximateNumberOfMessagesMoved || e.TaskHandle != nil {
		t.Errorf("completed task: %+v", e)
	}
	back := map[string]bool{}
	for len(back) < 5 {
		msgs := receive(t, c, src, 10, 3)
		if len(msgs) == 0 {
			t.Fatalf("only %d messages came back", len(back))
		}
		for _, m := range msgs {
			if !ids[*m.MessageId] || m.Attributes["DeadLetterQueueSourceArn"] != "" {
				t.Errorf("moved back: %s %v", *m.MessageId, m.Attributes)
			}
			back[*m.MessageId] = true
			if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(src), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if v, inflight, _ := queueCounts(t, c, dlq); v+inflight != 0 {
		t.Errorf("the dead-letter queue still holds %d/%d", v, inflight)
	}
}

// TestSQSLargeAttributes: attributes beyond what a JetStream header holds (64 KiB) still travel
// with their message: received, dead-lettered and moved back intact, MD5 as sent.
func TestSQSLargeAttributes(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newSQS(s.URL())
	ctx := context.Background()
	createQueue(t, c, "big-dlq", nil)
	url := createQueue(t, c, "big", map[string]string{"VisibilityTimeout": "1",
		"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:big-dlq","maxReceiveCount":1}`})
	attrs := map[string]types.MessageAttributeValue{
		"text": {DataType: aws.String("String"), StringValue: aws.String(strings.Repeat("t", 150000))},
		"blob": {DataType: aws.String("Binary"), BinaryValue: bytes.Repeat([]byte{7}, 100000)},
	}
	sent, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("body"), MessageAttributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	check := func(where string, m types.Message) {
		t.Helper()
		if *m.Body != "body" || *m.MD5OfMessageAttributes != *sent.MD5OfMessageAttributes ||
			len(*m.MessageAttributes["text"].StringValue) != 150000 || len(m.MessageAttributes["blob"].BinaryValue) != 100000 {
			t.Errorf("%s: body %q, attributes md5 %v (sent %s)", where, *m.Body, m.MD5OfMessageAttributes, *sent.MD5OfMessageAttributes)
		}
	}
	got := receive(t, c, url, 1, 5)
	if len(got) != 1 {
		t.Fatal("not received")
	}
	check("received", got[0])
	var dead []types.Message
	waitFor(t, "dead-lettered", 20*time.Second, func() bool {
		receive(t, c, url, 1, 1)
		dead = receive(t, c, s.URL()+"/000000000000/big-dlq", 1, 0)
		return len(dead) == 1
	})
	check("dead-lettered", dead[0])
}

// slowWorker takes 2.5 s per batch and records each record it is given.
const slowWorker = `import os, time
def handler(event, context):
    time.sleep(2.5)
    with open(os.path.join(os.environ['DIR'], 'seen'), 'a') as f:
        for r in event['Records']:
            f.write('%s %s\n' % (r['body'], r['attributes']['ApproximateReceiveCount']))
`

// TestSQSVisibilityWhileRunning: a batch that runs longer than its queue's visibility timeout is
// not handed to another invocation meanwhile (the mapping keeps it in flight while it runs);
// a queue whose VisibilityTimeout is 0 hands a received message to the next receive at once.
func TestSQSVisibilityWhileRunning(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	q := newSQS(s.URL())
	ctx := context.Background()
	dir := t.TempDir()
	url := createQueue(t, q, "slow", map[string]string{"VisibilityTimeout": "1"})
	createFunction(t, c, "slow-worker", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: slowWorker}}),
		func(in *lambda.CreateFunctionInput) {
			in.Environment = &lambdatypes.Environment{Variables: map[string]string{"DIR": dir}}
		})
	if _, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("slow-worker"),
		EventSourceArn: aws.String("arn:aws:sqs:us-east-1:000000000000:slow")}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("once")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the message handled", time.Minute, func() bool { return readFile(t, filepath.Join(dir, "seen")) != "" })
	time.Sleep(3 * time.Second) // a second invocation, had there been one, would have finished by now
	if got := readFile(t, filepath.Join(dir, "seen")); got != "once 1\n" {
		t.Errorf("the function saw %q, want the message once", got)
	}
	waitFor(t, "queue empty", 10*time.Second, func() bool {
		v, inflight, _ := queueCounts(t, q, url)
		return v+inflight == 0
	})

	zero := createQueue(t, q, "zero", map[string]string{"VisibilityTimeout": "0"})
	if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(zero), MessageBody: aws.String("z")}); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, q, zero, 1, 2); len(m) != 1 {
		t.Fatal("not received")
	}
	if m := receive(t, q, zero, 1, 2); len(m) != 1 || m[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Errorf("with VisibilityTimeout 0 the second receive got %v", m)
	}
}

// streamConfigs is every JetStream stream's name and configuration as JSON.
func streamConfigs(t testing.TB, s *server.Server) map[string]string {
	t.Helper()
	out := map[string]string{}
	names := s.JetStream().StreamNames(context.Background())
	for n := range names.Name() {
		st, err := s.JetStream().Stream(context.Background(), n)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(st.CachedInfo().Config)
		out[n] = string(b)
	}
	return out
}

// TestSQSOverTLS: queue URLs carry the scheme the client called, https behind TLS.
func TestSQSOverTLS(t *testing.T) {
	data := t.TempDir()
	s := startServer(t, data, func(c *config.Config) { c.TLSSelfSigned = true })
	pem, err := os.ReadFile(filepath.Join(data, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := sqs.New(sqs.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.URL()),
		HTTPClient:  &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
		Credentials: credentials.NewStaticCredentialsProvider("AKIDFLINTTEST", "secret", ""), RetryMaxAttempts: 1})
	url := createQueue(t, c, "secure", nil)
	if want := s.URL() + "/000000000000/secure"; url != want || !strings.HasPrefix(url, "https://") {
		t.Errorf("QueueUrl %s, want %s", url, want)
	}
	if _, err := c.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x")}); err != nil {
		t.Fatal(err)
	}
}
