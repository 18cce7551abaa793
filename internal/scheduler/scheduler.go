// Package scheduler is EventBridge Scheduler's engine: it parses and evaluates schedule
// expressions (expression.go) and fires schedules: rate(), cron() and at() expressions in
// their time zones, each occurrence once, also across restarts and while the store cannot be
// reached (each missed occurrence still within the schedule's flexible window, at least a
// minute, fires late, once; older ones are skipped). A firing is an asynchronous
// invocation of the target function with the schedule's Input (its context attributes, such as
// <aws.scheduler.scheduled-time>, filled in; {} without an Input), enqueued with an id derived
// from the schedule and the occurrence so that a firing repeated after a crash is deduplicated by the
// queue. It owns no HTTP and no environments.
package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// Enqueuer is where firings go (asyncq.Queue).
type Enqueuer interface {
	Enqueue(ctx context.Context, ev asyncq.Event) error
}

// Schedules is the schedule registry (store.Schedules).
type Schedules interface {
	List(ctx context.Context) ([]*lambda.Schedule, error)
	Watch(ctx context.Context, ready func(), fn func(key string, rev uint64, sc *lambda.Schedule)) error
	Delete(ctx context.Context, group, name string) error
	State(ctx context.Context, group, name string) (lambda.ScheduleState, error)
	AdvanceState(ctx context.Context, group, name string, st lambda.ScheduleState) error
}

// Service runs the schedules.
type Service struct {
	store Schedules
	queue Enqueuer
	log   *slog.Logger
	now   func() time.Time
	// minute is how long a minute of rate() expressions lasts: a real minute, shorter only for
	// tests (ScaleMinute).
	minute time.Duration

	mu      sync.Mutex
	changed chan struct{}
}

// New returns a scheduler; Run fires schedules until its context ends.
func New(st Schedules, q Enqueuer, log *slog.Logger) *Service {
	return &Service{store: st, queue: q, log: log, now: time.Now, minute: time.Minute, changed: make(chan struct{}, 1)}
}

// ScaleMinute makes a minute of rate() expressions last d, so that a test of real processes
// sees rate(1 minute) fire every d (flint serve's hidden --schedule-minute). cron() and at(),
// and how late an occurrence may fire (window), keep the wall clock: a node's death makes
// firings seconds late however short the rate. Call it before Run.
func (s *Service) ScaleMinute(d time.Duration) {
	if d > 0 {
		s.minute = d
	}
}

// Changed tells the scheduler that schedules were written (the KV watch does too).
func (s *Service) Changed() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

