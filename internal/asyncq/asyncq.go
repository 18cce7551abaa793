// Package asyncq is Flint's asynchronous invocation queue: Event invokes stored in a JetStream
// work-queue stream before the caller gets its 202, consumed by workers that invoke through the
// same engine as synchronous invokes, retried on function errors (MaximumRetryAttempts, with
// delays) and on throttles (until MaximumEventAgeInSeconds), and settled to on-success /
// on-failure destinations and the function's dead-letter target. It runs invocations through the
// small Invoker interface it owns and reads settings through Settings; it knows nothing of HTTP.
package asyncq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/linger"
	"github.com/flint-run/flint/internal/telemetry"
)

// Event is one asynchronous invocation.
type Event struct {
	RequestID   string
	Function    string
	Qualifier   string // "" for $LATEST
	Payload     []byte
	EnqueuedAt  time.Time
	Attempt     int       // executions so far
	NotBefore   time.Time // zero: now
	FunctionArn string    // unqualified, for records
	// TraceID is the event's X-Ray trace header: the caller's, else a new root made by
	// Enqueue. Every execution (retries included) and the destination records carry it.
	TraceID string
}

// Outcome is how one execution went.
type Outcome struct {
	Throttled bool // not run: concurrency limits; retried until the event expires
	// Rejected: not run and never will be (reserved concurrency 0): straight to on-failure.
	Rejected        bool
	Payload         []byte
	FunctionError   string // "Unhandled" when the function failed
	ExecutedVersion string
}

// Invoker runs an event synchronously through the invoke engine. ErrGone means the function (or
// qualifier) no longer exists.
type Invoker interface {
	InvokeAsync(ctx context.Context, ev Event) (Outcome, error)
}

// ErrGone: the event's function or qualifier was deleted; the event is discarded.
var ErrGone = errors.New("asyncq: function gone")

// InvokeConfig is a function's (or qualifier's) asynchronous invocation settings.
type InvokeConfig struct {
	MaximumRetryAttempts int
	MaximumEventAge      time.Duration
	OnSuccess, OnFailure string // destination ARNs, "" for none
	DeadLetter           string // the function's DeadLetterConfig.TargetArn
}

// DefaultInvokeConfig is Lambda's default: 2 retries, 6 hours.
var DefaultInvokeConfig = InvokeConfig{MaximumRetryAttempts: 2, MaximumEventAge: 6 * time.Hour}

// Settings looks up an event's InvokeConfig.
type Settings interface {
	AsyncConfig(ctx context.Context, function, qualifier string) (InvokeConfig, error)
}

// Config wires a Queue.
type Config struct {
	JS          jetstream.JetStream
	Stream      string // default FLINT_ASYNC
	Subject     string // prefix, default flint.async
	Invoker     Invoker
	Settings    Settings
	RetryDelays []time.Duration // before the 2nd and 3rd execution; default 1 and 2 minutes
	// ThrottleBackoff bounds the wait before retrying a throttled event (grows from Min to Max).
	ThrottleMin, ThrottleMax time.Duration
	Concurrency              int // events in flight at once, default 256
	// AckWait is how long a delivered event may go without an ack or a heartbeat before
	// JetStream delivers it again (after a crash); default 30 s. Running events send heartbeats.
	AckWait time.Duration
	Log     *slog.Logger
}

// Queue is the async invocation queue.
type Queue struct {
	cfg    Config
	stream jetstream.Stream
	log    *slog.Logger

	mu       sync.Mutex
	inflight map[string]int
	progress map[string]time.Time // last time an event of the function was admitted
	streams  map[string]bool      // destination streams known to exist

	runMu   sync.Mutex
	running map[jetstream.Msg]struct{} // events executing: beats sends their heartbeats

	acks *linger.Queue[settledAck] // sent by Run's acker in batches

	publishBound *coarseDeadline // publishTimeout
	ackBound     *coarseDeadline // ackTimeout
}

