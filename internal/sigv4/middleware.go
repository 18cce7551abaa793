package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/flint-run/flint/internal/apierr"
)

// DefaultMaxBody is the largest request body the Middleware reads. Lambda's own limit for a
// CreateFunction or UpdateFunctionCode request carrying a base64 zip is 70167211 bytes; 70 MiB
// admits every body Lambda admits.
const DefaultMaxBody = 70 << 20

// Defaults for the bodies held before their signatures are checked; doc.go says why.
const (
	DefaultMaxPendingBody          = 256 << 20
	DefaultMaxPendingBodyPerClient = DefaultMaxBody
	DefaultMaxPendingWait          = 20 * time.Second
)

// MiddlewareOptions configures Middleware.
type MiddlewareOptions struct {
	// MaxBody is the largest body accepted; larger ones get 413 RequestEntityTooLargeException.
	// Zero means DefaultMaxBody.
	MaxBody int64
	// MaxPendingBody bounds the bytes of request bodies held while their signatures are not
	// yet checked, across every Middleware of the Verifier (the first one's options set it);
	// MaxPendingBodyPerClient bounds them per client address for bodies whose signature
	// nothing has checked yet. A body waits up to MaxPendingWait
	// for room, then gets 429 ThrottlingException. Zeros mean the defaults; either bound is
	// raised to MaxBody if below it, so that every body accepted can be read.
	MaxPendingBody          int64
	MaxPendingBodyPerClient int64
	MaxPendingWait          time.Duration
	// Render, if set, writes refusals instead of apierr.Write: an endpoint whose protocol
	// words its errors otherwise (function URLs answer {"Message":"Forbidden"}) keeps its shape.
	Render func(http.ResponseWriter, *apierr.Error)
	// Log, if set, receives one Info record per rejected request (code, client, method, path,
	// access key) but the throttled repeats of an address or key over its failure limit, one
	// Warn record when one goes over it, and, at Debug, the canonical request of a signature
	// mismatch.
	Log *slog.Logger
}

// Middleware returns a handler that authenticates each request before passing it to next, and
// hands next the request with its body read (r.Body, r.ContentLength) and the caller's
// Identity in its context. Failures are written as AWS writes them: the status,
// X-Amzn-ErrorType and a JSON body, through apierr.Write.
//
// What can be checked from the request line and headers is checked before any of the body is
// read: an unsigned, malformed, expired or unknown-key request costs no body. The signature
// itself covers the body's SHA-256, so:
//
//   - a request without a body, or whose X-Amz-Content-Sha256 declares the hash, has its
//     signature checked first; a bad one is refused unread. The body is then read and must
//     have the declared hash, or the request is refused before next sees any of it (a
//     handler may act on a prefix of what it reads, so the whole body is checked first).
//   - otherwise (the AWS SDKs send Lambda's requests so) the body must be read and hashed
//     before the signature can be checked. Such bodies are held under the bounds of
//     MiddlewareOptions, in a buffer of their declared length allocated only once there is
//     room, and dropped as soon as their signature fails.
//
// A declared hash is taken at its word for the signature check, as the SDKs sign the value
// they declare; a client that declared one hash and signed over another (its body's) would be
// refused here where AWS, hashing the body, would not. No SDK does that, and reading every
// such body to find out would hand back what checking the headers first saves.
func (v *Verifier) Middleware(next http.Handler, opts MiddlewareOptions) http.Handler {
	maxBody := opts.MaxBody
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	capacity, perClient, wait := opts.MaxPendingBody, opts.MaxPendingBodyPerClient, opts.MaxPendingWait
	if capacity <= 0 {
		capacity = DefaultMaxPendingBody
	}
	if perClient <= 0 {
		perClient = DefaultMaxPendingBodyPerClient
	}
	if wait <= 0 {
		wait = DefaultMaxPendingWait
	}
	perClient = max(perClient, maxBody)
	capacity = max(capacity, perClient)
	// One gate per Verifier: every endpoint it guards (the API, AWS_IAM function URLs) shares
	// the one bound on unauthenticated bodies. The first Middleware's options size it.
	v.gateOnce.Do(func() { v.gate = newBodyGate(capacity, perClient, wait) })
	gate := v.gate
	log := opts.Log
	render := opts.Render
	if render == nil {
		render = apierr.Write
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := v.prepare(r)
		if err != nil {
			reject(w, r, render, log, err, p.accessKeyID)
			return
		}
		if r.ContentLength > maxBody {
			render(w, apierr.RequestEntityTooLarge("Request must be smaller than %d bytes", maxBody+1))
			return
		}
		if sum, ok := declaredPayload(r); ok {
			id, err := v.finish(&p, sum)
			if err != nil {
				reject(w, r, render, log, err, p.accessKeyID)
				return
			}
			// The headers are the key holder's; the body is not yet known to be. It counts
			// against the server's bound only: no other client's failures hold it back.
			body, h, rerr := gate.read(r, p.client, maxBody, false)
			if rerr != nil {
				readFailed(w, r, render, log, rerr, maxBody)
				return
			}
			got := emptySHA256
			if body != nil {
				got = sha256.Sum256(body)
			}
			h.release()
			if got != sum {
				// The body is not the one signed: AWS, hashing the body it received, finds
				// the signature does not match.
				gate.refused(len(body))
				reject(w, r, render, log, v.failed(&p, errSignatureMismatch()), p.accessKeyID)
				gate.settle()
				return
			}
			serve(next, w, r, body, id)
			gate.settle()
			return
		}
		body, h, rerr := gate.read(r, p.client, maxBody, true)
		if rerr != nil {
			if !errors.Is(rerr, errTooLarge) && !errors.Is(rerr, errBusy) && r.Context().Err() == nil {
				// A body that never arrives whole (a client that stalls until the read
				// times out) is a failure like a bad signature; one that gave up waiting
				// for room is not.
				v.failed(&p, errIncomplete("request body not received"))
			}
			readFailed(w, r, render, log, rerr, maxBody)
			return
		}
		id, err := v.finish(&p, sha256.Sum256(body))
		h.release()
		if err != nil {
			gate.refused(len(body))
			reject(w, r, render, log, err, p.accessKeyID)
			gate.settle()
			return
		}
		serve(next, w, r, body, id)
		gate.settle()
	})
}

