package esm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// Stream mapping defaults (Kinesis's).
const (
	DefaultStreamBatchSize = 100
	// maxBatchBytes keeps a batch's event under the 6 MB synchronous payload limit.
	maxBatchBytes = 5 << 20
)

// StreamName returns the JetStream stream a stream ARN names: a Flint stream
// (arn:flint:jetstream:…:stream/NAME) or a Kinesis stream (arn:aws:kinesis:…:stream/NAME).
func StreamName(arn string) (string, bool) {
	if name, ok := flintStreamName(arn); ok {
		return name, true
	}
	if m := kinesisARN().FindStringSubmatch(arn); m != nil && !asyncq.ReservedStreamName(m[1]) {
		return m[1], true
	}
	return "", false
}

// flintStreamName returns the JetStream stream a Flint stream ARN names (not a Kinesis one:
// destinations are Flint streams only).
func flintStreamName(arn string) (string, bool) {
	if m := streamARN().FindStringSubmatch(arn); m != nil && !asyncq.ReservedStreamName(m[1]) {
		return m[1], true
	}
	return "", false
}

// IsStream reports whether arn has the form of a stream (not a queue) event source.
func IsStream(arn string) bool { return streamARN().MatchString(arn) || IsKinesis(arn) }

// StreamSubject is the subject prefix records are published under: a record published to
// StreamSubject(name)+"."+KEY has partition key KEY.
func StreamSubject(name string) string { return "flint.streams." + name }

// EnsureStream makes sure stream name exists and takes records under StreamSubject(name).>,
// keeping what else it holds (a stream can also be an asynchronous destination).
func EnsureStream(ctx context.Context, js jetstream.JetStream, name string) (jetstream.Stream, error) {
	return ensureSubject(ctx, js, name, StreamSubject(name)+".>", "Flint stream (event source mappings read it)")
}

// ensureSubject makes sure stream name exists (a limits-retention stream) and holds subject,
// adding it to the stream's other subjects if needed.
func ensureSubject(ctx context.Context, js jetstream.JetStream, name, subject, desc string) (jetstream.Stream, error) {
	st, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name: name, Subjects: []string{subject}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute, Description: desc,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			st, err = js.Stream(ctx, name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	cfg := st.CachedInfo().Config
	if cfg.Retention == jetstream.WorkQueuePolicy {
		return nil, fmt.Errorf("stream %s is a queue (work-queue retention); map it as arn:flint:jetstream:REGION:ACCOUNT:queue/%s", name, name)
	}
	if !slices.Contains(cfg.Subjects, subject) {
		cfg.Subjects = append(cfg.Subjects, subject)
		if st, err = js.UpdateStream(ctx, cfg); err != nil {
			return nil, fmt.Errorf("stream %s: add subject %s: %w", name, subject, err)
		}
	}
	return st, nil
}

// Checkpoints keeps stream mappings' positions (store.Store.Checkpoints).
type Checkpoints interface {
	Get(ctx context.Context, key string) (json.RawMessage, uint64, error)
	Put(ctx context.Context, key string, doc json.RawMessage) (uint64, error)
	Create(ctx context.Context, key string, doc json.RawMessage) (uint64, error)
	Update(ctx context.Context, key string, doc json.RawMessage, rev uint64) (uint64, error)
	Delete(ctx context.Context, key string) error
}

// errCheckpointMoved: a mapping's checkpoint was saved by someone else since this reader loaded
// it (another node that took the mapping over, or a save of this reader's whose answer was
// lost), so this reader's position is not the mapping's any more.
var errCheckpointMoved = errors.New("esm: checkpoint saved by another reader")

// checkpoint is a stream mapping's position: Lanes[i] is the last stream sequence lane i
// finished (0: none yet); Start is where reading began. Records are spread over lanes by a
// hash of their partition key, so one position per lane lets a restart skip what each lane
// already did instead of replaying the records of fast lanes behind a slow one.
type checkpoint struct {
	Start uint64   `json:"start"`
	Lanes []uint64 `json:"lanes"`
}

// resume is the first sequence to read again.
func (c *checkpoint) resume() uint64 {
	if len(c.Lanes) == 0 {
		return max(c.Start, 1)
	}
	low := uint64(0)
	for i, s := range c.Lanes {
		if s == 0 {
			s = c.Start - min(c.Start, 1)
		}
		if i == 0 || s < low {
			low = s
		}
	}
	return low + 1
}

// InitStreamCheckpoint fixes where a new mapping starts reading when that depends on the
// moment of creation (LATEST, AT_TIMESTAMP): records published after CreateEventSourceMapping
// returns are delivered even if the poller starts later.
func InitStreamCheckpoint(ctx context.Context, js jetstream.JetStream, cps Checkpoints, id string, es *lambda.EventSourceMapping) error {
	name, _ := StreamName(es.EventSourceArn)
	st, err := js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	cp := checkpoint{Start: 1}
	switch es.StartingPosition {
	case "LATEST":
		cp.Start = info.State.LastSeq + 1
	case "AT_TIMESTAMP":
		// The first record at or after the timestamp, found by a consumer that starts there.
		at := time.UnixMilli(int64(es.StartingPositionTimestamp * 1000))
		cp.Start = info.State.LastSeq + 1 // none yet: start with the next record
		cons, err := js.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &at})
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		b, err := cons.FetchNoWait(1)
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		for msg := range b.Messages() {
			if md, err := msg.Metadata(); err == nil {
				cp.Start = md.Sequence.Stream
			}
		}
	}
	_, err = cps.Put(ctx, id, mustJSON(cp))
	return err
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// record is one stream record.
type record struct {
	seq     uint64
	key     string
	shard   int // the Kinesis shard it is on (0 on a Flint stream)
	data    []byte
	arrived time.Time
}