// New creates (or updates) the stream and returns the queue; Run consumes it.
func New(ctx context.Context, cfg Config) (*Queue, error) {
	if cfg.Stream == "" {
		cfg.Stream = "FLINT_ASYNC"
	}
	if cfg.Subject == "" {
		cfg.Subject = "flint.async"
	}
	if len(cfg.RetryDelays) == 0 {
		cfg.RetryDelays = []time.Duration{time.Minute, 2 * time.Minute}
	}
	if cfg.ThrottleMin <= 0 {
		cfg.ThrottleMin = time.Second
	}
	if cfg.ThrottleMax <= 0 {
		cfg.ThrottleMax = 5 * time.Minute
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 256
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	st, err := cfg.JS.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        cfg.Stream,
		Description: "Flint asynchronous invocations (one subject per function)",
		Subjects:    []string{cfg.Subject + ".>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Duplicates:  10 * time.Minute, // request ids dedupe a publish retried after a crash
		MaxMsgSize:  2 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("async stream: %w", err)
	}
	return &Queue{cfg: cfg, stream: st, log: cfg.Log,
		inflight: map[string]int{}, progress: map[string]time.Time{}, streams: map[string]bool{}, running: map[jetstream.Msg]struct{}{},
		acks:         linger.New[settledAck](ackLinger, 4*cfg.Concurrency),
		publishBound: newCoarseDeadline(publishTimeout), ackBound: newCoarseDeadline(ackTimeout)}, nil
}

const (
	hdrRequestID = "Flint-Request-Id"
	hdrFunction  = "Flint-Function"
	hdrQualifier = "Flint-Qualifier"
	hdrEnqueued  = "Flint-Enqueued"
	hdrAttempt   = "Flint-Attempt"
	hdrNotBefore = "Flint-Not-Before"
	hdrArn       = "Flint-Function-Arn"
	// HeaderTrace carries a trace header on the queue's events and on destination records
	// published to streams (an SQS message's AWSTraceHeader).
	HeaderTrace = "X-Amzn-Trace-Id"
)

// Enqueue stores ev durably; it returns once JetStream has acknowledged the write. An event
// without a trace header gets a new root, so that all its executions share one trace.
//
// The publish is asynchronous and Enqueue waits for its ack: concurrent enqueues then share
// the connection's writes and its reads of the acks, and none needs a timer of its own (a
// synchronous publish with a context without deadline made one per call). The wait ends with
// ctx, or after publishTimeout when no ack comes (a stream without its leader).
func (q *Queue) Enqueue(ctx context.Context, ev Event) error {
	if _, ok := telemetry.ParseTraceHeader(ev.TraceID); !ok {
		ev.TraceID = telemetry.NewTraceHeader(time.Now(), false)
	}
	m := nats.NewMsg(q.cfg.Subject + "." + ev.Function)
	m.Data = ev.Payload
	m.Header.Set(hdrRequestID, ev.RequestID)
	m.Header.Set(hdrFunction, ev.Function)
	m.Header.Set(hdrQualifier, ev.Qualifier)
	m.Header.Set(hdrArn, ev.FunctionArn)
	m.Header.Set(hdrEnqueued, strconv.FormatInt(ev.EnqueuedAt.UnixNano(), 10))
	m.Header.Set(hdrAttempt, strconv.Itoa(ev.Attempt))
	m.Header.Set(HeaderTrace, ev.TraceID)
	if !ev.NotBefore.IsZero() {
		m.Header.Set(hdrNotBefore, strconv.FormatInt(ev.NotBefore.UnixNano(), 10))
	}
	if err := q.publish(ctx, m, ev.RequestID+"/"+strconv.Itoa(ev.Attempt)); err != nil {
		return fmt.Errorf("enqueue %s: %w", ev.RequestID, err)
	}
	return nil
}

// publishTimeout bounds the wait for a publish's ack, as nats.go's default timeout did.
const publishTimeout = 5 * time.Second

// publish stores m with deduplication ID id and waits for JetStream's ack.
func (q *Queue) publish(ctx context.Context, m *nats.Msg, id string) error {
	f, err := q.cfg.JS.PublishMsgAsync(m, jetstream.WithMsgID(id))
	if err != nil {
		return err
	}
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return q.failed(err)
	case <-ctx.Done():
		return ctx.Err()
	case <-q.publishBound.get().Done():
		return q.failed(context.DeadlineExceeded)
	}
}

