package sigv4

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	l := newLimiter[netip.Addr](3, 10*time.Second, 100)
	a := netip.MustParseAddr("192.0.2.1")
	b := netip.MustParseAddr("192.0.2.2")
	now := t0
	for i := range 3 {
		if _, blocked := l.blocked(a, now); blocked {
			t.Fatalf("blocked after %d failures", i)
		}
		l.fail(a, now)
		now = now.Add(time.Second)
	}
	wait, blocked := l.blocked(a, now)
	if !blocked || wait != 7*time.Second {
		t.Fatalf("after 3 failures in 3s: blocked=%v wait=%v, want true 7s", blocked, wait)
	}
	if _, blocked := l.blocked(b, now); blocked {
		t.Error("another address is blocked")
	}
	now = t0.Add(10 * time.Second)
	if _, blocked := l.blocked(a, now); blocked {
		t.Error("still blocked when the window ended")
	}
	if n := l.tracked(); n != 0 {
		t.Errorf("%d entries after every window ended, want 0", n)
	}
	// A fresh window starts counting from one.
	l.fail(a, now)
	if _, blocked := l.blocked(a, now); blocked {
		t.Error("blocked after one failure in a new window")
	}
}

func TestLimiterMemoryIsBounded(t *testing.T) {
	const max = 50
	l := newLimiter[netip.Addr](2, time.Minute, max)
	now := t0
	for i := range 5000 {
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.fail(addr, now)
		l.fail(addr, now)
		now = now.Add(time.Millisecond)
		if n := l.tracked(); n > max {
			t.Fatalf("tracking %d addresses, bound is %d", n, max)
		}
	}
	if len(l.queue)-l.head > max {
		t.Errorf("queue holds %d live entries, bound is %d", len(l.queue)-l.head, max)
	}
	if cap(l.queue) > 4*max+128 {
		t.Errorf("queue capacity grew to %d", cap(l.queue))
	}
	// The most recent address is the one still remembered.
	last := netip.AddrFrom4([4]byte{10, 0, byte(4999 >> 8), byte(4999 & 0xff)})
	if _, blocked := l.blocked(last, now); !blocked {
		t.Error("the newest failing address was forgotten")
	}
	// Everything expires.
	l.blocked(last, now.Add(time.Minute))
	if n := l.tracked(); n != 0 {
		t.Errorf("%d entries after every window ended, want 0", n)
	}
}

