// Package sqs is the Amazon SQS API as a facade over JetStream, in both wire protocols real
// clients speak: JSON 1.0 (X-Amz-Target: AmazonSQS.<Op>, current SDKs) and the query protocol
// (form-encoded Action=<Op>, XML answers, older SDKs and CLIs). One implementation of each
// operation serves both; the codecs (wire.go) only translate.
//
// # The queue model
//
// A queue NAME is the JetStream stream S (NAME with "." replaced by "_": stream names have no
// dots, FIFO queue names end ".fifo") with work-queue retention and the subjects
//
//	flint.queues.S          the messages, which any NATS client may publish too
//	flint.sqsdelay.S.ID     delayed messages, each waiting for its time (see below)
//
// so a message sent with SendMessage and one published by a NATS client to flint.queues.S are
// the same message, and arn:flint:jetstream:REGION:ACCOUNT:queue/S names the same stream.
// The queue's attributes and tags are a document in the flint_sqs_queues bucket, keyed by the
// queue's name; the stream's metadata names its queue, so two queue names that map to one
// stream name cannot both exist.
//
// Receiving is the durable pull consumer "sqs" on flint.queues.S, shared by every
// ReceiveMessage call and every Lambda mapping over the queue's arn:aws:sqs ARN, so they
// compete for messages as on SQS. The consumer's AckWait is the queue's VisibilityTimeout; a
// receive with its own VisibilityTimeout, and ChangeMessageVisibility, NAK the message with
// that delay (JetStream keeps a NAKed message pending and redelivers it after the delay, and an
// ACK still removes it). DeleteMessage is the ACK. A receipt handle is the message's ACK
// subject (stream, consumer, delivery count, stream and consumer sequences), base64url-encoded:
// opaque to clients, and checked against the queue it is used on. ApproximateReceiveCount is
// JetStream's delivery count. A message received more than a RedrivePolicy's maxReceiveCount
// times is moved, on the receive that finds it so, to the dead-letter queue (published there
// with its id, body and attributes, then ACKed), as SQS does.
//
// DelaySeconds uses JetStream's message schedules (nats-server 2.12+, embedded here at 2.15):
// a delayed message is published to flint.sqsdelay.S.ID with "Nats-Schedule: @at TIME" and
// target flint.queues.S; at TIME the server stores it on the target subject (and purges the
// schedule). Until then it is durable in the stream, invisible to the consumer, and counted as
// ApproximateNumberOfMessagesDelayed. A NAK with a delay on first delivery was the other way,
// but it would count as a receive and hold the message in the consumer's in-flight window.
//
// StartMessageMoveTask (movetasks.go) moves a dead-letter queue's messages back to their
// sources, or to a destination, in a task owned by Run.
//
// FIFO queues: MessageGroupId and MessageDeduplicationId (or ContentBasedDeduplication's
// SHA-256 of the body) ride on the message; deduplication is JetStream's Nats-Msg-Id window,
// five minutes as SQS's. The shared consumer of a FIFO queue lets one message be in flight at
// a time, so every group's order holds through failures and redeliveries (at the price of
// parallelism across groups).
//
// Every blocking call takes the request's context; the one goroutine of the package's own is
// a message move task's, owned by Run.
package sqs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/store"
)

// Records is where queue documents are kept (store.Store.SQSQueues).
type Records interface {
	Get(ctx context.Context, key string) (json.RawMessage, uint64, error)
	Create(ctx context.Context, key string, doc json.RawMessage) (uint64, error)
	Update(ctx context.Context, key string, doc json.RawMessage, rev uint64) (uint64, error)
	Delete(ctx context.Context, key string) error
	Keys(ctx context.Context, filter string) ([]string, error)
}

var _ Records = store.Records{}

// Config configures New. JS and Store are required.
type Config struct {
	JS        jetstream.JetStream
	Store     Records
	Region    string // in ARNs; "us-east-1" if empty
	AccountID string // in ARNs and URLs; "000000000000" if empty
	Log       *slog.Logger
}

// Service serves the SQS API.
type Service struct {
	js      jetstream.JetStream
	store   Records
	region  string
	account string
	log     *slog.Logger
	ops     map[string]operation

	mu        sync.Mutex
	consumers map[string]jetstream.Consumer // by stream: the shared consumer, as last configured
	tasks     map[string][]*moveTask        // message move tasks by source ARN, newest first

	starts chan *moveTask // to Run, which owns the tasks' goroutines
}

