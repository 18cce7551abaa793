package logs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for StoreConfig's zero values.
const (
	DefaultStream            = "FLINT_LOGS"
	DefaultSubject           = "flint.logs"
	DefaultMaxAge            = 7 * 24 * time.Hour
	DefaultMaxBytes          = 1 << 30
	DefaultMaxMsgsPerSubject = 100_000
	DefaultQueueLen          = 1024
	// DefaultLinger is how long Run lets records gather after the first one before it publishes
	// them. Each publish round costs a chain of goroutine and thread wake-ups (the connection's
	// flusher, the server's reader, the stream's loop, the ack's way back, Run), whatever the
	// batch holds: one record per round, as at one invocation at a time, cost the server about as
	// much CPU as the rest of the warm invoke (bench: c=1, Go echo, ~70 µs of ~240 µs per invoke).
	// A record reaches the stream this much later; LogType=Tail never waits for it.
	DefaultLinger = 5 * time.Millisecond
)

const (
	batchMax        = 256              // records published before waiting for their acks
	ackTimeout      = 10 * time.Second // longest wait for one batch's acks while running
	flushTimeout    = 2 * time.Second  // longest Run spends flushing once its context ends
	maxPooledBuffer = 32 << 10         // larger buffers are left to the GC, not reused
	minRecordBytes  = 1 << 10          // floor for the record size limit derived from max_payload
)

// ErrBadFunctionName reports a function name that is not [a-zA-Z0-9-_]{1,64}.
var ErrBadFunctionName = errors.New("function name must match [a-zA-Z0-9-_]{1,64}")

// StoreConfig configures the JetStream stream that holds function logs. Zero values take the
// defaults above.
type StoreConfig struct {
	Stream            string        // stream name, default FLINT_LOGS
	Subject           string        // subject prefix, default flint.logs; records go to <prefix>.<function>, or <prefix>.<function>.<group token> in a custom log group
	MaxAge            time.Duration // default 7 days
	MaxBytes          int64         // default 1 GiB
	MaxMsgsPerSubject int64         // records kept per function, default 100000
	Replicas          int           // default 1
	QueueLen          int           // records Append may queue before dropping, default 1024
	Linger            time.Duration // wait for more records before publishing, default 5 ms; negative: none
}

// Validate reports a configuration NewStore would reject. Zero values are valid (defaults).
func (c StoreConfig) Validate() error {
	if c.Stream != "" && (strings.ContainsAny(c.Stream, ".*> \t\r\n/\\") || len(c.Stream) > 255) {
		return fmt.Errorf("logs stream name %q: must be a single token without wildcards, spaces or slashes", c.Stream)
	}
	if c.Subject != "" {
		for tok := range strings.SplitSeq(c.Subject, ".") {
			if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
				return fmt.Errorf("logs subject prefix %q: must be dot-separated literal tokens", c.Subject)
			}
		}
	}
	switch {
	case c.MaxAge < 0:
		return fmt.Errorf("logs max age %v: must not be negative", c.MaxAge)
	case c.MaxBytes < 0:
		return fmt.Errorf("logs max bytes %d: must not be negative", c.MaxBytes)
	case c.MaxMsgsPerSubject < 0:
		return fmt.Errorf("logs max messages per subject %d: must not be negative", c.MaxMsgsPerSubject)
	case c.Replicas < 0:
		return fmt.Errorf("logs replicas %d: must not be negative", c.Replicas)
	case c.QueueLen < 0:
		return fmt.Errorf("logs queue length %d: must not be negative", c.QueueLen)
	case c.Linger > time.Second:
		return fmt.Errorf("logs linger %v: must be at most 1s", c.Linger)
	}
	return nil
}

