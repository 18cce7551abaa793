package console

import (
	"strconv"
	"testing"
	"time"
)

// TestSignInLimiter: each client has signInBurst failures, one more per signInRefill; clients
// do not share a bucket, IPv6 clients are known by their /64; a flood of addresses keeps the map bounded and resets no one's count.
func TestSignInLimiter(t *testing.T) {
	var l signInLimiter
	now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	for i := range signInBurst {
		if ok, _ := l.take("192.0.2.1", now); !ok {
			t.Fatalf("attempt %d refused, want %d allowed", i+1, signInBurst)
		}
	}
	ok, wait := l.take("192.0.2.1", now)
	if ok || wait != signInRefill {
		t.Errorf("attempt %d: %v, wait %v; want refused, wait %v", signInBurst+1, ok, wait, signInRefill)
	}
	if ok, _ := l.take("192.0.2.2", now); !ok {
		t.Error("another address refused")
	}
	now = now.Add(signInRefill)
	if ok, _ := l.take("192.0.2.1", now); !ok {
		t.Error("refused after a refill period")
	}
	if ok, _ := l.take("192.0.2.1", now); ok {
		t.Error("two attempts allowed after one refill period")
	}

	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.1:5555", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:5555", "192.0.2.1"},
		{"[2001:db8:1:2:aaaa::1]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:bbbb::7]:443", "2001:db8:1:2::/64"},
		{"not an address", "not an address"},
	} {
		if got := clientKey(tc.addr); got != tc.want {
			t.Errorf("clientKey(%q) = %q, want %q", tc.addr, got, tc.want)
		}
	}

	// A flood of addresses: the map stays bounded, the exhausted client stays exhausted, and
	// addresses beyond the bound share one bucket.
	for i := range maxSignInClients + 500 {
		l.take("10.0."+strconv.Itoa(i/256)+"."+strconv.Itoa(i%256), now)
	}
	if n := len(l.buckets); n > maxSignInClients {
		t.Errorf("%d buckets after a flood, want at most %d", n, maxSignInClients)
	}
	if ok, _ := l.take("192.0.2.1", now); ok {
		t.Error("a flood of other addresses reset an exhausted client's count")
	}
	newcomers := 0
	for i := range 2 * signInBurst {
		if ok, _ := l.take("172.16.0."+strconv.Itoa(i), now); ok {
			newcomers++
		}
	}
	if newcomers > signInBurst {
		t.Errorf("%d newcomers allowed while the map is full, want at most %d (one shared bucket)", newcomers, signInBurst)
	}
	// Once the flood's buckets have refilled, they are forgotten and newcomers get their own.
	now = now.Add(signInBurst * signInRefill)
	if ok, _ := l.take("172.16.1.1", now); !ok {
		t.Error("a newcomer refused after the flood's buckets refilled")
	}
	if _, own := l.buckets["172.16.1.1"]; !own || len(l.buckets) > maxSignInClients {
		t.Errorf("after pruning: newcomer has its own bucket %v, %d buckets", own, len(l.buckets))
	}
}