// failed gives the JetStream context the chance to explain a write that got no answer (Flint's
// store turns it into its quorum error when the node has lost the quorum).
func (q *Queue) failed(err error) error {
	if f, ok := q.cfg.JS.(interface{ Failed(error) error }); ok {
		return f.Failed(err)
	}
	return err
}

func decode(msg jetstream.Msg) (Event, error) {
	h := msg.Headers()
	ev := Event{RequestID: h.Get(hdrRequestID), Function: h.Get(hdrFunction), Qualifier: h.Get(hdrQualifier),
		FunctionArn: h.Get(hdrArn), Payload: msg.Data(), TraceID: h.Get(HeaderTrace)}
	enq, err := strconv.ParseInt(h.Get(hdrEnqueued), 10, 64)
	if err != nil || ev.RequestID == "" || ev.Function == "" {
		return ev, fmt.Errorf("malformed async event on %s", msg.Subject())
	}
	ev.EnqueuedAt = time.Unix(0, enq)
	ev.Attempt, _ = strconv.Atoi(h.Get(hdrAttempt))
	if s := h.Get(hdrNotBefore); s != "" { // only a retried event has one: no error built per event
		if nb, err := strconv.ParseInt(s, 10, 64); err == nil {
			ev.NotBefore = time.Unix(0, nb)
		}
	}
	return ev, nil
}

// consumerName is the queue's one durable consumer, shared by every node.
const consumerName = "flint-async"

// fetchHeartbeat is how often JetStream tells a waiting fetch it is alive. In a cluster a
// node's fetch waits on the node leading the consumer; when that node dies the fetch is lost
// with it, and the node fetches again only after two missed heartbeats. With nats.go's default
// (half the 30 s expiry) the surviving nodes ran no async event for up to 30 s after a kill -9
// (TestScheduleSurvivesNodeKill, internal/clustertest); with 1 s they go on once the consumer
// has a new leader.
const fetchHeartbeat = time.Second

// Run consumes the queue until ctx ends, then stops fetching at once, hands back the events
// fetched and not started (Nak: redelivered without waiting out AckWait), and waits for the
// events in flight; a shutdown lets them finish (the server's grace) or cuts them off, which
// leaves them for redelivery (handle).
func (q *Queue) Run(ctx context.Context) error {
	cons, err := q.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       consumerName,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: q.cfg.Concurrency * 4,
		FilterSubject: q.cfg.Subject + ".>",
	})
	if err != nil {
		return fmt.Errorf("async consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(q.cfg.Concurrency), jetstream.PullHeartbeat(fetchHeartbeat))
	if err != nil {
		return fmt.Errorf("async consume: %w", err)
	}
	// Drain, not Stop: the events already fetched still come out of Next, to be handed back.
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()
	// Events run on workers started as needed, up to Concurrency, that live as long as Run: a
	// goroutine per event grew a new stack through the invocation's calls each time (4 % of the
	// server's CPU at c=16, issue 18).
	work := make(chan jetstream.Msg)
	workers := 0
	var wg sync.WaitGroup
	worker := func(msg jetstream.Msg) {
		defer wg.Done()
		for ; msg != nil; msg = <-work {
			q.handle(ctx, msg)
		}
	}
	beatCtx, stopBeats := context.WithCancel(context.WithoutCancel(ctx))
	beatsDone := make(chan struct{})
	go func() { defer close(beatsDone); q.beats(beatCtx) }()
	ackerQuit, ackerDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(ackerDone); q.acks.Run(ackerQuit, q.sendAcks) }()
	defer func() {
		it.Stop()
		close(work)
		wg.Wait()
		stopBeats() // the events have ended: nothing runs to beat for
		<-beatsDone
		close(ackerQuit) // sends the acks still gathering
		<-ackerDone
		// Naks and acks are fire-and-forget: make sure they reach the server before the
		// connection closes, or the events wait out AckWait after the restart.
		if nc := q.cfg.JS.Conn(); nc != nil {
			_ = nc.FlushTimeout(5 * time.Second)
		}
	}()
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			if ctx.Err() != nil {
				return nil
			}
			q.log.Warn("async consume", "err", err)
			continue
		}
		if ctx.Err() != nil { // stopping: fetched, not started
			handBack(msg)
			continue
		}
		select {
		case work <- msg: // an idle worker
			continue
		default:
		}
		if workers < q.cfg.Concurrency {
			workers++
			wg.Add(1)
			go worker(msg)
			continue
		}
		select {
		case work <- msg:
		case <-ctx.Done():
			handBack(msg)
		}
	}
}

