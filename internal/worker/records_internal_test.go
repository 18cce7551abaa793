package worker

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/logs"
)

// TestOutcomeLabels pins the words outcomes are written as: the Observer's outcome label (a
// metrics label) and REPORT's Status, the same strings as before outcomes were typed.
func TestOutcomeLabels(t *testing.T) {
	for _, tc := range []struct {
		o             outcome
		label, status string
	}{
		{outcomeSuccess, "success", ""},
		{outcomeError, "error", "error"},
		{outcomeTimeout, "timeout", "timeout"},
		{outcomeAborted, "error", "error"},
		{outcomeNotDelivered, "not delivered", "not delivered"},
		{outcome(200), "unknown", "unknown"},
	} {
		if got := tc.o.String(); got != tc.label {
			t.Errorf("outcome(%d).String() = %q, want %q", tc.o, got, tc.label)
		}
		if got := tc.o.reportStatus(); got != tc.status {
			t.Errorf("outcome(%d).reportStatus() = %q, want %q", tc.o, got, tc.status)
		}
	}
}

// copySink is a LogSink that copies each record into a buffer it reuses and says so on done,
// allocating nothing itself.
type copySink struct {
	buf  []byte
	done chan struct{}
}

func (s *copySink) Append(_ string, rec []byte) {
	s.buf = append(s.buf[:0], rec...)
	s.done <- struct{}{}
}

// TestRecordWriterAllocations: the record writer builds each log record in a buffer it reuses,
// so a warm invocation's record costs no allocation beyond what the LogSink does with it.
func TestRecordWriterAllocations(t *testing.T) {
	sink := &copySink{buf: make([]byte, 0, 4096), done: make(chan struct{})}
	m := New(Config{Log: slog.New(slog.DiscardHandler), Logs: sink})
	defer m.Close()
	p := m.Pool(Function{Name: "fn", Version: "$LATEST", MemoryMB: 128, Timeout: time.Second})
	c := &call{e: &env{p: p}, req: Request{RequestID: "8f5d3f4e-7f43-4c35-9a39-1d0f3c3f5a61"},
		output: []byte("hello from the function\n"), duration: 1500 * time.Microsecond}
	m.records.Put(c)
	<-sink.done
	if !bytes.Contains(sink.buf, []byte("REPORT RequestId: 8f5d3f4e-7f43-4c35-9a39-1d0f3c3f5a61")) {
		t.Fatalf("record %q lacks its REPORT line", sink.buf)
	}
	got := testing.AllocsPerRun(200, func() {
		m.records.Put(c)
		<-sink.done
	})
	if got != 0 {
		t.Errorf("allocations per record written = %v, want 0", got)
	}
}

// metaSink is a RecordSink: it also keeps each record's Meta.
type metaSink struct {
	copySink
	meta logs.Meta
}

func (s *metaSink) AppendRecord(fn string, m logs.Meta, rec []byte) {
	s.meta = m
	s.Append(fn, rec)
}

// TestRecordWriterMeta: a RecordSink gets each record with its environment, version and times
// (for CloudWatch Logs' streams and per-line times), still without an allocation.
func TestRecordWriterMeta(t *testing.T) {
	sink := &metaSink{copySink: copySink{buf: make([]byte, 0, 4096), done: make(chan struct{})}}
	m := New(Config{Log: slog.New(slog.DiscardHandler), Logs: sink})
	defer m.Close()
	p := m.Pool(Function{Name: "fn", Version: "3", MemoryMB: 128, Timeout: time.Second, Logging: Logging{JSON: true, Group: "/shared/app"}})
	start := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	c := &call{e: &env{p: p, id: "0123456789abcdef"}, req: Request{RequestID: "r"}, start: start,
		output: []byte("hi\n"), duration: 1500 * time.Microsecond, initDur: 200 * time.Millisecond}
	m.records.Put(c)
	<-sink.done
	want := logs.Meta{Env: "0123456789abcdef", Version: "3", Start: start, Duration: 1500 * time.Microsecond, Init: 200 * time.Millisecond,
		Group: "/shared/app"}
	if sink.meta != want {
		t.Errorf("meta = %+v, want %+v", sink.meta, want)
	}
	// A cold start's JSON record: the INIT's events, then the invocation's.
	var types []string
	for _, line := range bytes.Split(bytes.TrimSpace(sink.buf), []byte("\n")) {
		if i := bytes.Index(line, []byte(`"type":"`)); i >= 0 {
			typ, _, _ := bytes.Cut(line[i+len(`"type":"`):], []byte(`"`))
			types = append(types, string(typ))
		}
	}
	if got := strings.Join(types, " "); got != "platform.initStart platform.initReport platform.start platform.report" {
		t.Errorf("JSON record's events: %s\n%s", got, sink.buf)
	}
	got := testing.AllocsPerRun(200, func() {
		m.records.Put(c)
		<-sink.done
	})
	if got != 0 {
		t.Errorf("allocations per record written = %v, want 0", got)
	}
}
