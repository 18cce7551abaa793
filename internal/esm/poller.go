package esm

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/lambda"
)

// poller runs one enabled queue mapping.
type poller struct {
	m   *Manager
	id  string
	es  lambda.EventSourceMapping
	log *slog.Logger

	inflight *atomic.Int64
	mu       sync.Mutex
	// throttled counts the deliveries of a message (by stream sequence) that never reached the
	// function, so that throttles do not count as receives.
	throttled map[uint64]int

	// sqs is the SQS API queue an arn:aws:sqs mapping reads (nil for arn:flint queues), set
	// once by run before the first batch; sqsVisibility and sqsMaxReceive are its settings as
	// read for the latest batch.
	sqs           *SQSQueue
	sqsVisibility atomic.Int64
	sqsMaxReceive atomic.Int64

	// filters are the mapping's FilterCriteria: a message none of them matches is deleted
	// without running the function, as Lambda does for SQS (on its body).
	filters filters
}

// lag reads the queue's backlog: messages not yet delivered plus those delivered and not
// acknowledged, and the oldest one's age (a work queue keeps a message until it is acked).
func (p *poller) lag(ctx context.Context) (uint64, time.Time, error) {
	var name, cname string
	var err error
	if IsSQS(p.es.EventSourceArn) {
		if p.m.cfg.SQS == nil {
			return 0, time.Time{}, errUnknown
		}
		q, err := p.m.cfg.SQS.Source(ctx, p.es.EventSourceArn)
		if err != nil {
			return 0, time.Time{}, err
		}
		name, cname = q.Stream, q.Consumer.CachedInfo().Name
	} else {
		name, err = QueueName(p.es.EventSourceArn)
		cname = consumerName(p.id)
	}
	if err != nil {
		return 0, time.Time{}, err
	}
	cons, err := p.m.cfg.JS.Consumer(ctx, name, cname)
	if err != nil {
		return 0, time.Time{}, err
	}
	info := cons.CachedInfo()
	behind := info.NumPending + uint64(max(info.NumAckPending, 0))
	var oldest time.Time
	if behind > 0 {
		if st, err := p.m.cfg.JS.Stream(ctx, name); err == nil && st.CachedInfo().State.Msgs > 0 {
			oldest = st.CachedInfo().State.FirstTime
		}
	}
	return behind, oldest, nil
}

func (p *poller) concurrency() int {
	if sc := p.es.ScalingConfig; sc != nil && sc.MaximumConcurrency > 0 {
		return sc.MaximumConcurrency
	}
	return p.m.cfg.DefaultConcurrency
}

func (p *poller) visibility() time.Duration {
	if p.sqs != nil {
		return time.Duration(p.sqsVisibility.Load())
	}
	if v := p.es.VisibilityTimeoutSeconds; v > 0 {
		return time.Duration(v * float64(time.Second))
	}
	return p.m.cfg.VisibilityTimeout
}

func (p *poller) maxReceive() int {
	if p.sqs != nil {
		if n := p.sqsMaxReceive.Load(); n > 0 {
			return int(n)
		}
		return int(^uint(0) >> 1) // no RedrivePolicy: kept until its retention ends
	}
	if n := p.es.MaximumReceiveCount; n > 0 {
		return n
	}
	return p.m.cfg.MaximumReceiveCount
}

// run polls until ctx ends, then waits for the batches in flight.
func (p *poller) run(ctx context.Context) error {
	var err error
	if p.filters, err = compileFilters(p.es.FilterCriteria); err != nil {
		return err
	}
	conc := p.concurrency()
	batchSize := max(p.es.BatchSize, 1)
	var cons jetstream.Consumer
	if IsSQS(p.es.EventSourceArn) {
		q, err := p.sqsSource(ctx)
		if err != nil || q == nil {
			return err
		}
		p.sqs, cons = q, q.Consumer
		p.readSQSSettings(ctx)
	} else if c, err := p.ownConsumer(ctx, conc, batchSize); err != nil {
		return err
	} else {
		cons = c
	}
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		// The naks of a stopping poller are fire-and-forget: make sure they reach the server
		// before the store closes, or the messages wait out AckWait after the restart.
		_ = p.m.cfg.JS.Conn().FlushTimeout(5 * time.Second)
	}()
	window := time.Duration(p.es.MaximumBatchingWindowInSeconds) * time.Second
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		if ctx.Err() != nil { // select picks at random when both are ready
			<-sem
			return nil
		}
		msgs, err := p.fetch(ctx, cons, batchSize, window)
		// Messages a fetch returns as the server shuts down run like any batch (and are waited
		// for below), not handed back: they were delivered, and a hand-back would count a receive
		// the function never had, which after the restart is all ApproximateReceiveCount and
		// maxReceiveCount know of them (a message could reach the dead-letter queue unseen). A
		// mapping disabled, changed or deleted hands them back: its next poller (new filters,
		// batch size, function) or none decides.
		if ctx.Err() != nil && errors.Is(context.Cause(ctx), errMappingStopped) {
			for _, msg := range msgs {
				handBack(msg)
			}
			msgs = nil
		}
		if len(msgs) == 0 {
			<-sem
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				p.log.Warn("fetch", "err", err)
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
					return nil
				}
			}
			continue
		}
		wg.Add(1)
		p.inflight.Add(1)
		go func() {
			defer func() { p.inflight.Add(-1); <-sem; wg.Done() }()
			p.handle(ctx, msgs)
		}()
	}
}