var functionTarget = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:([a-zA-Z0-9_-]{1,64})(?::([a-zA-Z0-9$_-]+))?$`)
})

// ValidTarget reports whether arn is a Lambda function ARN a schedule can invoke.
func ValidTarget(arn string) bool { return functionTarget().MatchString(arn) }

// Run fires due schedules until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	watchCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the watch only wakes the loop; the loop reads the store
		defer wg.Done()
		_ = s.store.Watch(watchCtx, s.Changed, func(string, uint64, *lambda.Schedule) { s.Changed() })
	}()
	defer wg.Wait()
	for {
		next := s.fireDue(ctx)
		wait := time.Until(next)
		if next.IsZero() || wait > time.Minute {
			wait = time.Minute
		}
		t := time.NewTimer(max(wait, 10*time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-s.changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// fireDue fires every schedule whose occurrence has come and returns the earliest next one.
func (s *Service) fireDue(ctx context.Context) time.Time {
	all, err := s.store.List(ctx)
	if err != nil {
		s.log.Warn("list schedules", "err", err)
		return s.now().Add(time.Second)
	}
	var earliest time.Time
	for _, sc := range all {
		// On an error next is when to try again (a second later when the store could not be
		// reached: a node died, a stream elects a leader), or zero.
		next, err := s.fireOne(ctx, sc)
		if err != nil {
			s.log.Warn("schedule", "schedule", sc.Arn, "err", err)
		}
		if !next.IsZero() && (earliest.IsZero() || next.Before(earliest)) {
			earliest = next
		}
	}
	return earliest
}

func epoch(f *float64) time.Time {
	if f == nil {
		return time.Time{}
	}
	sec := int64(*f)
	return time.Unix(sec, int64((*f-float64(sec))*1e9))
}

// window is how late an occurrence may still fire: the flexible window, at least a minute.
func window(sc *lambda.Schedule) time.Duration {
	if w := sc.FlexibleTimeWindow; w != nil && w.Mode == "FLEXIBLE" && w.MaximumWindowInMinutes != nil {
		return max(time.Duration(*w.MaximumWindowInMinutes)*time.Minute, time.Minute)
	}
	return time.Minute
}

// fireOne fires sc's due occurrence, if any, and returns its next occurrence (zero: none).
func (s *Service) fireOne(ctx context.Context, sc *lambda.Schedule) (time.Time, error) {
	if sc.State != "ENABLED" {
		return time.Time{}, nil
	}
	expr, err := ParseSchedule(sc.ScheduleExpression, sc.ScheduleExpressionTimezone)
	if err != nil {
		return time.Time{}, err
	}
	if r, ok := expr.(Rate); ok && s.minute != time.Minute {
		expr = r.scale(s.minute)
	}
	st, err := s.store.State(ctx, sc.GroupName, sc.Name)
	if err != nil {
		return s.now().Add(time.Second), err
	}
	now := s.now()
	from := st.LastFire
	if from.IsZero() {
		from = epoch(&sc.CreationDate)
		if start := epoch(sc.StartDate); start.After(from) {
			// Occurrences start at StartDate; a rate counts from there.
			from = start.Add(-time.Nanosecond)
		}
	}
	occ, ok := expr.Next(from)
	if !ok {
		return time.Time{}, nil
	}
	if end := epoch(sc.EndDate); !end.IsZero() && occ.After(end) {
		return time.Time{}, nil
	}
	if occ.After(now) {
		return occ, nil
	}
	// Due. Skip the occurrences missed beyond the window (up to the newest due one) and fire
	// the oldest left: occurrences missed while the store could not be reached (a node died,
	// a stream elected a leader) fire late but within their window, one per round.
	for now.Sub(occ) > window(sc) {
		n, ok := expr.Next(occ)
		if !ok || n.After(now) {
			break
		}
		occ = n
	}
	if now.Sub(occ) <= window(sc) {
		if err := s.fire(ctx, sc, occ); err != nil {
			return now.Add(time.Second), err
		}
	} else {
		s.log.Info("skipping an occurrence missed beyond the flexible window", "schedule", sc.Arn, "occurrence", occ)
	}
	if err := s.store.AdvanceState(ctx, sc.GroupName, sc.Name, lambda.ScheduleState{LastFire: occ}); err != nil {
		return now.Add(time.Second), err
	}
	if _, ok := expr.Next(occ); !ok && sc.ActionAfterCompletion == "DELETE" {
		if err := s.store.Delete(ctx, sc.GroupName, sc.Name); err != nil && !errors.Is(err, store.ErrNotFound) {
			return time.Time{}, err
		}
		return time.Time{}, nil
	}
	next, ok := expr.Next(occ)
	if !ok {
		return time.Time{}, nil
	}
	return next, nil
}

// fire enqueues the target invocation for one occurrence. Its request id is derived from the
// schedule and the occurrence: a repeat after a crash is the same message to the queue.
func (s *Service) fire(ctx context.Context, sc *lambda.Schedule, occ time.Time) error {
	m := functionTarget().FindStringSubmatch(sc.Target.Arn)
	if m == nil {
		return errors.New("target is not a function ARN: " + sc.Target.Arn)
	}
	qualifier := m[2]
	if qualifier == "$LATEST" {
		qualifier = ""
	}
	base := sc.Target.Arn
	if m[2] != "" {
		base = base[:len(base)-len(m[2])-1]
	}
	id := uuid.NewSHA1(uuid.NameSpaceURL, []byte(sc.Arn+"@"+strconv.FormatInt(occ.UnixNano(), 10))).String()
	payload := []byte("{}")
	if sc.Target.Input != "" {
		payload = []byte(ContextAttributes(sc.Target.Input, sc.Arn, occ, id))
	}
	return s.queue.Enqueue(ctx, asyncq.Event{RequestID: id, Function: m[1], Qualifier: qualifier, Payload: payload,
		EnqueuedAt: s.now(), FunctionArn: base})
}

// ContextAttributes replaces EventBridge Scheduler's context keywords in a target's Input
// (https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html)
// with the values of one occurrence. The execution id is the occurrence's request id, so a
// firing repeated after a crash, deduplicated by the queue, and the async retries of the one
// enqueued event all carry the same id, as Scheduler keeps it across its own retries. Flint
// enqueues each occurrence once and retries that very event, so the attempt number is always 1.
func ContextAttributes(input, scheduleArn string, occ time.Time, executionID string) string {
	if !strings.Contains(input, "<aws.scheduler.") {
		return input
	}
	return strings.NewReplacer(
		"<aws.scheduler.schedule-arn>", scheduleArn,
		"<aws.scheduler.scheduled-time>", occ.UTC().Format("2006-01-02T15:04:05Z"),
		"<aws.scheduler.execution-id>", executionID,
		"<aws.scheduler.attempt-number>", "1",
	).Replace(input)
}
