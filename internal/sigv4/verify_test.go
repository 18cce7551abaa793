package sigv4

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/flint-run/flint/internal/apierr"
)

// unsignedPayload is the payload hash S3 accepts in place of a body's; no API Flint serves does.
const unsignedPayload = "UNSIGNED-PAYLOAD"

const invokeARNPath = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af/invocations"

var invokeBody = []byte(`{"hello":"world","n":[1,2,3]}`)

// signedInvoke is an Invoke of a function named by ARN, the path percent-encoded as the Lambda
// client sends it, signed by the SDK signer at at.
func signedInvoke(t *testing.T, w *wire, c func() (string, string), at time.Time) *http.Request {
	t.Helper()
	req := w.request(t, http.MethodPost, invokeARNPath, invokeBody)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Amz-Invocation-Type", "RequestResponse")
	id, secret := c()
	sign(t, req, creds(id, secret), sha256Hex(invokeBody), "lambda", testRegion, at)
	return req
}

func goodKey() (string, string) { return testKeyID, testSecret }

// presigned returns a request for a URL presigned by the SDK signer over the empty body's hash,
// as botocore's SigV4QueryAuth presigns for every service but S3.
func presigned(t *testing.T, w *wire, method, path string, expires time.Duration, at time.Time) *http.Request {
	t.Helper()
	return presignedWith(t, w, method, path, expires, at, sha256Hex(nil))
}

// presignedWith is presigned with the payload hash given.
func presignedWith(t *testing.T, w *wire, method, path string, expires time.Duration, at time.Time, payloadHash string) *http.Request {
	t.Helper()
	req := w.request(t, method, path, nil)
	if expires > 0 {
		q := req.URL.Query()
		q.Set("X-Amz-Expires", strconv.Itoa(int(expires/time.Second)))
		req.URL.RawQuery = q.Encode()
	}
	signed, hdr, err := v4.NewSigner().PresignHTTP(context.Background(), creds(testKeyID, testSecret), req, payloadHash, "lambda", testRegion, at)
	if err != nil {
		t.Fatalf("PresignHTTP: %v", err)
	}
	out := w.request(t, method, "", nil)
	out.URL, err = url.Parse(signed)
	if err != nil {
		t.Fatalf("parse presigned URL: %v", err)
	}
	for k, vs := range hdr {
		if k != "Host" {
			out.Header[k] = vs
		}
	}
	return out
}

type wantErr struct {
	code   string
	status int
	msg    string // exact message; "" checks only code and status
}

