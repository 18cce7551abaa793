package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// newSNS is aws-sdk-go-v2's real SNS client (the query protocol) pointed at Flint.
func newSNS(url string) *sns.Client {
	return sns.New(sns.Options{Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDFLINTTEST", "secret", ""), RetryMaxAttempts: 1})
}

// snsRecorder writes each SNS event it gets to DIR/<MessageId>.json, whole or not at all (a
// test that waits for the file then reads it read an empty one once: created, not yet written).
const snsRecorder = `import os, json
def handler(event, context):
    sns = event['Records'][0]['Sns']
    path = os.path.join(os.environ['DIR'], sns['MessageId'] + '.json')
    with open(path + '.tmp', 'w') as f:
        json.dump(event, f)
    os.rename(path + '.tmp', path)
    return {}
`

// TestSNSFanOut publishes once to a topic with a lambda, a wrapped and a raw sqs, a filtered
// sqs and an http subscription: the function gets Lambda's SNS event, the queues the envelope
// and the raw message with its attributes, the filtered queue only what its policy matches
// (on attributes, and on the body with FilterPolicyScope MessageBody), and the http endpoint
// a confirmation, then the notification.
func TestSNSFanOut(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	n := newSNS(s.URL())
	q := newSQS(s.URL())
	ctx := context.Background()
	dir := t.TempDir()
	createFunction(t, c, "sns-fn", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: snsRecorder}}),
		func(in *lambda.CreateFunctionInput) {
			in.Environment = &lambdatypes.Environment{Variables: map[string]string{"DIR": dir}}
		})
	wrapped := createQueue(t, q, "sns-wrapped", nil)
	raw := createQueue(t, q, "sns-raw", nil)
	filtered := createQueue(t, q, "sns-filtered", nil)
	bodyFiltered := createQueue(t, q, "sns-body-filtered", nil)

	var mu sync.Mutex
	var posts []*http.Request
	var bodies []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		posts, bodies = append(posts, r), append(bodies, string(b))
		mu.Unlock()
		if r.Header.Get("x-amz-sns-message-type") == "SubscriptionConfirmation" {
			var e map[string]string
			_ = json.Unmarshal(b, &e)
			// The subscriber visits SubscribeURL, unsigned, as AWS's documentation has it.
			resp, err := http.Get(e["SubscribeURL"])
			if err != nil || resp.StatusCode != 200 {
				t.Errorf("GET SubscribeURL: %v %v", resp, err)
			}
			if resp != nil {
				_ = resp.Body.Close()
			}
		}
	}))
	defer hook.Close()

	topic, err := n.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("orders"), Tags: []snstypes.Tag{{Key: aws.String("team"), Value: aws.String("a")}}})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(topic.TopicArn)
	if arn != "arn:aws:sns:us-east-1:000000000000:orders" {
		t.Fatalf("TopicArn %s", arn)
	}
	again, err := n.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("orders")})
	if err != nil || aws.ToString(again.TopicArn) != arn {
		t.Fatalf("CreateTopic again: %v %v", again, err)
	}
	sub := func(protocol, endpoint string, attrs map[string]string) string {
		t.Helper()
		out, err := n.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(arn), Protocol: aws.String(protocol),
			Endpoint: aws.String(endpoint), Attributes: attrs, ReturnSubscriptionArn: true})
		if err != nil {
			t.Fatalf("Subscribe %s %s: %v", protocol, endpoint, err)
		}
		return aws.ToString(out.SubscriptionArn)
	}
	lambdaSub := sub("lambda", "arn:aws:lambda:us-east-1:000000000000:function:sns-fn", nil)
	wrappedSub := sub("sqs", "arn:aws:sqs:us-east-1:000000000000:sns-wrapped", nil)
	sub("sqs", "arn:aws:sqs:us-east-1:000000000000:sns-raw", map[string]string{"RawMessageDelivery": "true"})
	sub("sqs", "arn:aws:sqs:us-east-1:000000000000:sns-filtered", map[string]string{"RawMessageDelivery": "true",
		"FilterPolicy": `{"color":["red"],"size":[{"numeric":[">",10]}]}`})
	sub("sqs", "arn:aws:sqs:us-east-1:000000000000:sns-body-filtered", map[string]string{"RawMessageDelivery": "true",
		"FilterPolicy": `{"kind":[{"prefix":"big"}]}`, "FilterPolicyScope": "MessageBody"})
	hookSub := sub("http", hook.URL+"/in", nil)
	if !strings.HasPrefix(lambdaSub, arn+":") || len(lambdaSub) != len(arn)+37 {
		t.Errorf("subscription ARN %s", lambdaSub)
	}
	waitFor(t, "http subscription confirmed", 30*time.Second, func() bool {
		a, err := n.GetSubscriptionAttributes(ctx, &sns.GetSubscriptionAttributesInput{SubscriptionArn: aws.String(hookSub)})
		return err == nil && a.Attributes["PendingConfirmation"] == "false"
	})
	subs, err := n.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(arn)})
	if err != nil || len(subs.Subscriptions) != 6 {
		t.Fatalf("ListSubscriptionsByTopic: %v %v", subs, err)
	}
	attrs, err := n.GetSubscriptionAttributes(ctx, &sns.GetSubscriptionAttributesInput{SubscriptionArn: aws.String(wrappedSub)})
	if err != nil || attrs.Attributes["Protocol"] != "sqs" || attrs.Attributes["RawMessageDelivery"] != "false" || attrs.Attributes["TopicArn"] != arn {
		t.Errorf("GetSubscriptionAttributes: %v %v", attrs, err)
	}

	// Matches the attribute policy; its body is no JSON object, so not the body policy.
	pub, err := n.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("hello <sns> & co"), Subject: aws.String("greeting"),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{
			"color": {DataType: aws.String("String"), StringValue: aws.String("red")},
			"size":  {DataType: aws.String("Number"), StringValue: aws.String("12")}}})
	if err != nil {
		t.Fatal(err)
	}
	mid := aws.ToString(pub.MessageId)
	// Matches neither filtered subscription's policy... but the body one's: {"kind":"bigger"}.
	pub2, err := n.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String(`{"kind":"bigger"}`),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{"color": {DataType: aws.String("String"), StringValue: aws.String("blue")}}})
	if err != nil {
		t.Fatal(err)
	}
	// Durable before Publish answered: the queues hold the messages now.
	if v, _, _ := queueCounts(t, q, wrapped); v != 2 {
		t.Errorf("wrapped queue holds %d messages right after Publish, want 2", v)
	}

	got := receive(t, q, wrapped, 10, 1)
	var env map[string]any
	for _, m := range got {
		var e map[string]any
		if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &e); err != nil {
			t.Fatalf("wrapped body %s: %v", aws.ToString(m.Body), err)
		}
		if e["MessageId"] == mid {
			env = e
		}
	}
	if env == nil || env["Type"] != "Notification" || env["TopicArn"] != arn || env["Message"] != "hello <sns> & co" ||
		env["Subject"] != "greeting" || env["SignatureVersion"] != "1" || env["Timestamp"] == nil ||
		!strings.Contains(fmt.Sprint(env["UnsubscribeURL"]), "Action=Unsubscribe") {
		t.Errorf("wrapped envelope %v", env)
	}
	if a, _ := env["MessageAttributes"].(map[string]any); fmt.Sprint(a["color"]) != "map[Type:String Value:red]" || fmt.Sprint(a["size"]) != "map[Type:Number Value:12]" {
		t.Errorf("envelope attributes %v", env["MessageAttributes"])
	}
	rawGot := receive(t, q, raw, 10, 1)
	if len(rawGot) != 2 {
		t.Fatalf("raw queue got %d messages", len(rawGot))
	}
	for _, m := range rawGot {
		if aws.ToString(m.Body) == "hello <sns> & co" {
			if a := m.MessageAttributes["color"]; aws.ToString(a.DataType) != "String" || aws.ToString(a.StringValue) != "red" {
				t.Errorf("raw attributes %v", m.MessageAttributes)
			}
		} else if aws.ToString(m.Body) != `{"kind":"bigger"}` {
			t.Errorf("raw body %q", aws.ToString(m.Body))
		}
	}
	if f := receive(t, q, filtered, 10, 1); len(f) != 1 || aws.ToString(f[0].Body) != "hello <sns> & co" {
		t.Errorf("attribute-filtered queue got %v", f)
	}
	if f := receive(t, q, bodyFiltered, 10, 1); len(f) != 1 || aws.ToString(f[0].Body) != `{"kind":"bigger"}` {
		t.Errorf("body-filtered queue got %v", f)
	}

	// The function got Lambda's SNS event, asynchronously.
	var ev struct {
		Records []struct {
			EventSource, EventVersion, EventSubscriptionArn string
			Sns                                             map[string]any
		}
	}
	waitFor(t, "the function's SNS event", time.Minute, func() bool {
		b, err := os.ReadFile(filepath.Join(dir, mid+".json"))
		return err == nil && json.Unmarshal(b, &ev) == nil
	})
	if len(ev.Records) != 1 || ev.Records[0].EventSource != "aws:sns" || ev.Records[0].EventVersion != "1.0" || ev.Records[0].EventSubscriptionArn != lambdaSub {
		t.Fatalf("event %+v", ev)
	}
	e := ev.Records[0].Sns
	for k, want := range map[string]any{"Type": "Notification", "MessageId": mid, "TopicArn": arn, "Subject": "greeting",
		"Message": "hello <sns> & co", "SignatureVersion": "1"} {
		if e[k] != want {
			t.Errorf("Sns.%s = %v, want %v", k, e[k], want)
		}
	}
	for _, k := range []string{"Timestamp", "Signature", "SigningCertUrl", "UnsubscribeUrl", "MessageAttributes"} {
		if _, ok := e[k]; !ok {
			t.Errorf("Sns.%s missing: %v", k, e)
		}
	}
	if fmt.Sprint(e["MessageAttributes"].(map[string]any)["color"]) != "map[Type:String Value:red]" {
		t.Errorf("Sns.MessageAttributes %v", e["MessageAttributes"])
	}
	waitFor(t, "the second event (no Subject: null)", time.Minute, func() bool {
		b, err := os.ReadFile(filepath.Join(dir, aws.ToString(pub2.MessageId)+".json"))
		return err == nil && strings.Contains(string(b), `"Subject": null`)
	})

	// The http endpoint: the confirmation, then both notifications with SNS's headers.
	waitFor(t, "http notifications", 30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(posts) >= 3 })
	mu.Lock()
	for i, r := range posts[1:] {
		if r.Header.Get("x-amz-sns-message-type") != "Notification" || r.Header.Get("x-amz-sns-topic-arn") != arn ||
			r.Header.Get("x-amz-sns-subscription-arn") != hookSub || r.URL.Path != "/in" {
			t.Errorf("http notification headers %v", r.Header)
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(bodies[i+1]), &e); err != nil || e["Type"] != "Notification" || e["TopicArn"] != arn {
			t.Errorf("http notification %s", bodies[i+1])
		}
	}
	mu.Unlock()

	// Unsubscribe stops deliveries; DeleteTopic removes the topic and its subscriptions.
	if _, err := n.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: aws.String(wrappedSub)}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("after")}); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := queueCounts(t, q, wrapped); v != 0 {
		t.Errorf("unsubscribed queue got %d messages", v)
	}
	if _, err := n.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	if all, err := n.ListSubscriptions(ctx, &sns.ListSubscriptionsInput{}); err != nil || len(all.Subscriptions) != 0 {
		t.Errorf("subscriptions after DeleteTopic: %v %v", all, err)
	}
	_, err = n.GetTopicAttributes(ctx, &sns.GetTopicAttributesInput{TopicArn: aws.String(arn)})
	wantCode(t, err, "NotFound")
}

