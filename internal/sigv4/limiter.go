package sigv4

import (
	"sync"
	"sync/atomic"
	"time"
)

// limiter counts failed authentications per client address or per access key in fixed
// windows. A client that fails limit times within a window is over its limit until that
// window ends; what that costs the client is the Verifier's business (never a valid request).
// It prunes lazily, on the calls it already receives, and runs no goroutine.
//
// Memory is bounded by max entries. Entries are also kept in a queue in the order their windows
// started, so expired entries are dropped from the front in time proportional to their number,
// and when the table is full the oldest window is the one forgotten, in O(1) amortised.
type limiter[K comparable] struct {
	limit  int
	window time.Duration
	max    int

	size atomic.Int64 // len(clients), read without the lock on the hot path

	mu      sync.Mutex
	clients map[K]failures
	queue   []queued[K] // one per entry in clients, in the order their windows started
	head    int         // queue[head:] is live
}

type failures struct {
	start time.Time
	count int
}

type queued[K comparable] struct {
	addr  K
	start time.Time
}

func newLimiter[K comparable](limit int, window time.Duration, max int) *limiter[K] {
	return &limiter[K]{limit: limit, window: window, max: max, clients: make(map[K]failures)}
}

// blocked reports whether c has used up its failures for the current window, and how long
// until the window ends.
func (l *limiter[K]) blocked(c K, now time.Time) (time.Duration, bool) {
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

// fail records a failed authentication from c and reports whether this failure is beyond the
// limit (and how long until the window ends), and whether it is the first that is.
func (l *limiter[K]) fail(c K, now time.Time) (wait time.Duration, over, reached bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prune(now)
	f, ok := l.clients[c]
	if ok {
		// prune dropped every entry whose window ended, so this one is current.
		f.count++
	} else {
		for len(l.clients) >= l.max && l.popOldest() {
		}
		f = failures{start: now, count: 1}
		l.queue = append(l.queue, queued[K]{addr: c, start: now})
	}
	l.clients[c] = f
	l.size.Store(int64(len(l.clients)))
	return f.start.Add(l.window).Sub(now), f.count > l.limit, f.count == l.limit+1
}

// prune drops the entries whose window has ended. Windows start in queue order, so it stops at
// the first entry still running.
func (l *limiter[K]) prune(now time.Time) {
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
func (l *limiter[K]) popOldest() bool {
	if l.head == len(l.queue) {
		return false
	}
	l.dropHead()
	return true
}

func (l *limiter[K]) dropHead() {
	q := l.queue[l.head]
	if f, ok := l.clients[q.addr]; ok && f.start.Equal(q.start) {
		delete(l.clients, q.addr)
	}
	l.queue[l.head] = queued[K]{}
	l.head++
	// Reclaim the consumed front once it is most of the slice.
	if l.head > 64 && l.head*2 > len(l.queue) {
		n := copy(l.queue, l.queue[l.head:])
		clear(l.queue[n:])
		l.queue = l.queue[:n]
		l.head = 0
	}
}

func (l *limiter[K]) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}