func TestVerify(t *testing.T) {
	expiredMsg := "Signature expired: 20261127T101000Z is now earlier than 20261127T102500Z (20261127T103000Z - 5 min.)"
	futureMsg := "Signature not yet current: 20261127T105000Z is still later than 20261127T103500Z (20261127T103000Z + 5 min.)"
	cases := []struct {
		name    string
		cfg     func(*Config)
		build   func(t *testing.T, w *wire) *http.Request
		advance time.Duration // clock moved after signing
		want    *wantErr      // nil: success
	}{
		{
			name: "invoke by ARN, path escaped",
			build: func(t *testing.T, w *wire) *http.Request {
				return signedInvoke(t, w, goodKey, t0)
			},
		},
		{
			name: "query needing escaping",
			build: func(t *testing.T, w *wire) *http.Request {
				// '+' is a space, %2B a plus; names and values with reserved bytes, a
				// repeated name (sorted by value), unicode, and an empty value.
				req := w.request(t, http.MethodGet, "/2015-03-31/functions/?Marker=a+b%2Fc%2Bd%3De&MaxItems=5&FunctionVersion=ALL&x=%C3%A9&x=%24LATEST&empty=&%2A=~", nil)
				raw := req.URL.RawQuery
				sign(t, req, creds(testKeyID, testSecret), sha256Hex(nil), "lambda", testRegion, t0)
				// The signer rewrites the query into its canonical order; other clients send
				// their own. Send it unsorted, as written.
				req.URL.RawQuery = raw
				return req
			},
		},
		{
			name: "path with spaces, unicode and reserved bytes",
			build: func(t *testing.T, w *wire) *http.Request {
				req := w.request(t, http.MethodGet, "/2015-03-31/functions/caf%C3%A9%20x%2Cy%28z%29/configuration", nil)
				sign(t, req, creds(testKeyID, testSecret), sha256Hex(nil), "lambda", testRegion, t0)
				return req
			},
		},
		{
			name: "header values with runs of spaces and repeated headers",
			build: func(t *testing.T, w *wire) *http.Request {
				req := w.request(t, http.MethodPost, "/2015-03-31/functions/f/invocations", invokeBody)
				req.Header.Set("X-Amz-Client-Context", "  a   b  c ")
				req.Header.Add("X-Flint-Multi", "one")
				req.Header.Add("X-Flint-Multi", "two  three")
				sign(t, req, creds(testKeyID, testSecret), sha256Hex(invokeBody), "lambda", testRegion, t0)
				return req
			},
		},
		{
			name: "empty body",
			build: func(t *testing.T, w *wire) *http.Request {
				req := w.request(t, http.MethodDelete, "/2015-03-31/functions/f", nil)
				sign(t, req, creds(testKeyID, testSecret), sha256Hex(nil), "lambda", testRegion, t0)
				return req
			},
		},
		{
			name: "presigned URL within X-Amz-Expires",
			build: func(t *testing.T, w *wire) *http.Request {
				return presigned(t, w, http.MethodGet, "/2015-03-31/functions/f?Qualifier=%24LATEST", 10*time.Minute, t0)
			},
			advance: 9 * time.Minute,
		},
		{
			name: "presigned URL without X-Amz-Expires within the skew window",
			build: func(t *testing.T, w *wire) *http.Request {
				return presigned(t, w, http.MethodGet, "/2015-03-31/functions/f", 0, t0)
			},
			advance: 4 * time.Minute,
		},
		{
			name: "UNSIGNED-PAYLOAD declared and signed: the body must be signed",
			build: func(t *testing.T, w *wire) *http.Request {
				req := w.request(t, http.MethodPost, "/2015-03-31/functions/f/invocations", invokeBody)
				req.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
				sign(t, req, creds(testKeyID, testSecret), unsignedPayload, "lambda", testRegion, t0)
				return req
			},
			want: &wantErr{CodeInvalidSignature, 403, msgSignatureMismatch},
		},
		{
			name: "UNSIGNED-PAYLOAD declared, body swapped after signing",
			build: func(t *testing.T, w *wire) *http.Request {
				req := w.request(t, http.MethodPost, invokeARNPath, invokeBody)
				req.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
				sign(t, req, creds(testKeyID, testSecret), unsignedPayload, "lambda", testRegion, t0)
				// The same length, so that the signed Content-Length still holds.
				swapped := []byte(`{"hello":"WORLD","n":[9,9,9]}`)
				if len(swapped) != len(invokeBody) {
					t.Fatalf("swapped body is %d bytes, want %d", len(swapped), len(invokeBody))
				}
				req.Body = io.NopCloser(bytes.NewReader(swapped))
				return req
			},
			want: &wantErr{CodeInvalidSignature, 403, msgSignatureMismatch},
		},
		{
			name: "presigned URL over UNSIGNED-PAYLOAD, as for S3",
			build: func(t *testing.T, w *wire) *http.Request {
				return presignedWith(t, w, http.MethodGet, "/2015-03-31/functions/f", 10*time.Minute, t0, unsignedPayload)
			},
			want: &wantErr{CodeInvalidSignature, 403, msgSignatureMismatch},
		},
		{
			name: "presigned URL for a POST with a body, over the body's hash",
			build: func(t *testing.T, w *wire) *http.Request {
				req := presignedWith(t, w, http.MethodPost, invokeARNPath, 10*time.Minute, t0, sha256Hex(invokeBody))
				req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(invokeBody)), int64(len(invokeBody))
				return req
			},
		},
		{
			name: "declared X-Amz-Content-Sha256 matching the body",
			build: func(t *testing.T, w *wire) *http.Request {
				req := w.request(t, http.MethodPost, "/2015-03-31/functions/f/invocations", invokeBody)
				req.Header.Set("X-Amz-Content-Sha256", sha256Hex(invokeBody))
				sign(t, req, creds(testKeyID, testSecret), sha256Hex(invokeBody), "lambda", testRegion, t0)
				return req
			},
		},
		{
			name: "signed 4 minutes ago",
			build: func(t *testing.T, w *wire) *http.Request {
				return signedInvoke(t, w, goodKey, t0.Add(-4*time.Minute))
			},
		},
		{
			name: "wrong secret",
			build: func(t *testing.T, w *wire) *http.Request {
				return signedInvoke(t, w, func() (string, string) { return testKeyID, testSecret + "x" }, t0)
			},
			want: &wantErr{CodeInvalidSignature, 403, msgSignatureMismatch},
		},
		{
			name: "body changed by one byte",
			build: func(t *testing.T, w *wire) *http.Request {
				// Signed for invokeBody, sent with one bit of it flipped.
				changed := []byte(string(invokeBody))
				changed[3] ^= 1
				req := w.request(t, http.MethodPost, invokeARNPath, changed)
				req.Header.Set("Content-Type", "application/json")
				sign(t, req, creds(testKeyID, testSecret), sha256Hex(invokeBody), "lambda", testRegion, t0)
				return req
			},
			want: &wantErr{CodeInvalidSignature, 403, msgSignatureMismatch},
		},
		{
			name: "signed header changed",
			build: func(t *testing.T, w *wire) *http.Request {
				req := signedInvoke(t, w, goodKey, t0)
				req.Header.Set("X-Amz-Invocation-Type", "Event")
				return req
			},
			want: &wantErr{CodeInvalidSignature, 403, msgSignatureMismatch},
		},
		{
			name: "path changed",
			build: func(t *testing.T, w *wire) *http.Request {
				req := signedInvoke(t, w, goodKey, t0)
				req.URL.Path = "/2015-03-31/functions/other/invocations"
				req.URL.RawPath = ""
				return req
			},
			want: &wantErr{CodeInvalidSignature, 403, msgSignatureMismatch},
		},
		{
			name: "query changed",
			build: func(t *testing.T, w *wire) *http.Request {
				req := w.request(t, http.MethodGet, "/2015-03-31/functions/?MaxItems=5", nil)
				sign(t, req, creds(testKeyID, testSecret), sha256Hex(nil), "lambda", testRegion, t0)
				req.URL.RawQuery = "MaxItems=50"
				return req
			},
			want: &wantErr{CodeInvalidSignature, 403, msgSignatureMismatch},
		},
		{
			name: "signed 20 minutes ago",
			build: func(t *testing.T, w *wire) *http.Request {
				return signedInvoke(t, w, goodKey, t0.Add(-20*time.Minute))
			},
			want: &wantErr{CodeInvalidSignature, 403, expiredMsg},
		},
		{
			name: "signed 20 minutes in the future",
			build: func(t *testing.T, w *wire) *http.Request {
				return signedInvoke(t, w, goodKey, t0.Add(20*time.Minute))
			},
			want: &wantErr{CodeInvalidSignature, 403, futureMsg},
		},
		{
			name: "presigned URL past X-Amz-Expires",
			build: func(t *testing.T, w *wire) *http.Request {
				return presigned(t, w, http.MethodGet, "/2015-03-31/functions/f", time.Minute, t0)
			},
			advance: 61 * time.Second,
			want:    &wantErr{CodeAccessDenied, 403, "Request has expired"},
		},
		{
			name: "presigned URL without X-Amz-Expires past the skew window",
			build: func(t *testing.T, w *wire) *http.Request {
				return presigned(t, w, http.MethodGet, "/2015-03-31/functions/f", 0, t0.Add(-20*time.Minute))
			},
			want: &wantErr{CodeInvalidSignature, 403, expiredMsg},
		},
		{
			name: "presigned URL with X-Amz-Expires over a week",
			build: func(t *testing.T, w *wire) *http.Request {
				return presigned(t, w, http.MethodGet, "/2015-03-31/functions/f", 8*24*time.Hour, t0)
			},
			want: &wantErr{CodeAuthorizationQueryParametersError, 400,
				"X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds"},
		},
		{
			name: "presigned URL with its query changed",
			build: func(t *testing.T, w *wire) *http.Request {
				req := presigned(t, w, http.MethodGet, "/2015-03-31/functions/f?Qualifier=1", 10*time.Minute, t0)
				req.URL.RawQuery = strings.Replace(req.URL.RawQuery, "Qualifier=1", "Qualifier=2", 1)
				return req
			},
			want: &wantErr{CodeInvalidSignature, 403, msgSignatureMismatch},
		},
		{
			name: "presigned URL missing parameters",
			build: func(t *testing.T, w *wire) *http.Request {
				return w.request(t, http.MethodGet, "/2015-03-31/functions/f?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261127T103000Z", nil)
			},
			want: &wantErr{CodeIncompleteSignature, 403,
				"AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must include 'X-Amz-Signature'. " +
					"AWS query-string parameters must include 'X-Amz-SignedHeaders'. Re-examine the query-string parameters."},
		},
		{
			name: "unknown access key",
			build: func(t *testing.T, w *wire) *http.Request {
				return signedInvoke(t, w, func() (string, string) { return "AKIAUNKNOWNUNKNOWN00", testSecret }, t0)
			},
			want: &wantErr{CodeUnrecognizedClient, 403, "The security token included in the request is invalid."},
		},
		{
			name: "no Authorization",
			build: func(t *testing.T, w *wire) *http.Request {
				return w.request(t, http.MethodPost, invokeARNPath, invokeBody)
			},
			want: &wantErr{CodeMissingAuthenticationToken, 403, "Missing Authentication Token"},
		},
		{
			name: "another scheme",
			build: func(t *testing.T, w *wire) *http.Request {
				req := w.request(t, http.MethodGet, "/2015-03-31/functions/", nil)
				req.Header.Set("Authorization", "Bearer eyJhbGciOi")
				return req
			},
			want: &wantErr{CodeMissingAuthenticationToken, 403, "Missing Authentication Token"},
		},
		{
			name: "Authorization without its parameters or a date",
			build: func(t *testing.T, w *wire) *http.Request {
				req := w.request(t, http.MethodGet, "/2015-03-31/functions/", nil)
				req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261127/us-east-1/lambda/aws4_request")
				return req
			},
			want: &wantErr{CodeIncompleteSignature, 403,
				"Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. " +
					"Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. " +
					"Authorization=AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261127/us-east-1/lambda/aws4_request"},
		},
		{
			name: "Authorization parameter without an equal sign",
			build: func(t *testing.T, w *wire) *http.Request {
				req := signedInvoke(t, w, goodKey, t0)
				req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), "Credential=AKIAIOSFODNN7EXAMPLE", "Credential=AKIAIOSFODNN7EXAMPLE ", 1))
				return req
			},
			want: &wantErr{CodeIncompleteSignature, 403, ""},
		},
		{
			name: "date not in ISO 8601 basic format",
			build: func(t *testing.T, w *wire) *http.Request {
				req := signedInvoke(t, w, goodKey, t0)
				req.Header.Set("X-Amz-Date", "2026-11-27T10:30:00Z")
				return req
			},
			want: &wantErr{CodeIncompleteSignature, 403,
				"Date must be in ISO-8601 'basic format'. Got '2026-11-27T10:30:00Z'. See http://en.wikipedia.org/wiki/ISO_8601"},
		},
		{
			name: "unsupported algorithm",
			build: func(t *testing.T, w *wire) *http.Request {
				req := signedInvoke(t, w, goodKey, t0)
				req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512", 1))
				return req
			},
			want: &wantErr{CodeIncompleteSignature, 403, "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512' (only AWS4-HMAC-SHA256 for now). "},
		},
		{
			name: "credential with four elements",
			build: func(t *testing.T, w *wire) *http.Request {
				req := signedInvoke(t, w, goodKey, t0)
				req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), "/lambda/aws4_request", "/aws4_request", 1))
				return req
			},
			want: &wantErr{CodeIncompleteSignature, 403,
				"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKIAIOSFODNN7EXAMPLE/20261127/us-east-1/aws4_request'"},
		},
		{
			name: "host not signed",
			build: func(t *testing.T, w *wire) *http.Request {
				req := signedInvoke(t, w, goodKey, t0)
				req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), ";host;", ";", 1))
				return req
			},
			want: &wantErr{CodeInvalidSignature, 403, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."},
		},
		{
			name: "wrong region",
			build: func(t *testing.T, w *wire) *http.Request {
				req := w.request(t, http.MethodPost, invokeARNPath, invokeBody)
				sign(t, req, creds(testKeyID, testSecret), sha256Hex(invokeBody), "lambda", "eu-west-1", t0)
				return req
			},
			want: &wantErr{CodeInvalidSignature, 403, "Credential should be scoped to a valid region, not 'eu-west-1'. "},
		},
		{
			name: "any region when none is configured",
			cfg:  func(c *Config) { c.Region = "" },
			build: func(t *testing.T, w *wire) *http.Request {
				req := w.request(t, http.MethodPost, invokeARNPath, invokeBody)
				sign(t, req, creds(testKeyID, testSecret), sha256Hex(invokeBody), "lambda", "eu-west-1", t0)
				return req
			},
		},
		{
			name: "wrong service",
			cfg:  func(c *Config) { c.Service = func(*http.Request) string { return "lambda" } },
			build: func(t *testing.T, w *wire) *http.Request {
				req := w.request(t, http.MethodGet, "/2015-03-31/functions/", nil)
				sign(t, req, creds(testKeyID, testSecret), sha256Hex(nil), "scheduler", testRegion, t0)
				return req
			},
			want: &wantErr{CodeInvalidSignature, 403, "Credential should be scoped to correct service: 'lambda'. "},
		},
		{
			name: "scope date not the request's, and a bad terminator",
			build: func(t *testing.T, w *wire) *http.Request {
				req := signedInvoke(t, w, goodKey, t0)
				req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), "/20261127/us-east-1/lambda/aws4_request", "/20261126/us-east-1/lambda/aws5_request", 1))
				return req
			},
			want: &wantErr{CodeInvalidSignature, 403,
				"Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. " +
					"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261126' != '20261127', from '20261127T103000Z'. "},
		},
		{
			name: "UNSIGNED-PAYLOAD signed without the header",
			build: func(t *testing.T, w *wire) *http.Request {
				req := w.request(t, http.MethodPost, "/2015-03-31/functions/f/invocations", invokeBody)
				sign(t, req, creds(testKeyID, testSecret), unsignedPayload, "lambda", testRegion, t0)
				return req
			},
			want: &wantErr{CodeInvalidSignature, 403, msgSignatureMismatch},
		},
		{
			name: "declared X-Amz-Content-Sha256 not the body's",
			build: func(t *testing.T, w *wire) *http.Request {
				req := w.request(t, http.MethodPost, "/2015-03-31/functions/f/invocations", invokeBody)
				other := sha256Hex([]byte("something else"))
				req.Header.Set("X-Amz-Content-Sha256", other)
				sign(t, req, creds(testKeyID, testSecret), other, "lambda", testRegion, t0)
				return req
			},
			// Signed over a hash that is not the body's: AWS, hashing the body, finds a mismatch.
			want: &wantErr{CodeInvalidSignature, 403, msgSignatureMismatch},
		},
		{
			name: "declared X-Amz-Content-Sha256 that is no hash",
			build: func(t *testing.T, w *wire) *http.Request {
				req := w.request(t, http.MethodPost, "/2015-03-31/functions/f/invocations", invokeBody)
				req.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
				sign(t, req, creds(testKeyID, testSecret), "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "lambda", testRegion, t0)
				return req
			},
			want: &wantErr{CodeInvalidSignature, 403, msgSignatureMismatch},
		},
		{
			name: "session token",
			build: func(t *testing.T, w *wire) *http.Request {
				req := w.request(t, http.MethodPost, invokeARNPath, invokeBody)
				c := creds(testKeyID, testSecret)
				c.SessionToken = "FQoGZXIvYXdzEJr"
				sign(t, req, c, sha256Hex(invokeBody), "lambda", testRegion, t0)
				return req
			},
			want: &wantErr{CodeUnrecognizedClient, 403, "The security token included in the request is invalid."},
		},
		{
			name: "both an Authorization header and a presigned query",
			build: func(t *testing.T, w *wire) *http.Request {
				req := presigned(t, w, http.MethodGet, "/2015-03-31/functions/f", time.Minute, t0)
				req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x/20261127/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00")
				return req
			},
			want: &wantErr{CodeInvalidSignature, 403, msgSignatureMismatch},
		},
		{
			name: "Date header instead of X-Amz-Date is accepted as the date",
			build: func(t *testing.T, w *wire) *http.Request {
				req := signedInvoke(t, w, goodKey, t0)
				req.Header.Del("X-Amz-Date")
				req.Header.Set("Date", t0.Format(http.TimeFormat))
				return req
			},
			// The signature named x-amz-date, now empty: it no longer matches, but the date was
			// found (no IncompleteSignatureException) and in the window.
			want: &wantErr{CodeInvalidSignature, 403, msgSignatureMismatch},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, clk := newTestVerifier(t, func(c *Config) {
				c.FailureLimit = -1
				if tc.cfg != nil {
					tc.cfg(c)
				}
			})
			w := newWire(t, v)
			req := tc.build(t, w)
			clk.Add(tc.advance)
			id, err := w.do(t, req)
			if tc.want == nil {
				if err != nil {
					var e *Error
					if errors.As(err, &e) && e.Detail != "" {
						t.Logf("%s", e.Detail)
					}
					t.Fatalf("Verify: %v, want success", err)
				}
				if id.AccessKeyID != testKeyID || id.Service == "" || id.Region == "" {
					t.Errorf("Identity = %+v", id)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Verify: %v (%T), want *Error %s", err, err, tc.want.code)
			}
			if e.Code != tc.want.code || e.Status != tc.want.status {
				t.Errorf("got %s %d (%q), want %s %d", e.Code, e.Status, e.Message, tc.want.code, tc.want.status)
			}
			if tc.want.msg != "" && e.Message != tc.want.msg {
				t.Errorf("message:\n got %q\nwant %q", e.Message, tc.want.msg)
			}
		})
	}
}