// lane processes the records whose partition keys hash to it, in order.
type lane struct {
	idx   int
	ch    chan record
	carry *record // read but left for the next batch (payload size)
	// head is the arrival (Unix ns) of the first record of the batch the lane runs, 0 while it
	// runs none: the lane's oldest unfinished record, for the mapping's lag.
	head atomic.Int64
}

// streamPoller runs one enabled stream mapping: a reader dispatching records to
// ParallelizationFactor lanes, each running one batch at a time.
type streamPoller struct {
	m        *Manager
	id       string
	es       lambda.EventSourceMapping
	name     string
	log      *slog.Logger
	inflight *atomic.Int64
	// shards splits a Kinesis stream's records over its shards (N 1 on a Flint stream, whose
	// records are all on one shard).
	shards  Shards
	kinesis bool
	filters filters // the mapping's FilterCriteria

	// For the mapping's lag (Lag): the last sequence the reader took from the stream, the
	// records handed to lanes and not finished, and the lanes themselves.
	lastRead atomic.Uint64
	queued   atomic.Int64
	lanesMu  sync.Mutex
	running  []*lane

	cpMu  sync.Mutex
	cp    checkpoint
	cpRev uint64                  // the checkpoint's revision as this reader last loaded or saved it; 0: none stored
	abort context.CancelCauseFunc // ends the current read (errCheckpointMoved)
}

func (p *streamPoller) batchSize() int { return max(p.es.BatchSize, 1) }

// lanes is ParallelizationFactor lanes per shard.
func (p *streamPoller) lanes() int { return p.perShard() * max(p.shards.N, 1) }

func (p *streamPoller) perShard() int { return min(max(p.es.ParallelizationFactor, 1), 10) }

// seqString is a record's sequence number as the event shows it: on a Kinesis stream, the one
// the Kinesis API gave it.
func (p *streamPoller) seqString(seq uint64) string {
	if p.kinesis {
		return SequenceNumber(seq)
	}
	return strconv.FormatUint(seq, 10)
}

func (p *streamPoller) maxRetries() int {
	if p.es.MaximumRetryAttempts != nil {
		return *p.es.MaximumRetryAttempts
	}
	return -1
}

