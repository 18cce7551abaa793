package logs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	consumerInactive = time.Minute     // server-side backstop if a reader's consumer is not deleted
	readIdle         = 2 * time.Second // quiet spell after which Read asks the server if it is done
	deleteTimeout    = 2 * time.Second
)

// Record is one stored invocation log.
type Record struct {
	Time     time.Time // when JetStream stored the record (UTC)
	Function string
	Group    string // its log group: /aws/lambda/<Function>, or the custom group it was stored in
	Text     []byte
	Seq      uint64 // the record's stream sequence: its place among all records, for cursors

	// From the record's Meta (zero when stored without one): its CloudWatch Logs stream, when
	// the invocation began and ended, and the INIT before it.
	Stream     string
	Start, End time.Time
	Init       time.Duration
}

// Read returns fn's stored records (in every log group it has logged to), oldest first. With
// limit > 0 it returns only the newest limit records. It reads with an ordered consumer filtered
// on fn's subjects and stops at the last record stored for fn when Read was called.
func (s *Store) Read(ctx context.Context, fn string, limit int) ([]Record, error) {
	if !validName(fn) {
		return nil, fmt.Errorf("read logs of %q: %w", fn, ErrBadFunctionName)
	}
	last, err := s.last(ctx, s.fnFilters(fn))
	if err != nil {
		return nil, fmt.Errorf("read logs of %s: %w", fn, err)
	}
	if last == 0 {
		return nil, nil
	}
	recs, err := s.readUpTo(ctx, fn, last, limit)
	if err != nil {
		return nil, fmt.Errorf("read logs of %s: %w", fn, err)
	}
	return recs, nil
}

// Follow calls emit for fn's newest `last` stored records (0 = none), oldest first, then for
// every record stored after Follow was called, until ctx ends (it then returns nil) or emit
// returns an error (returned as is).
func (s *Store) Follow(ctx context.Context, fn string, last int, emit func(Record) error) error {
	if !validName(fn) {
		return fmt.Errorf("follow logs of %q: %w", fn, ErrBadFunctionName)
	}
	// Everything stored for fn when Follow is called has a sequence <= bound; everything after,
	// a larger one. So history reads up to bound and following starts at bound+1, with no gap
	// and no repeat.
	info, err := s.stream.Info(ctx)
	if err != nil {
		return ctxNil(ctx, fmt.Errorf("follow logs of %s: %w", fn, err))
	}
	bound := info.State.LastSeq
	if last > 0 {
		recs, err := s.readUpTo(ctx, fn, bound, last)
		if err != nil {
			return ctxNil(ctx, fmt.Errorf("follow logs of %s: %w", fn, err))
		}
		for _, r := range recs {
			if err := emit(r); err != nil {
				return err
			}
		}
	}
	cons, it, err := s.openFrom(ctx, s.fnFilters(fn), From{Seq: bound + 1})
	if err != nil {
		return ctxNil(ctx, fmt.Errorf("follow logs of %s: %w", fn, err))
	}
	defer s.close(cons, it)
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return ctxNil(ctx, fmt.Errorf("follow logs of %s: %w", fn, err))
		}
		r, _, err := s.toRecord(m)
		if err != nil {
			return fmt.Errorf("follow logs of %s: %w", fn, err)
		}
		if err := emit(r); err != nil {
			return err
		}
	}
}

// ctxNil returns nil instead of err once ctx has ended: the caller asked to stop.
func ctxNil(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Purge deletes all of fn's stored records, in every log group. Records still queued by Append
// may be stored after.
func (s *Store) Purge(ctx context.Context, fn string) error {
	if !validName(fn) {
		return fmt.Errorf("purge logs of %q: %w", fn, ErrBadFunctionName)
	}
	for _, f := range s.fnFilters(fn) {
		if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(f)); err != nil {
			return fmt.Errorf("purge logs of %s: %w", fn, err)
		}
	}
	return nil
}

// readUpTo returns fn's records with stream sequence <= bound, oldest first; with limit > 0 only
// the newest limit of them.
func (s *Store) readUpTo(ctx context.Context, fn string, bound uint64, limit int) ([]Record, error) {
	var ring recordRing
	ring.limit = limit
	err := s.scan(ctx, s.fnFilters(fn), From{}, bound, func(r Record) bool {
		ring.add(r)
		return true
	})
	if err != nil {
		return nil, err
	}
	return ring.records(), nil
}