// TestAWSDocumentationExample verifies the worked example in AWS's SigV4 documentation (IAM
// ListUsers), a vector computed by AWS rather than by the SDK under test.
func TestAWSDocumentationExample(t *testing.T) {
	v, err := NewVerifier(Config{
		Keys:   staticKeys{"AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"},
		Region: "us-east-1",
		Now:    func() time.Time { return time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC) },
	})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/?Action=ListUsers&Version=2010-05-08", nil)
	req.Host = "iam.amazonaws.com"
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("X-Amz-Date", "20150830T123600Z")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "+
		"SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")
	id, err := v.Verify(req, nil)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if diff := cmp.Diff(Identity{AccessKeyID: "AKIDEXAMPLE", Region: "us-east-1", Service: "iam"}, id); diff != "" {
		t.Errorf("Identity (-want +got):\n%s", diff)
	}

	// One bit off in the signature is a mismatch, and the detail is the documented canonical
	// request.
	req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), "b5d7", "b5d6", 1))
	_, err = v.Verify(req, nil)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeInvalidSignature {
		t.Fatalf("Verify with a flipped bit: %v", err)
	}
	wantCanonical := "GET\n/\nAction=ListUsers&Version=2010-05-08\n" +
		"content-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n" +
		"content-type;host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if !strings.Contains(e.Detail, wantCanonical) {
		t.Errorf("Detail = %q, want it to hold the canonical request %q", e.Detail, wantCanonical)
	}
	if !strings.Contains(e.Detail, "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59") {
		t.Errorf("Detail = %q, want the documented canonical request hash in the string to sign", e.Detail)
	}
}

