package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/crypt"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// unreachable is the real schedule store, cut off while down is set: reading and writing a
// schedule's state fail as they do while the stream holding it elects a leader (a node died).
type unreachable struct {
	store.Schedules
	down atomic.Bool
}

var errNoResponse = errors.New("nats: no response from stream")

func (u *unreachable) State(ctx context.Context, group, name string) (lambda.ScheduleState, error) {
	if u.down.Load() {
		return lambda.ScheduleState{}, errNoResponse
	}
	return u.Schedules.State(ctx, group, name)
}

func (u *unreachable) AdvanceState(ctx context.Context, group, name string, st lambda.ScheduleState) error {
	if u.down.Load() {
		return errNoResponse
	}
	return u.Schedules.AdvanceState(ctx, group, name, st)
}

// TestScheduleStoreOutage: a rate schedule whose state cannot be read or written for a while
// (1.5 s here, 7 occurrences of a rate whose minute lasts 200 ms) fires again a second after
// the store is back, not at the scheduler's next wake (up to a minute), and fires every
// occurrence it missed that is still within the window, each once, in order.
func TestScheduleStoreOutage(t *testing.T) {
	ctx := context.Background()
	keys, err := crypt.LoadKeyring(filepath.Join(t.TempDir(), "master.key"), "")
	if err != nil {
		t.Fatal(err)
	}
	discard := slog.New(slog.DiscardHandler)
	st, err := store.Open(ctx, store.Options{Dir: t.TempDir(), Keyring: keys, Log: discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	q, err := asyncq.New(ctx, asyncq.Config{JS: st.JetStream(), Log: discard})
	if err != nil {
		t.Fatal(err)
	}
	const minute = 200 * time.Millisecond
	created := time.Now()
	sc := &lambda.Schedule{Arn: "arn:aws:scheduler:us-east-1:000000000000:schedule/default/tick", Name: "tick", GroupName: "default",
		ScheduleExpression: "rate(1 minute)", FlexibleTimeWindow: &lambda.FlexibleTimeWindow{Mode: "OFF"},
		Target: &lambda.ScheduleTarget{Arn: "arn:aws:lambda:us-east-1:000000000000:function:tick"}, State: "ENABLED",
		CreationDate: float64(created.UnixNano()) / 1e9}
	if err := st.Schedules().Create(ctx, sc); err != nil {
		t.Fatal(err)
	}
	// The occurrences are the creation time (as stored) plus k minutes; each is enqueued with
	// a request id derived from it.
	base := epoch(&sc.CreationDate)
	occurrence := map[string]int{}
	for k := 1; k <= 200; k++ {
		occ := base.Add(time.Duration(k) * minute)
		occurrence[uuid.NewSHA1(uuid.NameSpaceURL, []byte(sc.Arn+"@"+strconv.FormatInt(occ.UnixNano(), 10))).String()] = k
	}
	stream, err := st.JetStream().Stream(ctx, "FLINT_ASYNC")
	if err != nil {
		t.Fatal(err)
	}
	fired := func() []int { // occurrence numbers enqueued, in stream order
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []int
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			m, err := stream.GetMsg(ctx, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			k, ok := occurrence[m.Header.Get("Flint-Request-Id")]
			if !ok {
				t.Fatalf("enqueued request id %s is no occurrence of the schedule", m.Header.Get("Flint-Request-Id"))
			}
			out = append(out, k)
		}
		return out
	}

	schedules := &unreachable{Schedules: st.Schedules()}
	s := New(schedules, q, discard)
	s.ScaleMinute(minute)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })

	waitFor := func(n int, bound time.Duration, what string) {
		t.Helper()
		for deadline := time.Now().Add(bound); len(fired()) < n; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d occurrences fired within %v, want %d: %v", what, len(fired()), bound, n, fired())
			}
		}
	}
	waitFor(3, 10*time.Second, "before the outage")
	schedules.down.Store(true)
	time.Sleep(1500 * time.Millisecond)
	schedules.down.Store(false)
	back := time.Now()
	// Every occurrence due by now, the missed ones included, within a few seconds (a firing
	// that failed is tried again a second later).
	due := int(time.Since(base) / minute)
	waitFor(due, 5*time.Second, "after the outage")
	t.Logf("occurrences 1..%d fired %v after the store was back", due, time.Since(back).Round(time.Millisecond))

	got := fired()
	for i, k := range got {
		if k != i+1 {
			t.Fatalf("occurrences fired %v: want each of 1, 2, 3, … once, in order", got)
		}
	}
}
