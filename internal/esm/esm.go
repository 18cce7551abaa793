// Package esm runs Flint's event source mappings: pollers that read batches from JetStream and
// invoke a function synchronously with them, as Lambda's event source mappings do for SQS.
//
// # Event source ARNs
//
// A queue is a JetStream stream used as a work queue:
//
//	arn:flint:jetstream:REGION:ACCOUNT:queue/NAME
//
// names stream NAME with subject flint.queues.NAME (work-queue retention). Flint creates the
// stream when a mapping is created, so any NATS client (flint serve --nats-listen) can publish
// messages to flint.queues.NAME. A Nats-Msg-Id header, when set, deduplicates publishes and
// becomes the record's messageId; otherwise the messageId is a UUID derived from the stream
// sequence. Message headers become messageAttributes (stringValue). One mapping per queue: a
// work-queue stream admits one consumer per subject.
//
// A queue made with the SQS API (internal/sqs) is named by its AWS ARN,
//
//	arn:aws:sqs:REGION:ACCOUNT:NAME
//
// and read through the queue's own shared consumer, with its visibility timeout and redrive
// policy (sqs.go, Config.SQS). Any number of functions may map it; they compete for messages.
//
// A stream (Kinesis-like) is a JetStream stream with limits retention:
//
//	arn:flint:jetstream:REGION:ACCOUNT:stream/NAME
//
// names stream NAME; a record published to flint.streams.NAME.KEY has partition key KEY (the
// rest of the subject, dots included). Flint creates the stream, or adds that subject to an
// existing one, when a mapping is created. Records of other subjects of the stream (e.g. an
// asynchronous destination's flint.destinations.NAME) are delivered too, the subject being their
// partition key. Any number of functions may map one stream, each with its own position.
//
// A Kinesis stream, made by the Kinesis API (internal/kinesis), is such a stream with a shard
// count in its metadata:
//
//	arn:aws:kinesis:REGION:ACCOUNT:stream/NAME
//
// names it (a mapping never creates it). Its records are on the shards their hash keys fall in
// (shard.go) and its mappings run ParallelizationFactor lanes per shard.
//
// # Stream semantics
//
// A stream mapping reads the stream in order from its checkpoint and spreads records over
// ParallelizationFactor lanes by a hash of the partition key; each lane runs one batch at a
// time, so records of one key reach the function in order. A batch is up to BatchSize records
// (default 100) gathered within MaximumBatchingWindowInSeconds, in a Kinesis-shaped event
// (sequenceNumber = the JetStream stream sequence, zero-padded on a Kinesis stream as its API
// gives it; data base64; eventID "shardId-…:SEQ": the record's shard on a Kinesis stream, else
// shardId-000000000000, a Flint stream being one shard). On a function error the batch is
// retried (exponential backoff from Config.StreamRetryDelay) until it succeeds,
// MaximumRetryAttempts (-1: forever) is exhausted or its records are older than
// MaximumRecordAgeInSeconds (-1: no limit); BisectBatchOnFunctionError splits a failing batch in
// two first (splits do not count as retries); with ReportBatchItemFailures the records before
// the lowest failed sequence number are done and the rest is retried. Records given up on are
// described (not included, as Lambda) to DestinationConfig.OnFailure, a stream ARN as above,
// in Lambda's KinesisBatchInfo document, and skipped. The checkpoint (the last sequence each
// lane finished, in the flint_esm_checkpoints bucket) is saved after every batch, so a restart
// or crash replays at most the batches in flight and never reorders a key. StartingPosition
// TRIM_HORIZON, LATEST and AT_TIMESTAMP are fixed when the mapping is created.
//
// On a cluster (Config.Owner set) one node at a time reads a stream mapping: the one holding
// its lease. It stops reading before another node may take the lease over, and the new holder
// reads from the checkpoint, which readers save by compare-and-set on the revision they loaded,
// so a reader that lost the mapping cannot move it back: the batches in flight on a node that
// died are delivered again, and each key's records are first delivered in order.
//
// # Queue semantics
//
// A mapping's poller owns the durable consumer esm-UUID (the position survives restarts). It
// fetches batches of up to BatchSize messages, waiting up to MaximumBatchingWindowInSeconds
// to fill one, and runs up to ScalingConfig.MaximumConcurrency batches at once. A batch is an
// SQS-shaped event; success acknowledges every message; a function error or timeout makes the
// whole batch visible again after the visibility timeout; with FunctionResponseTypes
// ["ReportBatchItemFailures"] only the reported messages are (an invalid response fails the
// whole batch). Throttled batches come back after a short delay and do not count as receives.
//
// Two Flint extensions on the mapping stand in for SQS's queue attributes:
// VisibilityTimeoutSeconds (default Config.VisibilityTimeout, 30 s) and MaximumReceiveCount
// (default 5): a message received that many times without success is published, with its
// headers plus ApproximateReceiveCount, Flint-Message-Id, Flint-Event-Source-Arn and
// Flint-Event-Source-Mapping headers, to DestinationConfig.OnFailure (a JetStream stream
// arn:flint:jetstream:REGION:ACCOUNT:stream/NAME, subject flint.destinations.NAME, as async
// destinations) and removed from the queue; without a destination it is dropped with a log line.
//
// The package runs invocations through the small Invoker interface it owns; it knows nothing of
// HTTP or the function registry.
package esm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