// ownConsumer makes the arn:flint queue's stream and this mapping's own durable consumer.
func (p *poller) ownConsumer(ctx context.Context, conc, batchSize int) (jetstream.Consumer, error) {
	name, err := QueueName(p.es.EventSourceArn)
	if err != nil {
		return nil, err
	}
	st, err := EnsureQueue(ctx, p.m.cfg.JS, name)
	if err != nil {
		return nil, err
	}
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       consumerName(p.id),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       p.m.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: conc*batchSize + batchSize,
		MaxWaiting:    max(512, conc),
		FilterSubject: QueueSubject(name),
	})
	if err != nil {
		return nil, fmt.Errorf("consumer for %s: %w", name, err)
	}
	return cons, nil
}

func (p *poller) readSQSSettings(ctx context.Context) {
	vis, maxReceive := p.sqs.Settings(ctx)
	p.sqsVisibility.Store(int64(vis))
	p.sqsMaxReceive.Store(int64(maxReceive))
}

// sqsSource finds the SQS API queue the mapping reads, waiting (a log line a minute) while it
// does not exist: it may be made again. nil, nil: ctx ended.
func (p *poller) sqsSource(ctx context.Context) (*SQSQueue, error) {
	if p.m.cfg.SQS == nil {
		return nil, fmt.Errorf("%w %s: this server has no SQS API", errUnknown, p.es.EventSourceArn)
	}
	var logged time.Time
	for {
		q, err := p.m.cfg.SQS.Source(ctx, p.es.EventSourceArn)
		if err == nil {
			return q, nil
		}
		if time.Since(logged) > time.Minute {
			p.log.Warn("mapped queue unavailable; retrying", "queue", p.es.EventSourceArn, "err", err)
			logged = time.Now()
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return nil, nil
		}
	}
}

// fetch returns the next batch: with a batching window, up to n messages within it; without, the
// first message (long poll up to a second) and whatever else is ready.
func (p *poller) fetch(ctx context.Context, cons jetstream.Consumer, n int, window time.Duration) ([]jetstream.Msg, error) {
	collect := func(b jetstream.MessageBatch, err error, out []jetstream.Msg) ([]jetstream.Msg, error) {
		if err != nil {
			return out, err
		}
		for msg := range b.Messages() {
			out = append(out, msg)
		}
		if err := b.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return out, err
		}
		return out, nil
	}
	// A pull beyond the consumer's MaxAckPending (an SQS FIFO queue's shared consumer: 1) is
	// not answered at once, even a no-wait one: it waits for acks of the batch it holds back.
	if mp := cons.CachedInfo().Config.MaxAckPending; mp > 0 {
		n = min(n, mp)
	}
	if window > 0 {
		b, err := cons.Fetch(n, jetstream.FetchMaxWait(window))
		return collect(b, err, nil)
	}
	wait := time.Second
	if d, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(d))
	}
	b, err := cons.Fetch(1, jetstream.FetchMaxWait(wait))
	out, err := collect(b, err, nil)
	if err != nil || len(out) == 0 || n == 1 {
		return out, err
	}
	b, err = cons.FetchNoWait(n - 1)
	return collect(b, err, out)
}

// item is one message of a batch.
type item struct {
	msg      jetstream.Msg
	rec      json.RawMessage // an SQS API queue's record, built by the queue
	trace    string          // with rec: its trace header
	id       string
	seq      uint64
	received int
	sent     time.Time
}

// sqsRecord is one record of an SQS event.
type sqsRecord struct {
	MessageID         string                     `json:"messageId"`
	ReceiptHandle     string                     `json:"receiptHandle"`
	Body              string                     `json:"body"`
	Attributes        map[string]string          `json:"attributes"`
	MessageAttributes map[string]json.RawMessage `json:"messageAttributes"`
	MD5OfBody         string                     `json:"md5OfBody"`
	EventSource       string                     `json:"eventSource"`
	EventSourceARN    string                     `json:"eventSourceARN"`
	AWSRegion         string                     `json:"awsRegion"`
}

var idSpace = uuid.MustParse("6c1c2a3e-6a0e-4f1b-9d5c-1f1e5a0e0f11")

