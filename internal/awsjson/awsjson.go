// Package awsjson serves an API in the AWS JSON 1.1 protocol (Secrets Manager, CloudWatch Logs):
// POST / with X-Amz-Target: <prefix><Operation>, a bounded JSON body decoded into the
// operation's input, the answer encoded as application/x-amz-json-1.1 and every error in the
// protocol's shape (apierr.Write, JSON11: the code in __type). The services keep their
// operations, their errors and their logging; this package is the wire between.
package awsjson

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/apierr"
)

// ContentType is the protocol's media type, of requests and answers.
const ContentType = "application/x-amz-json-1.1"

// Operation runs one X-Amz-Target on its request body and returns the answer's document.
type Operation func(ctx context.Context, body []byte) (any, error)

// Handle adapts a typed operation: the body decoded into In (empty as {}, as AWS does), then f.
// Decoding errors are SerializationException and never quote the body: it may hold a secret.
func Handle[In any, Out any](f func(ctx context.Context, in *In) (Out, error)) Operation {
	return func(ctx context.Context, body []byte) (any, error) {
		in := new(In)
		if err := decode(body, in); err != nil {
			return nil, err
		}
		return f(ctx, in)
	}
}

func decode(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return clientError("SerializationException", "Unexpected value at '%s': expected %s", te.Field, te.Type)
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return clientError("SerializationException", "Malformed JSON request body at offset %d.", se.Offset)
		}
		return clientError("SerializationException", "Malformed JSON request body.")
	}
	return nil
}

func clientError(code, format string, args ...any) *apierr.Error {
	return &apierr.Error{Code: code, Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

// Service is one JSON 1.1 API's wire.
type Service struct {
	Prefix  string               // of X-Amz-Target, "secretsmanager."
	Ops     map[string]Operation // by operation name
	MaxBody int                  // bytes read of a request body, at most
	// TooLarge is the service's error for a body over MaxBody.
	TooLarge func(maxBody int) *apierr.Error
	// Internal is the service's error for a failure that is not an *apierr.Error (its 500),
	// with the cause kept for the log.
	Internal func(cause error) *apierr.Error
	// Failed is told of every error answered (to log it); err is what the operation returned.
	Failed func(r *http.Request, requestID, op string, e *apierr.Error, err error)
	// Wipe clears the request body once the operation is done: it may hold a secret value, which
	// must not be left for the next allocation to find.
	Wipe bool
}

// LogFailures is the usual Failed: a server error logged as an error (unless the caller went
// away), a refusal at debug level. api names the API in the messages ("kinesis").
func LogFailures(log *slog.Logger, api string) func(r *http.Request, requestID, op string, e *apierr.Error, err error) {
	return func(r *http.Request, requestID, op string, e *apierr.Error, err error) {
		if e.Status >= 500 {
			if r.Context().Err() == nil {
				log.Error(api+" request failed", "operation", op, "request_id", requestID, "err", err)
			}
		} else if log.Enabled(r.Context(), slog.LevelDebug) {
			log.Debug(api+" request rejected", "operation", op, "request_id", requestID, "code", e.Code, "message", e.Message)
		}
	}
}

// Matches reports whether r is a call of this API, for the server to route it here.
func (s *Service) Matches(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("X-Amz-Target"), s.Prefix)
}

// ServeHTTP serves one call.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := uuid.NewString()
	w.Header()["X-Amzn-Requestid"] = []string{requestID}
	target := r.Header.Get("X-Amz-Target")
	name, ok := strings.CutPrefix(target, s.Prefix)
	op := s.Ops[name]
	if !ok || op == nil || r.Method != http.MethodPost {
		s.fail(w, r, requestID, target, clientError("UnknownOperationException",
			"Unknown operation %s %s (X-Amz-Target %q).", r.Method, r.URL.Path, target))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(s.MaxBody)+1))
	if err != nil {
		s.fail(w, r, requestID, name, clientError("SerializationException", "Could not read the request body."))
		return
	}
	if len(body) > s.MaxBody {
		s.fail(w, r, requestID, name, s.TooLarge(s.MaxBody))
		return
	}
	out, err := op(r.Context(), body)
	if s.Wipe {
		clear(body)
	}
	if err != nil {
		s.fail(w, r, requestID, name, err)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		s.fail(w, r, requestID, name, s.Internal(fmt.Errorf("encode %s response: %w", name, err)))
		return
	}
	w.Header().Set("Content-Type", ContentType)
	_, _ = w.Write(b)
}

func (s *Service) fail(w http.ResponseWriter, r *http.Request, requestID, op string, err error) {
	var e *apierr.Error
	if !errors.As(err, &e) {
		e = s.Internal(err)
	}
	if s.Failed != nil {
		s.Failed(r, requestID, op, e, err)
	}
	c := *e
	c.JSON11 = true
	apierr.Write(w, &c)
}
