package sigv4

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/flint-run/flint/internal/apierr"
)

// DefaultMaxBody is the largest request body the Middleware reads. Lambda's own limit for a
// CreateFunction or UpdateFunctionCode request carrying a base64 zip is 70167211 bytes; 70 MiB
// admits every body Lambda admits.
const DefaultMaxBody = 70 << 20

// preallocLimit bounds what the Middleware allocates up front from a declared Content-Length:
// the length is the client's claim, and the signature over the body is not yet checked.
const preallocLimit = 8 << 20

// MiddlewareOptions configures Middleware.
type MiddlewareOptions struct {
	// MaxBody is the largest body accepted; larger ones get 413 RequestEntityTooLargeException.
	// Zero means DefaultMaxBody.
	MaxBody int64
	// Log, if set, receives one Info record per rejected request (code, client, method, path,
	// access key) and, at Debug, the canonical request of a signature mismatch.
	Log *slog.Logger
}

// Middleware returns a handler that authenticates each request before passing it to next. It
// checks the headers first, so an unsigned or unknown caller is refused without its body being
// read; then it reads the body (up to MaxBody), verifies the signature over it, and hands next
// the request with the body restored (r.Body, r.ContentLength) and the caller's Identity in its
// context. Failures are written as AWS writes them: the status, X-Amzn-ErrorType and a JSON
// body, through apierr.Write.
func (v *Verifier) Middleware(next http.Handler, opts MiddlewareOptions) http.Handler {
	max := opts.MaxBody
	if max <= 0 {
		max = DefaultMaxBody
	}
	log := opts.Log
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := v.prepare(r)
		if err != nil {
			reject(w, r, log, err, "")
			return
		}
		body, rerr := readBody(r, max)
		if rerr != nil {
			if errors.Is(rerr, errTooLarge) {
				apierr.Write(w, apierr.RequestEntityTooLarge("Request must be smaller than %d bytes", max+1))
				return
			}
			if log != nil {
				log.LogAttrs(r.Context(), slog.LevelInfo, "read request body", slog.String("client", r.RemoteAddr), slog.Any("err", rerr))
			}
			apierr.Write(w, apierr.InvalidRequestContent("Could not read the request body."))
			return
		}
		id, err := v.finish(&p, body)
		if err != nil {
			reject(w, r, log, err, p.accessKeyID)
			return
		}
		if body == nil {
			r.Body = http.NoBody
		} else {
			r.Body = &bodyReader{Reader: bytes.NewReader(body)}
		}
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
	})
}

var errTooLarge = errors.New("request body too large")

// readBody reads r.Body, refusing more than max bytes.
func readBody(r *http.Request, max int64) ([]byte, error) {
	n := r.ContentLength
	if n > max {
		return nil, errTooLarge
	}
	if n == 0 || r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if n > 0 && n <= preallocLimit {
		b := make([]byte, n)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, errTooLarge
	}
	return b, nil
}

// bodyReader is the restored body: a reader with a no-op Close, in one allocation.
type bodyReader struct{ *bytes.Reader }

func (*bodyReader) Close() error { return nil }

func reject(w http.ResponseWriter, r *http.Request, log *slog.Logger, e *Error, accessKeyID string) {
	if log != nil {
		ctx := r.Context()
		log.LogAttrs(ctx, slog.LevelInfo, "request not authenticated",
			slog.String("code", e.Code), slog.String("client", r.RemoteAddr),
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("access_key", accessKeyID), slog.String("message", e.Message))
		if e.Detail != "" {
			log.LogAttrs(ctx, slog.LevelDebug, "signature mismatch", slog.String("access_key", accessKeyID), slog.String("detail", e.Detail))
		}
	}
	apierr.Write(w, e.APIError())
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