// handle runs one batch. ctx ending leaves the messages unacknowledged (they come back).
func (p *poller) handle(runCtx context.Context, msgs []jetstream.Msg) {
	ctx := context.WithoutCancel(runCtx)
	if p.sqs != nil {
		p.readSQSSettings(ctx)
	}
	var items []item
	for _, msg := range msgs {
		md, err := msg.Metadata()
		if err != nil {
			p.log.Warn("message metadata", "err", err)
			_ = msg.Nak()
			continue
		}
		it := item{msg: msg, seq: md.Sequence.Stream, sent: md.Timestamp}
		it.id = msg.Headers().Get(nats.MsgIdHdr)
		if it.id == "" {
			it.id = uuid.NewSHA1(idSpace, []byte(md.Stream+"/"+strconv.FormatUint(it.seq, 10))).String()
		}
		p.mu.Lock()
		it.received = int(md.NumDelivered) - p.throttled[it.seq]
		p.mu.Unlock()
		if it.received > p.maxReceive() {
			p.deadLetter(ctx, it)
			continue
		}
		body := msg.Data()
		if p.sqs != nil {
			if it.id, it.rec, it.trace, err = p.sqs.Record(msg, it.received, p.es.EventSourceArn, p.m.cfg.Region); err != nil {
				p.log.Warn("message record", "err", err)
				_ = msg.Nak()
				continue
			}
			if len(p.filters) > 0 {
				body = recordBody(it.rec)
			}
		}
		if len(p.filters) > 0 && !p.filters.match(map[string]any{"body": dataValue(body)}) {
			p.ack(ctx, it) // filtered out: deleted, as Lambda does
			continue
		}
		items = append(items, it)
	}
	if len(items) == 0 {
		return
	}
	payload, traces := p.event(items)
	stopBeat := p.heartbeat(items)
	res, err := p.m.cfg.Invoker.InvokeBatch(ctx, p.es.FunctionArn, payload, traces)
	stopBeat()
	if runCtx.Err() != nil && (err != nil || res.Throttled || res.FunctionError != "") {
		for _, it := range items {
			handBack(it.msg)
		}
		return
	}
	switch {
	case errors.Is(err, ErrGone):
		p.log.Warn("mapped function is gone; batch returns after the visibility timeout", "function", p.es.FunctionArn)
		p.retry(items, p.visibility())
	case err != nil:
		p.log.Warn("batch invoke failed", "err", err)
		p.retry(items, p.visibility())
	case res.Throttled:
		p.mu.Lock()
		for _, it := range items {
			p.throttled[it.seq]++
		}
		p.mu.Unlock()
		d := p.m.cfg.ThrottleDelay
		p.retry(items, time.Duration(float64(d)*(0.5+rand.Float64())))
	case res.FunctionError != "":
		p.retry(items, p.visibility())
	default:
		failed, ok := p.failures(items, res.Payload)
		if !ok {
			p.retry(items, p.visibility())
			return
		}
		var again []item
		for _, it := range items {
			if failed[it.id] {
				again = append(again, it)
				continue
			}
			p.ack(ctx, it)
		}
		p.retry(again, p.visibility())
	}
}

// failures reads a partial batch response; ok false means the whole batch failed.
func (p *poller) failures(items []item, payload []byte) (map[string]bool, bool) {
	if !slices.Contains(p.es.FunctionResponseTypes, "ReportBatchItemFailures") {
		return nil, true
	}
	if len(payload) == 0 || string(payload) == "null" {
		return nil, true
	}
	var resp struct {
		BatchItemFailures []map[string]any `json:"batchItemFailures"`
	}
	if err := json.Unmarshal(payload, &resp); err != nil {
		return nil, true // a response that is not an object (e.g. a string) is not a batch response
	}
	ids := make(map[string]bool, len(items))
	for _, it := range items {
		ids[it.id] = false
	}
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		id, _ := f["itemIdentifier"].(string)
		if _, known := ids[id]; !known || id == "" {
			p.log.Warn("invalid partial batch response; the whole batch failed", "item", f["itemIdentifier"])
			return nil, false
		}
		failed[id] = true
	}
	return failed, true
}