// handle processes one delivered event. Once runCtx has ended (shutdown) an event that does not
// run to a result, because the platform stopped it or could not start it, goes back to the queue
// (handBack) and runs again after the restart, as the same attempt.
func (q *Queue) handle(runCtx context.Context, msg jetstream.Msg) {
	if runCtx.Err() != nil {
		handBack(msg)
		return
	}
	ctx := context.WithoutCancel(runCtx)
	ev, err := decode(msg)
	if err != nil {
		q.log.Error("discarding malformed async event", "err", err)
		_ = msg.Term()
		return
	}
	log := &eventLog{base: q.log, function: ev.Function, requestID: ev.RequestID}
	now := time.Now()
	if ev.NotBefore.After(now) {
		_ = msg.NakWithDelay(ev.NotBefore.Sub(now))
		return
	}
	cfg, err := q.cfg.Settings.AsyncConfig(ctx, ev.Function, ev.Qualifier)
	if errors.Is(err, ErrGone) {
		log.get().Info("discarding async event of a deleted function")
		_ = msg.Term()
		return
	}
	if err != nil {
		log.get().Warn("async settings", "err", err)
		_ = msg.NakWithDelay(q.cfg.ThrottleMin)
		return
	}
	// The event is kept from redelivery (beats) until it is settled, its records delivered too:
	// a destination slow to answer (its stream electing a leader) must not get it run again.
	q.started(msg)
	defer q.stopped(msg)
	if now.Sub(ev.EnqueuedAt) > cfg.MaximumEventAge {
		q.settle(runCtx, msg, log, q.fail(runCtx, ev, cfg, "EventAgeExceeded", nil))
		return
	}
	q.track(ev.Function, 1)
	out, err := q.cfg.Invoker.InvokeAsync(ctx, ev)
	q.track(ev.Function, -1)
	if runCtx.Err() != nil && (err != nil && !errors.Is(err, ErrGone) || out.Throttled) {
		// Shutting down: the platform stopped the invocation (its environment destroyed past
		// the grace period) or could not place it; the event runs again after the restart. A
		// function error is the function's own (the worker never reports a platform stop as
		// one) and is retried or settled as usual.
		handBack(msg)
		return
	}
	if err == nil && !out.Throttled {
		q.mu.Lock()
		q.progress[ev.Function] = time.Now()
		q.mu.Unlock()
	}
	switch {
	case errors.Is(err, ErrGone):
		log.get().Info("discarding async event of a deleted function")
		_ = msg.Term()
	case err != nil:
		log.get().Warn("async invoke failed; retrying", "err", err)
		_ = msg.NakWithDelay(q.throttleDelay(msg, ""))
	case out.Rejected:
		q.settle(runCtx, msg, log, q.fail(runCtx, ev, cfg, "RetriesExhausted", nil))
	case out.Throttled:
		_ = msg.NakWithDelay(q.throttleDelay(msg, ev.Function))
	case out.FunctionError == "":
		ev.Attempt++
		q.settle(runCtx, msg, log, cfg.OnSuccess == "" ||
			q.deliver(runCtx, cfg.OnSuccess, q.record(ev, "Success", &out), nil, ev.RequestID+"/Success", ev.TraceID, log))
	default:
		ev.Attempt++
		if ev.Attempt <= cfg.MaximumRetryAttempts {
			retry := ev
			retry.NotBefore = time.Now().Add(q.cfg.RetryDelays[min(ev.Attempt-1, len(q.cfg.RetryDelays)-1)])
			if err := q.Enqueue(ctx, retry); err != nil {
				log.get().Warn("requeue for retry", "err", err)
				_ = msg.NakWithDelay(q.cfg.ThrottleMin)
				return
			}
			q.ack(msg, log)
			return
		}
		q.settle(runCtx, msg, log, q.fail(runCtx, ev, cfg, "RetriesExhausted", &out))
	}
}

