package sigv4

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
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

	// The SDK's unsigned-payload option (meant for S3) leaves an Invoke's body out of the
	// signature, so it could be swapped in transit. Lambda refuses it: it signs the payload.
	t.Run("UNSIGNED-PAYLOAD refused", func(t *testing.T) {
		before := s.snapshot().calls
		c := lambdaClient(srv.URL, srv.Client(), good.AccessKeyID, good.SecretAccessKey)
		_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(arn), Payload: []byte(`{"amount":1}`)},
			func(o *lambda.Options) {
				o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware, v4.AddContentSHA256HeaderMiddleware)
			})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != CodeInvalidSignature {
			t.Errorf("Invoke with an unsigned payload: %v, want %s", err, CodeInvalidSignature)
		}
		if n := s.snapshot().calls; n != before {
			t.Error("handler was called for an Invoke whose payload was not signed")
		}
	})

	// A presigned GetFunction as botocore's SigV4QueryAuth and the SDK's PresignHTTP make it
	// for a service other than S3: signed over the empty body's hash.
	t.Run("presigned GetFunction", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/2015-03-31/functions/"+url.PathEscape(arn)+"?Qualifier=%24LATEST&X-Amz-Expires=60", nil)
		if err != nil {
			t.Fatal(err)
		}
		u, _, err := v4.NewSigner().PresignHTTP(ctx, creds(good.AccessKeyID, good.SecretAccessKey), req, sha256Hex(nil), "lambda", testRegion, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Get(u)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("presigned GetFunction: %d %s %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), b)
		}
		if got := s.snapshot(); !got.idOK || got.id.AccessKeyID != good.AccessKeyID || got.path != "/2015-03-31/functions/"+arn {
			t.Errorf("handler saw %s as %+v", got.path, got.id)
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

// gatedBody is a request body that announces its first Read and then blocks until released,
// when it ends short of its declared length.
type gatedBody struct {
	started chan<- struct{}
	release <-chan struct{}
	once    sync.Once
}

func (b *gatedBody) Read(p []byte) (int, error) {
	b.once.Do(func() { b.started <- struct{}{} })
	<-b.release
	return 0, io.ErrUnexpectedEOF
}

func (b *gatedBody) Close() error { return nil }

// TestMiddlewareBoundsUnauthenticatedBodies: bodies whose signature can only be checked once
// they are read (no X-Amz-Content-Sha256, as the SDKs send Invoke) are read only as far as the
// server's bound allows (issue: 20 concurrent 60 MB requests with a bad signature took the
// server from 36 MB to 2.39 GB). With the defaults, 256 MiB across the server and 70 MiB per
// address, at most four 60 MB bodies are read at once from different addresses, and one from
// a single address; the rest wait, reading nothing, and are served in turn.
func TestMiddlewareBoundsUnauthenticatedBodies(t *testing.T) {
	const size = 60_000_000
	for _, tc := range []struct {
		name      string
		addresses int
		want      int // bodies read at once
	}{
		{"many addresses", 20, 4},
		{"one address", 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, clk := newTestVerifier(t, func(c *Config) { c.FailureLimit = -1 })
			var s seen
			h := v.Middleware(s.handler(t), MiddlewareOptions{})
			started := make(chan struct{}, 20)
			release := make(chan struct{})
			var wg sync.WaitGroup
			codes := make([]int, 20)
			for i := range 20 {
				req := httptest.NewRequest(http.MethodPost, invokeARNPath, nil)
				req.Body = &gatedBody{started: started, release: release}
				req.ContentLength = size
				req.RemoteAddr = "192.0.2." + strconv.Itoa(1+i%tc.addresses) + ":1234"
				sign(t, req, creds(testKeyID, "not the secret"), sha256Hex([]byte("anything")), "lambda", testRegion, clk.Now())
				wg.Go(func() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					codes[i] = rec.Code
				})
			}
			reading := 0
			deadline := time.After(20 * time.Second)
			for reading < tc.want {
				select {
				case <-started:
					reading++
				case <-deadline:
					t.Fatalf("%d bodies being read, want %d", reading, tc.want)
				}
			}
			// Give the others every chance to start too; none may.
			select {
			case <-started:
				t.Fatalf("more than %d 60 MB bodies read at once before their signatures were checked", tc.want)
			case <-time.After(300 * time.Millisecond):
			}
			close(release)
			wg.Wait()
			for i, c := range codes {
				if c != http.StatusBadRequest {
					t.Errorf("request %d: status %d, want 400 (its body ended short)", i, c)
				}
			}
			if got := s.snapshot().calls; got != 0 {
				t.Errorf("handler called %d times", got)
			}
		})
	}
}

// TestMiddlewareRefusesBodiesBeyondTheBound: a body that finds no room within MaxPendingWait
// gets 429 ThrottlingException, which the SDKs retry.
func TestMiddlewareRefusesBodiesBeyondTheBound(t *testing.T) {
	v, clk := newTestVerifier(t, func(c *Config) { c.FailureLimit = -1 })
	var s seen
	h := v.Middleware(s.handler(t), MiddlewareOptions{MaxBody: 100, MaxPendingBody: 100, MaxPendingBodyPerClient: 100, MaxPendingWait: 50 * time.Millisecond})
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	first := httptest.NewRequest(http.MethodPost, invokeARNPath, nil)
	first.Body, first.ContentLength = &gatedBody{started: started, release: release}, 100
	sign(t, first, creds(testKeyID, testSecret), sha256Hex(nil), "lambda", testRegion, clk.Now())
	done := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, first)
		done <- rec.Code
	}()
	<-started
	second := httptest.NewRequest(http.MethodPost, invokeARNPath, bytes.NewReader(invokeBody))
	second.RemoteAddr = "198.51.100.1:1"
	sign(t, second, creds(testKeyID, testSecret), sha256Hex(invokeBody), "lambda", testRegion, clk.Now())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, second)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("X-Amzn-ErrorType") != CodeThrottling || rec.Header().Get("Retry-After") != "1" {
		t.Errorf("no room: %d %s Retry-After %q, want 429 %s Retry-After 1", rec.Code, rec.Header().Get("X-Amzn-ErrorType"), rec.Header().Get("Retry-After"), CodeThrottling)
	}
	close(release)
	<-done
	second = httptest.NewRequest(http.MethodPost, invokeARNPath, bytes.NewReader(invokeBody))
	sign(t, second, creds(testKeyID, testSecret), sha256Hex(invokeBody), "lambda", testRegion, clk.Now())
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, second)
	if rec.Code != http.StatusOK {
		t.Errorf("once there is room: %d %s, want 200", rec.Code, rec.Body)
	}
}

