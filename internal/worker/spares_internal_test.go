package worker

import (
	"testing"
	"time"
)

// TestSpareDemand pins how many pre-initialized runtimes a runtime keeps: the most new
// environments at once within spareWindow, at least one once it had any, none after spareIdle
// without, at most maxSparesPerRuntime.
func TestSpareDemand(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	set := &spareSet{}
	at := func(d time.Duration, fresh int) {
		set.peaks = append(set.peaks, spareDemand{t0.Add(d), fresh})
		set.lastCold = t0.Add(d)
	}
	at(0, 1)
	at(time.Second, 1) // one after another: one spare
	if got := set.want(t0.Add(2 * time.Second)); got != 1 {
		t.Errorf("after sequential cold starts want = %d, want 1", got)
	}
	at(3*time.Second, 50) // a burst of fifty
	if got := set.want(t0.Add(4 * time.Second)); got != 50 {
		t.Errorf("after a burst of 50 want = %d, want 50", got)
	}
	if got := set.want(t0.Add(3*time.Second + spareWindow + time.Second)); got != 1 {
		t.Errorf("a window after the burst want = %d, want 1", got)
	}
	if got := set.want(t0.Add(3*time.Second + spareIdle + time.Second)); got != 0 {
		t.Errorf("idle since the burst want = %d, want 0", got)
	}
	at(spareIdle*2, 500)
	if got := set.want(t0.Add(spareIdle * 2)); got != maxSparesPerRuntime {
		t.Errorf("after a burst of 500 want = %d, want the cap %d", got, maxSparesPerRuntime)
	}
}

// TestSpareCompatible pins which functions a spare can be bound to: those that agree with it on
// every variable an interpreter reads only when it starts.
func TestSpareCompatible(t *testing.T) {
	spare := []string{"PATH=/usr/bin", "LANG=en_US.UTF-8", "PYTHONPATH=/var/runtime", "PYTHONUNBUFFERED=1", "AWS_EXECUTION_ENV=AWS_Lambda_python3.11"}
	for _, tc := range []struct {
		name string
		env  []string
		ok   bool
	}{
		{"the same start variables, others added", append(spare[:len(spare):len(spare)], "GREETING=hi", "TZ=Europe/Paris", "PYTHONPATH=/var/task"), true},
		{"a start variable of its own", append(spare[:len(spare):len(spare)], "PYTHONWARNINGS=error"), false},
		{"a different locale", []string{"LANG=C", "PYTHONUNBUFFERED=1", "AWS_EXECUTION_ENV=AWS_Lambda_python3.11"}, false},
		{"one of the spare's missing", []string{"LANG=en_US.UTF-8", "AWS_EXECUTION_ENV=AWS_Lambda_python3.11"}, false},
		{"LD_PRELOAD", append(spare[:len(spare):len(spare)], "LD_PRELOAD=/var/task/x.so"), false},
		{"NODE_OPTIONS", append(spare[:len(spare):len(spare)], "NODE_OPTIONS=--max-old-space-size=64"), false},
	} {
		if got := compatible(spare, tc.env); got != tc.ok {
			t.Errorf("%s: compatible = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

// TestSpareRefillWaitsForColdStarts: spares are not started while cold starts of any runtime are
// in flight, for at most maxRefillDelay, and are again once none is.
func TestSpareRefillWaitsForColdStarts(t *testing.T) {
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	s := newSpares(&Manager{now: func() time.Time { return now }})
	py, node := &spareSet{}, &spareSet{}
	s.sets["python3.11"], s.sets["nodejs20.x"] = py, node
	if s.refillPutOffLocked() {
		t.Fatal("put off with no cold start in flight")
	}
	py.inflight, node.inflight = 0, 2
	if !s.refillPutOffLocked() {
		t.Fatal("not put off while another runtime's cold starts run")
	}
	now = now.Add(maxRefillDelay - time.Millisecond)
	if !s.refillPutOffLocked() {
		t.Fatal("not put off within maxRefillDelay")
	}
	now = now.Add(time.Millisecond)
	if s.refillPutOffLocked() {
		t.Fatalf("put off for longer than maxRefillDelay (%v)", maxRefillDelay)
	}
	node.inflight = 0
	if s.refillPutOffLocked() || !s.deferred.IsZero() {
		t.Fatal("put off, or still counting the delay, once the cold starts ended")
	}
}