// TestSNSRejections sends what SNS refuses through the SDK and checks AWS's codes and that
// nothing changed; then Debian's AWS CLI v2 creates a topic and publishes (query protocol).
func TestSNSRejections(t *testing.T) {
	s := startServer(t, t.TempDir())
	n := newSNS(s.URL())
	q := newSQS(s.URL())
	ctx := context.Background()
	queue := createQueue(t, q, "sns-rej", nil)
	topic, err := n.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("rej")})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(topic.TopicArn)
	if _, err := n.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(arn), Protocol: aws.String("sqs"),
		Endpoint: aws.String("arn:aws:sqs:us-east-1:000000000000:sns-rej")}); err != nil {
		t.Fatal(err)
	}
	entries := func(ids ...string) []snstypes.PublishBatchRequestEntry {
		var out []snstypes.PublishBatchRequestEntry
		for _, id := range ids {
			out = append(out, snstypes.PublishBatchRequestEntry{Id: aws.String(id), Message: aws.String("m")})
		}
		return out
	}
	var eleven []string
	for i := range 11 {
		eleven = append(eleven, fmt.Sprint("e", i))
	}
	missing := "arn:aws:sns:us-east-1:000000000000:nope"
	for _, c := range []struct {
		name string
		call func() error
		code string
	}{
		{"publish to an unknown topic", func() error {
			_, err := n.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(missing), Message: aws.String("m")})
			return err
		}, "NotFound"},
		{"publish without a topic", func() error {
			_, err := n.Publish(ctx, &sns.PublishInput{Message: aws.String("m")})
			return err
		}, "InvalidParameter"},
		{"publish an empty message", func() error {
			_, err := n.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("")})
			return err
		}, "InvalidParameter"},
		{"publish 256 KiB + 1", func() error {
			_, err := n.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String(strings.Repeat("x", 256<<10+1))})
			return err
		}, "InvalidParameter"},
		{"batch of 11", func() error {
			_, err := n.PublishBatch(ctx, &sns.PublishBatchInput{TopicArn: aws.String(arn), PublishBatchRequestEntries: entries(eleven...)})
			return err
		}, "TooManyEntriesInBatchRequest"},
		{"duplicate batch ids", func() error {
			_, err := n.PublishBatch(ctx, &sns.PublishBatchInput{TopicArn: aws.String(arn), PublishBatchRequestEntries: entries("a", "b", "a")})
			return err
		}, "BatchEntryIdsNotDistinct"},
		{"invalid filter policy", func() error {
			_, err := n.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(arn), Protocol: aws.String("sqs"),
				Endpoint: aws.String("arn:aws:sqs:us-east-1:000000000000:sns-rej"), Attributes: map[string]string{"FilterPolicy": `{"a":[{"numeric":[">"]}]}`}})
			return err
		}, "InvalidParameter"},
		{"subscribe to an unknown topic", func() error {
			_, err := n.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(missing), Protocol: aws.String("sqs"),
				Endpoint: aws.String("arn:aws:sqs:us-east-1:000000000000:sns-rej")})
			return err
		}, "NotFound"},
		{"an unsupported protocol", func() error {
			_, err := n.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(arn), Protocol: aws.String("carrier-pigeon"), Endpoint: aws.String("x")})
			return err
		}, "InvalidParameter"},
		{"an invalid topic name", func() error {
			_, err := n.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("bad name")})
			return err
		}, "InvalidParameter"},
		{"FIFO without a group id", func() error {
			f, err := n.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("rej.fifo"), Attributes: map[string]string{"FifoTopic": "true", "ContentBasedDeduplication": "true"}})
			if err != nil {
				return err
			}
			_, err = n.Publish(ctx, &sns.PublishInput{TopicArn: f.TopicArn, Message: aws.String("m")})
			return err
		}, "InvalidParameter"},
	} {
		t.Run(c.name, func(t *testing.T) { wantCode(t, c.call(), c.code) })
	}
	if v, _, _ := queueCounts(t, q, queue); v != 0 {
		t.Errorf("the refusals delivered %d messages", v)
	}
	subs, err := n.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(arn)})
	if err != nil || len(subs.Subscriptions) != 1 {
		t.Errorf("subscriptions after the refusals: %v %v", subs, err)
	}
	topics, err := n.ListTopics(ctx, &sns.ListTopicsInput{})
	if err != nil || len(topics.Topics) != 2 {
		t.Errorf("topics after the refusals: %+v %v", topics, err)
	}
	// A batch: the good entries delivered, the bad one in Failed.
	out, err := n.PublishBatch(ctx, &sns.PublishBatchInput{TopicArn: aws.String(arn), PublishBatchRequestEntries: []snstypes.PublishBatchRequestEntry{
		{Id: aws.String("ok1"), Message: aws.String("one")}, {Id: aws.String("bad"), Message: aws.String("")}, {Id: aws.String("ok2"), Message: aws.String("two")}}})
	if err != nil || len(out.Successful) != 2 || len(out.Failed) != 1 || aws.ToString(out.Failed[0].Id) != "bad" ||
		aws.ToString(out.Failed[0].Code) != "InvalidParameter" || !out.Failed[0].SenderFault {
		t.Errorf("PublishBatch: %+v %v", out, err)
	}
	if v, _, _ := queueCounts(t, q, queue); v != 2 {
		t.Errorf("queue holds %d after the batch, want 2", v)
	}

	// MessageStructure json: each protocol gets its own text, "default" the others.
	if _, err := n.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(arn), MessageStructure: aws.String("json"),
		Message: aws.String(`{"default":"for all","sqs":"for sqs","lambda":"for lambda"}`)}); err != nil {
		t.Fatal(err)
	}
	var structured []string
	for _, m := range receive(t, q, queue, 10, 1) {
		var e map[string]any
		if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &e); err != nil {
			t.Fatalf("envelope %s: %v", aws.ToString(m.Body), err)
		}
		structured = append(structured, fmt.Sprint(e["Message"]))
		if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queue), ReceiptHandle: m.ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(structured)
	if fmt.Sprint(structured) != "[for sqs one two]" {
		t.Errorf("the queue got %v", structured)
	}

	// Attributes: an invalid filter policy set later is refused and the old one stays.
	sa := subs.Subscriptions[0].SubscriptionArn
	if _, err := n.SetSubscriptionAttributes(ctx, &sns.SetSubscriptionAttributesInput{SubscriptionArn: sa,
		AttributeName: aws.String("FilterPolicy"), AttributeValue: aws.String(`{"k":["v"]}`)}); err != nil {
		t.Fatal(err)
	}
	_, err = n.SetSubscriptionAttributes(ctx, &sns.SetSubscriptionAttributesInput{SubscriptionArn: sa,
		AttributeName: aws.String("FilterPolicy"), AttributeValue: aws.String(`{"k":"not an array"}`)})
	wantCode(t, err, "InvalidParameter")
	_, err = n.SetSubscriptionAttributes(ctx, &sns.SetSubscriptionAttributesInput{SubscriptionArn: sa,
		AttributeName: aws.String("FilterPolicyScope"), AttributeValue: aws.String("Everything")})
	wantCode(t, err, "InvalidParameter")
	got, err := n.GetSubscriptionAttributes(ctx, &sns.GetSubscriptionAttributesInput{SubscriptionArn: sa})
	if err != nil || got.Attributes["FilterPolicy"] != `{"k":["v"]}` || got.Attributes["FilterPolicyScope"] != "MessageAttributes" {
		t.Errorf("attributes after refused changes: %v %v", got, err)
	}
	if _, err := n.SetSubscriptionAttributes(ctx, &sns.SetSubscriptionAttributesInput{SubscriptionArn: sa,
		AttributeName: aws.String("FilterPolicy"), AttributeValue: aws.String("")}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.SetTopicAttributes(ctx, &sns.SetTopicAttributesInput{TopicArn: aws.String(arn), AttributeName: aws.String("DisplayName"),
		AttributeValue: aws.String("Rejections")}); err != nil {
		t.Fatal(err)
	}
	_, err = n.SetTopicAttributes(ctx, &sns.SetTopicAttributesInput{TopicArn: aws.String(arn), AttributeName: aws.String("FifoTopic"), AttributeValue: aws.String("true")})
	wantCode(t, err, "InvalidParameter")
	ta, err := n.GetTopicAttributes(ctx, &sns.GetTopicAttributesInput{TopicArn: aws.String(arn)})
	if err != nil || ta.Attributes["DisplayName"] != "Rejections" || ta.Attributes["SubscriptionsConfirmed"] != "1" || ta.Attributes["FifoTopic"] != "" {
		t.Errorf("GetTopicAttributes: %v %v", ta, err)
	}

	// FIFO: a FIFO queue behind a FIFO topic gets the group id; a repeated deduplication id
	// is the same message (same MessageId) and is not delivered twice.
	fifoQueue := createQueue(t, q, "sns-rej.fifo", map[string]string{"FifoQueue": "true"})
	fifoTopic := "arn:aws:sns:us-east-1:000000000000:rej.fifo"
	if _, err := n.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(fifoTopic), Protocol: aws.String("sqs"),
		Endpoint: aws.String("arn:aws:sqs:us-east-1:000000000000:sns-rej.fifo"), Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		t.Fatal(err)
	}
	_, err = n.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(fifoTopic), Protocol: aws.String("sqs"),
		Endpoint: aws.String("arn:aws:sqs:us-east-1:000000000000:sns-rej")})
	wantCode(t, err, "InvalidParameter") // a standard queue behind a FIFO topic
	var ids []string
	for range 2 {
		p, err := n.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(fifoTopic), Message: aws.String("once"), MessageGroupId: aws.String("g1"),
			MessageDeduplicationId: aws.String("d1")})
		if err != nil || aws.ToString(p.SequenceNumber) == "" {
			t.Fatalf("FIFO publish: %v %v", p, err)
		}
		ids = append(ids, aws.ToString(p.MessageId))
	}
	if ids[0] != ids[1] {
		t.Errorf("a repeated deduplication id answered %v", ids)
	}
	if _, err := n.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(fifoTopic), Message: aws.String("content"), MessageGroupId: aws.String("g1")}); err != nil {
		t.Fatal(err)
	}
	fm := receive(t, q, fifoQueue, 10, 1)
	var fb []string
	for _, m := range fm {
		fb = append(fb, aws.ToString(m.Body)+"/"+m.Attributes["MessageGroupId"])
	}
	// The FIFO queue lets one message of the group out at a time: read, delete, read on.
	for len(fm) == 1 {
		if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(fifoQueue), ReceiptHandle: fm[0].ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
		if fm = receive(t, q, fifoQueue, 10, 1); len(fm) == 1 {
			fb = append(fb, aws.ToString(fm[0].Body)+"/"+fm[0].Attributes["MessageGroupId"])
		}
	}
	if fmt.Sprint(fb) != "[once/g1 content/g1]" {
		t.Errorf("FIFO queue got %v", fb)
	}

	// A subscription whose queue is gone: the notification goes to its RedrivePolicy's queue.
	dlq := createQueue(t, q, "sns-dlq", nil)
	dl, err := n.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("dl")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = n.Subscribe(ctx, &sns.SubscribeInput{TopicArn: dl.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String("arn:aws:sqs:us-east-1:000000000000:gone"),
		Attributes: map[string]string{"RedrivePolicy": `{"deadLetterTargetArn":"not an arn"}`}})
	wantCode(t, err, "InvalidParameter")
	if _, err := n.Subscribe(ctx, &sns.SubscribeInput{TopicArn: dl.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String("arn:aws:sqs:us-east-1:000000000000:gone"),
		Attributes: map[string]string{"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:sns-dlq"}`}}); err != nil {
		t.Fatal(err)
	}
	dp, err := n.Publish(ctx, &sns.PublishInput{TopicArn: dl.TopicArn, Message: aws.String("undeliverable")})
	if err != nil {
		t.Fatal(err)
	}
	if dm := receive(t, q, dlq, 10, 1); len(dm) != 1 || !strings.Contains(aws.ToString(dm[0].Body), `"MessageId":"`+aws.ToString(dp.MessageId)+`"`) {
		t.Errorf("dead-letter queue got %v", dm)
	}

	awsCLI := requireAWSCLI(t)
	b := runCLI(t, awsCLI, s.URL(), "AKIDFLINTTEST", "secret", "sns", "create-topic", "--name", "cli-topic")
	var created map[string]string
	if err := json.Unmarshal(b, &created); err != nil || created["TopicArn"] != "arn:aws:sns:us-east-1:000000000000:cli-topic" {
		t.Fatalf("aws sns create-topic: %s %v", b, err)
	}
	if _, err := n.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(created["TopicArn"]), Protocol: aws.String("sqs"),
		Endpoint: aws.String("arn:aws:sqs:us-east-1:000000000000:sns-rej"), Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		t.Fatal(err)
	}
	b = runCLI(t, awsCLI, s.URL(), "AKIDFLINTTEST", "secret", "sns", "publish", "--topic-arn", created["TopicArn"], "--message", "from the cli",
		"--message-attributes", `{"k":{"DataType":"String","StringValue":"v"}}`)
	var published map[string]string
	if err := json.Unmarshal(b, &published); err != nil || published["MessageId"] == "" {
		t.Fatalf("aws sns publish: %s %v", b, err)
	}
	var found bool
	for _, m := range receive(t, q, queue, 10, 1) {
		if aws.ToString(m.Body) == "from the cli" && aws.ToString(m.MessageAttributes["k"].StringValue) == "v" {
			found = true
		}
	}
	if !found {
		t.Error("the CLI's message did not reach the queue")
	}
	cmd := cliCommand(t, awsCLI, s.URL(), "AKIDFLINTTEST", "secret", "sns", "publish", "--topic-arn", "arn:aws:sns:us-east-1:000000000000:nope", "--message", "m")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "NotFound") {
		t.Errorf("aws sns publish to an unknown topic: %v %s", err, out)
	}
}

// TestSNSSigned runs the SNS API with access keys: signed calls (SigV4 scope sns) work, a
// wrong secret gets InvalidSignatureException, an unsigned call an SNS ErrorResponse, and an
// http subscriber's unsigned GET of its SubscribeURL still confirms (its token is the credential).
func TestSNSSigned(t *testing.T) {
	data := t.TempDir()
	key := createAccessKey(t, data, "test")
	s := startServer(t, data)
	ctx := context.Background()
	opts := func(secret string) sns.Options {
		return sns.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.URL()),
			Credentials: credentials.NewStaticCredentialsProvider(key.AccessKeyID, secret, ""), RetryMaxAttempts: 1}
	}
	n := sns.New(opts(key.SecretAccessKey))
	topic, err := n.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("signed")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = sns.New(opts("wrong"+key.SecretAccessKey[5:])).ListTopics(ctx, &sns.ListTopicsInput{})
	wantCode(t, err, "InvalidSignatureException")
	resp, err := http.Post(s.URL()+"/", "application/x-www-form-urlencoded", strings.NewReader("Action=ListTopics&Version=2010-03-31"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 400 || !strings.Contains(string(b), `<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">`) || resp.Header.Get("X-Amzn-Query-Error") == "" {
		t.Errorf("unsigned query call: %d %s", resp.StatusCode, b)
	}
	confirmed := make(chan int, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e map[string]string
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &e)
		if e["Type"] != "SubscriptionConfirmation" {
			return
		}
		// Guessing the token gets nothing; the real one confirms.
		if resp, err := http.Get(strings.Replace(e["SubscribeURL"], e["Token"], strings.Repeat("0", len(e["Token"])), 1)); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Error("a guessed token confirmed the subscription")
			}
		}
		resp, err := http.Get(e["SubscribeURL"])
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
		confirmed <- resp.StatusCode
	}))
	defer hook.Close()
	sub, err := n.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("http"), Endpoint: aws.String(hook.URL)})
	if err != nil || aws.ToString(sub.SubscriptionArn) != "pending confirmation" {
		t.Fatalf("Subscribe http: %v %v", sub, err)
	}
	select {
	case code := <-confirmed:
		if code != 200 {
			t.Fatalf("GET SubscribeURL: %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no SubscriptionConfirmation")
	}
	list, err := n.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: topic.TopicArn})
	if err != nil || len(list.Subscriptions) != 1 || !strings.HasPrefix(aws.ToString(list.Subscriptions[0].SubscriptionArn), aws.ToString(topic.TopicArn)+":") {
		t.Errorf("after confirmation: %+v %v", list, err)
	}
}
