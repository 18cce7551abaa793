package sigv4

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// limiter counts failed authentications per client address in fixed windows. A client that
// fails limit times within a window is refused until that window ends. It prunes lazily, on
// the calls it already receives, and runs no goroutine.
//
// Memory is bounded by max entries. Entries are also kept in a queue in the order their windows
// started, so expired entries are dropped from the front in time proportional to their number,
// and when the table is full the oldest window is the one forgotten, in O(1) amortised.
type limiter struct {
	limit  int
	window time.Duration
	max    int

	size atomic.Int64 // len(clients), read without the lock on the hot path

	mu      sync.Mutex
	clients map[netip.Addr]failures
	queue   []queued // one per entry in clients, in the order their windows started
	head    int      // queue[head:] is live
}

type failures struct {
	start time.Time
	count int
}

type queued struct {
	addr  netip.Addr
	start time.Time
}

func newLimiter(limit int, window time.Duration, max int) *limiter {
	return &limiter{limit: limit, window: window, max: max, clients: make(map[netip.Addr]failures)}
}

// blocked reports whether c has used up its failures for the current window, and how long
// until the window ends.
func (l *limiter) blocked(c netip.Addr, now time.Time) (time.Duration, bool) {
	if l.size.Load() == 0 {
		return 0, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prune(now)
	f, ok := l.clients[c]
	if !ok || f.count < l.limit {
		return 0, false
	}
	return f.start.Add(l.window).Sub(now), true
}

// fail records a failed authentication from c.
func (l *limiter) fail(c netip.Addr, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prune(now)
	if f, ok := l.clients[c]; ok {
		// prune dropped every entry whose window ended, so this one is current.
		f.count++
		l.clients[c] = f
		return
	}
	for len(l.clients) >= l.max && l.popOldest() {
	}
	l.clients[c] = failures{start: now, count: 1}
	l.queue = append(l.queue, queued{addr: c, start: now})
	l.size.Store(int64(len(l.clients)))
}

// prune drops the entries whose window has ended. Windows start in queue order, so it stops at
// the first entry still running.
func (l *limiter) prune(now time.Time) {
	for l.head < len(l.queue) {
		q := l.queue[l.head]
		if now.Sub(q.start) < l.window {
			break
		}
		l.dropHead()
	}
	l.size.Store(int64(len(l.clients)))
}

// popOldest forgets the client whose window started first; false when there is none.
func (l *limiter) popOldest() bool {
	if l.head == len(l.queue) {
		return false
	}
	l.dropHead()
	return true
}

func (l *limiter) dropHead() {
	q := l.queue[l.head]
	if f, ok := l.clients[q.addr]; ok && f.start.Equal(q.start) {
		delete(l.clients, q.addr)
	}
	l.queue[l.head] = queued{}
	l.head++
	// Reclaim the consumed front once it is most of the slice.
	if l.head > 64 && l.head*2 > len(l.queue) {
		n := copy(l.queue, l.queue[l.head:])
		clear(l.queue[n:])
		l.queue = l.queue[:n]
		l.head = 0
	}
}

func (l *limiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}
