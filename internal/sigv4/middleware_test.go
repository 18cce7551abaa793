package sigv4

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go"
)

// seen is what the wrapped handler observed of a request that reached it.
type seen struct {
	mu            sync.Mutex
	calls         int
	body          []byte
	contentLength int64
	id            Identity
	idOK          bool
	path          string
	query         string
}

func (s *seen) handler(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("handler read body: %v", err)
		}
		id, ok := IdentityFrom(r.Context())
		s.mu.Lock()
		s.calls++
		s.body, s.contentLength, s.id, s.idOK = body, r.ContentLength, id, ok
		s.path, s.query = r.URL.Path, r.URL.RawQuery
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/invocations") {
			w.Header().Set("X-Amz-Executed-Version", "$LATEST")
			w.Write(body) // echo
			return
		}
		io.WriteString(w, `{"Functions":[]}`)
	})
}

func (s *seen) snapshot() seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return seen{calls: s.calls, body: s.body, contentLength: s.contentLength, id: s.id, idOK: s.idOK, path: s.path, query: s.query}
}

func lambdaClient(url string, c *http.Client, id, secret string) *lambda.Client {
	return lambda.New(lambda.Options{
		Region:           testRegion,
		BaseEndpoint:     aws.String(url),
		Credentials:      credentials.NewStaticCredentialsProvider(id, secret, ""),
		HTTPClient:       c,
		RetryMaxAttempts: 1,
	})
}

// TestMiddlewareWithLambdaClient drives the Middleware with aws-sdk-go-v2's real Lambda client:
// what the SDK signs must verify, and what the Middleware refuses must surface in the SDK as
// the AWS error code a caller would branch on.
func TestMiddlewareWithLambdaClient(t *testing.T) {
	keys, err := Load(filepath.Join(t.TempDir(), "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	good, err := keys.Create("sdk test")
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(Config{Keys: keys, Region: testRegion, Service: func(*http.Request) string { return "lambda" }})
	if err != nil {
		t.Fatal(err)
	}
	var s seen
	srv := httptest.NewServer(v.Middleware(s.handler(t), MiddlewareOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	defer srv.Close()
	ctx := context.Background()
	arn := "arn:aws:lambda:us-east-1:123456789012:function:f"

	t.Run("right key passes through", func(t *testing.T) {
		c := lambdaClient(srv.URL, srv.Client(), good.AccessKeyID, good.SecretAccessKey)
		payload := bytes.Repeat([]byte(`{"k":"v"}`), 20)
		out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(arn), Payload: payload, Qualifier: aws.String("$LATEST")})
		if err != nil {
			t.Fatalf("Invoke: %v", err)
		}
		if !bytes.Equal(out.Payload, payload) {
			t.Errorf("echoed payload = %q, want %q", out.Payload, payload)
		}
		got := s.snapshot()
		if !bytes.Equal(got.body, payload) || got.contentLength != int64(len(payload)) {
			t.Errorf("handler saw body %q (ContentLength %d), want the %d bytes sent", got.body, got.contentLength, len(payload))
		}
		if !got.idOK || got.id != (Identity{AccessKeyID: good.AccessKeyID, Region: testRegion, Service: "lambda"}) {
			t.Errorf("IdentityFrom = %+v, %v", got.id, got.idOK)
		}
		if want := "/2015-03-31/functions/" + arn + "/invocations"; got.path != want {
			t.Errorf("handler saw path %q, want %q", got.path, want)
		}

		// A GET with a query that needs escaping.
		if _, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{Marker: aws.String("a b/c+d=é&"), MaxItems: aws.Int32(7)}); err != nil {
			t.Fatalf("ListFunctions: %v", err)
		}
		if got := s.snapshot(); !strings.Contains(got.query, "MaxItems=7") {
			t.Errorf("handler saw query %q", got.query)
		}
	})

	badSecret := []byte(good.SecretAccessKey)
	badSecret[0] ^= 1 // one bit off
	for _, tc := range []struct {
		name, id, secret, code string
	}{
		{"bad secret", good.AccessKeyID, string(badSecret), CodeInvalidSignature},
		{"unknown key", "AKIAAAAAAAAAAAAAAAAA", good.SecretAccessKey, CodeUnrecognizedClient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.secret == good.SecretAccessKey && tc.id == good.AccessKeyID {
				t.Fatal("test case uses the right key")
			}
			before := s.snapshot().calls
			c := lambdaClient(srv.URL, srv.Client(), tc.id, tc.secret)
			_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(arn), Payload: []byte(`{}`)})
			var ae smithy.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("Invoke: %v, want an API error", err)
			}
			if ae.ErrorCode() != tc.code {
				t.Errorf("ErrorCode = %q (%v), want %q", ae.ErrorCode(), err, tc.code)
			}
			var re *awshttp.ResponseError
			if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusForbidden {
				t.Errorf("HTTP status: %v, want 403", err)
			}
			if n := s.snapshot().calls; n != before {
				t.Errorf("handler was called for a refused request")
			}
		})
	}
}

