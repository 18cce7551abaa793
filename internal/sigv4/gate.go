package sigv4

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// errBusy: the bytes the server holds for unauthenticated bodies stayed at their bound for as
// long as a request may wait.
var errBusy = errors.New("too many unauthenticated request bodies held")

// bodyGate bounds the request-body bytes the server holds before their signatures are checked:
// at most capacity across the server and, for a body whose signature nothing has checked yet,
// perSource per client address. A body waits for room, in arrival order, for at most maxWait;
// nothing is read from the connection while it waits, so a waiting request costs a goroutine
// and no buffer.
//
// An address over its failure limit is held to the same bound as any other: its bodies cannot
// be told from those of a correctly signing client behind the same proxy or NAT until they are
// read, so any further penalty would fall on that client too.
//
// Order: a waiter that does not fit the server's capacity holds back every waiter behind it
// (a stream of small bodies cannot starve a large one), while a waiter held by its own
// address's bound holds back no one else's.
type bodyGate struct {
	capacity  int64
	perSource int64
	maxWait   time.Duration

	mu       sync.Mutex
	used     int64
	sources  map[netip.Addr]sourceHold
	queue    []*waiter
	dropped  atomic.Int64 // bytes of refused bodies since memory was last handed back
	lastFree time.Time    // when it was
}

type sourceHold struct {
	bytes  int64
	bodies int
}

type waiter struct {
	src    netip.Addr
	n      int64
	scoped bool // counts against its address (nothing about the request has been verified)
	ready  chan struct{}
	held   bool
}

func newBodyGate(capacity, perSource int64, maxWait time.Duration) *bodyGate {
	return &bodyGate{capacity: capacity, perSource: perSource, maxWait: maxWait, sources: make(map[netip.Addr]sourceHold)}
}

// hold is room taken in the gate (the zero hold: none); release gives it back, once.
type hold struct {
	g      *bodyGate
	src    netip.Addr
	n      int64
	scoped bool
}

func (h *hold) release() {
	g := h.g
	if g == nil {
		return
	}
	h.g = nil
	g.mu.Lock()
	defer g.mu.Unlock()
	g.used -= h.n
	if h.scoped {
		s := g.sources[h.src]
		s.bytes -= h.n
		s.bodies--
		if s.bodies == 0 {
			delete(g.sources, h.src)
		} else {
			g.sources[h.src] = s
		}
	}
	g.grantLocked()
}