// TestBotocorePresignedURLs verifies URLs presigned by botocore 1.43 (boto3's core, as the AWS
// CLI presigns), generated at t0 with the test key by
//
//	client = botocore.session.get_session().create_client('lambda', region_name='us-east-1',
//	    endpoint_url='http://flint.example:9000', aws_access_key_id=…, aws_secret_access_key=…)
//	client.generate_presigned_url('list_functions', Params={'MaxItems': 5}, ExpiresIn=600)
//
// (get_current_datetime patched to t0). For Lambda botocore uses SigV4QueryAuth, whose payload
// hash is the empty body's, not S3's UNSIGNED-PAYLOAD.
func TestBotocorePresignedURLs(t *testing.T) {
	for _, u := range []string{
		"/2015-03-31/functions?MaxItems=5&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261127%2Fus-east-1%2Flambda%2Faws4_request&X-Amz-Date=20261127T103000Z&X-Amz-Expires=600&X-Amz-SignedHeaders=host&X-Amz-Signature=737ab749e74e20f7cec18ac6338c99b0ac5fae325ce751709b7f758860d4a703",
		"/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af?Qualifier=%24LATEST&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261127%2Fus-east-1%2Flambda%2Faws4_request&X-Amz-Date=20261127T103000Z&X-Amz-Expires=600&X-Amz-SignedHeaders=host&X-Amz-Signature=a66871898f1912dc4b327e0e16140220bda07134677b0f0c42814f33de2690d2",
	} {
		v, clk := newTestVerifier(t, func(c *Config) { c.FailureLimit = -1 })
		clk.Add(9 * time.Minute)
		req := httptest.NewRequest(http.MethodGet, u, nil)
		req.Host = "flint.example:9000"
		id, err := v.Verify(req, nil)
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				t.Logf("%s", e.Detail)
			}
			t.Errorf("GET %s: %v", u, err)
			continue
		}
		if id != (Identity{AccessKeyID: testKeyID, Region: testRegion, Service: "lambda"}) {
			t.Errorf("Identity = %+v", id)
		}
		// One character of the query changed: refused.
		req = httptest.NewRequest(http.MethodGet, strings.Replace(u, "X-Amz-Expires=600", "X-Amz-Expires=601", 1), nil)
		req.Host = "flint.example:9000"
		if _, err := v.Verify(req, nil); err == nil {
			t.Errorf("GET %s with X-Amz-Expires changed: verified", u)
		}
	}
}