func (c StoreConfig) withDefaults() StoreConfig {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.Subject == "" {
		c.Subject = DefaultSubject
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxMsgsPerSubject == 0 {
		c.MaxMsgsPerSubject = DefaultMaxMsgsPerSubject
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.QueueLen == 0 {
		c.QueueLen = DefaultQueueLen
	}
	if c.Linger == 0 {
		c.Linger = DefaultLinger
	}
	return c
}

// Store keeps each function's invocation logs in one JetStream stream, one subject per function
// and one message per invocation. Append is safe for concurrent use and cheap enough for the
// invoke path; one goroutine runs Run to publish what Append queues.
type Store struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	cfg    StoreConfig
	log    *slog.Logger

	maxRecord int           // largest record text stored; longer ones are cut in the middle
	queue     chan *entry   // Append → Run
	full      chan struct{} // Append → Run: a batch's worth is queued, stop lingering
	fullAt    int           // queued records that make a batch's worth, with the one Run holds
	batches   atomic.Uint64 // publish rounds, for tests
	free      chan *entry   // Run → Append: reused buffers, so the warm path does not allocate
	dropped   atomic.Uint64 // records not stored: queue full, Run stopped, publish failed
	running   atomic.Bool
	stopped   atomic.Bool // Run has begun its final flush; Append drops from now on

	flushTimeout time.Duration

	// envs names each environment's log stream by the day of its first record (as Lambda names
	// a stream by the day the environment started); only Run's goroutine touches it.
	envs map[string]envStream
	// groupTokens caches each custom log group's subject token; only Run's goroutine touches it.
	groupTokens map[string]string

	retention jetstream.KeyValue // retention in days per function (CloudWatch Logs' policy)
}

// entry is one queued record.
type entry struct {
	fn   string
	meta Meta
	buf  []byte
}

// Meta is what an invocation's record carries besides its text, so that CloudWatch Logs' view
// can name the environment's stream and time each line: the environment that ran it and when.
// The zero Meta (Append) means unknown: the record is timed and placed by when it was stored.
type Meta struct {
	Env      string        // the environment's id
	Version  string        // the function version; "" is $LATEST
	Start    time.Time     // when the invocation began (its START line)
	Duration time.Duration // from Start to its END line
	Init     time.Duration // the INIT before it on a cold start: output before START is timed Start-Init
	Stream   string        // the environment's stream (its AWS_LAMBDA_LOG_STREAM_NAME); "": named from Env
	// Group is the function's log group (its LoggingConfig.LogGroup); "" or /aws/lambda/<function>
	// is the function's own. A record of another group is kept under that group (see groupSubject).
	Group string
}

// NewStore creates or updates the log stream (file storage, subjects "<prefix>.>") and returns a
// Store on it. log receives the store's operator messages; nil discards them.
func NewStore(ctx context.Context, js jetstream.JetStream, cfg StoreConfig, log *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              cfg.Stream,
		Description:       "Flint function logs, one message per invocation",
		Subjects:          []string{cfg.Subject + ".>"},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		Storage:           jetstream.FileStorage,
		MaxAge:            cfg.MaxAge,
		MaxBytes:          cfg.MaxBytes,
		MaxMsgsPerSubject: cfg.MaxMsgsPerSubject,
		Replicas:          cfg.Replicas,
		AllowDirect:       true,
	})
	if err != nil {
		return nil, fmt.Errorf("create logs stream %s: %w", cfg.Stream, err)
	}
	retention, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      retentionBucket(cfg.Stream),
		Description: "CloudWatch Logs retention in days, per function",
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("create logs retention bucket: %w", err)
	}
	maxRecord := 1 << 20
	if nc := js.Conn(); nc != nil && nc.MaxPayload() > 0 {
		maxRecord = int(nc.MaxPayload())
	}
	return &Store{
		js:           js,
		stream:       stream,
		cfg:          cfg,
		log:          log,
		maxRecord:    max(maxRecord, minRecordBytes),
		queue:        make(chan *entry, cfg.QueueLen),
		full:         make(chan struct{}, 1),
		fullAt:       min(batchMax, cfg.QueueLen) - 1, // a short queue must not overflow while Run lingers
		free:         make(chan *entry, cfg.QueueLen),
		flushTimeout: flushTimeout,
		envs:         map[string]envStream{},
		groupTokens:  map[string]string{},
		retention:    retention,
	}, nil
}

