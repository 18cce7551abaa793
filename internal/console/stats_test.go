package console

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flint-run/flint/internal/telemetry"
)

// clock is an injected clock tests move by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestStatsSummary(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 7, 10, 0, 30, 0, time.UTC)}
	s := NewStats(c.now)
	// 100 invocations of 1..100 ms: 3 errors, 1 timeout, 2 cold.
	for i := 1; i <= 100; i++ {
		outcome := "success"
		switch {
		case i <= 3:
			outcome = "error"
		case i == 4:
			outcome = "timeout"
		}
		invoked(s, "fn", "$LATEST", outcome, time.Duration(i)*time.Millisecond, i <= 2)
	}
	got := s.Summary("fn")
	if got.Invocations != 100 || got.Errors != 4 || got.Timeouts != 1 || got.ColdStarts != 2 || got.MaxMs != 100 {
		t.Errorf("Summary = %+v; want 100 invocations, 4 errors, 1 timeout, 2 cold starts, max 100 ms", got)
	}
	// Percentiles are read from a √2 log histogram: within a factor √2 of the truth.
	for _, q := range []struct {
		name      string
		got, want float64
	}{{"p50", got.P50Ms, 50}, {"p99", got.P99Ms, 99}} {
		if q.got < q.want/1.415 || q.got > q.want*1.415 {
			t.Errorf("%s = %v ms; want within √2 of %v ms", q.name, q.got, q.want)
		}
	}
	if z := s.Summary("other"); z != (Summary{}) {
		t.Errorf("Summary of a function that never ran = %+v; want zero", z)
	}
}

// TestStatsWindow: an invocation counts for Window minutes, then drops out, and a minute's
// slot is reused an hour later without its old counts.
func TestStatsWindow(t *testing.T) {
	start := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	c := &clock{t: start}
	s := NewStats(c.now)
	invoked(s, "fn", "1", "success", 5*time.Millisecond, true)
	c.t = start.Add(30 * time.Minute)
	invoked(s, "fn", "1", "error", 7*time.Millisecond, false)
	if got := s.Summary("fn"); got.Invocations != 2 || got.Errors != 1 {
		t.Errorf("at +30 min: %+v; want 2 invocations, 1 error", got)
	}
	c.t = start.Add(Window * time.Minute) // the first minute has left the window
	if got := s.Summary("fn"); got.Invocations != 1 || got.ColdStarts != 0 {
		t.Errorf("at +60 min: %+v; want only the second invocation", got)
	}
	invoked(s, "fn", "1", "success", time.Millisecond, false) // reuses the first minute's slot
	series := s.Series("fn")
	if len(series) != Window {
		t.Fatalf("Series has %d points; want %d", len(series), Window)
	}
	last := series[Window-1]
	if last.Invocations != 1 || last.ColdStarts != 0 || !last.Time.Equal(start.Add(Window*time.Minute)) {
		t.Errorf("current minute = %+v; want 1 warm invocation at %v", last, start.Add(Window*time.Minute))
	}
	mid := series[Window-1-30]
	if mid.Invocations != 1 || mid.Errors != 1 || mid.AvgMs != 7 {
		t.Errorf("minute +30 = %+v; want 1 invocation, 1 error, 7 ms", mid)
	}
	var total uint32
	for _, p := range series {
		total += p.Invocations
	}
	if total != 2 {
		t.Errorf("series holds %d invocations; want 2", total)
	}
}

// TestStatsConcurrency: a minute's concurrency is its busy time over the minute (over the
// seconds gone, for the current one).
func TestStatsConcurrency(t *testing.T) {
	start := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	c := &clock{t: start}
	s := NewStats(c.now)
	for range 4 {
		invoked(s, "fn", "1", "success", 30*time.Second, false) // 2 minutes of work
	}
	c.t = start.Add(time.Minute) // the minute is over
	if got := s.Series("fn")[Window-2].Concurrency; got != 2 {
		t.Errorf("concurrency = %v; want 2", got)
	}
	c.t = start.Add(time.Minute + 30*time.Second)
	invoked(s, "fn", "1", "success", 30*time.Second, false)
	if got := s.Series("fn")[Window-1].Concurrency; got != 1 {
		t.Errorf("current minute's concurrency after 30 s with 30 s of work = %v; want 1", got)
	}
}