// readSpy is a request body that records whether anything read it.
type readSpy struct {
	r    io.Reader
	read bool
}

func (b *readSpy) Read(p []byte) (int, error) { b.read = true; return b.r.Read(p) }
func (b *readSpy) Close() error               { return nil }

func TestMiddlewareRefusesBeforeReadingBody(t *testing.T) {
	v, _ := newTestVerifier(t)
	var s seen
	h := v.Middleware(s.handler(t), MiddlewareOptions{})
	body := &readSpy{r: strings.NewReader("payload")}
	req := httptest.NewRequest(http.MethodPost, invokeARNPath, body)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAAAAAAAAAAAAAAAAA/20261127/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")
	req.Header.Set("X-Amz-Date", "20261127T103000Z")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || rec.Header().Get("X-Amzn-ErrorType") != CodeUnrecognizedClient {
		t.Errorf("got %d %q, want 403 %s", rec.Code, rec.Header().Get("X-Amzn-ErrorType"), CodeUnrecognizedClient)
	}
	if body.read {
		t.Error("the body of a request from an unknown key was read")
	}
	if s.snapshot().calls != 0 {
		t.Error("handler called")
	}
}

func TestMiddlewareErrorWireFormat(t *testing.T) {
	v, _ := newTestVerifier(t)
	h := v.Middleware(http.NotFoundHandler(), MiddlewareOptions{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/2015-03-31/functions/", nil))
	if rec.Code != http.StatusForbidden {
		t.Errorf("status %d, want 403", rec.Code)
	}
	if got := rec.Header().Get("X-Amzn-ErrorType"); got != CodeMissingAuthenticationToken {
		t.Errorf("X-Amzn-ErrorType = %q", got)
	}
	if got := rec.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if want := `{"Type":"User","Message":"Missing Authentication Token","message":"Missing Authentication Token"}`; rec.Body.String() != want {
		t.Errorf("body = %s, want %s", rec.Body, want)
	}
}

func TestMiddlewareBodyLimit(t *testing.T) {
	v, _ := newTestVerifier(t, func(c *Config) { c.Now = time.Now })
	var s seen
	srv := httptest.NewServer(v.Middleware(s.handler(t), MiddlewareOptions{MaxBody: 100}))
	defer srv.Close()
	for _, tc := range []struct {
		name    string
		size    int
		chunked bool
		status  int
	}{
		{"at the limit", 100, false, http.StatusOK},
		{"over the limit", 101, false, http.StatusRequestEntityTooLarge},
		{"chunked at the limit", 100, true, http.StatusOK},
		{"chunked over the limit", 101, true, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := bytes.Repeat([]byte("x"), tc.size)
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/2015-03-31/functions/f/invocations", bytes.NewReader(body))
			if tc.chunked {
				req.Body = io.NopCloser(bytes.NewReader(body)) // unknown length: sent chunked
				req.ContentLength = -1
			}
			sign(t, req, creds(testKeyID, testSecret), sha256Hex(body), "lambda", testRegion, time.Now())
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == http.StatusRequestEntityTooLarge {
				if got := resp.Header.Get("X-Amzn-ErrorType"); got != "RequestEntityTooLargeException" {
					t.Errorf("X-Amzn-ErrorType = %q", got)
				}
			} else if got := s.snapshot(); !bytes.Equal(got.body, body) || got.contentLength != int64(tc.size) {
				t.Errorf("handler saw %d bytes, ContentLength %d", len(got.body), got.contentLength)
			}
		})
	}
}

// TestMiddlewareThrottles: an address over its failure limit gets ThrottlingException for its
// further failures, and is still served when it signs correctly (issue: 25 bad signatures
// locked every client behind one proxy or NAT out, correctly signed ones included).
func TestMiddlewareThrottles(t *testing.T) {
	v, clk := newTestVerifier(t, func(c *Config) { c.FailureLimit = 3; c.FailureWindow = 10 * time.Second })
	var s seen
	h := v.Middleware(s.handler(t), MiddlewareOptions{})
	serve := func(req *http.Request) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	good := func() *http.Request {
		req := httptest.NewRequest(http.MethodPost, invokeARNPath, bytes.NewReader(invokeBody))
		req.Header.Set("Content-Length", strconv.Itoa(len(invokeBody)))
		sign(t, req, creds(testKeyID, testSecret), sha256Hex(invokeBody), "lambda", testRegion, clk.Now())
		return req
	}
	for i := range 3 {
		if rec := serve(httptest.NewRequest(http.MethodGet, "/2015-03-31/functions/", nil)); rec.Code != http.StatusForbidden {
			t.Fatalf("failure %d: status %d, want 403", i, rec.Code)
		}
	}
	clk.Add(4 * time.Second)
	if rec := serve(good()); rec.Code != http.StatusOK {
		t.Fatalf("correctly signed, after 3 failures from its address: %d %s %s, want 200", rec.Code, rec.Header().Get("X-Amzn-ErrorType"), rec.Body)
	}
	rec := serve(httptest.NewRequest(http.MethodGet, "/2015-03-31/functions/", nil))
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("X-Amzn-ErrorType") != CodeThrottling {
		t.Fatalf("a fourth failure: %d %s, want 429 %s", rec.Code, rec.Header().Get("X-Amzn-ErrorType"), CodeThrottling)
	}
	if got := rec.Header().Get("Retry-After"); got != "6" {
		t.Errorf("Retry-After = %q, want 6", got)
	}
	if !strings.Contains(rec.Body.String(), `"message":"Rate exceeded"`) {
		t.Errorf("body = %s", rec.Body)
	}
	// Another address's failure is its own.
	other := httptest.NewRequest(http.MethodGet, "/2015-03-31/functions/", nil)
	other.RemoteAddr = "198.51.100.7:4000"
	if rec := serve(other); rec.Code != http.StatusForbidden || rec.Header().Get("X-Amzn-ErrorType") != CodeMissingAuthenticationToken {
		t.Errorf("another client: %d %s, want 403 %s", rec.Code, rec.Header().Get("X-Amzn-ErrorType"), CodeMissingAuthenticationToken)
	}
	clk.Add(6 * time.Second)
	if rec := serve(httptest.NewRequest(http.MethodGet, "/2015-03-31/functions/", nil)); rec.Code != http.StatusForbidden {
		t.Errorf("a failure after the window: status %d, want 403", rec.Code)
	}
}

func TestIdentityContext(t *testing.T) {
	if _, ok := IdentityFrom(context.Background()); ok {
		t.Error("IdentityFrom an empty context reported an identity")
	}
	want := Identity{AccessKeyID: "local", Region: "us-east-1", Service: "lambda"}
	if got, ok := IdentityFrom(WithIdentity(context.Background(), want)); !ok || got != want {
		t.Errorf("IdentityFrom(WithIdentity) = %+v, %v", got, ok)
	}
}