var errTooLarge = errors.New("request body too large")

// serve hands next the authenticated request, its body restored.
func serve(next http.Handler, w http.ResponseWriter, r *http.Request, body []byte, id Identity) {
	if body == nil {
		r.Body = http.NoBody
	} else {
		r.Body = &bodyReader{Reader: bytes.NewReader(body)}
	}
	r.ContentLength = int64(len(body))
	next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
}

// readFailed answers a request whose body could not be read.
func readFailed(w http.ResponseWriter, r *http.Request, render func(http.ResponseWriter, *apierr.Error), log *slog.Logger, err error, maxBody int64) {
	switch {
	case errors.Is(err, errTooLarge):
		render(w, apierr.RequestEntityTooLarge("Request must be smaller than %d bytes", maxBody+1))
	case errors.Is(err, errBusy):
		// Not logged per request: under a flood of bodies this would be the flood.
		render(w, errThrottled(time.Second).APIError())
	default:
		if log != nil {
			log.LogAttrs(r.Context(), slog.LevelInfo, "read request body", slog.String("client", r.RemoteAddr), slog.Any("err", err))
		}
		render(w, apierr.InvalidRequestContent("Could not read the request body."))
	}
}

// bodyReader is the restored body: a reader with a no-op Close, in one allocation.
type bodyReader struct{ *bytes.Reader }

func (*bodyReader) Close() error { return nil }

func reject(w http.ResponseWriter, r *http.Request, render func(http.ResponseWriter, *apierr.Error), log *slog.Logger, e *Error, accessKeyID string) {
	if log != nil && e.limitReached {
		log.LogAttrs(r.Context(), slog.LevelWarn, "authentication failure limit reached: further failures are throttled, valid signatures still served",
			slog.String("client", r.RemoteAddr), slog.String("access_key", accessKeyID), slog.Int("retry_after", e.RetryAfter),
			slog.String("failure", e.Detail))
	}
	if log != nil && e.Code != CodeThrottling {
		ctx := r.Context()
		log.LogAttrs(ctx, slog.LevelInfo, "request not authenticated",
			slog.String("code", e.Code), slog.String("client", r.RemoteAddr),
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("access_key", accessKeyID), slog.String("message", e.Message))
		if e.Detail != "" {
			log.LogAttrs(ctx, slog.LevelDebug, "signature mismatch", slog.String("access_key", accessKeyID), slog.String("detail", e.Detail))
		}
	}
	render(w, e.APIError())
}

type identityKey struct{}

// WithIdentity returns ctx carrying id, as the Middleware passes it to the wrapped handler.
// Callers that authenticate by other means (a local development mode) use it so handlers need
// not know how the caller was authenticated.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom returns the Identity the Middleware (or WithIdentity) stored in ctx.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// IsLoopback reports whether addr, an IP or an IP:port such as http.Request.RemoteAddr, is a
// loopback address (127.0.0.0/8, ::1, or IPv4-mapped loopback).
func IsLoopback(addr string) bool {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().Unmap().IsLoopback()
	}
	a, err := netip.ParseAddr(addr)
	return err == nil && a.Unmap().IsLoopback()
}
