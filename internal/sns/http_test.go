package sns

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/crypt"
	"github.com/flint-run/flint/internal/sqs"
	"github.com/flint-run/flint/internal/store"
)

// TestHTTPRetriesAndDeadLetter runs the http(s) delivery consumer against a real JetStream (a
// store opened for the test) and a real endpoint: a notification the endpoint refuses twice
// reaches it on the third attempt, with SNS's headers; one it always refuses goes, after the
// last attempt, to the subscription's dead-letter queue as the envelope.
func TestHTTPRetriesAndDeadLetter(t *testing.T) {
	saved := httpRetryDelays
	httpRetryDelays = []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond}
	t.Cleanup(func() { httpRetryDelays = saved })
	ctx, cancel := context.WithCancel(context.Background())
	keys, err := crypt.LoadKeyring(filepath.Join(t.TempDir(), "master.key"), "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, store.Options{Dir: t.TempDir(), Keyring: keys})
	if err != nil {
		t.Fatal(err)
	}
	queues := sqs.New(sqs.Config{JS: st.JetStream(), Store: st.SQSQueues()})
	s := New(Config{JS: st.JetStream(), Store: st.SNS(), SQS: queues})
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		st.Close()
	})

	var mu sync.Mutex
	attempts := map[string]int{}
	var got []*http.Request
	var bodies []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		attempts[r.URL.Path]++
		if r.URL.Path == "/never" || attempts[r.URL.Path] < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		got, bodies = append(got, r), append(bodies, string(b))
	}))
	defer hook.Close()

	c := &call{base: "http://flint"}
	out, err := s.createTopic(ctx, c, &createTopicInput{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	arn := out.(*topicArnOutput).TopicArn
	// The queue, through the SQS API's own handler (JSON 1.0).
	sqsCall := func(op, body string) map[string]any {
		t.Helper()
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		r.Header.Set("X-Amz-Target", "AmazonSQS."+op)
		w := httptest.NewRecorder()
		queues.ServeHTTP(w, r)
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || w.Code != 200 {
			t.Fatalf("%s: %d %s", op, w.Code, w.Body)
		}
		return out
	}
	url := sqsCall("CreateQueue", `{"QueueName":"dlq"}`)["QueueUrl"].(string)
	for _, path := range []string{"/third", "/never"} {
		sub := &subscription{Arn: arn + ":" + map[string]string{"/third": "00000000-0000-0000-0000-000000000001", "/never": "00000000-0000-0000-0000-000000000002"}[path],
			TopicArn: arn, Protocol: "http", Endpoint: hook.URL + path,
			Attributes: map[string]string{"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq"}`}}
		name, id, _ := s.subParts(sub.Arn)
		if _, err := st.SNS().Create(ctx, subKey(name, id), marshal(sub)); err != nil {
			t.Fatal(err)
		}
	}
	p, err := s.publish(ctx, c, &publishInput{TopicArn: arn, Message: ptr("hi")})
	if err != nil {
		t.Fatal(err)
	}
	mid := p.(*publishOutput).MessageId
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n, never := len(got), attempts["/never"]
		mu.Unlock()
		if n == 1 && never == httpAttempts {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries: %d, attempts %v", n, attempts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := got[0]; r.Header.Get("x-amz-sns-message-type") != "Notification" || r.Header.Get("x-amz-sns-message-id") != mid ||
		r.Header.Get("x-amz-sns-subscription-arn") != arn+":00000000-0000-0000-0000-000000000001" || r.Header.Get("Content-Type") != "text/plain; charset=UTF-8" {
		t.Errorf("headers %v", r.Header)
	}
	var e map[string]any
	if err := json.Unmarshal([]byte(bodies[0]), &e); err != nil || e["Message"] != "hi" || e["MessageId"] != mid {
		t.Errorf("body %s", bodies[0])
	}
	var dead string
	for time.Now().Before(deadline) && dead == "" {
		if msgs, _ := sqsCall("ReceiveMessage", `{"QueueUrl":"`+url+`","WaitTimeSeconds":1}`)["Messages"].([]any); len(msgs) == 1 {
			dead = msgs[0].(map[string]any)["Body"].(string)
		}
	}
	if err := json.Unmarshal([]byte(dead), &e); err != nil || e["MessageId"] != mid || e["Type"] != "Notification" {
		t.Errorf("dead-letter queue got %q", dead)
	}
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if attempts["/never"] != httpAttempts || attempts["/third"] != 3 {
		t.Errorf("attempts %v", attempts)
	}
}
