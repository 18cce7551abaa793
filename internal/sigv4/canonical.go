package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	algorithm  = "AWS4-HMAC-SHA256"
	timeFormat = "20060102T150405Z"
	terminator = "aws4_request"
)

// unreserved marks the bytes RFC 3986 leaves unescaped; SigV4 escapes every other byte as %XX
// with uppercase hex, in the path and in the query alike.
var unreserved = func() (t [256]bool) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['-'], t['.'], t['_'], t['~'] = true, true, true, true
	return t
}()

const upperHex = "0123456789ABCDEF"

// appendEscaped appends s escaped as SigV4 requires; keepSlash leaves '/' as is (the path).
func appendEscaped(b []byte, s string, keepSlash bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved[c] || (keepSlash && c == '/') {
			b = append(b, c)
			continue
		}
		b = append(b, '%', upperHex[c>>4], upperHex[c&15])
	}
	return b
}

// escapeQuery escapes one query name or value, allocating only when something needs escaping.
func escapeQuery(s string) string {
	for i := 0; i < len(s); i++ {
		if !unreserved[s[i]] {
			return string(appendEscaped(make([]byte, 0, len(s)+16), s, false))
		}
	}
	return s
}

// requestPath is the path exactly as the client sent it, still percent-encoded. The request
// line is the truth: r.URL.Path is decoded and may have been rewritten by a router.
func requestPath(r *http.Request) string {
	if u := r.RequestURI; u != "" && u[0] == '/' {
		if i := strings.IndexByte(u, '?'); i >= 0 {
			u = u[:i]
		}
		return u
	}
	if p := r.URL.EscapedPath(); p != "" {
		return p
	}
	return "/"
}

// appendCanonicalURI escapes the already-escaped wire path a second time. This is what the AWS
// SDKs do for every service but S3 (the Go SDK's DisableURIPathEscaping is false): the path
// segment "arn%3Aaws" is signed as "arn%253Aaws".
func appendCanonicalURI(b []byte, path string) []byte {
	return appendEscaped(b, path, true)
}

// appendCanonicalQuery appends the query as SigV4 canonicalises it: every name and value
// escaped, pairs sorted by escaped name then escaped value. The query is parsed as
// url.ParseQuery does (so as the SDK signer and Flint's handlers see it): '+' is a space, and
// pairs with a semicolon or a bad escape are dropped. A presigned request's own signature is
// not part of what it signs.
func appendCanonicalQuery(b []byte, q url.Values, presigned bool) []byte {
	if len(q) == 0 {
		return b
	}
	type pair struct{ k, v string }
	n := 0
	for _, vs := range q {
		n += len(vs)
	}
	pairs := make([]pair, 0, n)
	for k, vs := range q {
		if presigned && k == "X-Amz-Signature" {
			continue
		}
		ek := escapeQuery(k)
		for _, v := range vs {
			pairs = append(pairs, pair{ek, escapeQuery(v)})
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	for i, p := range pairs {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, p.k...)
		b = append(b, '=')
		b = append(b, p.v...)
	}
	return b
}

// headerValues returns the values of the header whose lowercase name is lower. The canonical
// form is built in a stack buffer so the lookup does not allocate; keys Go left uncanonicalised
// (they hold bytes outside the token set) are found by the fallback scan.
func headerValues(h http.Header, lower string) []string {
	var kb [64]byte
	if len(lower) <= len(kb) {
		k := kb[:len(lower)]
		upper := true
		for i := 0; i < len(lower); i++ {
			c := lower[i]
			if upper && 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			} else if !upper && 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			k[i] = c
			upper = c == '-'
		}
		if v, ok := h[string(k)]; ok {
			return v
		}
	}
	for k, v := range h {
		if strings.EqualFold(k, lower) {
			return v
		}
	}
	return nil
}

// appendHeaderValue appends a header value as SigV4 canonicalises it: surrounding whitespace
// trimmed and runs of spaces collapsed to one (the SDK's StripExcessSpaces then TrimSpace).
func appendHeaderValue(b []byte, v string) []byte {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "  ") {
		return append(b, v...)
	}
	space := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b = append(b, c)
	}
	return b
}

// appendCanonicalHeader appends "name:value\n" for one signed header. Host is the request's
// Host (Go moves it out of the header map); Content-Length falls back to r.ContentLength for a
// request whose header map no longer has it.
func appendCanonicalHeader(b []byte, r *http.Request, name string) []byte {
	b = append(b, name...)
	b = append(b, ':')
	if strings.EqualFold(name, "host") {
		b = appendHeaderValue(b, r.Host)
		return append(b, '\n')
	}
	vs := headerValues(r.Header, name)
	if vs == nil && strings.EqualFold(name, "content-length") && r.ContentLength > 0 {
		b = strconv.AppendInt(b, r.ContentLength, 10)
		return append(b, '\n')
	}
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendHeaderValue(b, v)
	}
	return append(b, '\n')
}