// event is the batch's SQS event, and the trace headers its records carry.
func (p *poller) event(items []item) ([]byte, []string) {
	if p.sqs != nil {
		recs := make([]json.RawMessage, len(items))
		var traces []string
		for i, it := range items {
			recs[i] = it.rec
			if it.trace != "" {
				traces = append(traces, it.trace)
			}
		}
		b, _ := json.Marshal(struct {
			Records []json.RawMessage `json:"Records"`
		}{recs})
		return b, traces
	}
	recs := make([]sqsRecord, len(items))
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	var traces []string
	for i, it := range items {
		body := it.msg.Data()
		sum := md5.Sum(body)
		attrs := map[string]json.RawMessage{}
		trace := ""
		for _, h := range traceHeaders {
			if trace = it.msg.Headers().Get(h); trace != "" {
				traces = append(traces, trace)
				break
			}
		}
		for k, vs := range it.msg.Headers() {
			if k == nats.MsgIdHdr || len(vs) == 0 || k == traceHeaders[0] || k == traceHeaders[1] {
				continue
			}
			b, _ := json.Marshal(map[string]any{"stringValue": vs[0], "stringListValues": []string{}, "binaryListValues": []string{}, "dataType": "String"})
			attrs[k] = b
		}
		recs[i] = sqsRecord{MessageID: it.id, ReceiptHandle: p.id + ":" + strconv.FormatUint(it.seq, 10) + ":" + strconv.Itoa(it.received),
			Body: string(body), MD5OfBody: hex.EncodeToString(sum[:]), MessageAttributes: attrs,
			Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(it.received),
				"SentTimestamp": strconv.FormatInt(it.sent.UnixMilli(), 10), "SenderId": "flint",
				"ApproximateFirstReceiveTimestamp": now},
			EventSource: "aws:sqs", EventSourceARN: p.es.EventSourceArn, AWSRegion: p.m.cfg.Region}
		if trace != "" {
			recs[i].Attributes["AWSTraceHeader"] = trace
		}
	}
	b, _ := json.Marshal(struct {
		Records []sqsRecord `json:"Records"`
	}{recs})
	return b, traces
}

func (p *poller) retry(items []item, delay time.Duration) {
	for _, it := range items {
		if err := it.msg.NakWithDelay(delay); err != nil {
			p.log.Warn("nak", "err", err)
		}
	}
}

func (p *poller) ack(ctx context.Context, it item) {
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := it.msg.DoubleAck(actx); err != nil {
		p.log.Warn("ack", "err", err)
	}
	p.mu.Lock()
	delete(p.throttled, it.seq)
	p.mu.Unlock()
}

// heartbeat keeps a running batch's messages from being redelivered.
func (p *poller) heartbeat(items []item) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		every := p.m.cfg.AckWait / 3
		if p.sqs != nil { // the queue's consumer: AckWait = its VisibilityTimeout, at least 1 s
			every = max(p.visibility(), time.Second) / 3
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, it := range items {
					_ = it.msg.InProgress()
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// deadLetter moves a message received too often to the on-failure destination.
func (p *poller) deadLetter(ctx context.Context, it item) {
	if p.sqs != nil {
		if err := p.sqs.DeadLetter(ctx, it.msg, it.received-1); err != nil {
			p.log.Warn("move to dead-letter queue", "err", err)
			return
		}
		p.mu.Lock()
		delete(p.throttled, it.seq)
		p.mu.Unlock()
		return
	}
	var dest string
	if d := p.es.DestinationConfig; d != nil && d.OnFailure != nil {
		dest = d.OnFailure.Destination
	}
	m := streamARN().FindStringSubmatch(dest)
	if m == nil {
		p.log.Warn("dropping a message past its maximum receive count (no on-failure destination)", "message_id", it.id)
		p.ack(ctx, it)
		return
	}
	if _, err := ensureSubject(ctx, p.m.cfg.JS, m[1], asyncq.DestinationSubject(m[1]), "Flint asynchronous invocation destination"); err != nil {
		p.log.Warn("dead-letter stream", "err", err)
		_ = it.msg.NakWithDelay(p.visibility())
		return
	}
	out := nats.NewMsg(asyncq.DestinationSubject(m[1]))
	out.Data = it.msg.Data()
	for k, vs := range it.msg.Headers() {
		if k != nats.MsgIdHdr {
			out.Header[k] = vs
		}
	}
	out.Header.Set("ApproximateReceiveCount", strconv.Itoa(it.received-1))
	out.Header.Set("Flint-Message-Id", it.id)
	out.Header.Set("Flint-Event-Source-Arn", p.es.EventSourceArn)
	out.Header.Set("Flint-Event-Source-Mapping", p.id)
	if _, err := p.m.cfg.JS.PublishMsg(ctx, out, jetstream.WithMsgID("esm/"+p.id+"/"+it.id)); err != nil {
		p.log.Warn("dead-letter publish", "err", err)
		_ = it.msg.NakWithDelay(p.visibility())
		return
	}
	p.ack(ctx, it)
}

// handBack returns a message this node will not process (it is shutting down) for redelivery at
// once, to another node or to this one after its restart. A plain Nak does only the first: the
// server keeps it in memory, and after a restart the message waits out AckWait from its
// delivery. A Nak with a delay is stored with the consumer's state.
func handBack(msg jetstream.Msg) { _ = msg.NakWithDelay(time.Millisecond) }
