package asyncq

import (
	"context"
	"log/slog"
	"regexp"
	"slices"
	"strings"
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
	functionDestination = regexp.MustCompile(`^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:([a-zA-Z0-9_-]{1,64})(?::([a-zA-Z0-9$_-]+))?$`)
	streamDestination   = regexp.MustCompile(`^arn:flint:jetstream:[a-z0-9-]*:\d{0,12}:stream/([a-zA-Z0-9_-]{1,64})$`)
)

// ValidDestination reports whether arn names a destination Flint can deliver to.
func ValidDestination(arn string) bool {
	if m := streamDestination.FindStringSubmatch(arn); m != nil {
		return !ReservedStreamName(m[1])
	}
	return functionDestination.MatchString(arn)
}

// ReservedStreamName reports whether a JetStream stream name belongs to Flint itself (its async
// queue and logs, and the streams behind its KV buckets and object store): a destination or an
// event source by that name would publish into, or reconfigure, Flint's own state.
func ReservedStreamName(name string) bool {
	return strings.HasPrefix(name, "FLINT_") || strings.HasPrefix(name, "KV_") || strings.HasPrefix(name, "OBJ_")
}

// DestinationSubject is where records for a stream destination are published.
func DestinationSubject(stream string) string { return "flint.destinations." + stream }

// deliver sends body to the destination arn ("" is none). Failures are logged: the event has run.
func (q *Queue) deliver(ctx context.Context, arn string, body []byte, headers map[string]string, log *slog.Logger) {
	if arn == "" {
		return
	}
	if m := streamDestination.FindStringSubmatch(arn); m != nil && ReservedStreamName(m[1]) {
		log.Warn("not delivering to a stream reserved for Flint", "destination", arn)
		return
	}
	if m := functionDestination.FindStringSubmatch(arn); m != nil {
		qualifier := m[2]
		if qualifier == "$LATEST" {
			qualifier = ""
		}
		base := arn
		if m[2] != "" {
			base = strings.TrimSuffix(arn, ":"+m[2])
		}
		ev := Event{RequestID: uuid.NewString(), Function: m[1], Qualifier: qualifier, Payload: body,
			EnqueuedAt: time.Now(), FunctionArn: base}
		if err := q.Enqueue(ctx, ev); err != nil {
			log.Error("destination function", "arn", arn, "err", err)
		}
		return
	}
	if m := streamDestination.FindStringSubmatch(arn); m != nil {
		if err := q.ensureStream(ctx, m[1]); err != nil {
			log.Error("destination stream", "arn", arn, "err", err)
			return
		}
		msg := nats.NewMsg(DestinationSubject(m[1]))
		msg.Data = body
		for k, v := range headers {
			msg.Header.Set(k, v)
		}
		if _, err := q.cfg.JS.PublishMsg(ctx, msg); err != nil {
			log.Error("destination stream", "arn", arn, "err", err)
		}
		return
	}
	log.Error("unknown destination", "arn", arn)
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
