// Package sns is the Amazon SNS API (the query protocol, which the AWS SDKs and CLI send) on
// Flint's endpoint: topics and subscriptions, kept as documents in the flint_sns bucket, and
// Publish, which fans a message out to the topic's subscriptions whose filter policies match
// (internal/eventfilter, on the message attributes or, with FilterPolicyScope MessageBody, on
// the body):
//
//	lambda  an asynchronous invocation (internal/asyncq) with Lambda's SNS event, so the async
//	        path's retries, destinations and dead-letter queue apply
//	sqs     a message on the queue (internal/sqs): the SNS envelope JSON, or with
//	        RawMessageDelivery the message itself and its attributes
//	http(s) a delivery stored in the FLINT_SNS_HTTP stream; Run's consumer POSTs the envelope
//	        and retries (JetStream redelivery with backoff) until the endpoint answers 2xx
//
// Every delivery is durably stored (its JetStream publish acknowledged) before Publish answers.
// What is delivered is signed as SNS signs it (signing.go), with a key kept in the data directory.
// A lambda or sqs subscription is confirmed at once; an http(s) one gets a
// SubscriptionConfirmation POST with a token, and is confirmed by ConfirmSubscription (or a GET
// of its SubscribeURL).
//
// FIFO topics: MessageGroupId is required; the deduplication id (given, or the body's SHA-256
// with ContentBasedDeduplication) makes each subscription's delivery id deterministic, so a
// repeat within JetStream's deduplication window (asyncq's, the FIFO queue's) is dropped.
//
// Keys in the bucket: topic.T (T: the topic name with "." as "="), sub.T.UUID, and
// token.TOKEN → the subscription ARN of a pending confirmation, cert.FINGERPRINT → a signing
// certificate (PEM).
package sns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/sqs"
	"github.com/flint-run/flint/internal/store"
)

// Records is where topic and subscription documents are kept (store.Store.SNS).
type Records interface {
	Get(ctx context.Context, key string) (json.RawMessage, uint64, error)
	Create(ctx context.Context, key string, doc json.RawMessage) (uint64, error)
	Update(ctx context.Context, key string, doc json.RawMessage, rev uint64) (uint64, error)
	Delete(ctx context.Context, key string) error
	Keys(ctx context.Context, filter string) ([]string, error)
}

var _ Records = store.Records{}

// Enqueuer hands an event to a function asynchronously (asyncq.Queue).
type Enqueuer interface {
	Enqueue(ctx context.Context, ev asyncq.Event) error
}

// Queues delivers to SQS queues (sqs.Service).
type Queues interface {
	SendByARN(ctx context.Context, arn, body string, attrs map[string]sqs.AttributeValue, groupID, dedupID string) (string, error)
}

// Config configures New. JS, Store, Async and SQS are required.
type Config struct {
	JS        jetstream.JetStream
	Store     Records
	Async     Enqueuer
	SQS       Queues
	Region    string       // "us-east-1" if empty
	AccountID string       // "000000000000" if empty
	Client    *http.Client // for http(s) deliveries; a 15 s timeout client if nil
	Signer    *Signer      // signs the messages delivered (LoadSigner); nil: unsigned
	Log       *slog.Logger
}

// Service serves the SNS API.
type Service struct {
	cfg     Config
	js      jetstream.JetStream
	store   Records
	region  string
	account string
	log     *slog.Logger
	ops     map[string]operation
	signer  *Signer

	certShared atomic.Bool // the signer's certificate is in the bucket (shareCert)

	streamOnce sync.Mutex
	streamOK   bool
}

