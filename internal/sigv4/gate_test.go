package sigv4

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var (
	addrA = netip.MustParseAddr("192.0.2.1")
	addrB = netip.MustParseAddr("192.0.2.2")
	addrC = netip.MustParseAddr("192.0.2.3")
)

// pendingAcquire runs acquire in a goroutine and returns its outcome channel.
func pendingAcquire(g *bodyGate, ctx context.Context, src netip.Addr, n int64, scoped bool) chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		h, err := g.acquire(ctx, src, n, scoped)
		ch <- acquired{h, err}
	}()
	return ch
}

type acquired struct {
	h   hold
	err error
}

// waitQueued waits until n acquires are queued in g.
func waitQueued(t *testing.T, g *bodyGate, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g.mu.Lock()
		q := len(g.queue)
		g.mu.Unlock()
		if q == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters queued, want %d", q, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func mustGet(t *testing.T, ch chan acquired, what string) hold {
	t.Helper()
	select {
	case a := <-ch:
		if a.err != nil {
			t.Fatalf("%s: %v", what, a.err)
		}
		return a.h
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not granted", what)
	}
	return hold{}
}

func notYet(t *testing.T, ch chan acquired, what string) {
	t.Helper()
	select {
	case a := <-ch:
		t.Fatalf("%s: granted early (err %v)", what, a.err)
	default:
	}
}

// TestBodyGate: the server's capacity and an address's bound are never exceeded; a waiter held
// back by its own address does not hold back others; one that does not fit the capacity keeps
// its place ahead of later, smaller ones; room given back is granted to waiters.
func TestBodyGate(t *testing.T) {
	ctx := context.Background()
	g := newBodyGate(100, 60, time.Minute)

	a1 := mustGet(t, pendingAcquire(g, ctx, addrA, 50, true), "A 50")
	a2 := pendingAcquire(g, ctx, addrA, 20, true) // A would hold 70 > 60
	waitQueued(t, g, 1)
	b1 := mustGet(t, pendingAcquire(g, ctx, addrB, 40, true), "B 40 (A's waiter holds back only A)")
	c1 := pendingAcquire(g, ctx, addrC, 30, true) // 120 > 100
	waitQueued(t, g, 2)
	c2 := pendingAcquire(g, ctx, addrC, 5, true) // fits, but C's 30 came first
	waitQueued(t, g, 3)
	notYet(t, a2, "A 20")
	notYet(t, c2, "C 5 behind C 30")
	if got := g.held(); got != 90 {
		t.Fatalf("held %d, want 90", got)
	}

	a1.release()
	// A's 20 fits its address now (20 <= 60) and the server (40+20 <= 100); C's 30 then fits
	// (90), and C's 5 (95).
	a2h := mustGet(t, a2, "A 20 after A's 50 is released")
	c1h := mustGet(t, c1, "C 30")
	c2h := mustGet(t, c2, "C 5")
	if got := g.held(); got != 95 {
		t.Fatalf("held %d, want 95", got)
	}
	a1.release() // a second release is a no-op
	if got := g.held(); got != 95 {
		t.Fatalf("held %d after a double release, want 95", got)
	}

	// Authenticated headers (unscoped) count against the server only.
	b1.release()
	u := mustGet(t, pendingAcquire(g, ctx, addrA, 45, false), "unscoped 45 from A")
	for _, h := range []*hold{&a2h, &c1h, &c2h, &u} {
		h.release()
	}

	if got := g.held(); got != 0 {
		t.Errorf("held %d after every release, want 0", got)
	}
	if len(g.sources) != 0 || len(g.queue) != 0 {
		t.Errorf("%d addresses, %d waiters left, want none", len(g.sources), len(g.queue))
	}
}

func TestBodyGateGivesUp(t *testing.T) {
	g := newBodyGate(10, 10, 50*time.Millisecond)
	h := mustGet(t, pendingAcquire(g, context.Background(), addrA, 10, true), "first")
	if _, err := g.acquire(context.Background(), addrB, 1, true); !errors.Is(err, errBusy) {
		t.Errorf("acquire past maxWait: %v, want errBusy", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := pendingAcquire(g, ctx, addrB, 1, true)
	waitQueued(t, g, 1)
	cancel()
	if a := <-ch; !errors.Is(a.err, context.Canceled) {
		t.Errorf("acquire with its context cancelled: %v", a.err)
	}
	h.release()
	if g.held() != 0 || len(g.queue) != 0 {
		t.Errorf("held %d with %d waiters after giving up, want 0 and 0", g.held(), len(g.queue))
	}
}

// TestBodyGateUnknownLength: a chunked body takes room as it arrives and is refused when it
// outgrows the limit or the room.
func TestBodyGateUnknownLength(t *testing.T) {
	chunked := func(n int) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("x", n)))
		r.ContentLength = -1
		return r
	}
	g := newBodyGate(4<<20, 4<<20, time.Second)
	body, h, err := g.read(chunked(3<<20), addrA, 3<<20, true)
	if err != nil || len(body) != 3<<20 {
		t.Fatalf("3 MiB chunked body: %d bytes, %v", len(body), err)
	}
	if got := g.held(); got < 3<<20 || got > 4<<20 {
		t.Errorf("held %d for a 3 MiB body", got)
	}
	h.release()
	if _, _, err := g.read(chunked(3<<20+1), addrA, 3<<20, true); !errors.Is(err, errTooLarge) {
		t.Errorf("chunked body over the limit: %v, want errTooLarge", err)
	}
	small := newBodyGate(1<<20, 1<<20, time.Second)
	if _, _, err := small.read(chunked(2<<20), addrA, 3<<20, true); !errors.Is(err, errBusy) {
		t.Errorf("chunked body outgrowing the room: %v, want errBusy", err)
	}
	if g.held() != 0 || small.held() != 0 {
		t.Errorf("held %d and %d after refusals, want 0", g.held(), small.held())
	}
}