// TestSigningKeyMatchesCryptoHMAC holds the precomputed-pad HMAC to crypto/hmac, for messages
// that fit the stack buffer and ones that do not.
func TestSigningKeyMatchesCryptoHMAC(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 130, 191, 192, 193, 256, 1000} {
		secret := rand.Text()
		k := deriveSigningKey(secret, "20261127", "us-east-1", "lambda")
		raw := hmacSHA256(hmacSHA256(hmacSHA256(hmacSHA256([]byte("AWS4"+secret), "20261127"), "us-east-1"), "lambda"), "aws4_request")
		msg := make([]byte, n)
		rand.Read(msg)
		m := hmac.New(sha256.New, raw)
		m.Write(msg)
		want := m.Sum(nil)
		got := k.sign(msg)
		if !hmac.Equal(got[:], want) {
			t.Errorf("len %d: sign = %x, crypto/hmac = %x", n, got, want)
		}
	}
}

func TestErrorIsAnAPIError(t *testing.T) {
	v, _ := newTestVerifier(t)
	_, err := v.Verify(httptest.NewRequest(http.MethodGet, "/2015-03-31/functions/", nil), nil)
	ae := apierr.As(err)
	if ae.Code != CodeMissingAuthenticationToken || ae.Status != http.StatusForbidden || ae.Message != "Missing Authentication Token" {
		t.Errorf("apierr.As = %+v", ae)
	}
}