func (p *streamPoller) maxAge() time.Duration {
	if a := p.es.MaximumRecordAgeInSeconds; a != nil && *a >= 0 {
		return time.Duration(*a) * time.Second
	}
	return -1
}

func (p *streamPoller) bisect() bool {
	return p.es.BisectBatchOnFunctionError != nil && *p.es.BisectBatchOnFunctionError
}

// laneBuffer is how many records a lane holds read ahead: two batches, but within a bound for
// all lanes together (a Kinesis stream of many shards has ParallelizationFactor lanes for each),
// so that memory stays bounded; a lane whose buffer is below its batch size fills its batch
// within the batching window as the reader goes on.
func laneBuffer(batchSize, lanes int) int {
	return min(2*batchSize, 20000, max(16, 200000/max(lanes, 1)))
}

// laneOf keeps every record of a partition key on one lane, so that its records stay in order.
func laneOf(key string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// loadCheckpoint reads the mapping's position, or starts one from StartingPosition.
func (p *streamPoller) loadCheckpoint(ctx context.Context, st jetstream.Stream) error {
	n := p.lanes()
	doc, rev, err := p.m.cfg.Checkpoints.Get(ctx, p.id)
	p.cpRev = rev
	switch {
	case errors.Is(err, store.ErrNotFound):
		if p.es.StartingPosition != "TRIM_HORIZON" {
			// Normally written at creation; without it, start at the moment the poller does.
			if err := InitStreamCheckpoint(ctx, p.m.cfg.JS, p.m.cfg.Checkpoints, p.id, &p.es); err != nil {
				return err
			}
			return p.loadCheckpoint(ctx, st)
		}
		p.cp, p.cpRev = checkpoint{Start: 1, Lanes: make([]uint64, n)}, 0
	case err != nil:
		return fmt.Errorf("checkpoint: %w", err)
	default:
		var cp checkpoint
		if err := json.Unmarshal(doc, &cp); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		if len(cp.Lanes) != n {
			// ParallelizationFactor changed: lanes hash differently now, so restart every lane
			// from the slowest one's position (records after it may be seen twice, none lost).
			cp = checkpoint{Start: cp.resume(), Lanes: make([]uint64, n)}
		}
		p.cp = cp
	}
	return nil
}

// done records that lane finished every record up to seq, and persists the position by
// compare-and-set on the revision this reader last saw: a reader whose checkpoint was saved
// by another (a node that took the mapping over) stops instead of moving it back.
func (p *streamPoller) done(ctx context.Context, l *lane, seq uint64) {
	p.cpMu.Lock()
	defer p.cpMu.Unlock()
	if seq <= p.cp.Lanes[l.idx] {
		return
	}
	p.cp.Lanes[l.idx] = seq
	var rev uint64
	var err error
	if p.cpRev == 0 {
		rev, err = p.m.cfg.Checkpoints.Create(ctx, p.id, mustJSON(p.cp))
	} else {
		rev, err = p.m.cfg.Checkpoints.Update(ctx, p.id, mustJSON(p.cp), p.cpRev)
	}
	switch {
	case err == nil:
		p.cpRev = rev
	case errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrExists):
		p.log.Warn("checkpoint saved by another reader since this one loaded it: reading again from there", "lane", l.idx, "sequence", seq)
		p.abort(errCheckpointMoved)
	default:
		p.log.Warn("save checkpoint", "err", err)
	}
}

// run reads the mapping's stream until ctx ends: on a cluster node only while this node owns
// the mapping (Config.Owner), reading again from the checkpoint whenever it owns it again.
func (p *streamPoller) run(ctx context.Context) error {
	if o := p.m.cfg.Owner; o != nil {
		o.Hold(ctx, p.id, func(ctx context.Context) {
			p.log.Info("reading the stream on this node")
			if err := p.read(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("stream reader stopped; handing the mapping back", "err", err)
			}
		})
		return nil
	}
	for {
		err := p.read(ctx)
		if !errors.Is(err, errCheckpointMoved) || ctx.Err() != nil {
			return err
		}
		if !p.sleep(ctx, time.Second) {
			return nil
		}
	}
}

