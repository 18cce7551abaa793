package console

import (
	"math"
	"slices"
	"sync"
	"time"

	"github.com/flint-run/flint/internal/telemetry"
)

// The aggregator's bounds. Memory is bounded by MaxFunctions × (Window minutes × one minute's
// size + RecentInvocations × one invocation's size): a minute is allocated only when the
// function ran in it (about 240 bytes: counters and a histogram of histBuckets uint32), an
// invocation takes about 64 bytes, so a function busy in every minute costs about 16 KB and the
// whole aggregator at most about 64 MB; an idle function costs its ring and map entry only.
const (
	// Window is how far back the statistics reach: per-minute buckets for the last hour.
	Window = 60
	// RecentInvocations is how many of a function's latest invocations are kept.
	RecentInvocations = 20
	// MaxFunctions bounds the functions tracked; past it, the one that ran least recently is
	// forgotten to make room.
	MaxFunctions = 4096
)

// Durations are counted in a log-scale histogram: bucket k holds durations in
// [histBase·√2^k, histBase·√2^(k+1)), so a percentile read from it is within a factor √2 of the
// truth (and clamped to the minute's largest duration). 48 buckets reach 0.1 ms·2^24 ≈ 28 min,
// past Lambda's 15-minute timeout.
const (
	histBase    = 100 * time.Microsecond
	histBuckets = 48
)

// Stats aggregates finished invocations per function: counts, errors, cold starts and a
// duration histogram in per-minute buckets over the last Window minutes, and the latest
// RecentInvocations invocations. It is a worker.Observer: Invoked must not block, so each call
// takes one short lock and allocates only when a function first runs or a minute starts.
type Stats struct {
	now func() time.Time

	mu  sync.Mutex
	fns map[string]*fnStats
}

type fnStats struct {
	mu      sync.Mutex
	last    time.Time // of the latest invocation: eviction order
	minutes [Window]*minute
	recent  [RecentInvocations]Invocation
	next    int // recent's next slot
	n       int // how many of recent are set
}

// minute is one minute's invocations of one function.
type minute struct {
	at       int64 // Unix minute
	count    uint32
	errors   uint32 // error and timeout outcomes
	timeouts uint32
	cold     uint32
	busy     time.Duration // sum of durations: busy / 60 s is the minute's mean concurrency
	max      time.Duration
	hist     [histBuckets]uint32
}

// Invocation is one finished invocation as the worker reported it.
type Invocation struct {
	Time      time.Time     `json:"time"`
	RequestID string        `json:"requestId"`
	Version   string        `json:"version"`
	Outcome   string        `json:"outcome"`
	Duration  time.Duration `json:"-"`
	Cold      bool          `json:"cold"`
	// DurationMs and InitMs (Init Duration, 0 when warm) are in milliseconds for JSON.
	DurationMs float64 `json:"durationMs"`
	InitMs     float64 `json:"initMs,omitempty"`
}

// NewStats returns an empty aggregator; now is its clock (nil: time.Now).
func NewStats(now func() time.Time) *Stats {
	if now == nil {
		now = time.Now
	}
	return &Stats{now: now, fns: map[string]*fnStats{}}
}

// Invoked records one finished invocation (worker.Observer).
func (s *Stats) Invoked(inv telemetry.Invocation) {
	function, version, outcome, d, cold := inv.Function, inv.Version, inv.Outcome, inv.Duration, inv.Init > 0
	now := s.now()
	f := s.function(function, now)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = now
	at := now.Unix() / 60
	slot := &f.minutes[at%Window]
	m := *slot
	if m == nil || m.at != at {
		if m == nil {
			m = new(minute)
			*slot = m
		}
		*m = minute{at: at}
	}
	m.count++
	switch outcome {
	case "success":
	case "timeout":
		m.timeouts++
		m.errors++
	default:
		m.errors++
	}
	if cold {
		m.cold++
	}
	m.busy += d
	m.max = max(m.max, d)
	m.hist[bucket(d)]++
	f.recent[f.next] = Invocation{Time: now, RequestID: inv.RequestID, Version: version, Outcome: outcome, Duration: d,
		Cold: cold, DurationMs: ms(d), InitMs: ms(inv.Init)}
	f.next = (f.next + 1) % RecentInvocations
	f.n = min(f.n+1, RecentInvocations)
}

// function returns fn's statistics, making room for them when fn is new.
func (s *Stats) function(fn string, now time.Time) *fnStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.fns[fn]; ok {
		return f
	}
	if len(s.fns) >= MaxFunctions {
		s.evictLocked()
	}
	f := &fnStats{last: now}
	s.fns[fn] = f
	return f
}

// evictLocked forgets the function that ran least recently. It scans every function, but runs
// only when a new function arrives with MaxFunctions already tracked.
func (s *Stats) evictLocked() {
	var oldest string
	var at time.Time
	for name, f := range s.fns {
		f.mu.Lock()
		last := f.last
		f.mu.Unlock()
		if oldest == "" || last.Before(at) {
			oldest, at = name, last
		}
	}
	delete(s.fns, oldest)
}

