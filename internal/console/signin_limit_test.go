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
// message (the right secret too, while it lasts), and another address is not affected.
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
	if resp, _ := b.do(t, http.MethodPost, "/console/signin", form(creds.SecretAccessKey), formHdr); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("the right secret from a limited address: %d, want 429 (else the limit could be probed around)", resp.StatusCode)
	}

	// Another client address (127.0.0.2 is loopback too) signs in as usual.
	other := newBrowserish(t, s)
	other.c.Transport = &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		return d.DialContext(ctx, network, addr)
	}}
	if resp, body := other.do(t, http.MethodPost, "/console/signin", form(creds.SecretAccessKey), formHdr); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("sign-in from another address: %d %.200s; want 303", resp.StatusCode, body)
	}
}