// read reads the stream from the checkpoint until ctx ends or the checkpoint is saved by
// someone else (errCheckpointMoved), and waits for the lanes' batches in flight.
func (p *streamPoller) read(parent context.Context) error {
	ctx, abort := context.WithCancelCause(parent)
	defer abort(nil)
	p.cpMu.Lock()
	p.abort = abort
	p.cpMu.Unlock()
	err := p.consume(ctx)
	if c := context.Cause(ctx); parent.Err() == nil && errors.Is(c, errCheckpointMoved) {
		return c
	}
	return err
}

// consume dispatches the stream's records to the lanes until ctx ends, then waits for the
// lanes' batches in flight.
func (p *streamPoller) consume(ctx context.Context) error {
	var err error
	if p.filters, err = compileFilters(p.es.FilterCriteria); err != nil {
		return err
	}
	name, _ := StreamName(p.es.EventSourceArn)
	p.name = name
	p.kinesis = IsKinesis(p.es.EventSourceArn)
	var st jetstream.Stream
	if p.kinesis {
		// A Kinesis stream is created by the Kinesis API only: a mapping never makes one.
		if st, err = p.m.cfg.JS.Stream(ctx, name); err != nil {
			return fmt.Errorf("kinesis stream %s: %w", name, err)
		}
		n := StreamShards(st.CachedInfo().Config.Metadata)
		if n == 0 {
			return fmt.Errorf("stream %s is not a Kinesis stream", name)
		}
		p.shards = NewShards(n)
	} else if st, err = EnsureStream(ctx, p.m.cfg.JS, name); err != nil {
		return err
	} else {
		p.shards = NewShards(1)
	}
	if err := p.loadCheckpoint(ctx, st); err != nil {
		return err
	}
	lanes := make([]*lane, p.lanes())
	var wg sync.WaitGroup
	defer wg.Wait()
	laneCtx, stopLanes := context.WithCancel(ctx)
	defer stopLanes()
	for i := range lanes {
		lanes[i] = &lane{idx: i, ch: make(chan record, laneBuffer(p.batchSize(), len(lanes)))}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.runLane(laneCtx, lanes[i])
		}()
	}
	start := p.cp.resume()
	p.lanesMu.Lock()
	p.running = lanes
	p.lanesMu.Unlock()
	p.lastRead.Store(start - 1)
	p.queued.Store(0)
	cons, err := p.m.cfg.JS.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start,
	})
	if err != nil {
		return fmt.Errorf("read stream %s: %w", name, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(min(max(256, 2*p.batchSize()), 10000)))
	if err != nil {
		return fmt.Errorf("read stream %s: %w", name, err)
	}
	defer context.AfterFunc(ctx, it.Stop)()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			p.log.Warn("read stream", "err", err)
			if !p.sleep(ctx, 100*time.Millisecond) {
				return nil
			}
			continue
		}
		md, err := msg.Metadata()
		if err != nil {
			p.log.Warn("record metadata", "err", err)
			continue
		}
		p.lastRead.Store(md.Sequence.Stream)
		rec := record{seq: md.Sequence.Stream, key: RecordKey(p.name, msg.Subject(), msg.Headers()), data: msg.Data(), arrived: md.Timestamp}
		rec.shard = p.shards.RecordShard(rec.key, msg.Headers())
		l := lanes[rec.shard*p.perShard()+laneOf(rec.key, p.perShard())]
		p.cpMu.Lock()
		seen := rec.seq <= p.cp.Lanes[l.idx]
		p.cpMu.Unlock()
		if seen {
			continue // this lane finished it before a restart
		}
		p.queued.Add(1)
		select {
		case l.ch <- rec:
		case <-ctx.Done():
			return nil
		}
	}
}