// Append queues one invocation's log text (START..REPORT included) for function fn. It copies b,
// never blocks and never touches the network: when the queue is full, Run has stopped, or fn is
// not a valid function name, the record is dropped and counted in Dropped. Text longer than the
// server's max_payload is cut in the middle with a marker line, keeping START and REPORT.
func (s *Store) Append(fn string, b []byte) { s.AppendRecord(fn, Meta{}, b) }

// AppendRecord is Append with the record's Meta (environment, version, times), which it keeps
// without allocating: the strings are referenced, not copied.
func (s *Store) AppendRecord(fn string, m Meta, b []byte) {
	if len(b) == 0 {
		return
	}
	if s.stopped.Load() || !validName(fn) {
		s.dropped.Add(1)
		return
	}
	var e *entry
	select {
	case e = <-s.free:
	default:
		e = new(entry)
	}
	e.fn = fn
	e.meta = m
	e.buf = s.copyRecord(e.buf[:0], b)
	select {
	case s.queue <- e:
		if len(s.queue) >= s.fullAt {
			select {
			case s.full <- struct{}{}:
			default:
			}
		}
	default:
		s.dropped.Add(1)
		s.recycle(e)
	}
}

// copyRecord appends b to dst, cutting out its middle if it exceeds s.maxRecord.
func (s *Store) copyRecord(dst, b []byte) []byte {
	if len(b) <= s.maxRecord {
		return append(dst, b...)
	}
	const marker = "\n[flint: log truncated, bytes omitted: "
	keep := s.maxRecord - len(marker) - len("]\n") - 20 // 20 digits hold any int64
	head, tail := keep/2, keep-keep/2
	dst = append(dst, b[:head]...)
	dst = append(dst, marker...)
	dst = strconv.AppendInt(dst, int64(len(b)-head-tail), 10)
	dst = append(dst, "]\n"...)
	return append(dst, b[len(b)-tail:]...)
}

// recycle returns e's buffer for reuse unless it is large or the free list is full.
func (s *Store) recycle(e *entry) {
	if cap(e.buf) > maxPooledBuffer {
		return
	}
	e.fn = ""
	e.meta = Meta{}
	select {
	case s.free <- e:
	default:
	}
}

// Dropped reports how many records were not stored: dropped by Append (queue full, Run stopped,
// bad name), failed to publish, or still queued or unacknowledged when Run's flush deadline passed.
func (s *Store) Dropped() uint64 { return s.dropped.Load() }

// Run publishes queued records until ctx ends, then flushes what is queued, waiting at most a
// short deadline, and returns nil. Records are sent with PublishAsync in batches of up to 256,
// gathered for the linger after the first one (or until 256 are queued); Run waits for a batch's
// acks before sending the next. Run may be called once.
func (s *Store) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("logs store: Run called more than once")
	}
	batch := make([]*entry, 0, batchMax)
	var inflight []pending
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		select {
		case <-ctx.Done():
			s.flush(inflight)
			return nil
		case e := <-s.queue:
			if s.cfg.Linger > 0 && len(s.queue) < s.fullAt {
				// Not receiving meanwhile: records that come now wait in the queue without
				// waking Run, which is the point.
				linger.Reset(s.cfg.Linger)
				select {
				case <-linger.C:
				case <-s.full:
					linger.Stop()
				case <-ctx.Done():
					linger.Stop()
				}
			}
			select { // a stale signal would cut the next linger short
			case <-s.full:
			default:
			}
			batch = s.collect(append(batch[:0], e))
			s.batches.Add(1)
			inflight = s.publish(inflight[:0], batch)
			actx, cancel := context.WithTimeout(ctx, ackTimeout)
			inflight = s.settle(actx, inflight)
			cancel()
			if ctx.Err() != nil {
				s.flush(inflight)
				return nil
			}
			if len(inflight) > 0 {
				// Not acknowledged in time: their buffers may still be referenced for a
				// retry, so they are left to the GC rather than reused.
				s.dropped.Add(uint64(len(inflight)))
				s.log.Warn("function logs not acknowledged", "stream", s.cfg.Stream, "records", len(inflight), "timeout", ackTimeout)
				inflight = inflight[:0]
			}
		}
	}
}

