package console

import (
	"net/netip"
	"sync"
	"time"
)

// Failed sign-ins are limited per client address (Console.limited): each address has a token
// bucket of signInBurst failures, refilled one per signInRefill; each failure takes a token, and
// a failure from an address without one is answered 429.
const (
	signInBurst  = 10
	signInRefill = 10 * time.Second
	// maxSignInClients bounds the addresses remembered. Past it, addresses whose bucket has
	// refilled (nothing to remember) are forgotten; if none has, new addresses share one bucket,
	// so a flood of addresses neither grows memory nor resets anyone's count, and the addresses
	// already remembered keep their own.
	maxSignInClients = 4096
	// signInPruneEvery bounds how often a full map is scanned for refilled buckets.
	signInPruneEvery = time.Second
)

type tokenBucket struct {
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

// refill brings b up to date at now.
func (b *tokenBucket) refill(now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(signInBurst, b.tokens+float64(d)/float64(signInRefill))
		b.at = now
	}
}

// signInLimiter holds the buckets, by client (see clientKey).
type signInLimiter struct {
	mu       sync.Mutex
	buckets  map[string]*tokenBucket
	overflow tokenBucket
	pruned   time.Time
}

// clientKey is what a client is known by: its IP address, and for IPv6 its /64, which one
// client usually holds whole.
func clientKey(remoteAddr string) string {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.String()
		}
	}
	return a.String()
}

// take takes a sign-in attempt from client's tokenBucket; when it has none, wait is how long until
// it has one.
func (l *signInLimiter) take(client string, now time.Time) (ok bool, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucket(client, now)
	b.refill(now)
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) * float64(signInRefill))
	}
	b.tokens--
	return true, 0
}

func (l *signInLimiter) bucket(client string, now time.Time) *tokenBucket {
	if b, ok := l.buckets[client]; ok {
		return b
	}
	if l.buckets == nil {
		l.buckets = map[string]*tokenBucket{}
		l.overflow = tokenBucket{tokens: signInBurst, at: now}
	}
	if len(l.buckets) >= maxSignInClients && now.Sub(l.pruned) >= signInPruneEvery {
		l.pruned = now
		for k, b := range l.buckets {
			if b.refill(now); b.tokens >= signInBurst {
				delete(l.buckets, k)
			}
		}
	}
	if len(l.buckets) >= maxSignInClients {
		return &l.overflow
	}
	b := &tokenBucket{tokens: signInBurst, at: now}
	l.buckets[client] = b
	return b
}