var (
	queueARN = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^arn:flint:jetstream:[a-z0-9-]*:\d{0,12}:queue/([a-zA-Z0-9_-]{1,64})$`)
	})
	streamARN = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^arn:flint:jetstream:[a-z0-9-]*:\d{0,12}:stream/([a-zA-Z0-9_-]{1,64})$`)
	})
	errUnknown = errors.New("unknown event source ARN")
)

// QueueName returns the stream a queue ARN names, or an error that says what Flint accepts.
func QueueName(arn string) (string, error) {
	if m := queueARN().FindStringSubmatch(arn); m != nil {
		if asyncq.ReservedStreamName(m[1]) {
			return "", fmt.Errorf("%s: names starting FLINT_, KV_ or OBJ_ are Flint's own streams", arn)
		}
		return m[1], nil
	}
	return "", fmt.Errorf("%w %s: Flint reads queues named arn:flint:jetstream:REGION:ACCOUNT:queue/NAME and streams named arn:flint:jetstream:REGION:ACCOUNT:stream/NAME", errUnknown, arn)
}

// ValidFailureDestination reports whether arn is an on-failure destination a queue mapping can
// deliver to (a JetStream stream).
func ValidFailureDestination(arn string) bool {
	_, ok := flintStreamName(arn)
	return ok
}

// QueueSubject is where clients publish a queue's messages.
func QueueSubject(name string) string { return "flint.queues." + name }

// EnsureQueue creates queue stream name if missing.
func EnsureQueue(ctx context.Context, js jetstream.JetStream, name string) (jetstream.Stream, error) {
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{QueueSubject(name)}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute,
		Description: "Flint queue (event source mappings read it)",
	})
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", name, err)
	}
	return st, nil
}

// Result is how one batch invocation went.
type Result struct {
	Throttled     bool
	Payload       []byte
	FunctionError string // "Unhandled" when the function failed or timed out
}

// Invoker runs a batch synchronously through the invoke engine (resolution, admission, pool).
// ErrGone means the function no longer exists. Each batch is a trace of its own; traces are
// the X-Ray trace headers its records carry, which the batch's trace links to.
type Invoker interface {
	InvokeBatch(ctx context.Context, functionArn string, payload []byte, traces []string) (Result, error)
}

// traceHeaders are the message headers that carry a record's trace: Flint's destinations write
// X-Amzn-Trace-Id; SQS calls its system attribute AWSTraceHeader. Either becomes the record's
// attributes.AWSTraceHeader, as an SQS record has it.
var traceHeaders = [...]string{"X-Amzn-Trace-Id", "AWSTraceHeader"}

// ErrGone: the mapping's function was deleted.
var ErrGone = errors.New("esm: function gone")

// Mappings is the mapping registry (store.Mappings).
type Mappings interface {
	Watch(ctx context.Context, ready func(), fn func(uuid string, rev uint64, m *lambda.EventSourceMapping)) error
	Update(ctx context.Context, m *lambda.EventSourceMapping, rev uint64) error
	Delete(ctx context.Context, uuid string) error
}

