package asyncq

import (
	"context"
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

// deliverFor bounds how long a destination that cannot take a record (its stream electing a
// leader after a node died: 5–8 s) is retried before the record is given up (logged).
const deliverFor = 20 * time.Second

// deliver sends body to the destination arn ("" is none), retrying for up to deliverFor: a
// record must survive the loss of a node as the event did. id names the record (the event's
// request id and what the record is), so that a retried send, or the record of an event that
// ran again, is stored once: as the message id of a stream record, and as the request id
// derived for a function destination's event. A record not delivered by then is logged: the
// event has run. trace is the event's trace header: a function destination's event continues
// the trace, a stream record carries it in its X-Amzn-Trace-Id header.
func (q *Queue) deliver(ctx context.Context, arn string, body []byte, headers map[string]string, id, trace string, log *eventLog) {
	if arn == "" {
		return
	}
	if m := streamDestination().FindStringSubmatch(arn); m != nil && ReservedStreamName(m[1]) {
		log.get().Warn("not delivering to a stream reserved for Flint", "destination", arn)
		return
	}
	var send func() error
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
		send = func() error { return q.Enqueue(ctx, ev) }
	} else if m := streamDestination().FindStringSubmatch(arn); m != nil {
		send = func() error {
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
			_, err := q.cfg.JS.PublishMsg(ctx, msg, jetstream.WithMsgID(id))
			return err
		}
	} else {
		log.get().Error("unknown destination", "arn", arn)
		return
	}
	deadline := time.Now().Add(deliverFor)
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		err := send()
		if err == nil {
			return
		}
		if time.Now().Add(wait).After(deadline) || ctx.Err() != nil {
			log.get().Error("destination: record not delivered", "arn", arn, "err", err)
			return
		}
		log.get().Warn("destination: retrying", "arn", arn, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
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
