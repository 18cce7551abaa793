package sigv4

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// invokeRequest is a warm Lambda Invoke as aws-sdk-go-v2 sends it (the same headers, the same
// signed set), as the server receives it.
func invokeRequest(b *testing.B, body []byte) *http.Request {
	b.Helper()
	req := httptest.NewRequest(http.MethodPost, "/2015-03-31/functions/echo/invocations", bytes.NewReader(body))
	req.Host = "localhost:9000"
	req.RemoteAddr = "127.0.0.1:53211"
	req.Header.Set("Amz-Sdk-Request", "attempt=1; max=3")
	req.Header.Set("Amz-Sdk-Invocation-Id", "dc9b1a46-f2b6-4bf4-99b5-0fd5d590e4bb")
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("User-Agent", "aws-sdk-go-v2/1.48.0 ua/2.1 os/linux lang/go#1.26.8 md/GOOS#linux md/GOARCH#amd64 api/lambda#1.114.4 m/e")
	req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	if err := v4.NewSigner().SignHTTP(context.Background(), creds(testKeyID, testSecret), req, sha256Hex(body), "lambda", testRegion, t0); err != nil {
		b.Fatal(err)
	}
	return req
}

// BenchmarkVerify is the per-request cost on the warm Invoke path: POST
// /2015-03-31/functions/echo/invocations with a 100-byte body, signing key already cached.
func BenchmarkVerify(b *testing.B) {
	v, _ := newTestVerifier(b)
	body := bytes.Repeat([]byte("x"), 100)
	req := invokeRequest(b, body)
	if _, err := v.Verify(req, body); err != nil {
		b.Fatalf("Verify: %v", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(req, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyUncachedKey is the same request when the signing key must be derived each
// time, for contrast: what the key cache saves.
func BenchmarkVerifyUncachedKey(b *testing.B) {
	v, _ := newTestVerifier(b)
	body := bytes.Repeat([]byte("x"), 100)
	req := invokeRequest(b, body)
	b.ReportAllocs()
	for b.Loop() {
		v.cache.mu.Lock()
		v.cache.keys = nil
		v.cache.mu.Unlock()
		if _, err := v.Verify(req, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMiddleware is the whole wrapper on the same request: body read, verification, body
// restored, identity in the context.
func BenchmarkMiddleware(b *testing.B) {
	v, _ := newTestVerifier(b)
	body := bytes.Repeat([]byte("x"), 100)
	req := invokeRequest(b, body)
	h := v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), MiddlewareOptions{})
	w := httptest.NewRecorder()
	rd := bytes.NewReader(body)
	rc := &bodyReader{Reader: rd}
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		req.Body = rc
		req.ContentLength = int64(len(body))
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