// Config wires a Manager.
type Config struct {
	JS                  jetstream.JetStream
	Mappings            Mappings
	Invoker             Invoker
	Region              string
	VisibilityTimeout   time.Duration // default 30 s
	MaximumReceiveCount int           // default 5
	DefaultConcurrency  int           // batches in flight without ScalingConfig, default 1000
	ThrottleDelay       time.Duration // default 1 s
	AckWait             time.Duration // default 30 s; running batches send heartbeats
	Checkpoints         Checkpoints   // stream mappings' positions
	StreamRetryDelay    time.Duration // first retry of a failed stream batch, doubling; default 1 s
	// Owner, on a cluster node, gives each stream mapping to one node at a time; nil (a single
	// node): this node reads every stream mapping.
	Owner Owner
	// SQS is the SQS API's queues, which mappings over arn:aws:sqs ARNs read; nil: none.
	SQS SQSQueues
	Log *slog.Logger
}

// Owner decides which node reads a stream mapping (cluster.Leases). Hold runs run while this
// node owns key, ending run's context as soon as it may no longer (before another node may
// take over), and runs it again whenever it owns key again, until ctx ends. Drop forgets key
// once its mapping is deleted.
type Owner interface {
	Hold(ctx context.Context, key string, run func(ctx context.Context))
	Drop(ctx context.Context, key string) error
}

// Defaults.
const (
	DefaultBatchSize           = 10
	DefaultMaximumReceiveCount = 5
)

// Manager keeps one poller running per enabled mapping.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	pollers map[string]*running
	wg      sync.WaitGroup
}

// New returns a Manager; Run starts it.
func New(cfg Config) *Manager {
	if cfg.VisibilityTimeout <= 0 {
		cfg.VisibilityTimeout = 30 * time.Second
	}
	if cfg.MaximumReceiveCount <= 0 {
		cfg.MaximumReceiveCount = DefaultMaximumReceiveCount
	}
	if cfg.DefaultConcurrency <= 0 {
		cfg.DefaultConcurrency = 1000
	}
	if cfg.ThrottleDelay <= 0 {
		cfg.ThrottleDelay = time.Second
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.StreamRetryDelay <= 0 {
		cfg.StreamRetryDelay = time.Second
	}
	return &Manager{cfg: cfg, log: cfg.Log, pollers: map[string]*running{}}
}

// Run follows the mappings until ctx ends, then stops every poller and waits for them (batches
// in flight are left unacknowledged and come back after the restart).
func (m *Manager) Run(ctx context.Context) error {
	defer func() {
		m.mu.Lock()
		for id, p := range m.pollers {
			p.cancel(errShutdown)
			delete(m.pollers, id)
		}
		m.mu.Unlock()
		m.wg.Wait()
	}()
	return m.cfg.Mappings.Watch(ctx, func() {}, func(id string, rev uint64, es *lambda.EventSourceMapping) {
		m.apply(ctx, id, rev, es)
	})
}

// apply reconciles one mapping: run a poller for enabled ones, stop it for disabled ones, and
// finish deletions (consumer and record).
func (m *Manager) apply(ctx context.Context, id string, rev uint64, es *lambda.EventSourceMapping) {
	log := m.log.With("mapping", id)
	if es == nil {
		m.stop(id)
		return
	}
	switch es.State {
	case lambda.ESMDeleting:
		m.stop(id)
		if IsStream(es.EventSourceArn) {
			if err := m.cfg.Checkpoints.Delete(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
				log.Warn("delete checkpoint", "err", err)
			}
			if m.cfg.Owner != nil {
				if err := m.cfg.Owner.Drop(ctx, id); err != nil && ctx.Err() == nil {
					log.Warn("delete lease", "err", err)
				}
			}
		}
		if name, err := QueueName(es.EventSourceArn); err == nil {
			if err := m.cfg.JS.DeleteConsumer(ctx, name, consumerName(id)); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
				log.Warn("delete consumer", "err", err)
			}
		}
		if err := m.cfg.Mappings.Delete(ctx, id); err != nil && ctx.Err() == nil {
			log.Warn("delete mapping", "err", err)
		}
		return
	case lambda.ESMDisabling, lambda.ESMDisabled:
		m.stop(id)
		m.settle(ctx, id, rev, es, lambda.ESMDisabled, log)
		return
	}
	key := pollerKey(es)
	m.mu.Lock()
	p := m.pollers[id]
	m.mu.Unlock()
	if p == nil || p.key != key {
		m.stop(id)
		m.start(ctx, id, es, key, log)
	}
	m.settle(ctx, id, rev, es, lambda.ESMEnabled, log)
}