// From is where a scan of a function's records begins: at stream sequence Seq if set, else at
// the first record stored at or after Time if set, else at the first record.
type From struct {
	Seq  uint64
	Time time.Time
}

// Scan calls visit for fn's records (in every log group) from from on, oldest first, up to the
// last record stored for fn when Scan was called, until visit returns false.
func (s *Store) Scan(ctx context.Context, fn string, from From, visit func(Record) bool) error {
	if !validName(fn) {
		return fmt.Errorf("read logs of %q: %w", fn, ErrBadFunctionName)
	}
	if err := s.scanAll(ctx, s.fnFilters(fn), from, visit); err != nil {
		return fmt.Errorf("read logs of %s: %w", fn, err)
	}
	return nil
}

// scanAll is scan up to the last record stored under filters now.
func (s *Store) scanAll(ctx context.Context, filters []string, from From, visit func(Record) bool) error {
	last, err := s.last(ctx, filters)
	if err != nil {
		return err
	}
	if last == 0 || from.Seq > last {
		return nil
	}
	return s.scan(ctx, filters, from, last, visit)
}

// scan calls visit for the records under filters from from on, up to stream sequence bound.
func (s *Store) scan(ctx context.Context, filters []string, from From, bound uint64, visit func(Record) bool) error {
	if bound == 0 {
		return nil
	}
	cons, it, err := s.openFrom(ctx, filters, from)
	if err != nil {
		return err
	}
	defer s.close(cons, it)
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		return nil
	}
	var cursor uint64 // stream sequence of the last record received
	for {
		nctx, cancel := context.WithTimeout(ctx, readIdle)
		m, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				// Quiet: done if the server has nothing more for us (records purged or
				// expired while reading), otherwise keep waiting.
				info, ierr := cons.Info(ctx)
				if ierr != nil {
					return ierr
				}
				if info.NumPending == 0 && info.Delivered.Stream <= cursor {
					return nil
				}
				continue
			}
			return err
		}
		r, meta, err := s.toRecord(m)
		if err != nil {
			return err
		}
		cursor = meta.Sequence.Stream
		if cursor > bound {
			return nil
		}
		if !visit(r) || cursor == bound || meta.NumPending == 0 {
			return nil
		}
	}
}

// openFrom starts an ordered consumer on filters at from.
func (s *Store) openFrom(ctx context.Context, filters []string, from From) (jetstream.Consumer, jetstream.MessagesContext, error) {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    filters,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: consumerInactive,
	}
	switch {
	case from.Seq > 1:
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = from.Seq
	case from.Seq == 0 && !from.Time.IsZero():
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		t := from.Time
		cfg.OptStartTime = &t
	}
	cons, err := s.stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	it, err := cons.Messages()
	if err != nil {
		s.deleteConsumer(cons)
		return nil, nil, err
	}
	return cons, it, nil
}

// close stops the iterator and deletes the server-side consumer rather than leaving it to expire.
func (s *Store) close(cons jetstream.Consumer, it jetstream.MessagesContext) {
	it.Stop()
	s.deleteConsumer(cons)
}

func (s *Store) deleteConsumer(cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), deleteTimeout)
	defer cancel()
	err := s.stream.DeleteConsumer(ctx, info.Name)
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		s.log.Debug("delete logs reader consumer", "stream", s.cfg.Stream, "consumer", info.Name, "err", err)
	}
}

func (s *Store) toRecord(m jetstream.Msg) (Record, *jetstream.MsgMetadata, error) {
	meta, err := m.Metadata()
	if err != nil {
		return Record{}, nil, err
	}
	r := Record{Time: meta.Timestamp.UTC(), Text: m.Data(), Seq: meta.Sequence.Stream}
	r.Group, r.Function, _ = s.groupOfSubject(m.Subject())
	readMeta(&r, m.Headers())
	return r, meta, nil
}

// recordRing keeps every record added, or only the newest limit when limit > 0.
type recordRing struct {
	limit int
	recs  []Record
	next  int // with limit > 0 and the ring full, the index of the oldest record
}

func (r *recordRing) add(rec Record) {
	if r.limit <= 0 || len(r.recs) < r.limit {
		r.recs = append(r.recs, rec)
		return
	}
	r.recs[r.next] = rec
	r.next = (r.next + 1) % r.limit
}

// records returns the kept records, oldest first.
func (r *recordRing) records() []Record {
	if r.next == 0 {
		return r.recs
	}
	out := make([]Record, 0, len(r.recs))
	out = append(out, r.recs[r.next:]...)
	return append(out, r.recs[:r.next]...)
}
