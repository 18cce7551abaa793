package server_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/config"
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

var _ = strings.Contains