// settle records that a transition finished.
func (m *Manager) settle(ctx context.Context, id string, rev uint64, es *lambda.EventSourceMapping, state string, log *slog.Logger) {
	if es.State == state {
		return
	}
	next := *es
	next.State = state
	if err := m.cfg.Mappings.Update(ctx, &next, rev); err != nil && ctx.Err() == nil {
		log.Debug("settle mapping state (changed meanwhile)", "err", err)
	}
}

func (m *Manager) start(ctx context.Context, id string, es *lambda.EventSourceMapping, key string, log *slog.Logger) {
	pctx, cancel := context.WithCancelCause(ctx)
	r := &running{key: key, cancel: cancel, done: make(chan struct{}), function: es.FunctionArn, source: es.EventSourceArn}
	qp := &poller{m: m, id: id, es: *es, log: log, inflight: &r.inflight, throttled: map[uint64]int{}}
	run, lag := qp.run, qp.lag
	if IsStream(es.EventSourceArn) {
		sp := &streamPoller{m: m, id: id, es: *es, log: log, inflight: &r.inflight}
		run, lag = sp.run, sp.lag
	}
	r.lag = lag
	m.mu.Lock()
	m.pollers[id] = r
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(r.done)
		if err := run(pctx); err != nil && pctx.Err() == nil {
			log.Error("poller stopped", "err", err)
		}
	}()
}

// stop ends id's poller and waits for its batches.
func (m *Manager) stop(id string) {
	m.mu.Lock()
	p := m.pollers[id]
	delete(m.pollers, id)
	m.mu.Unlock()
	if p != nil {
		p.cancel(errMappingStopped)
		<-p.done
	}
}

// Why a poller stops (context.Cause of its context): its mapping was disabled, changed or
// deleted while the server runs on, or the server is shutting down (the manager's context
// ended, which ends every poller's with that context's cause, not errShutdown).
var (
	errMappingStopped = errors.New("event source mapping stopped")
	errShutdown       = errors.New("event source mappings shutting down")
)

// running is a mapping's poller as the manager sees it.
type running struct {
	key      string                  // pollerKey of the mapping it runs
	cancel   context.CancelCauseFunc // errMappingStopped, or errShutdown (its parent's end)
	done     chan struct{}
	inflight atomic.Int64 // batches being invoked

	function, source string // the mapping's FunctionArn and EventSourceArn
	lag              func(ctx context.Context) (behind uint64, oldest time.Time, err error)
}

// Lag is how far one mapping is behind its source.
type Lag struct {
	UUID, FunctionArn, EventSourceArn string
	// Behind counts the records not yet finished: for a queue, messages waiting or being
	// invoked; for a stream, records after the reader's position plus those read and not
	// finished.
	Behind uint64
	// OldestAge is the age of the oldest of them (0: none).
	OldestAge time.Duration
}

// Lag reports every running mapping's lag, read from JetStream now (a scrape's cost).
func (m *Manager) Lag(ctx context.Context) []Lag {
	m.mu.Lock()
	type entry struct {
		id string
		r  *running
	}
	rs := make([]entry, 0, len(m.pollers))
	for id, r := range m.pollers {
		rs = append(rs, entry{id, r})
	}
	m.mu.Unlock()
	out := make([]Lag, 0, len(rs))
	now := time.Now()
	for _, e := range rs {
		behind, oldest, err := e.r.lag(ctx)
		if err != nil {
			continue // its source is not there (yet): nothing to report
		}
		l := Lag{UUID: e.id, FunctionArn: e.r.function, EventSourceArn: e.r.source, Behind: behind}
		if !oldest.IsZero() {
			l.OldestAge = max(now.Sub(oldest), 0)
		}
		out = append(out, l)
	}
	return out
}

// InFlight reports the batches running per mapping UUID.
func (m *Manager) InFlight() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int, len(m.pollers))
	for id, p := range m.pollers {
		out[id] = int(p.inflight.Load())
	}
	return out
}

func consumerName(id string) string { return "esm-" + id }

// pollerKey is what a running poller depends on: a change restarts it.
func pollerKey(es *lambda.EventSourceMapping) string {
	c := *es
	c.State, c.StateTransitionReason, c.LastModified = "", "", 0
	b, _ := json.Marshal(c)
	return string(b)
}