// bufPool holds the buffers canonical requests are built in; the only package-level mutable
// state besides what sync.Pool itself manages. Buffers that grew past maxPooledBuf (a request
// with a huge query) are dropped rather than kept.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledBuf = 64 << 10

// signingKey is a derived SigV4 signing key, held as the two padded HMAC blocks so that signing
// a string costs two SHA-256 sums and no allocation.
type signingKey struct {
	ipad, opad [sha256.BlockSize]byte
}

// deriveSigningKey is the SigV4 key derivation: HMAC chains over date, region, service and
// the terminator, starting from "AWS4"+secret.
func deriveSigningKey(secret, date, region, service string) *signingKey {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, terminator)
	var sk signingKey
	for i := range sk.ipad {
		var c byte
		if i < len(k) {
			c = k[i]
		}
		sk.ipad[i] = c ^ 0x36
		sk.opad[i] = c ^ 0x5c
	}
	return &sk
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// sign is HMAC-SHA256 (RFC 2104) under k: SHA256(opad || SHA256(ipad || msg)). The pads were
// computed once when the key was derived; TestSigningKeyMatchesCryptoHMAC holds this to
// crypto/hmac.
func (k *signingKey) sign(msg []byte) [sha256.Size]byte {
	var buf [sha256.BlockSize + 256]byte
	in := append(buf[:0], k.ipad[:]...)
	in = append(in, msg...)
	inner := sha256.Sum256(in)
	var out [sha256.BlockSize + sha256.Size]byte
	copy(out[:], k.opad[:])
	copy(out[sha256.BlockSize:], inner[:])
	return sha256.Sum256(out[:])
}

// keyCache holds derived signing keys. A key is a function of the secret and the credential
// scope, so it changes at most daily per key, region and service; deriving it costs four HMACs
// that the warm Invoke path should not pay. Entries are added only after a signature verified
// with them (forged scopes cannot fill the cache), entries for days before the newest day's
// predecessor are dropped, and the map is cleared if it ever reaches maxCachedKeys.
type keyCache struct {
	mu     sync.RWMutex
	newest string // newest scope date seen, YYYYMMDD
	keys   map[cacheKey]*signingKey
}

type cacheKey struct{ secret, date, region, service string }

const maxCachedKeys = 256

func (c *keyCache) get(k cacheKey) *signingKey {
	c.mu.RLock()
	sk := c.keys[k]
	c.mu.RUnlock()
	return sk
}

func (c *keyCache) put(k cacheKey, sk *signingKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys == nil || len(c.keys) >= maxCachedKeys {
		c.keys = make(map[cacheKey]*signingKey)
	}
	if k.date > c.newest {
		// Keep the previous day too: around midnight UTC, clients on either side of it are
		// within the skew window.
		prev := c.newest
		c.newest = k.date
		for old := range c.keys {
			if old.date < prev {
				delete(c.keys, old)
			}
		}
	}
	c.keys[k] = sk
}

func (c *keyCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.keys)
}

// parseAmzDate parses the ISO 8601 basic format SigV4 uses (20060102T150405Z), strictly: every
// field two or four digits and in range.
func parseAmzDate(s string) (time.Time, bool) {
	if len(s) != len(timeFormat) || s[8] != 'T' || s[15] != 'Z' {
		return time.Time{}, false
	}
	num := func(i, j int) (int, bool) {
		n := 0
		for ; i < j; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(4, 6)
	d, ok3 := num(6, 8)
	h, ok4 := num(9, 11)
	mi, ok5 := num(11, 13)
	sec, ok6 := num(13, 15)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC)
	// time.Date normalises out-of-range fields (Feb 30 becomes Mar 2); such a date is invalid.
	if t.Year() != y || int(t.Month()) != mo || t.Day() != d || t.Hour() != h || t.Minute() != mi || t.Second() != sec {
		return time.Time{}, false
	}
	return t, true
}

// decodeSignature decodes a 64-digit hex signature (either case).
func decodeSignature(s string) (sig [sha256.Size]byte, ok bool) {
	if len(s) != 2*sha256.Size {
		return sig, false
	}
	for i := range sig {
		hi, ok1 := fromHex(s[2*i])
		lo, ok2 := fromHex(s[2*i+1])
		if !ok1 || !ok2 {
			return sig, false
		}
		sig[i] = hi<<4 | lo
	}
	return sig, true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