// lag is how far the mapping is behind its stream: records not yet read plus those read and
// not finished, and the arrival of the oldest of them (zero: none).
func (p *streamPoller) lag(ctx context.Context) (uint64, time.Time, error) {
	name, _ := StreamName(p.es.EventSourceArn)
	st, err := p.m.cfg.JS.Stream(ctx, name)
	if err != nil {
		return 0, time.Time{}, err
	}
	last := st.CachedInfo().State.LastSeq
	read := p.lastRead.Load()
	behind := uint64(max(p.queued.Load(), 0))
	if last > read {
		behind += last - read
	}
	var oldest time.Time
	p.lanesMu.Lock()
	for _, l := range p.running {
		if h := l.head.Load(); h != 0 && (oldest.IsZero() || h < oldest.UnixNano()) {
			oldest = time.Unix(0, h)
		}
	}
	p.lanesMu.Unlock()
	if oldest.IsZero() && last > read {
		if m, err := st.GetMsg(ctx, read+1); err == nil {
			oldest = m.Time
		}
	}
	return behind, oldest, nil
}

// runLane processes its records a batch at a time until ctx ends.
func (p *streamPoller) runLane(ctx context.Context, l *lane) {
	window := time.Duration(p.es.MaximumBatchingWindowInSeconds) * time.Second
	for {
		batch := p.collect(ctx, l, window)
		if len(batch) == 0 {
			return
		}
		p.inflight.Add(1)
		l.head.Store(batch[0].arrived.UnixNano())
		p.process(ctx, l, batch)
		l.head.Store(0)
		p.queued.Add(-int64(len(batch)))
		p.inflight.Add(-1)
		if ctx.Err() != nil {
			return
		}
	}
}

// collect waits for a lane's next record, then gathers up to BatchSize records: within the
// batching window when there is one, else whatever is already waiting.
func (p *streamPoller) collect(ctx context.Context, l *lane, window time.Duration) []record {
	var batch []record
	size := 0
	add := func(r record) bool {
		n := len(r.data)*4/3 + 512
		if len(batch) > 0 && size+n > maxBatchBytes {
			l.carry = &r
			return false
		}
		batch = append(batch, r)
		size += n
		return len(batch) < p.batchSize()
	}
	if l.carry != nil {
		r := *l.carry
		l.carry = nil
		add(r)
	} else {
		select {
		case r := <-l.ch:
			add(r)
		case <-ctx.Done():
			return nil
		}
	}
	if len(batch) >= p.batchSize() {
		return batch
	}
	if window <= 0 {
		for {
			select {
			case r := <-l.ch:
				if !add(r) {
					return batch
				}
			default:
				return batch
			}
		}
	}
	timer := time.NewTimer(window)
	defer timer.Stop()
	for {
		select {
		case r := <-l.ch:
			if !add(r) {
				return batch
			}
		case <-timer.C:
			return batch
		case <-ctx.Done():
			return batch
		}
	}
}

// process runs one batch to its end: success, records checkpointed past a partial failure,
// bisection, retries, or the on-failure destination. Once ctx ends it stops retrying and leaves
// what is not done unchecked for the next start.
func (p *streamPoller) process(ctx context.Context, l *lane, batch []record) {
	if len(p.filters) > 0 {
		// Records no filter matches are skipped, as Lambda does for streams (on their data);
		// a batch of only those is done at once.
		last := batch[len(batch)-1].seq
		kept := batch[:0:0]
		for _, r := range batch {
			if p.filters.match(map[string]any{"data": dataValue(r.data)}) {
				kept = append(kept, r)
			}
		}
		if len(kept) > 0 {
			p.processBatch(ctx, l, kept)
		}
		if ctx.Err() == nil { // finished: the skipped records after the last kept one too
			p.done(ctx, l, last)
		}
		return
	}
	p.processBatch(ctx, l, batch)
}

