package sns

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// http(s) deliveries are messages in the FLINT_SNS_HTTP work-queue stream, stored before
// Publish (or Subscribe, for a confirmation) answers and POSTed by Run's consumer off the
// request path. A delivery the endpoint does not take (not 2xx, or unreachable) is retried
// with growing delays, httpAttempts times in all, then goes to the subscription's dead-letter
// queue (its RedrivePolicy when published), or is dropped with a log line.
const (
	httpStream   = "FLINT_SNS_HTTP"
	httpSubject  = "flint.snshttp"
	httpConsumer = "sns-http"
	httpTimeout  = 15 * time.Second
	httpAttempts = 4
)

// httpRetryDelays are the waits before the second, third, … attempts.
var httpRetryDelays = []time.Duration{time.Second, 5 * time.Second, 20 * time.Second}

type httpDelivery struct {
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
	// A notification's subscription and its RedrivePolicy when published: where it goes
	// after its last attempt. Envelope: what the dead-letter queue gets when Body is raw.
	Subscription  string `json:"subscription,omitempty"`
	RedrivePolicy string `json:"redrivePolicy,omitempty"`
	Envelope      string `json:"envelope,omitempty"`
}

func (s *Service) ensureStream(ctx context.Context) error {
	s.streamOnce.Lock()
	defer s.streamOnce.Unlock()
	if s.streamOK {
		return nil
	}
	_, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: httpStream, Subjects: []string{httpSubject},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
		Description: "Flint SNS API: deliveries to http(s) subscriptions"})
	if err != nil {
		return fmt.Errorf("open %s stream: %w", httpStream, err)
	}
	s.streamOK = true
	return nil
}

// enqueueHTTP stores one delivery; it is durable when enqueueHTTP returns.
func (s *Service) enqueueHTTP(ctx context.Context, d *httpDelivery) error {
	if err := s.ensureStream(ctx); err != nil {
		return err
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	if _, err := s.js.PublishMsg(ctx, &nats.Msg{Subject: httpSubject, Data: b}); err != nil {
		return fmt.Errorf("store http delivery: %w", err)
	}
	return nil
}

// confirmation is the SubscriptionConfirmation an http(s) subscription gets.
func (s *Service) confirmation(c *call, t *topic, sub *subscription) (*httpDelivery, error) {
	subscribeURL := c.base + "/?Action=ConfirmSubscription&TopicArn=" + url.QueryEscape(t.Arn) + "&Token=" + sub.Token
	e := &envelope{Type: "SubscriptionConfirmation", MessageId: uuid.NewString(), Token: sub.Token, TopicArn: t.Arn,
		Message: "You have chosen to subscribe to the topic " + t.Arn +
			".\nTo confirm the subscription, visit the SubscribeURL included in this message.",
		SubscribeURL: subscribeURL, Timestamp: time.Now().UTC().Format(timeFormat), SignatureVersion: "1"}
	if s.signer != nil {
		if err := s.signer.sign(e, t.Attributes["SignatureVersion"], c.base); err != nil {
			return nil, err
		}
	}
	b, err := encode(e)
	if err != nil {
		return nil, err
	}
	return &httpDelivery{URL: sub.Endpoint, Body: string(b), Headers: map[string]string{
		"x-amz-sns-message-type": "SubscriptionConfirmation", "x-amz-sns-message-id": e.MessageId, "x-amz-sns-topic-arn": t.Arn}}, nil
}

// IsConfirmURL reports whether r is one of the SNS endpoint's public GETs, which callers make
// unsigned, as on AWS: a SubscribeURL (ConfirmSubscription with its token, which is the
// credential), or a SigningCertURL (the certificate that verifies message signatures).
func IsConfirmURL(r *http.Request) bool {
	if IsSigningCert(r) {
		return true
	}
	if r.Method != http.MethodGet || r.URL.Path != "/" || r.Header.Get("Authorization") != "" {
		return false
	}
	q := r.URL.Query()
	return q.Get("Action") == "ConfirmSubscription" && q.Get("Token") != "" && q.Get("X-Amz-Signature") == ""
}

// Run POSTs the stored http(s) deliveries until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	if err := s.ensureStream(ctx); err != nil {
		return err
	}
	cons, err := s.js.CreateOrUpdateConsumer(ctx, httpStream, jetstream.ConsumerConfig{Durable: httpConsumer,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: 2 * httpTimeout, MaxAckPending: 64})
	if err != nil {
		return fmt.Errorf("open %s consumer: %w", httpStream, err)
	}
	for ctx.Err() == nil {
		batch, err := cons.Fetch(16, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			s.log.Warn("sns http deliveries: fetch", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		for msg := range batch.Messages() {
			s.post(ctx, msg)
		}
	}
	return nil
}

// post makes one attempt at a delivery and settles its message.
func (s *Service) post(ctx context.Context, msg jetstream.Msg) {
	var d httpDelivery
	if err := json.Unmarshal(msg.Data(), &d); err != nil {
		s.log.Error("sns http delivery unreadable: dropped", "err", err)
		_ = msg.Term()
		return
	}
	err := s.send(ctx, &d)
	if err == nil {
		_ = msg.Ack()
		return
	}
	if ctx.Err() != nil {
		_ = msg.Nak()
		return
	}
	md, _ := msg.Metadata()
	attempt := 1
	if md != nil {
		attempt = int(md.NumDelivered)
	}
	if attempt >= httpAttempts {
		s.log.Warn("sns http delivery failed", "url", d.URL, "attempts", attempt, "err", err)
		env := d.Envelope
		if env == "" {
			env = d.Body
		}
		if d.Subscription != "" {
			if err := s.deadLetter(ctx, d.RedrivePolicy, d.Subscription, env, "", ""); err != nil {
				// Not stored in the dead-letter queue: keep the delivery and try it all again.
				s.log.Error("sns http delivery: dead-letter queue", "err", err)
				_ = msg.NakWithDelay(httpRetryDelays[len(httpRetryDelays)-1])
				return
			}
		}
		_ = msg.Term()
		return
	}
	s.log.Info("sns http delivery failed: retrying", "url", d.URL, "attempt", attempt, "err", err)
	_ = msg.NakWithDelay(httpRetryDelays[min(attempt-1, len(httpRetryDelays)-1)])
}

func (s *Service) send(ctx context.Context, d *httpDelivery) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader([]byte(d.Body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain; charset=UTF-8")
	req.Header.Set("User-Agent", "Amazon Simple Notification Service Agent")
	for k, v := range d.Headers {
		req.Header.Set(k, v)
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return errors.New(resp.Status)
	}
	return nil
}