func TestSigningKeysCachedOnlyAfterSuccess(t *testing.T) {
	v, _ := newTestVerifier(t, func(c *Config) { c.Region = ""; c.FailureLimit = -1 })
	w := newWire(t, v)
	// A forged signature for a scope nobody has used must not add a cache entry.
	req := w.request(t, http.MethodPost, invokeARNPath, invokeBody)
	sign(t, req, creds(testKeyID, "wrong"), sha256Hex(invokeBody), "lambda", "ap-south-2", t0)
	if _, err := w.do(t, req); err == nil {
		t.Fatal("forged request verified")
	}
	if n := v.cache.len(); n != 0 {
		t.Fatalf("cache has %d keys after a failure, want 0", n)
	}
	for range 3 {
		if _, err := w.do(t, signedInvoke(t, w, goodKey, t0)); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	if n := v.cache.len(); n != 1 {
		t.Fatalf("cache has %d keys after three requests with one scope, want 1", n)
	}
}

func TestKeyCacheDropsOldDays(t *testing.T) {
	var c keyCache
	for _, d := range []string{"20261125", "20261126", "20261127"} {
		c.put(cacheKey{secret: "s", date: d, region: "r", service: "lambda"}, &signingKey{})
	}
	if c.get(cacheKey{secret: "s", date: "20261125", region: "r", service: "lambda"}) != nil {
		t.Error("a key two days older than the newest is still cached")
	}
	if c.get(cacheKey{secret: "s", date: "20261126", region: "r", service: "lambda"}) == nil {
		t.Error("the previous day's key was dropped; clients near midnight still use it")
	}
	for i := range maxCachedKeys + 10 {
		c.put(cacheKey{secret: strconv.Itoa(i), date: "20261127", region: "r", service: "lambda"}, &signingKey{})
	}
	if n := c.len(); n > maxCachedKeys {
		t.Errorf("cache holds %d keys, bound is %d", n, maxCachedKeys)
	}
}

func TestParseAmzDate(t *testing.T) {
	for _, s := range []string{"20261127T103000Z", "20240229T235959Z"} {
		if _, ok := parseAmzDate(s); !ok {
			t.Errorf("parseAmzDate(%q) failed", s)
		}
	}
	for _, s := range []string{"", "20261127T103000", "2026112T1030000Z", "20261327T103000Z", "20230229T000000Z", "20261127T246000Z", "2026-1127T103000Z", "20261127t103000Z"} {
		if _, ok := parseAmzDate(s); ok {
			t.Errorf("parseAmzDate(%q) succeeded", s)
		}
	}
}

func TestNewVerifierRequiresKeys(t *testing.T) {
	if _, err := NewVerifier(Config{}); err == nil {
		t.Error("NewVerifier without Keys succeeded")
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:5000": true, "127.9.9.9": true, "[::1]:80": true, "::1": true, "[::ffff:127.0.0.1]:1": true,
		"192.0.2.1:5000": false, "[2001:db8::1]:80": false, "localhost:80": false, "": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestNoEqualSignMessage(t *testing.T) {
	v, _ := newTestVerifier(t)
	req := httptest.NewRequest(http.MethodGet, "/2015-03-31/functions/", nil)
	// A key pasted with a stray space: AWS names the fragment and quotes the header.
	auth := "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE /20261127/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"
	req.Header.Set("Authorization", auth)
	req.Header.Set("X-Amz-Date", "20261127T103000Z")
	_, err := v.Verify(req, nil)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Verify: %v", err)
	}
	want := "'/20261127/us-east-1/lambda/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header: '" + auth + "'."
	if e.Code != CodeIncompleteSignature || e.Status != http.StatusForbidden || e.Message != want {
		t.Errorf("got %s %d %q\nwant %s 403 %q", e.Code, e.Status, e.Message, CodeIncompleteSignature, want)
	}
}