// flush stops Append, then publishes what is queued and waits for acks, all within s.flushTimeout.
func (s *Store) flush(inflight []pending) {
	s.stopped.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), s.flushTimeout)
	defer cancel()
	inflight = s.settle(ctx, inflight)
	batch := make([]*entry, 0, batchMax)
	for len(inflight) == 0 && ctx.Err() == nil {
		batch = s.collect(batch[:0])
		if len(batch) == 0 {
			break
		}
		inflight = s.settle(ctx, s.publish(inflight[:0], batch))
	}
	lost := len(inflight) + len(s.queue)
	for range len(s.queue) {
		select {
		case <-s.queue:
		default:
		}
	}
	if lost > 0 {
		s.dropped.Add(uint64(lost))
		s.log.Warn("function logs not flushed before shutdown", "stream", s.cfg.Stream, "records", lost, "timeout", s.flushTimeout)
	}
}

// collect appends queued records to batch without blocking, up to batchMax.
func (s *Store) collect(batch []*entry) []*entry {
	for len(batch) < batchMax {
		select {
		case e := <-s.queue:
			batch = append(batch, e)
		default:
			return batch
		}
	}
	return batch
}

// pending is a published record awaiting its ack.
type pending struct {
	e   *entry
	ack jetstream.PubAckFuture
}

// publish sends batch with PublishAsync and appends the futures to inflight. Records that cannot
// be sent are counted as dropped and recycled.
func (s *Store) publish(inflight []pending, batch []*entry) []pending {
	var failed int
	var firstErr error
	for _, e := range batch {
		var f jetstream.PubAckFuture
		var err error
		subj := s.recordSubject(e)
		if e.meta.Env == "" {
			f, err = s.js.PublishAsync(subj, e.buf)
		} else {
			f, err = s.js.PublishMsgAsync(&nats.Msg{Subject: subj, Data: e.buf, Header: s.header(e)})
		}
		if err != nil {
			failed++
			firstErr = cmp.Or(firstErr, err)
			s.recycle(e)
			continue
		}
		inflight = append(inflight, pending{e: e, ack: f})
	}
	if failed > 0 {
		s.dropped.Add(uint64(failed))
		s.log.Warn("publish function logs", "stream", s.cfg.Stream, "records", failed, "err", firstErr)
	}
	return inflight
}

// settle waits for the acks of inflight in order until ctx ends, recycling acknowledged and
// failed records, and returns those still unresolved.
func (s *Store) settle(ctx context.Context, inflight []pending) []pending {
	var failed int
	var firstErr error
	defer func() {
		if failed > 0 {
			s.dropped.Add(uint64(failed))
			s.log.Warn("store function logs", "stream", s.cfg.Stream, "records", failed, "err", firstErr)
		}
	}()
	for i, p := range inflight {
		select {
		case <-p.ack.Ok():
		case err := <-p.ack.Err():
			failed++
			firstErr = cmp.Or(firstErr, err)
		case <-ctx.Done():
			return inflight[:copy(inflight, inflight[i:])]
		}
		s.recycle(p.e)
	}
	return inflight[:0]
}

func (s *Store) subject(fn string) string { return s.cfg.Subject + "." + fn }

// validName reports whether fn matches [a-zA-Z0-9-_]{1,64}, which makes it one subject token.
func validName(fn string) bool {
	if len(fn) == 0 || len(fn) > 64 {
		return false
	}
	for i := 0; i < len(fn); i++ {
		c := fn[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