func TestStatsRecent(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
	s := NewStats(c.now)
	for i := range RecentInvocations + 5 {
		c.t = c.t.Add(time.Second)
		invoked(s, "fn", fmt.Sprint(i), "success", time.Duration(i+1)*time.Millisecond, i == 0)
	}
	got := s.Recent("fn")
	if len(got) != RecentInvocations {
		t.Fatalf("Recent kept %d; want %d", len(got), RecentInvocations)
	}
	var versions []string
	for _, inv := range got {
		versions = append(versions, inv.Version)
	}
	var want []string
	for i := RecentInvocations + 4; i >= 5; i-- {
		want = append(want, fmt.Sprint(i))
	}
	if diff := cmp.Diff(want, versions); diff != "" {
		t.Errorf("Recent's versions, newest first (-want +got):\n%s", diff)
	}
	if got[0].DurationMs != float64(RecentInvocations+5) {
		t.Errorf("newest duration = %v ms; want %d", got[0].DurationMs, RecentInvocations+5)
	}
	if r := s.Recent("none"); r == nil || len(r) != 0 {
		t.Errorf("Recent of an unknown function = %#v; want an empty list", r)
	}
}

// TestStatsBounded: past MaxFunctions, the function that ran least recently is forgotten.
func TestStatsBounded(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
	s := NewStats(c.now)
	for i := range MaxFunctions {
		c.t = c.t.Add(time.Millisecond)
		invoked(s, fmt.Sprintf("fn-%05d", i), "1", "success", time.Millisecond, false)
	}
	c.t = c.t.Add(time.Millisecond)
	invoked(s, "fn-00000", "1", "success", time.Millisecond, false) // now fn-00001 is the oldest
	c.t = c.t.Add(time.Millisecond)
	invoked(s, "newcomer", "1", "success", time.Millisecond, false)
	if n := s.Len(); n != MaxFunctions {
		t.Errorf("tracking %d functions; want at most %d", n, MaxFunctions)
	}
	if s.Summary("fn-00001").Invocations != 0 {
		t.Error("fn-00001, the least recent, is still tracked")
	}
	if s.Summary("fn-00000").Invocations != 2 || s.Summary("newcomer").Invocations != 1 {
		t.Error("the recently used functions lost their counts")
	}
}

// TestStatsInvokedAllocs: after a function's first invocation in a minute, Invoked allocates
// nothing (it runs for every invocation).
func TestStatsInvokedAllocs(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
	s := NewStats(c.now)
	invoked(s, "fn", "1", "success", time.Millisecond, true)
	if n := testing.AllocsPerRun(100, func() { invoked(s, "fn", "1", "success", time.Millisecond, false) }); n != 0 {
		t.Errorf("Invoked allocates %v times per call; want 0", n)
	}
}

// BenchmarkStatsInvoked is the cost the console adds to each finished invocation (on the
// worker's record writer, off the invoke path).
func BenchmarkStatsInvoked(b *testing.B) {
	s := NewStats(nil)
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("fn-%04d", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		invoked(s, names[i%len(names)], "1", "success", time.Duration(i%5000)*time.Microsecond, false)
		i++
	}
}

// invoked reports one invocation to s as the worker does; a cold one had an INIT of 1 ms.
func invoked(s *Stats, function, version, outcome string, d time.Duration, cold bool) {
	inv := telemetry.Invocation{Function: function, Version: version, Outcome: outcome, Duration: d}
	if cold {
		inv.Init = time.Millisecond
	}
	s.Invoked(inv)
}
