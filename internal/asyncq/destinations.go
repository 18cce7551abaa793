package asyncq

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Destination ARNs Flint accepts (on-success, on-failure, dead-letter):
//   - a Flint function, arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]: the record is
//     invoked asynchronously as that function's event;
//   - a JetStream stream, arn:flint:jetstream:REGION:ACCOUNT:stream/NAME: the record is published
//     to subject flint.destinations.NAME of stream NAME, which Flint creates when missing. Any NATS
//     client reads it there (flint serve --nats-listen).
var (
	functionDestination = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:([a-zA-Z0-9_-]{1,64})(?::([a-zA-Z0-9$_-]+))?$`)
	})
	streamDestination = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^arn:flint:jetstream:[a-z0-9-]*:\d{0,12}:stream/([a-zA-Z0-9_-]{1,64})$`)
	})
)

// ValidDestination reports whether arn names a destination Flint can deliver to.
func ValidDestination(arn string) bool {
	if m := streamDestination().FindStringSubmatch(arn); m != nil {
		return !ReservedStreamName(m[1])
	}
	return functionDestination().MatchString(arn)
}

// ReservedStreamName reports whether a JetStream stream name belongs to Flint itself (its async
// queue and logs, and the streams behind its KV buckets and object store): a destination or an
// event source by that name would publish into, or reconfigure, Flint's own state.
func ReservedStreamName(name string) bool {
	return strings.HasPrefix(name, "FLINT_") || strings.HasPrefix(name, "KV_") || strings.HasPrefix(name, "OBJ_")
}

// DestinationSubject is where records for a stream destination are published.
func DestinationSubject(stream string) string { return "flint.destinations." + stream }

// deliverFor bounds how long a destination that does not answer is retried before its record is
// given up (logged): JetStream electing the stream's leader after a node died takes 5–8 s, and
// several times that on a loaded machine (records were lost with a bound of 20 s). A definite
// refusal (a record larger than the stream takes, a stream that cannot be created) is not
// retried. deliverAttempt bounds one try.
const (
	deliverFor     = 2 * time.Minute
	deliverAttempt = 5 * time.Second
)

// deliver sends body to the destination arn, retrying until it is stored, refused for good, or
// deliverFor has passed: a record must survive the loss of a node as the event did. It reports
// false only if runCtx ended (the node shutting down) while the record was still not stored:
// the caller then leaves the event to run again rather than lose the record. An attempt is
// made even then: an invocation that finished in the shutdown's grace delivers as usual.
//
// id names the record (the event's request id and what the record is), so that a retried send,
// or the record of an event that ran again, is stored once: as the message id of a stream
// record, and as the request id derived for a function destination's event. trace is the
// event's trace header: a function destination's event continues the trace, a stream record
// carries it in its X-Amzn-Trace-Id header.
func (q *Queue) deliver(runCtx context.Context, arn string, body []byte, headers map[string]string, id, trace string, log *eventLog) bool {
	if m := streamDestination().FindStringSubmatch(arn); m != nil && ReservedStreamName(m[1]) {
		log.get().Warn("not delivering to a stream reserved for Flint", "destination", arn)
		return true
	}
	var send func(context.Context) error
	if m := functionDestination().FindStringSubmatch(arn); m != nil {
		qualifier := m[2]
		if qualifier == "$LATEST" {
			qualifier = ""
		}
		base := arn
		if m[2] != "" {
			base = strings.TrimSuffix(arn, ":"+m[2])
		}
		ev := Event{RequestID: uuid.NewSHA1(uuid.NameSpaceURL, []byte("flint-destination:"+id)).String(), Function: m[1],
			Qualifier: qualifier, Payload: body, EnqueuedAt: time.Now(), FunctionArn: base, TraceID: trace}
		send = func(ctx context.Context) error { return q.Enqueue(ctx, ev) }
	} else if m := streamDestination().FindStringSubmatch(arn); m != nil {
		send = func(ctx context.Context) error {
			if err := q.ensureStream(ctx, m[1]); err != nil {
				return err
			}
			msg := nats.NewMsg(DestinationSubject(m[1]))
			msg.Data = body
			for k, v := range headers {
				msg.Header.Set(k, v)
			}
			if trace != "" {
				msg.Header.Set(HeaderTrace, trace)
			}
			if _, err := q.cfg.JS.PublishMsg(ctx, msg, jetstream.WithMsgID(id)); err != nil {
				// Opened again next time: the stream may have been deleted since.
				q.mu.Lock()
				delete(q.streams, m[1])
				q.mu.Unlock()
				return err
			}
			return nil
		}
	} else {
		log.get().Error("unknown destination", "arn", arn)
		return true
	}
	ctx := context.WithoutCancel(runCtx)
	deadline := time.Now().Add(deliverFor)
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 4*time.Second) {
		actx, cancel := context.WithTimeout(ctx, deliverAttempt)
		err := send(actx)
		cancel()
		switch {
		case err == nil:
			return true
		case refused(err), time.Now().Add(wait).After(deadline):
			log.get().Error("destination: record not delivered", "arn", arn, "err", err)
			return true
		case runCtx.Err() != nil:
			return false
		}
		log.get().Warn("destination: retrying", "arn", arn, "err", err)
		select {
		case <-runCtx.Done():
			return false
		case <-time.After(wait):
		}
	}
}