// processBatch runs a batch until it is done: delivered, or given up on (destinations).
func (p *streamPoller) processBatch(ctx context.Context, l *lane, batch []record) {
	attempts := 0
	for len(batch) > 0 {
		if age := p.maxAge(); age >= 0 {
			var expired []record
			cut := 0
			for cut < len(batch) && time.Since(batch[cut].arrived) > age {
				expired = append(expired, batch[cut])
				cut++
			}
			if len(expired) > 0 {
				p.fail(ctx, expired, "RecordAgeExceeded", attempts, "")
				p.done(ctx, l, expired[len(expired)-1].seq)
				batch = batch[cut:]
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}
		res, err := p.m.cfg.Invoker.InvokeBatch(context.WithoutCancel(ctx), p.es.FunctionArn, p.event(batch), nil)
		if err != nil || res.Throttled {
			if err != nil {
				p.log.Warn("batch invoke failed", "err", err)
			}
			if !p.sleep(ctx, p.m.cfg.ThrottleDelay) {
				return
			}
			continue
		}
		first := 0 // index of the first failed record; len(batch): none
		if res.FunctionError == "" {
			first = p.firstFailure(batch, res.Payload)
		}
		if first == len(batch) {
			p.done(ctx, l, batch[len(batch)-1].seq)
			return
		}
		if first > 0 {
			p.done(ctx, l, batch[first-1].seq)
			batch = batch[first:]
		}
		if p.bisect() && len(batch) > 1 {
			half := len(batch) / 2
			p.processBatch(ctx, l, batch[:half])
			if ctx.Err() != nil {
				return
			}
			p.processBatch(ctx, l, batch[half:])
			return
		}
		attempts++
		if r := p.maxRetries(); r >= 0 && attempts > r {
			p.fail(ctx, batch, "RetryAttemptsExhausted", attempts, res.FunctionError)
			p.done(ctx, l, batch[len(batch)-1].seq)
			return
		}
		if !p.sleep(ctx, p.retryDelay(attempts)) {
			return
		}
	}
}

// retryDelay backs off exponentially from the manager's StreamRetryDelay, with jitter.
func (p *streamPoller) retryDelay(attempt int) time.Duration {
	d := p.m.cfg.StreamRetryDelay << min(attempt-1, 6)
	return time.Duration(float64(min(d, 30*time.Second)) * (0.75 + rand.Float64()/2))
}

func (p *streamPoller) sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

// firstFailure reads a partial batch response: the index of the lowest failed sequence number,
// len(batch) when every record succeeded, 0 when the response is invalid (the whole batch failed).
func (p *streamPoller) firstFailure(batch []record, payload []byte) int {
	if !slices.Contains(p.es.FunctionResponseTypes, "ReportBatchItemFailures") || len(payload) == 0 || string(payload) == "null" {
		return len(batch)
	}
	var resp struct {
		BatchItemFailures []map[string]any `json:"batchItemFailures"`
	}
	if err := json.Unmarshal(payload, &resp); err != nil {
		return len(batch)
	}
	first := len(batch)
	for _, f := range resp.BatchItemFailures {
		id, _ := f["itemIdentifier"].(string)
		i := slices.IndexFunc(batch, func(r record) bool { return p.seqString(r.seq) == id })
		if i < 0 {
			p.log.Warn("invalid partial batch response; the whole batch failed", "item", f["itemIdentifier"])
			return 0
		}
		first = min(first, i)
	}
	return first
}

// kinesisRecord is one record of a Kinesis-shaped event.
type kinesisRecord struct {
	Kinesis struct {
		SchemaVersion string  `json:"kinesisSchemaVersion"`
		PartitionKey  string  `json:"partitionKey"`
		Sequence      string  `json:"sequenceNumber"`
		Data          []byte  `json:"data"` // base64, as Kinesis's
		Arrival       float64 `json:"approximateArrivalTimestamp"`
	} `json:"kinesis"`
	EventSource       string `json:"eventSource"`
	EventVersion      string `json:"eventVersion"`
	EventID           string `json:"eventID"`
	EventName         string `json:"eventName"`
	InvokeIdentityArn string `json:"invokeIdentityArn"`
	AWSRegion         string `json:"awsRegion"`
	EventSourceARN    string `json:"eventSourceARN"`
}

func (p *streamPoller) event(batch []record) []byte {
	recs := make([]kinesisRecord, len(batch))
	for i, r := range batch {
		k := &recs[i]
		seq := p.seqString(r.seq)
		k.Kinesis.SchemaVersion, k.Kinesis.PartitionKey, k.Kinesis.Sequence, k.Kinesis.Data = "1.0", r.key, seq, r.data
		k.Kinesis.Arrival = float64(r.arrived.UnixMilli()) / 1000
		k.EventSource, k.EventVersion, k.EventID, k.EventName = "aws:kinesis", "1.0", ShardID(r.shard)+":"+seq, "aws:kinesis:record"
		k.InvokeIdentityArn = "arn:aws:iam::" + accountOf(p.es.FunctionArn) + ":role/flint-esm"
		k.AWSRegion, k.EventSourceARN = p.m.cfg.Region, p.es.EventSourceArn
	}
	return mustJSON(struct {
		Records []kinesisRecord `json:"Records"`
	}{recs})
}

func accountOf(arn string) string {
	if f := strings.Split(arn, ":"); len(f) > 4 {
		return f[4]
	}
	return ""
}

// fail sends a batch's description (not its records, as Lambda) to the on-failure destination.
func (p *streamPoller) fail(ctx context.Context, batch []record, condition string, attempts int, functionError string) {
	first, last := batch[0], batch[len(batch)-1]
	var dest string
	if d := p.es.DestinationConfig; d != nil && d.OnFailure != nil {
		dest = d.OnFailure.Destination
	}
	log := p.log.With("condition", condition, "first_sequence", first.seq, "last_sequence", last.seq, "records", len(batch))
	name, ok := flintStreamName(dest)
	if !ok {
		log.Warn("discarding records (no on-failure destination)")
		return
	}
	resp := map[string]any{"statusCode": 200}
	if functionError != "" {
		resp["functionError"] = functionError
	}
	doc := map[string]any{
		"requestContext": map[string]any{"requestId": uuid.NewString(), "functionArn": p.es.FunctionArn,
			"condition": condition, "approximateInvokeCount": attempts},
		"responseContext": resp,
		"version":         "1.0",
		"timestamp":       time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		"KinesisBatchInfo": map[string]any{"shardId": ShardID(first.shard),
			"startSequenceNumber":             p.seqString(first.seq),
			"endSequenceNumber":               p.seqString(last.seq),
			"approximateArrivalOfFirstRecord": first.arrived.UTC().Format(time.RFC3339Nano),
			"approximateArrivalOfLastRecord":  last.arrived.UTC().Format(time.RFC3339Nano),
			"batchSize":                       len(batch), "streamArn": p.es.EventSourceArn},
	}
	for {
		err := publishDestination(ctx, p.m.cfg.JS, name, mustJSON(doc), "esm/"+p.id+"/"+strconv.FormatUint(first.seq, 10)+"-"+strconv.FormatUint(last.seq, 10))
		if err == nil {
			log.Info("records sent to the on-failure destination", "destination", dest)
			return
		}
		log.Warn("on-failure destination", "err", err)
		if !p.sleep(ctx, time.Second) {
			return
		}
	}
}

// publishDestination publishes doc to destination stream name, creating the stream if needed.
func publishDestination(ctx context.Context, js jetstream.JetStream, name string, doc []byte, msgID string) error {
	if _, err := ensureSubject(ctx, js, name, asyncq.DestinationSubject(name), "Flint asynchronous invocation destination"); err != nil {
		return err
	}
	if _, err := js.Publish(ctx, asyncq.DestinationSubject(name), doc, jetstream.WithMsgID(msgID)); err != nil {
		return fmt.Errorf("publish to %s: %w", name, err)
	}
	return nil
}