// acquire takes n bytes of room for a body from src, waiting for it in turn.
func (g *bodyGate) acquire(ctx context.Context, src netip.Addr, n int64, scoped bool) (hold, error) {
	h := hold{g: g, src: src, n: n, scoped: scoped}
	g.mu.Lock()
	if len(g.queue) == 0 && g.takeLocked(src, n, scoped) {
		// The common case, without allocating: nobody waits and there is room.
		g.mu.Unlock()
		return h, nil
	}
	w := &waiter{src: src, n: n, scoped: scoped, ready: make(chan struct{})}
	g.queue = append(g.queue, w)
	g.grantLocked()
	if w.held {
		g.mu.Unlock()
		return h, nil
	}
	g.mu.Unlock()

	t := time.NewTimer(g.maxWait)
	defer t.Stop()
	var err error
	select {
	case <-w.ready:
		return h, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-t.C:
		err = errBusy
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if w.held { // granted while we gave up
		return h, nil
	}
	for i, q := range g.queue {
		if q == w {
			g.queue = append(g.queue[:i], g.queue[i+1:]...)
			break
		}
	}
	g.grantLocked() // a waiter behind w may fit now that w no longer holds its place
	return hold{}, err
}

// grow adds n bytes to h without waiting: a body of unknown length grows as it arrives, and a
// request that already holds room must not wait for more (two such would wait on each other).
func (g *bodyGate) grow(h *hold, n int64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.used+n > g.capacity {
		return false
	}
	if h.scoped {
		s := g.sources[h.src]
		if s.bytes+n > g.perSource {
			return false
		}
		s.bytes += n
		g.sources[h.src] = s
	}
	g.used += n
	h.n += n
	return true
}

// takeLocked takes room for a body if it fits: within the server's capacity and, for a scoped
// body, within its address's bound.
func (g *bodyGate) takeLocked(src netip.Addr, n int64, scoped bool) bool {
	var s sourceHold
	if scoped {
		s = g.sources[src]
		if s.bytes+n > g.perSource {
			return false
		}
	}
	if g.used+n > g.capacity {
		return false
	}
	g.used += n
	if scoped {
		s.bytes += n
		s.bodies++
		g.sources[src] = s
	}
	return true
}

// grantLocked gives room to waiters in arrival order. A waiter that does not fit the server's
// capacity stops the scan (it keeps its place); one held back by its own address's bound is
// passed over.
func (g *bodyGate) grantLocked() {
	kept := g.queue[:0]
	blocked := false
	for _, w := range g.queue {
		if blocked {
			kept = append(kept, w)
			continue
		}
		if g.takeLocked(w.src, w.n, w.scoped) {
			w.held = true
			close(w.ready)
			continue
		}
		kept = append(kept, w)
		if g.used+w.n > g.capacity {
			blocked = true
		}
	}
	clear(g.queue[len(kept):])
	g.queue = kept
}

// unknownLengthStep is the room a body of unknown length (chunked) takes first and grows by
// doubling as it arrives.
const unknownLengthStep = 256 << 10

// read reads r's body, at most max bytes, holding room in the gate for what it holds. The
// caller releases the hold once the body is authenticated or refused.
func (g *bodyGate) read(r *http.Request, src netip.Addr, max int64, scoped bool) ([]byte, hold, error) {
	n := r.ContentLength
	if n > max {
		return nil, hold{}, errTooLarge
	}
	if n == 0 || r.Body == nil || r.Body == http.NoBody {
		return nil, hold{}, nil
	}
	if n > 0 {
		h, err := g.acquire(r.Context(), src, n, scoped)
		if err != nil {
			return nil, hold{}, err
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			h.release()
			return nil, hold{}, err
		}
		return b, h, nil
	}
	// Unknown length: room for what has arrived, grown as more does, up to max+1 bytes so that
	// a body over max is seen to be.
	step := min(int64(unknownLengthStep), max+1)
	h, err := g.acquire(r.Context(), src, step, scoped)
	if err != nil {
		return nil, hold{}, err
	}
	b := make([]byte, 0, step)
	for {
		if len(b) == cap(b) {
			if int64(len(b)) > max {
				h.release()
				return nil, hold{}, errTooLarge
			}
			more := min(int64(cap(b)), max+1-int64(cap(b)))
			if !g.grow(&h, more) {
				h.release()
				return nil, hold{}, errBusy
			}
			nb := make([]byte, len(b), int64(cap(b))+more)
			copy(nb, b)
			b = nb
		}
		m, err := r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err == io.EOF {
			break
		}
		if err != nil {
			h.release()
			return nil, hold{}, err
		}
	}
	if int64(len(b)) > max {
		h.release()
		return nil, hold{}, errTooLarge
	}
	return b, h, nil
}

// Handing memory back: Go's runtime returns a freed heap to the OS only minutes after a burst
// (a flood of forged 60 MB bodies left the process at 2.3 GB RSS for about four minutes), so
// once refused bodies add up to freeAfter and no unauthenticated body is held any more, the
// gate hands the memory back at once, at most once per freeInterval.
const (
	freeAfter    = 64 << 20
	freeInterval = time.Second
)

// refused notes that a body of n bytes was read and refused.
func (g *bodyGate) refused(n int) {
	g.dropped.Add(int64(n))
}

// settle hands memory back to the OS if refused bodies warrant it. It runs a garbage collection
// in the caller's goroutine, so the Middleware calls it after a response is written.
func (g *bodyGate) settle() {
	if g.dropped.Load() < freeAfter {
		return // the common case, without taking the lock
	}
	g.mu.Lock()
	now := time.Now()
	run := g.used == 0 && now.Sub(g.lastFree) >= freeInterval
	if run {
		g.dropped.Store(0)
		g.lastFree = now
	}
	g.mu.Unlock()
	if run {
		debug.FreeOSMemory()
	}
}

// held reports the bytes held across the server, for tests.
func (g *bodyGate) held() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.used
}