// TestMiddlewareChecksDeclaredHashBeforeBody: with X-Amz-Content-Sha256 declared, a bad
// signature is refused without reading the body; a good one over a body swapped in transit is
// refused (as AWS, hashing the body, finds the signature wrong) and the handler never sees it.
func TestMiddlewareChecksDeclaredHashBeforeBody(t *testing.T) {
	v, clk := newTestVerifier(t, func(c *Config) { c.FailureLimit = -1 })
	var s seen
	h := v.Middleware(s.handler(t), MiddlewareOptions{})
	declared := func(secret string, body []byte) (*http.Request, *readSpy) {
		spy := &readSpy{r: bytes.NewReader(body)}
		req := httptest.NewRequest(http.MethodPost, invokeARNPath, spy)
		req.ContentLength = int64(len(body))
		req.Header.Set("X-Amz-Content-Sha256", sha256Hex(invokeBody))
		sign(t, req, creds(testKeyID, secret), sha256Hex(invokeBody), "lambda", testRegion, clk.Now())
		return req, spy
	}
	req, spy := declared("wrong", invokeBody)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || rec.Header().Get("X-Amzn-ErrorType") != CodeInvalidSignature {
		t.Errorf("bad signature: %d %s, want 403 %s", rec.Code, rec.Header().Get("X-Amzn-ErrorType"), CodeInvalidSignature)
	}
	if spy.read {
		t.Error("the body of a request whose signature failed on its headers was read")
	}

	swapped := []byte(`{"hello":"mallory","n":[1,2,3]}`)
	req, _ = declared(testSecret, swapped)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || rec.Header().Get("X-Amzn-ErrorType") != CodeInvalidSignature {
		t.Errorf("swapped body: %d %s, want 403 %s", rec.Code, rec.Header().Get("X-Amzn-ErrorType"), CodeInvalidSignature)
	}
	if s.snapshot().calls != 0 {
		t.Error("the handler saw a body that was not the one signed")
	}

	req, _ = declared(testSecret, invokeBody)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if got := s.snapshot(); rec.Code != http.StatusOK || !bytes.Equal(got.body, invokeBody) {
		t.Errorf("declared and matching: %d, handler saw %q", rec.Code, got.body)
	}
}

// TestMiddlewareServesValidSignatureFromFailingAddress drives the Middleware over the network
// with the real Lambda client: after more bad signatures from 127.0.0.1 than the failure limit
// allows, the address's further failures are throttled, and a correctly signed ListFunctions
// (checked from its headers) and Invoke (checked once its body is hashed) from 127.0.0.1 are
// served (issue: 25 bad signatures locked the address out for 10 s, valid signatures included).
func TestMiddlewareServesValidSignatureFromFailingAddress(t *testing.T) {
	v, err := NewVerifier(Config{Keys: staticKeys{testKeyID: testSecret}, Region: testRegion})
	if err != nil {
		t.Fatal(err)
	}
	var s seen
	srv := httptest.NewServer(v.Middleware(s.handler(t), MiddlewareOptions{}))
	defer srv.Close()
	ctx := context.Background()
	bad := lambdaClient(srv.URL, srv.Client(), testKeyID, "not the secret")
	good := lambdaClient(srv.URL, srv.Client(), testKeyID, testSecret)
	codes := map[string]int{}
	for range DefaultFailureLimit + 5 {
		_, err := bad.ListFunctions(ctx, &lambda.ListFunctionsInput{})
		var ae smithy.APIError
		if !errors.As(err, &ae) {
			t.Fatalf("bad signature: %v", err)
		}
		codes[ae.ErrorCode()]++
	}
	if codes[CodeInvalidSignature] != DefaultFailureLimit || codes[CodeThrottling] != 5 {
		t.Errorf("bad signatures got %v, want %d %s then 5 %s", codes, DefaultFailureLimit, CodeInvalidSignature, CodeThrottling)
	}
	if _, err := good.ListFunctions(ctx, &lambda.ListFunctionsInput{}); err != nil {
		t.Errorf("correctly signed ListFunctions from the same address: %v", err)
	}
	payload := []byte(`{"from":"the same address"}`)
	out, err := good.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("f"), Payload: payload})
	if err != nil || !bytes.Equal(out.Payload, payload) {
		t.Errorf("correctly signed Invoke from the same address: %v", err)
	}
}
