package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

// waitLimit bounds waits for things that happen promptly on a healthy machine; it is a guard
// against hanging, never a performance assertion.
const waitLimit = 15 * time.Second

// startJetStream runs an embedded nats-server with JetStream for the test and checks, after
// everything else is cleaned up, that no goroutine was leaked.
func startJetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	ignore := goleak.IgnoreCurrent() // the test (or benchmark) runner's own goroutines
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func newStore(t testing.TB, js jetstream.JetStream, cfg StoreConfig) *Store {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := NewStore(t.Context(), js, cfg, log)
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	return s
}

// run starts s.Run and returns a function that stops it and waits; it also runs at cleanup.
func run(t testing.TB, s *Store) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
		case <-time.After(waitLimit):
			t.Fatal("Run did not return after its context ended")
		}
	}
	t.Cleanup(stop)
	return stop
}

// text is the log text of one invocation numbered n.
func text(fn string, n int) []byte {
	id := fmt.Sprintf("%s-req-%d", fn, n)
	b := AppendStart(nil, id, "")
	b = append(b, fmt.Sprintf("hello %d from %s\n", n, fn)...)
	b = AppendEnd(b, id)
	return AppendReport(b, Report{RequestID: id, Duration: time.Duration(n) * time.Millisecond, MemorySizeMB: 128, MaxMemoryUsedMB: 30})
}

func texts(fn string, ns ...int) []string {
	out := make([]string, 0, len(ns))
	for _, n := range ns {
		out = append(out, string(text(fn, n)))
	}
	return out
}

func recordTexts(t testing.TB, fn string, recs []Record) []string {
	t.Helper()
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		if r.Function != fn {
			t.Errorf("record Function = %q, want %q", r.Function, fn)
		}
		if r.Time.IsZero() || r.Time.Location() != time.UTC {
			t.Errorf("record Time = %v, want a UTC store time", r.Time)
		}
		out = append(out, string(r.Text))
	}
	return out
}

// waitStored polls Read until fn has n records.
func waitStored(t testing.TB, s *Store, fn string, n int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		recs, err := s.Read(t.Context(), fn, 0)
		if err != nil {
			t.Fatalf("Read(%s): %v", fn, err)
		}
		if len(recs) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Read(%s) has %d records, want %d", fn, len(recs), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStoreRoundTrip(t *testing.T) {
	js := startJetStream(t)
	s := newStore(t, js, StoreConfig{})
	before := time.Now().Add(-time.Second)
	stop := run(t, s)
	for n := 1; n <= 3; n++ {
		s.Append("fn-a", text("fn-a", n))
		if n <= 2 {
			s.Append("fn_b", text("fn_b", n))
		}
	}
	waitStored(t, s, "fn-a", 3)
	stop()
	after := time.Now().Add(time.Second)

	tests := []struct {
		fn    string
		limit int
		want  []string
	}{
		{"fn-a", 0, texts("fn-a", 1, 2, 3)},
		{"fn_b", 0, texts("fn_b", 1, 2)},
		{"fn-a", 2, texts("fn-a", 2, 3)},
		{"fn-a", 1, texts("fn-a", 3)},
		{"fn-a", 10, texts("fn-a", 1, 2, 3)},
		{"fn", 0, []string{}}, // a prefix of another function's name shares nothing
		{"nobody", 5, []string{}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/limit=%d", tt.fn, tt.limit), func(t *testing.T) {
			recs, err := s.Read(t.Context(), tt.fn, tt.limit)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if diff := cmp.Diff(tt.want, recordTexts(t, tt.fn, recs)); diff != "" {
				t.Errorf("Read(%s, %d) mismatch (-want +got):\n%s", tt.fn, tt.limit, diff)
			}
			for _, r := range recs {
				if r.Time.Before(before) || r.Time.After(after) {
					t.Errorf("record Time = %v, want within [%v, %v]", r.Time, before, after)
				}
			}
		})
	}
	if got := s.Dropped(); got != 0 {
		t.Errorf("Dropped() = %d, want 0", got)
	}
}

func TestStoreBadNames(t *testing.T) {
	js := startJetStream(t)
	s := newStore(t, js, StoreConfig{})
	for _, fn := range []string{"", "a.b", "a*", ">", "a b", string(make([]byte, 65))} {
		if _, err := s.Read(t.Context(), fn, 0); !errors.Is(err, ErrBadFunctionName) {
			t.Errorf("Read(%q) error = %v, want ErrBadFunctionName", fn, err)
		}
		if err := s.Purge(t.Context(), fn); !errors.Is(err, ErrBadFunctionName) {
			t.Errorf("Purge(%q) error = %v, want ErrBadFunctionName", fn, err)
		}
		if err := s.Follow(t.Context(), fn, 0, func(Record) error { return nil }); !errors.Is(err, ErrBadFunctionName) {
			t.Errorf("Follow(%q) error = %v, want ErrBadFunctionName", fn, err)
		}
	}
}

func TestStoreConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     StoreConfig
		wantErr bool
	}{
		{"zero is defaults", StoreConfig{}, false},
		{"custom", StoreConfig{Stream: "LOGS", Subject: "a.b", MaxAge: time.Hour, QueueLen: 8}, false},
		{"stream with dot", StoreConfig{Stream: "A.B"}, true},
		{"wildcard prefix", StoreConfig{Subject: "a.*"}, true},
		{"empty token", StoreConfig{Subject: "a..b"}, true},
		{"negative queue", StoreConfig{QueueLen: -1}, true},
		{"no linger", StoreConfig{Linger: -1}, false},
		{"linger too long", StoreConfig{Linger: 2 * time.Second}, true},
		{"negative max age", StoreConfig{MaxAge: -time.Second}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}

func TestRunFlushesOnShutdown(t *testing.T) {
	js := startJetStream(t)
	s := newStore(t, js, StoreConfig{})
	for n := 1; n <= 300; n++ { // more than one batch
		s.Append("fn", text("fn", n))
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // Run sees its context already ended: everything goes through the final flush
	if err := s.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	recs, err := s.Read(t.Context(), "fn", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(recs), 300; got != want {
		t.Errorf("stored %d records, want %d", got, want)
	}
	if got := s.Dropped(); got != 0 {
		t.Errorf("Dropped() = %d, want 0", got)
	}
	if err := s.Run(t.Context()); err == nil {
		t.Error("second Run returned nil, want an error")
	}
	s.Append("fn", text("fn", 301))
	if got := s.Dropped(); got != 1 {
		t.Errorf("Dropped() after Run returned = %d, want 1", got)
	}
}

// TestRunGathersRecords: records that come one after another while Run lingers are published
// as one batch (one round of wake-ups through the connection, the server and the acks), and a
// batch's worth ends the linger at once.
func TestRunGathersRecords(t *testing.T) {
	js := startJetStream(t)
	s := newStore(t, js, StoreConfig{Linger: time.Second})
	run(t, s)
	s.Append("fn", text("fn", 1))
	for deadline := time.Now().Add(waitLimit); len(s.queue) > 0; { // Run has taken it
		if time.Now().After(deadline) {
			t.Fatal("Run did not take the first record")
		}
		time.Sleep(time.Millisecond)
	}
	for n := 2; n <= batchMax; n++ {
		s.Append("fn", text("fn", n))
	}
	waitStored(t, s, "fn", batchMax) // well before the second of linger: the full batch ended it
	if got := s.batches.Load(); got != 1 {
		t.Errorf("published %d records in %d batches, want 1", batchMax, got)
	}
	if got := s.Dropped(); got != 0 {
		t.Errorf("Dropped() = %d, want 0", got)
	}
}

// TestRunFlushesLingeringRecords: records Run is still gathering when its context ends are
// stored before it returns.
func TestRunFlushesLingeringRecords(t *testing.T) {
	js := startJetStream(t)
	s := newStore(t, js, StoreConfig{Linger: time.Second})
	stop := run(t, s)
	for n := 1; n <= 3; n++ {
		s.Append("fn", text("fn", n))
	}
	stop()
	recs, err := s.Read(t.Context(), "fn", 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(texts("fn", 1, 2, 3), recordTexts(t, "fn", recs)); diff != "" {
		t.Errorf("stored records mismatch (-want +got):\n%s", diff)
	}
}

func TestDropped(t *testing.T) {
	tests := []struct {
		name        string
		queueLen    int
		appends     int
		badName     bool
		wantDropped uint64
	}{
		{"queue of one", 1, 3, false, 2},
		{"queue of two", 2, 5, false, 3},
		{"fits", 4, 4, false, 0},
		{"bad name", 4, 1, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := startJetStream(t)
			s := newStore(t, js, StoreConfig{QueueLen: tt.queueLen})
			fn := "fn"
			if tt.badName {
				fn = "fn.x"
			}
			// Run is not started yet, so nothing drains the queue.
			for n := 1; n <= tt.appends; n++ {
				s.Append(fn, text("fn", n))
			}
			if got := s.Dropped(); got != tt.wantDropped {
				t.Errorf("Dropped() = %d, want %d", got, tt.wantDropped)
			}
			run(t, s)()
			recs, err := s.Read(t.Context(), "fn", 0)
			if err != nil {
				t.Fatal(err)
			}
			var want []int
			for n := 1; n <= tt.appends-int(tt.wantDropped); n++ {
				want = append(want, n)
			}
			if diff := cmp.Diff(texts("fn", want...), recordTexts(t, "fn", recs)); diff != "" {
				t.Errorf("stored records mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPurge(t *testing.T) {
	js := startJetStream(t)
	s := newStore(t, js, StoreConfig{})
	for n := 1; n <= 2; n++ {
		s.Append("gone", text("gone", n))
		s.Append("kept", text("kept", n))
	}
	run(t, s)()
	if err := s.Purge(t.Context(), "gone"); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	if err := s.Purge(t.Context(), "never-logged"); err != nil {
		t.Fatalf("Purge of a function without logs: %v", err)
	}
	tests := []struct {
		fn   string
		want []string
	}{
		{"gone", []string{}},
		{"kept", texts("kept", 1, 2)},
	}
	for _, tt := range tests {
		recs, err := s.Read(t.Context(), tt.fn, 0)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, recordTexts(t, tt.fn, recs)); diff != "" {
			t.Errorf("Read(%s) after purge mismatch (-want +got):\n%s", tt.fn, diff)
		}
	}
}

// waitFollowing waits until a reader's consumer exists on the stream: Follow has then fixed the
// point after which records count as new.
func waitFollowing(t testing.TB, s *Store) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		info, err := s.stream.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Consumers > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("Follow created no consumer")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func receive(t testing.TB, ch <-chan Record, n int) []Record {
	t.Helper()
	var out []Record
	for len(out) < n {
		select {
		case r := <-ch:
			out = append(out, r)
		case <-time.After(waitLimit):
			t.Fatalf("received %d records, want %d", len(out), n)
		}
	}
	return out
}

func TestFollow(t *testing.T) {
	tests := []struct {
		last        int
		wantHistory []string
	}{
		{0, []string{}},
		{2, texts("fn", 2, 3)},
		{10, texts("fn", 1, 2, 3)},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("last=%d", tt.last), func(t *testing.T) {
			js := startJetStream(t)
			s := newStore(t, js, StoreConfig{})
			run(t, s)
			for n := 1; n <= 3; n++ {
				s.Append("fn", text("fn", n))
			}
			s.Append("other", text("other", 1))
			waitStored(t, s, "fn", 3)
			waitStored(t, s, "other", 1)

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			ch := make(chan Record, 100)
			done := make(chan error, 1)
			go func() {
				done <- s.Follow(ctx, "fn", tt.last, func(r Record) error {
					ch <- r
					return nil
				})
			}()
			history := receive(t, ch, len(tt.wantHistory))
			if diff := cmp.Diff(tt.wantHistory, recordTexts(t, "fn", history)); diff != "" {
				t.Errorf("history mismatch (-want +got):\n%s", diff)
			}
			waitFollowing(t, s)

			s.Append("other", text("other", 2))
			s.Append("fn", text("fn", 4))
			s.Append("fn", text("fn", 5))
			live := receive(t, ch, 2)
			if diff := cmp.Diff(texts("fn", 4, 5), recordTexts(t, "fn", live)); diff != "" {
				t.Errorf("followed records mismatch (-want +got):\n%s", diff)
			}

			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Follow returned %v after cancel, want nil", err)
				}
			case <-time.After(waitLimit):
				t.Fatal("Follow did not return after its context ended")
			}
			if len(ch) != 0 {
				t.Errorf("Follow emitted %d unexpected records", len(ch))
			}
		})
	}
}

func TestFollowStopsOnEmitError(t *testing.T) {
	js := startJetStream(t)
	s := newStore(t, js, StoreConfig{})
	s.Append("fn", text("fn", 1))
	run(t, s)
	waitStored(t, s, "fn", 1)
	errStop := errors.New("client gone")
	err := s.Follow(t.Context(), "fn", 1, func(Record) error { return errStop })
	if !errors.Is(err, errStop) {
		t.Errorf("Follow = %v, want the emit error", err)
	}
}

func TestAppendTruncatesOversizedRecords(t *testing.T) {
	js := startJetStream(t)
	s := newStore(t, js, StoreConfig{})
	s.maxRecord = 4096
	big := AppendStart(nil, "req", "")
	for len(big) < 3*s.maxRecord {
		big = append(big, "a line of function output\n"...)
	}
	big = AppendReport(big, Report{RequestID: "req", Duration: time.Millisecond})
	s.Append("fn", big)
	run(t, s)()
	recs, err := s.Read(t.Context(), "fn", 0)
	if err != nil || len(recs) != 1 {
		t.Fatalf("Read = %d records, %v; want 1 record", len(recs), err)
	}
	got := recs[0].Text
	if len(got) > s.maxRecord {
		t.Errorf("stored %d bytes, want at most %d", len(got), s.maxRecord)
	}
	for _, want := range []string{"START RequestId: req", "[flint: log truncated, bytes omitted: ", "REPORT RequestId: req"} {
		if !bytes.Contains(got, []byte(want)) {
			t.Errorf("truncated record lacks %q", want)
		}
	}
}

func TestStoreAppendDoesNotAllocate(t *testing.T) {
	js := startJetStream(t)
	s := newStore(t, js, StoreConfig{})
	b := text("fn", 1)
	got := testing.AllocsPerRun(1000, func() {
		s.Append("fn", b)
		s.recycle(<-s.queue) // what Run does once the record is acknowledged
	})
	if got != 0 {
		t.Errorf("Append allocs/op = %v, want 0", got)
	}
}

func BenchmarkStoreAppend(b *testing.B) {
	js := startJetStream(b)
	s := newStore(b, js, StoreConfig{})
	rec := text("fn", 1)
	b.ReportAllocs()
	for b.Loop() {
		s.Append("fn", rec)
		s.recycle(<-s.queue)
	}
}