// refused reports whether JetStream refused a record for good: it answered, and will answer the
// same again. No answer, and the answers of a cluster settling (no leader yet), are worth waiting
// out. The codes are the store's transient ones (store/cluster.go): the queue does not know the
// store, only JetStream.
func refused(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case 10004, // cluster incomplete
			10005, // no suitable peers for placement
			10006, // cluster not active
			10008, // JetStream temporarily unavailable
			10009: // not the leader
			return false
		}
		return true
	}
	return false
}

func (q *Queue) ensureStream(ctx context.Context, name string) error {
	q.mu.Lock()
	known := q.streams[name]
	q.mu.Unlock()
	if known {
		return nil
	}
	_, err := q.cfg.JS.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{DestinationSubject(name)}, Storage: jetstream.FileStorage,
		Description: "Flint asynchronous invocation destination",
	})
	if err != nil {
		return err
	}
	q.mu.Lock()
	q.streams[name] = true
	q.mu.Unlock()
	return nil
}

// FunctionStats is one function's queue.
type FunctionStats struct {
	Function  string        `json:"function"`
	Depth     uint64        `json:"depth"`     // events stored, waiting or running
	InFlight  int           `json:"in_flight"` // events running now
	OldestAge time.Duration `json:"oldest_age_ns"`
}

// ConsumerLeader names the node whose JetStream server leads the queue's consumer ("" on a
// single node): every node's fetches and acknowledgements go through it.
func (q *Queue) ConsumerLeader(ctx context.Context) (string, error) {
	c, err := q.stream.Consumer(ctx, consumerName)
	if err != nil {
		return "", err
	}
	if info := c.CachedInfo(); info.Cluster != nil && info.Cluster.Name != "" {
		return info.Cluster.Leader, nil
	}
	return "", nil
}

// Stats reports the queue per function, sorted by name.
func (q *Queue) Stats(ctx context.Context) ([]FunctionStats, error) {
	info, err := q.stream.Info(ctx, jetstream.WithSubjectFilter(q.cfg.Subject+".>"))
	if err != nil {
		return nil, err
	}
	byFn := map[string]*FunctionStats{}
	for subj, n := range info.State.Subjects {
		fn := strings.TrimPrefix(subj, q.cfg.Subject+".")
		st := &FunctionStats{Function: fn, Depth: n}
		if m, err := q.stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(subj)); err == nil {
			st.OldestAge = time.Since(m.Time)
		}
		byFn[fn] = st
	}
	q.mu.Lock()
	for fn, n := range q.inflight {
		if byFn[fn] == nil {
			byFn[fn] = &FunctionStats{Function: fn}
		}
		byFn[fn].InFlight = n
	}
	q.mu.Unlock()
	out := make([]FunctionStats, 0, len(byFn))
	for _, st := range byFn {
		out = append(out, *st)
	}
	slices.SortFunc(out, func(a, b FunctionStats) int { return strings.Compare(a.Function, b.Function) })
	return out, nil
}