// New returns the service.
func New(cfg Config) *Service {
	s := &Service{js: cfg.JS, store: cfg.Store, region: cfg.Region, account: cfg.AccountID, log: cfg.Log,
		consumers: map[string]jetstream.Consumer{}, tasks: map[string][]*moveTask{}, starts: make(chan *moveTask)}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.account == "" {
		s.account = "000000000000"
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.ops = s.operations()
	return s
}

const (
	targetPrefix  = "AmazonSQS."
	msgSubject    = "flint.queues."
	delaySubject  = "flint.sqsdelay."
	consumerName  = "sqs"
	metaQueueName = "flint-sqs-queue"
)

// StreamName is the JetStream stream that holds queue name's messages.
func StreamName(name string) string { return strings.ReplaceAll(name, ".", "_") }

func subjectOf(stream string) string { return msgSubject + stream }

var queueNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_-]{1,80}$`) })

// queue is a queue's document in the store.
type queue struct {
	Name       string            `json:"name"`
	Created    int64             `json:"created"`  // Unix seconds
	Modified   int64             `json:"modified"` // Unix seconds
	Attributes map[string]string `json:"attributes"`
	Tags       map[string]string `json:"tags,omitempty"`
}

func (q *queue) fifo() bool     { return q.Attributes["FifoQueue"] == "true" }
func (q *queue) stream() string { return StreamName(q.Name) }

// visibility is the queue's VisibilityTimeout.
func (q *queue) visibility() time.Duration {
	return time.Duration(atoi(q.Attributes["VisibilityTimeout"])) * time.Second
}

// redrive is the queue's RedrivePolicy: the dead-letter queue's ARN and maxReceiveCount, or
// zero values without one.
func (q *queue) redrive() (string, int) {
	p, ok := parseRedrive(q.Attributes["RedrivePolicy"])
	if !ok {
		return "", 0
	}
	return p.Target, p.Max
}

// ARN is queue name's ARN.
func (s *Service) ARN(name string) string {
	return "arn:aws:sqs:" + s.region + ":" + s.account + ":" + name
}

// queueURL is queue name's URL under base, the scheme and host the client called.
func (s *Service) queueURL(base, name string) string {
	return base + "/" + s.account + "/" + name
}

var errNoQueue = errors.New("no such queue")

// load returns queue name's document and revision.
func (s *Service) load(ctx context.Context, name string) (*queue, uint64, error) {
	if !queueNameRE().MatchString(strings.TrimSuffix(name, ".fifo")) {
		return nil, 0, errNotExist()
	}
	b, rev, err := s.store.Get(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, errNotExist()
	}
	if err != nil {
		return nil, 0, fmt.Errorf("load queue %s: %w", name, err)
	}
	var q queue
	if err := json.Unmarshal(b, &q); err != nil {
		return nil, 0, fmt.Errorf("decode queue %s: %w", name, err)
	}
	return &q, rev, nil
}

// byURL finds the queue a QueueUrl names: http(s)://HOST/ACCOUNT/NAME, or a bare name (SQS
// accepts both in practice; the CLI passes what the user typed).
func (s *Service) byURL(ctx context.Context, u string) (*queue, uint64, error) {
	if u == "" {
		return nil, 0, errMissing("QueueUrl")
	}
	name := u
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		parts := strings.Split(rest, "/")
		if len(parts) != 3 || parts[1] != s.account {
			return nil, 0, errNotExist()
		}
		name = parts[2]
	} else if strings.Contains(u, "/") {
		parts := strings.Split(strings.TrimPrefix(u, "/"), "/")
		if len(parts) != 2 || parts[0] != s.account {
			return nil, 0, errNotExist()
		}
		name = parts[1]
	}
	return s.load(ctx, name)
}

// byARN finds the queue an arn:aws:sqs ARN names.
func (s *Service) byARN(ctx context.Context, arn string) (*queue, error) {
	name, ok := s.nameOfARN(arn)
	if !ok {
		return nil, errNotExist()
	}
	q, _, err := s.load(ctx, name)
	return q, err
}

func (s *Service) nameOfARN(arn string) (string, bool) {
	p := strings.Split(arn, ":")
	if len(p) != 6 || p[0] != "arn" || p[2] != "sqs" || p[4] != s.account || p[3] != s.region {
		return "", false
	}
	return p[5], true
}

// streamConfig is queue q's stream.
func streamConfig(q *queue) jetstream.StreamConfig {
	st := q.stream()
	dup := 2 * time.Minute
	if q.fifo() {
		dup = 5 * time.Minute // SQS's deduplication interval
	}
	return jetstream.StreamConfig{
		Name: st, Subjects: []string{subjectOf(st), delaySubject + st + ".*"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Duplicates: dup,
		MaxAge:            time.Duration(atoi(q.Attributes["MessageRetentionPeriod"])) * time.Second,
		AllowMsgSchedules: true, AllowRollup: true,
		Description: "Flint SQS queue " + q.Name,
		Metadata:    map[string]string{metaQueueName: q.Name},
	}
}

// consumerConfig is queue q's shared consumer.
func consumerConfig(q *queue) jetstream.ConsumerConfig {
	c := jetstream.ConsumerConfig{
		Durable: consumerName, AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: -1,
		AckWait: max(q.visibility(), time.Second), FilterSubject: subjectOf(q.stream()),
		MaxAckPending: 20000, MaxWaiting: 4096,
		Description: "SQS receives and Lambda mappings of queue " + q.Name,
	}
	if q.fifo() {
		c.MaxAckPending = 1
	}
	return c
}

// errNotQueue refuses a queue whose stream name is taken by a stream that is not a queue: Flint's
// own (its async queue, logs, KV buckets), a Kinesis-like stream, a destination.
func errNotQueue(q *queue) *Error {
	return errInvalidParameter("Value %s for parameter QueueName is invalid. Reason: JetStream stream %s exists and is not a queue.", q.Name, q.stream())
}

// adoptable reports whether an existing stream may become (or stay) queue q's: it is a queue's,
// a work queue with q's subjects only (an arn:flint queue's, or q's own), of no other queue.
func adoptable(q *queue, cfg jetstream.StreamConfig) bool {
	if owner := cfg.Metadata[metaQueueName]; owner != "" && owner != q.Name {
		return false
	}
	if cfg.Retention != jetstream.WorkQueuePolicy {
		return false
	}
	for _, subj := range cfg.Subjects {
		if subj != subjectOf(q.stream()) && subj != delaySubject+q.stream()+".*" {
			return false
		}
	}
	return true
}

// ensure makes queue q's stream and shared consumer exist as its attributes say.
func (s *Service) ensure(ctx context.Context, q *queue) (jetstream.Consumer, error) {
	if asyncq.ReservedStreamName(q.stream()) {
		return nil, errNotQueue(q)
	}
	if st, err := s.js.Stream(ctx, q.stream()); err == nil && !adoptable(q, st.CachedInfo().Config) {
		return nil, errNotQueue(q)
	} else if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("queue %s stream: %w", q.Name, err)
	}
	st, err := s.js.CreateOrUpdateStream(ctx, streamConfig(q))
	if err != nil {
		return nil, fmt.Errorf("queue %s stream: %w", q.Name, err)
	}
	c, err := st.CreateOrUpdateConsumer(ctx, consumerConfig(q))
	if err != nil {
		return nil, fmt.Errorf("queue %s consumer: %w", q.Name, err)
	}
	s.mu.Lock()
	s.consumers[q.stream()] = c
	s.mu.Unlock()
	return c, nil
}

// consumer returns queue q's shared consumer, making it (and the stream) exist if they do not
// (a stream deleted from outside, or a node that has not used the queue yet).
func (s *Service) consumer(ctx context.Context, q *queue) (jetstream.Consumer, error) {
	s.mu.Lock()
	c := s.consumers[q.stream()]
	s.mu.Unlock()
	if c != nil && c.CachedInfo().Config.AckWait == max(q.visibility(), time.Second) {
		return c, nil
	}
	return s.ensure(ctx, q)
}

// forget drops the cached consumer of a deleted queue.
func (s *Service) forget(stream string) {
	s.mu.Lock()
	delete(s.consumers, stream)
	s.mu.Unlock()
}

// IsSQSRequest reports whether r is an SQS API call, for the server to route it here: a JSON 1.0
// call by its X-Amz-Target, or a query-protocol call (form-encoded POST, or GET with the
// parameters in the query string) whose SigV4 scope names the sqs service, or, unsigned (the
// local-development mode), whose Action is one of SQS's.
func IsSQSRequest(r *http.Request) bool {
	if strings.HasPrefix(r.Header.Get("X-Amz-Target"), targetPrefix) {
		return true
	}
	if r.Header.Get("X-Amz-Target") != "" {
		return false
	}
	if strings.Contains(r.Header.Get("Authorization"), "/sqs/aws4_request") ||
		strings.Contains(r.URL.RawQuery, "%2Fsqs%2Faws4_request") {
		return true
	}
	if r.Header.Get("Authorization") != "" {
		return false
	}
	// Unsigned (the local-development mode): a form POST to / or to a queue's URL path (no
	// Lambda route takes a form body or looks like /ACCOUNT/NAME), or an Action in the URL.
	if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") &&
		(r.URL.Path == "/" || queuePathRE().MatchString(r.URL.Path)) {
		return true
	}
	if !strings.Contains(r.URL.RawQuery, "Action=") { // spare every other request a query parse
		return false
	}
	return queryActions[r.URL.Query().Get("Action")]
}

var queuePathRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^/\d{12}/[a-zA-Z0-9_.-]{1,80}$`) })

// queryActions are the query protocol's Action values this package answers; an unsigned GET
// (development mode) is recognised as SQS by one of them in its URL.
var queryActions = map[string]bool{
	"CreateQueue": true, "GetQueueUrl": true, "GetQueueAttributes": true, "SetQueueAttributes": true,
	"ListQueues": true, "DeleteQueue": true, "PurgeQueue": true, "SendMessage": true, "SendMessageBatch": true,
	"ReceiveMessage": true, "DeleteMessage": true, "DeleteMessageBatch": true, "ChangeMessageVisibility": true,
	"ChangeMessageVisibilityBatch": true, "TagQueue": true, "UntagQueue": true, "ListQueueTags": true,
	"ListDeadLetterSourceQueues": true, "StartMessageMoveTask": true, "ListMessageMoveTasks": true, "CancelMessageMoveTask": true,
}
