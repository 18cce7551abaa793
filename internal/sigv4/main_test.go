package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testKeyID  = "AKIAIOSFODNN7EXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	testRegion = "us-east-1"
)

// t0 is the fixed "now" of the verification tests.
var t0 = time.Date(2026, 11, 27, 10, 30, 0, 0, time.UTC)

// staticKeys is a KeyLookup over a map, for tests that are not about the store.
type staticKeys map[string]string

func (s staticKeys) Lookup(id string) (string, bool) { v, ok := s[id]; return v, ok }

// clock is an adjustable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestVerifier(t testing.TB, mutate ...func(*Config)) (*Verifier, *clock) {
	t.Helper()
	clk := &clock{now: t0}
	cfg := Config{Keys: staticKeys{testKeyID: testSecret}, Region: testRegion, Now: clk.Now}
	for _, m := range mutate {
		m(&cfg)
	}
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v, clk
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func creds(id, secret string) aws.Credentials {
	return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}
}

// wire runs a real HTTP server whose handler reads the body and calls Verify, so requests are
// verified as they arrive off the network (RequestURI, Host, Content-Length and all) rather
// than as a test constructs them.
type wire struct {
	srv *httptest.Server
	mu  sync.Mutex
	id  Identity
	err error
}

func newWire(t *testing.T, v *Verifier) *wire {
	t.Helper()
	w := &wire{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read body: %v", err)
		}
		id, verr := v.Verify(r, body)
		w.mu.Lock()
		w.id, w.err = id, verr
		w.mu.Unlock()
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// do sends req and returns what Verify said of it.
func (w *wire) do(t *testing.T, req *http.Request) (Identity, error) {
	t.Helper()
	resp, err := w.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.id, w.err
}

// request builds a client request to path (already escaped, as a client sends it) on the wire
// server, with body.
func (w *wire) request(t *testing.T, method, path string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, w.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	if body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	return req
}

// sign signs req with the AWS SDK's signer, as the SDK clients do.
func sign(t *testing.T, req *http.Request, c aws.Credentials, payloadHash, service, region string, at time.Time) {
	t.Helper()
	if err := v4.NewSigner().SignHTTP(context.Background(), c, req, payloadHash, service, region, at); err != nil {
		t.Fatalf("SignHTTP: %v", err)
	}
}
