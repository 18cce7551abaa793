package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

const (
	cookieName = "flint_console"
	// sessionTTL is how long a sign-in lasts.
	sessionTTL = 12 * time.Hour
	// maxSessions bounds the sessions kept; past it the one closest to expiry is dropped.
	maxSessions = 1024
	// maxSignInBody bounds what is read of a request before its caller is known.
	maxSignInBody = 4 << 10
)

// session is one signed-in browser.
type session struct {
	keyID   string // the access key it signed in with: deleting the key ends the session
	csrf    string // sent back in X-Flint-Csrf on every state-changing request
	expires time.Time
}

// sessions are the console's signed-in browsers, in memory: a restart signs everyone out.
type sessions struct {
	mu sync.Mutex
	m  map[string]session
}

// randomToken is 256 random bits, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessions) create(keyID string, now time.Time) (id string, sess session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]session{}
	}
	for k, v := range s.m {
		if now.After(v.expires) {
			delete(s.m, k)
		}
	}
	if len(s.m) >= maxSessions {
		var first string
		for k, v := range s.m {
			if first == "" || v.expires.Before(s.m[first].expires) {
				first = k
			}
		}
		delete(s.m, first)
	}
	id = randomToken()
	sess = session{keyID: keyID, csrf: randomToken(), expires: now.Add(sessionTTL)}
	s.m[id] = sess
	return id, sess
}

func (s *sessions) get(id string, now time.Time) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[id]
	if ok && now.After(sess.expires) {
		delete(s.m, id)
		return session{}, false
	}
	return sess, ok
}

func (s *sessions) delete(id string) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

// sameOrigin reports whether a state-changing request comes from the console's own pages: its
// Origin (or, without one, its Referer) names the host it was sent to. Browsers always send
// Origin on a cross-site POST, so a form or fetch from another site fails here even before
// the session cookie (SameSite=Strict) or the CSRF token would stop it.
func sameOrigin(r *http.Request) bool {
	src := r.Header.Get("Origin")
	if src == "" {
		src = r.Header.Get("Referer")
	}
	if src == "" || src == "null" {
		return false
	}
	u, err := url.Parse(src)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// loopbackHost reports whether the request was addressed to a loopback name: in
// local-development mode the console answers only those, so a web page whose own host name
// is made to resolve to 127.0.0.1 (DNS rebinding) cannot read it as same-origin.
func loopbackHost(r *http.Request) bool {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func equalSecret(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