// Len is how many functions are tracked.
func (s *Stats) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.fns)
}

func (s *Stats) get(fn string) *fnStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fns[fn]
}

// Summary is a function's figures over the last Window minutes.
type Summary struct {
	Invocations uint64  `json:"invocations"`
	Errors      uint64  `json:"errors"`
	Timeouts    uint64  `json:"timeouts"`
	ColdStarts  uint64  `json:"coldStarts"`
	P50Ms       float64 `json:"p50Ms"`
	P99Ms       float64 `json:"p99Ms"`
	MaxMs       float64 `json:"maxMs"`
}

// Point is one minute of a function's figures, for the charts.
type Point struct {
	Time        time.Time `json:"time"` // the minute's start
	Invocations uint32    `json:"invocations"`
	Errors      uint32    `json:"errors"`
	ColdStarts  uint32    `json:"coldStarts"`
	AvgMs       float64   `json:"avgMs"`
	P99Ms       float64   `json:"p99Ms"`
	// Concurrency is the mean number of invocations running over the minute (busy time / 60 s,
	// over the seconds elapsed for the current minute).
	Concurrency float64 `json:"concurrency"`
}

// Summary returns fn's figures over the last Window minutes (zero when it has not run).
func (s *Stats) Summary(fn string) Summary {
	f := s.get(fn)
	if f == nil {
		return Summary{}
	}
	first := s.now().Unix()/60 - Window + 1
	var sum Summary
	var hist [histBuckets]uint64
	var maxD time.Duration
	f.mu.Lock()
	for _, m := range f.minutes {
		if m == nil || m.at < first {
			continue
		}
		sum.Invocations += uint64(m.count)
		sum.Errors += uint64(m.errors)
		sum.Timeouts += uint64(m.timeouts)
		sum.ColdStarts += uint64(m.cold)
		maxD = max(maxD, m.max)
		for i, c := range m.hist {
			hist[i] += uint64(c)
		}
	}
	f.mu.Unlock()
	sum.P50Ms = ms(quantile(hist[:], sum.Invocations, 0.50, maxD))
	sum.P99Ms = ms(quantile(hist[:], sum.Invocations, 0.99, maxD))
	sum.MaxMs = ms(maxD)
	return sum
}

// Series returns fn's last Window minutes, oldest first, the current minute last.
func (s *Stats) Series(fn string) []Point {
	now := s.now()
	cur := now.Unix() / 60
	out := make([]Point, Window)
	for i := range out {
		out[i].Time = time.Unix((cur-Window+1+int64(i))*60, 0).UTC()
	}
	f := s.get(fn)
	if f == nil {
		return out
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.minutes {
		if m == nil || m.at <= cur-Window || m.at > cur {
			continue
		}
		p := &out[m.at-(cur-Window+1)]
		p.Invocations, p.Errors, p.ColdStarts = m.count, m.errors, m.cold
		if m.count > 0 {
			p.AvgMs = ms(m.busy / time.Duration(m.count))
		}
		var hist [histBuckets]uint64
		for i, c := range m.hist {
			hist[i] = uint64(c)
		}
		p.P99Ms = ms(quantile(hist[:], uint64(m.count), 0.99, m.max))
		span := time.Minute
		if m.at == cur {
			span = max(now.Sub(time.Unix(cur*60, 0)), time.Second)
		}
		p.Concurrency = math.Round(float64(m.busy)/float64(span)*1000) / 1000
	}
	return out
}

// Recent returns fn's latest invocations, newest first.
func (s *Stats) Recent(fn string) []Invocation {
	f := s.get(fn)
	if f == nil {
		return []Invocation{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Invocation, 0, f.n)
	for i := 1; i <= f.n; i++ {
		out = append(out, f.recent[(f.next-i+RecentInvocations)%RecentInvocations])
	}
	return out
}

// bucket is d's histogram bucket.
func bucket(d time.Duration) int {
	if d < histBase {
		return 0
	}
	k := int(2 * math.Log2(float64(d)/float64(histBase)))
	return min(k, histBuckets-1)
}

// quantile estimates the q-quantile of n durations counted in hist: the geometric middle of the
// bucket it falls in, no more than the largest duration seen.
func quantile(hist []uint64, n uint64, q float64, largest time.Duration) time.Duration {
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	var seen uint64
	for k, c := range hist {
		seen += c
		if seen >= rank {
			mid := time.Duration(float64(histBase) * math.Pow(math.Sqrt2, float64(k)+0.5))
			if k == 0 {
				mid = histBase / 2
			}
			return min(mid, largest)
		}
	}
	return largest
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }

// names returns the tracked functions, sorted (tests).
func (s *Stats) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.fns))
	for n := range s.fns {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
