package console_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-run/flint/internal/sigv4"
)

// TestSignInRateLimit: failed sign-ins from one address are cut off with 429 and a clear
// message; another address is not affected, and the right secret is always accepted.
func TestSignInRateLimit(t *testing.T) {
	var creds sigv4.Credentials
	s, err := start(func(dir string) error {
		keys, err := sigv4.Load(filepath.Join(dir, "access-keys.json"))
		if err != nil {
			return err
		}
		creds, err = keys.Create("rate limit test")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	form := func(secret string) *strings.Reader {
		return strings.NewReader(url.Values{"access_key_id": {creds.AccessKeyID}, "secret_access_key": {secret}}.Encode())
	}
	formHdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	b := newBrowserish(t, s)
	limited := 0
	for i := range 50 {
		resp, body := b.do(t, http.MethodPost, "/console/signin", form("wrong"), formHdr)
		if resp.StatusCode == http.StatusUnauthorized {
			continue
		}
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "Too many failed sign-ins from your address. Try again in ") ||
			resp.Header.Get("Retry-After") == "" {
			t.Fatalf("attempt %d: %d (Retry-After %q) %.300s; want 401 or 429 with the reason", i+1, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		limited = i + 1
		break
	}
	if limited == 0 || limited > 20 {
		t.Fatalf("first 429 at attempt %d: want failed sign-ins limited within 20 attempts", limited)
	}
	if resp, body := b.do(t, http.MethodPost, "/console/signin", strings.NewReader("access_key_id=%zz"), formHdr); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("an unreadable form from a limited address: %d %.200s, want 429", resp.StatusCode, body)
	}

	// Another client address (127.0.0.2 is loopback too) is not limited by the first one's
	// failures.
	other := newBrowserish(t, s)
	other.c.Transport = &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		return d.DialContext(ctx, network, addr)
	}}
	if resp, body := other.do(t, http.MethodPost, "/console/signin", form("wrong"), formHdr); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a failed sign-in from another address: %d %.200s; want 401", resp.StatusCode, body)
	}
	// Only failures are limited: the right secret signs in even from the limited address, so
	// no one sharing a client's proxy or NAT is locked out by its failures (as with the API).
	if resp, body := b.do(t, http.MethodPost, "/console/signin", form(creds.SecretAccessKey), formHdr); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the right secret from a limited address: %d %.200s; want 303", resp.StatusCode, body)
	}
}