// settle acknowledges an event whose records were delivered (or given up), and hands back one
// whose records could not be delivered before the node began shutting down: it runs again (at
// least once, as on Lambda), on another node or after the restart, and its records are
// delivered then. Acknowledged, they would be lost.
func (q *Queue) settle(runCtx context.Context, msg jetstream.Msg, log *eventLog, delivered bool) {
	if !delivered {
		log.get().Warn("shutting down before the event's destination took its record; it runs again", "err", context.Cause(runCtx))
		handBack(msg)
		return
	}
	q.ack(msg, log)
}

// handBack returns an event this node will not run (it is shutting down) for redelivery at
// once: to another node, or to this one after its restart. A plain Nak would do for the first
// only: JetStream keeps it in memory, and after a restart the event still waits out AckWait
// from its delivery. A Nak with a delay is stored with the consumer's state.
func handBack(msg jetstream.Msg) { _ = msg.NakWithDelay(time.Millisecond) }

// beats tells JetStream that the events in running are still running, every AckWait/3, until
// ctx ends: one ticker for the queue, where a goroutine and a ticker per event cost more than
// the rest of settling an event that does not run (a throttled or rejected one).
func (q *Queue) beats(ctx context.Context) {
	t := time.NewTicker(q.cfg.AckWait / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		q.runMu.Lock()
		msgs := make([]jetstream.Msg, 0, len(q.running))
		for msg := range q.running {
			msgs = append(msgs, msg)
		}
		q.runMu.Unlock()
		for _, msg := range msgs {
			_ = msg.InProgress()
		}
	}
}

// started and stopped bracket an event's execution for beats.
func (q *Queue) started(msg jetstream.Msg) {
	q.runMu.Lock()
	q.running[msg] = struct{}{}
	q.runMu.Unlock()
}

func (q *Queue) stopped(msg jetstream.Msg) {
	q.runMu.Lock()
	delete(q.running, msg)
	q.runMu.Unlock()
}

// ackTimeout bounds the wait for JetStream to confirm an ack.
const ackTimeout = 10 * time.Second

// ackLinger is how long settled events' acks gather before they are sent together. Acked one
// at a time, each event emptied the work-queue stream's last block whenever the queue kept up,
// and JetStream then removes that block's file and creates the next one: three system calls on
// files per event, a fifth of the async path's CPU. A batch empties it once. An event that
// finished in the last few milliseconds before a crash runs again, as Lambda's asynchronous
// invocations may (at least once).
const ackLinger = 2 * time.Millisecond

// settledAck is an event whose ack waits in the batch.
type settledAck struct {
	msg jetstream.Msg
	log *eventLog
}

// ack acknowledges an event that is settled; the ack is sent with the next batch.
func (q *Queue) ack(msg jetstream.Msg, log *eventLog) {
	if !q.acks.Put(settledAck{msg, log}) {
		q.sendAcks([]settledAck{{msg, log}})
	}
}

// sendAcks sends a batch of acks and waits for JetStream to confirm the last: acks of one
// consumer are processed in order, so it confirms them all.
func (q *Queue) sendAcks(batch []settledAck) {
	for _, a := range batch[:len(batch)-1] {
		if err := a.msg.Ack(); err != nil {
			a.log.get().Warn("ack async event", "err", err)
		}
	}
	last := batch[len(batch)-1]
	if err := last.msg.DoubleAck(q.ackBound.get()); err != nil {
		last.log.get().Warn("ack async event", "err", err)
	}
}