func TestClientAddr(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:5000":                "192.0.2.1",
		"[::ffff:192.0.2.1]:80":         "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:443":    "2001:db8:1:2::",
		"[2001:db8:1:2:ffff::1]:1":      "2001:db8:1:2::",
		"[fe80::1%eth0]:22":             "fe80::",
		"198.51.100.9":                  "198.51.100.9",
		"not an address":                "invalid IP",
		"@":                             "invalid IP",
		"[2001:db8:1:3:3:4:5:6]:443":    "2001:db8:1:3::",
		"[2001:db8:aaaa:bbbb::1]:65535": "2001:db8:aaaa:bbbb::",
	} {
		if got := clientAddr(in).String(); got != want {
			t.Errorf("clientAddr(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestVerifierCountsFailuresPerAddress: failures of every kind count, the IPv6 /64 is one
// client, a failure beyond the limit is answered with the throttle, and a correctly signed
// request from the same address is still served.
func TestVerifierCountsFailuresPerAddress(t *testing.T) {
	v, clk := newTestVerifier(t, func(c *Config) { c.FailureLimit = 2 })
	unsigned := func(remote string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/2015-03-31/functions/", nil)
		r.RemoteAddr = remote
		return r
	}
	code := func(err error) string {
		var e *Error
		if errors.As(err, &e) {
			return e.Code
		}
		return ""
	}
	if _, err := v.Verify(unsigned("[2001:db8::1]:1000"), nil); code(err) != CodeMissingAuthenticationToken {
		t.Fatalf("first failure: %v", err)
	}
	if _, err := v.Verify(unsigned("[2001:db8::2]:1000"), nil); code(err) != CodeMissingAuthenticationToken {
		t.Fatalf("second failure: %v", err)
	}
	_, err := v.Verify(unsigned("[2001:db8::3]:2000"), nil)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeThrottling || e.Status != http.StatusTooManyRequests || e.Message != "Rate exceeded" || e.RetryAfter != 10 {
		t.Fatalf("third failure from the same /64: %+v, want ThrottlingException 429 Rate exceeded, Retry-After 10", e)
	}
	good := httptest.NewRequest(http.MethodGet, "/2015-03-31/functions/", nil)
	good.RemoteAddr = "[2001:db8::4]:3000"
	sign(t, good, creds(testKeyID, testSecret), sha256Hex(nil), "lambda", testRegion, clk.Now())
	if _, err := v.Verify(good, nil); err != nil {
		t.Errorf("correctly signed request from the /64 over its limit: %v, want it served", err)
	}
	if _, err := v.Verify(unsigned("[2001:db8:0:1::1]:1000"), nil); code(err) != CodeMissingAuthenticationToken {
		t.Errorf("another /64: %v, want its own error", err)
	}
	clk.Add(10 * time.Second)
	if _, err := v.Verify(unsigned("[2001:db8::3]:2000"), nil); code(err) != CodeMissingAuthenticationToken {
		t.Errorf("after the window: %v, want the request's own error again", err)
	}
}

// TestVerifierCountsFailuresPerKey: bad signatures with one of our keys, from many addresses,
// put the key over its limit: its next failure is throttled wherever it comes from, while a
// correct signature with the key is served. Unknown keys are not tracked (anyone can make up
// key IDs; their failures count against their addresses).
func TestVerifierCountsFailuresPerKey(t *testing.T) {
	v, clk := newTestVerifier(t, func(c *Config) { c.FailureLimit = 3 })
	req := func(remote, id, secret string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/2015-03-31/functions/", nil)
		r.RemoteAddr = remote
		sign(t, r, creds(id, secret), sha256Hex(nil), "lambda", testRegion, clk.Now())
		return r
	}
	code := func(err error) string {
		var e *Error
		if errors.As(err, &e) {
			return e.Code
		}
		return ""
	}
	for i := range 3 {
		if _, err := v.Verify(req(fmt.Sprintf("192.0.2.%d:1", i+1), testKeyID, "wrong"), nil); code(err) != CodeInvalidSignature {
			t.Fatalf("failure %d: %v, want %s", i, err, CodeInvalidSignature)
		}
	}
	if _, err := v.Verify(req("198.51.100.1:1", testKeyID, "wrong"), nil); code(err) != CodeThrottling {
		t.Errorf("fourth bad signature with the key, from a fresh address: %v, want %s", err, CodeThrottling)
	}
	if _, err := v.Verify(req("198.51.100.2:1", testKeyID, testSecret), nil); err != nil {
		t.Errorf("correct signature with the key: %v, want it served", err)
	}
	for i := range 5 {
		if _, err := v.Verify(req(fmt.Sprintf("203.0.113.%d:1", i+1), fmt.Sprintf("AKIAUNKNOWN%09d", i%2), "x"), nil); code(err) != CodeUnrecognizedClient {
			t.Errorf("unknown key %d: %v, want %s", i, err, CodeUnrecognizedClient)
		}
	}
	if n := v.keyFails.tracked(); n != 1 {
		t.Errorf("%d keys tracked, want 1 (ours)", n)
	}
}

func TestFailureLimitDisabled(t *testing.T) {
	v, _ := newTestVerifier(t, func(c *Config) { c.FailureLimit = -1 })
	for range 100 {
		_, err := v.Verify(httptest.NewRequest(http.MethodGet, "/", nil), nil)
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeMissingAuthenticationToken {
			t.Fatalf("Verify: %v, want MissingAuthenticationTokenException every time", err)
		}
	}
}