// New returns the service.
func New(cfg Config) *Service {
	s := &Service{cfg: cfg, js: cfg.JS, store: cfg.Store, region: cfg.Region, account: cfg.AccountID, log: cfg.Log, signer: cfg.Signer}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.account == "" {
		s.account = "000000000000"
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.cfg.Client == nil {
		s.cfg.Client = &http.Client{Timeout: httpTimeout}
	}
	s.ops = s.operations()
	return s
}

// topic is a topic's document.
type topic struct {
	Name       string            `json:"name"`
	Arn        string            `json:"arn"`
	Attributes map[string]string `json:"attributes"` // the settable ones, as given
	Tags       map[string]string `json:"tags,omitempty"`
}

func (t *topic) fifo() bool { return t.Attributes["FifoTopic"] == "true" }

// subscription is a subscription's document.
type subscription struct {
	Arn        string            `json:"arn"`
	TopicArn   string            `json:"topicArn"`
	Protocol   string            `json:"protocol"`
	Endpoint   string            `json:"endpoint"`
	Attributes map[string]string `json:"attributes"` // FilterPolicy, FilterPolicyScope, RawMessageDelivery, RedrivePolicy, …
	Pending    bool              `json:"pending,omitempty"`
	Token      string            `json:"token,omitempty"`
}

func keyName(name string) string  { return strings.ReplaceAll(name, ".", "=") }
func topicKey(name string) string { return "topic." + keyName(name) }
func subKey(topicName, id string) string {
	return "sub." + keyName(topicName) + "." + id
}

func (s *Service) topicARN(name string) string {
	return "arn:aws:sns:" + s.region + ":" + s.account + ":" + name
}

// topicName returns the name in a topic ARN of this region and account.
func (s *Service) topicName(arn string) (string, bool) {
	p := strings.Split(arn, ":")
	if len(p) != 6 || p[0] != "arn" || p[1] != "aws" || p[2] != "sns" || p[3] != s.region || p[4] != s.account || !validName(p[5], true) {
		return "", false
	}
	return p[5], true
}

// subParts splits a subscription ARN, TOPICARN:UUID.
func (s *Service) subParts(arn string) (topicName, id string, ok bool) {
	i := strings.LastIndexByte(arn, ':')
	if i < 0 {
		return "", "", false
	}
	name, ok := s.topicName(arn[:i])
	id = arn[i+1:]
	if !ok || len(id) != 36 {
		return "", "", false
	}
	return name, id, true
}

func validName(name string, fifoOK bool) bool {
	base, fifo := strings.CutSuffix(name, ".fifo")
	if fifo && !fifoOK {
		return false
	}
	if len(name) < 1 || len(name) > 256 || base == "" {
		return false
	}
	for _, c := range base {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (s *Service) loadTopic(ctx context.Context, name string) (*topic, uint64, error) {
	b, rev, err := s.store.Get(ctx, topicKey(name))
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, errTopicNotFound()
	}
	if err != nil {
		return nil, 0, err
	}
	t := new(topic)
	if err := json.Unmarshal(b, t); err != nil {
		return nil, 0, fmt.Errorf("topic %s: %w", name, err)
	}
	return t, rev, nil
}

// topicByARN loads the topic an ARN parameter names; param names it in the error.
func (s *Service) topicByARN(ctx context.Context, arn, param string) (*topic, uint64, error) {
	if arn == "" {
		return nil, 0, errInvalid(param)
	}
	name, ok := s.topicName(arn)
	if !ok {
		return nil, 0, errInvalid(param)
	}
	return s.loadTopic(ctx, name)
}

func (s *Service) loadSub(ctx context.Context, arn string) (*subscription, uint64, error) {
	name, id, ok := s.subParts(arn)
	if !ok {
		return nil, 0, errInvalid("SubscriptionArn")
	}
	b, rev, err := s.store.Get(ctx, subKey(name, id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, errNotFound("Subscription does not exist")
	}
	if err != nil {
		return nil, 0, err
	}
	sub := new(subscription)
	if err := json.Unmarshal(b, sub); err != nil {
		return nil, 0, fmt.Errorf("subscription %s: %w", arn, err)
	}
	return sub, rev, nil
}

// subscriptions lists a topic's subscriptions ("" for every topic's), in key order.
func (s *Service) subscriptions(ctx context.Context, topicName string) ([]*subscription, error) {
	filter := "sub.>"
	if topicName != "" {
		filter = "sub." + keyName(topicName) + ".*"
	}
	keys, err := s.store.Keys(ctx, filter)
	if err != nil {
		return nil, err
	}
	out := make([]*subscription, 0, len(keys))
	for _, k := range keys {
		b, _, err := s.store.Get(ctx, k)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sub := new(subscription)
		if err := json.Unmarshal(b, sub); err != nil {
			return nil, fmt.Errorf("subscription %s: %w", k, err)
		}
		out = append(out, sub)
	}
	return out, nil
}

func marshal(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