// throttleDelay is the wait before a throttled event is tried again. While its function is making
// progress (it ran an event within ThrottleMax) the wait stays short and jittered, so queued events
// follow each other as capacity frees up; for a function that makes none it grows with the event's
// deliveries, 1 s, 2 s, 4 s … up to ThrottleMax, as Lambda's does.
func (q *Queue) throttleDelay(msg jetstream.Msg, function string) time.Duration {
	q.mu.Lock()
	last, ok := q.progress[function]
	q.mu.Unlock()
	// No record yet (a fresh start) counts as progressing: the deliveries before a restart must not
	// leave the queue in long backoff while the function sits idle.
	if !ok || time.Since(last) < q.cfg.ThrottleMax {
		return time.Duration(float64(q.cfg.ThrottleMin) * (0.5 + rand.Float64()))
	}
	n := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		n = md.NumDelivered
	}
	d := time.Duration(float64(q.cfg.ThrottleMin) * math.Pow(2, float64(min(n-1, 20))))
	return min(d, q.cfg.ThrottleMax)
}

func (q *Queue) track(fn string, d int) {
	q.mu.Lock()
	q.inflight[fn] += d
	if q.inflight[fn] == 0 {
		delete(q.inflight, fn)
	}
	q.mu.Unlock()
}

// fail sends an event that will not run again to the on-failure destination and the DLQ; it
// reports false if runCtx ended before they took the records (deliver).
func (q *Queue) fail(runCtx context.Context, ev Event, cfg InvokeConfig, condition string, out *Outcome) bool {
	log := &eventLog{base: q.log, function: ev.Function, requestID: ev.RequestID}
	if cfg.OnFailure != "" && !q.deliver(runCtx, cfg.OnFailure, q.record(ev, condition, out), nil, ev.RequestID+"/"+condition, ev.TraceID, log) {
		return false
	}
	if cfg.DeadLetter == "" {
		return true
	}
	msg := "Event age exceeded"
	code := "200"
	if out != nil && len(out.Payload) > 0 {
		msg = string(out.Payload[:min(len(out.Payload), 1024)])
	}
	return q.deliver(runCtx, cfg.DeadLetter, ev.Payload, map[string]string{"RequestID": ev.RequestID, "ErrorCode": code, "ErrorMessage": msg}, ev.RequestID+"/dead-letter", ev.TraceID, log)
}

// Record is Lambda's destination record.
type Record struct {
	Version         string           `json:"version"`
	Timestamp       string           `json:"timestamp"`
	RequestContext  RequestContext   `json:"requestContext"`
	RequestPayload  json.RawMessage  `json:"requestPayload"`
	Response        *ResponseContext `json:"responseContext,omitempty"`
	ResponsePayload json.RawMessage  `json:"responsePayload,omitempty"`
}

// RequestContext identifies the invocation a record is about.
type RequestContext struct {
	RequestID              string `json:"requestId"`
	FunctionArn            string `json:"functionArn"`
	Condition              string `json:"condition"`
	ApproximateInvokeCount int    `json:"approximateInvokeCount"`
}

// ResponseContext is how the last execution ended.
type ResponseContext struct {
	StatusCode      int    `json:"statusCode"`
	ExecutedVersion string `json:"executedVersion"`
	FunctionError   string `json:"functionError,omitempty"`
}

func (q *Queue) record(ev Event, condition string, out *Outcome) []byte {
	qualifier := ev.Qualifier
	if qualifier == "" {
		qualifier = "$LATEST"
	}
	r := Record{Version: "1.0", Timestamp: time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		RequestContext: RequestContext{RequestID: ev.RequestID, FunctionArn: ev.FunctionArn + ":" + qualifier,
			Condition: condition, ApproximateInvokeCount: ev.Attempt},
		RequestPayload: jsonOrString(ev.Payload)}
	if out != nil {
		r.Response = &ResponseContext{StatusCode: 200, ExecutedVersion: out.ExecutedVersion, FunctionError: out.FunctionError}
		r.ResponsePayload = jsonOrString(out.Payload)
	}
	b, _ := json.Marshal(r)
	return b
}

func jsonOrString(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b))
	return s
}

// eventLog is an event's logger, made on first use: most events settle without logging, and
// slog's With copies and formats its attributes at once.
type eventLog struct {
	base                *slog.Logger
	function, requestID string
	l                   *slog.Logger
}

func (l *eventLog) get() *slog.Logger {
	if l.l == nil {
		l.l = l.base.With("function", l.function, "request_id", l.requestID)
	}
	return l.l
}
