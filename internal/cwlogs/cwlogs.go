// Package cwlogs is the CloudWatch Logs API (JSON 1.1, X-Amz-Target Logs_20140328.<Op>, SigV4
// name "logs") over the function logs the logs package keeps: what `aws logs tail`, `aws logs
// filter-log-events` and the SDKs read. Each function NAME has the log group /aws/lambda/NAME
// (while it has records or a retention policy), with a stream per execution environment named
// as Lambda names them (YYYY/MM/DD/[VERSION]<32 hex>), and each line of an invocation's output
// (START, the function's lines, END, REPORT) is one event with its own time. It serves
// DescribeLogGroups, DescribeLogStreams, GetLogEvents, FilterLogEvents (with the filter-pattern
// grammar of pattern.go and spaced.go), PutRetentionPolicy, DeleteRetentionPolicy and
// DeleteLogGroup. StartLiveTail (an event stream) is not served.
//
// It owns the wire and the meaning of a retention policy (events older than it are not returned,
// and Run removes the records from JetStream); the logs package owns the storage. It neither
// routes requests (the API asks IsLogsRequest) nor checks signatures, and it runs one goroutine
// only from Run, which its caller owns.
package cwlogs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/logs"
)

const (
	targetPrefix = "Logs_20140328."
	contentType  = "application/x-amz-json-1.1"
	maxBody      = 1 << 20
	groupPrefix  = "/aws/lambda/"
	// DefaultExpireEvery is how often Run removes records older than their group's retention.
	DefaultExpireEvery = 10 * time.Minute
)

// Store is what the API needs of the log store (logs.Store satisfies it).
type Store interface {
	Groups(ctx context.Context) ([]logs.Group, error)
	Group(ctx context.Context, fn string) (logs.Group, bool, error)
	Scan(ctx context.Context, fn string, from logs.From, visit func(logs.Record) bool) error
	Retention(ctx context.Context, fn string) (int, error)
	Retentions(ctx context.Context) (map[string]logs.Policy, error)
	SetRetention(ctx context.Context, fn string, days int) error
	Expire(ctx context.Context, fn string, before time.Time) error
	Delete(ctx context.Context, fn string) error
}

var _ Store = (*logs.Store)(nil)

// Config configures New. Store is required.
type Config struct {
	Store       Store
	Region      string // in ARNs; "us-east-1" if empty
	AccountID   string // in ARNs; "000000000000" if empty
	Log         *slog.Logger
	Now         func() time.Time // the clock retention is measured by; time.Now if nil
	ExpireEvery time.Duration    // Run's period; DefaultExpireEvery if 0
}

// Service serves the CloudWatch Logs API.
type Service struct {
	store   Store
	region  string
	account string
	log     *slog.Logger
	clock   atomic.Pointer[func() time.Time]
	every   time.Duration
	ops     map[string]operation
}

type operation func(ctx context.Context, body []byte) (any, error)

// New returns the service over cfg.Store.
func New(cfg Config) *Service {
	s := &Service{store: cfg.Store, region: cfg.Region, account: cfg.AccountID, log: cfg.Log, every: cfg.ExpireEvery}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.account == "" {
		s.account = "000000000000"
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.SetClock(cfg.Now)
	if s.every <= 0 {
		s.every = DefaultExpireEvery
	}
	s.ops = map[string]operation{
		"DescribeLogGroups":     handle(s.describeLogGroups),
		"DescribeLogStreams":    handle(s.describeLogStreams),
		"GetLogEvents":          handle(s.getLogEvents),
		"FilterLogEvents":       handle(s.filterLogEvents),
		"PutRetentionPolicy":    handle(s.putRetentionPolicy),
		"DeleteRetentionPolicy": handle(s.deleteRetentionPolicy),
		"DeleteLogGroup":        handle(s.deleteLogGroup),
	}
	return s
}

func handle[In any, Out any](f func(ctx context.Context, in *In) (Out, error)) operation {
	return func(ctx context.Context, body []byte) (any, error) {
		in := new(In)
		if len(strings.TrimSpace(string(body))) > 0 {
			if err := json.Unmarshal(body, in); err != nil {
				var te *json.UnmarshalTypeError
				if errors.As(err, &te) {
					return nil, logsError("SerializationException", "Unexpected value at '%s': expected %s", te.Field, te.Type)
				}
				return nil, logsError("SerializationException", "Malformed JSON request body.")
			}
		}
		return f(ctx, in)
	}
}

// IsLogsRequest reports whether r is a CloudWatch Logs API call, for the API to route it here.
func IsLogsRequest(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
}

// ServeHTTP serves one JSON 1.1 call: POST / with X-Amz-Target: Logs_20140328.<Operation>.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := uuid.NewString()
	w.Header()["X-Amzn-Requestid"] = []string{requestID}
	target := r.Header.Get("X-Amz-Target")
	name, ok := strings.CutPrefix(target, targetPrefix)
	op := s.ops[name]
	if !ok || op == nil || r.Method != http.MethodPost {
		s.fail(w, r, requestID, target, logsError("UnknownOperationException",
			"Unknown operation %s %s (X-Amz-Target %q).", r.Method, r.URL.Path, target))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		s.fail(w, r, requestID, name, logsError("SerializationException", "Could not read the request body."))
		return
	}
	if len(body) > maxBody {
		s.fail(w, r, requestID, name, errInvalid("Request body is larger than %d bytes.", maxBody))
		return
	}
	out, err := op(r.Context(), body)
	if err != nil {
		s.fail(w, r, requestID, name, err)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		s.fail(w, r, requestID, name, errInternal(fmt.Errorf("encode %s response: %w", name, err)))
		return
	}
	w.Header().Set("Content-Type", contentType)
	_, _ = w.Write(b)
}

func (s *Service) fail(w http.ResponseWriter, r *http.Request, requestID, op string, err error) {
	e := asError(err)
	if e.Status >= 500 {
		if r.Context().Err() == nil {
			s.log.Error("cloudwatch logs request failed", "operation", op, "request_id", requestID, "err", err)
		}
	} else if s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.log.Debug("cloudwatch logs request rejected", "operation", op, "request_id", requestID, "code", e.Code, "message", e.Message)
	}
	c := *e
	c.JSON11 = true
	apierr.Write(w, &c)
}

// Run removes the records older than their group's retention every ExpireEvery, until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		s.expireAll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (s *Service) expireAll(ctx context.Context) {
	ret, err := s.store.Retentions(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("read log retention", "err", err)
		}
		return
	}
	for fn, pol := range ret {
		if err := s.store.Expire(ctx, fn, s.cut(pol.Days)); err != nil && ctx.Err() == nil {
			s.log.Warn("expire function logs", "function", fn, "err", err)
		}
	}
}

// SetClock replaces the clock retention is measured by (nil: time.Now); for tests that age
// records by days.
func (s *Service) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.clock.Store(&now)
}

func (s *Service) now() time.Time { return (*s.clock.Load())() }

// cut is the oldest time a retention of days keeps (zero: everything).
func (s *Service) cut(days int) time.Time {
	if days <= 0 {
		return time.Time{}
	}
	return s.now().Add(-time.Duration(days) * 24 * time.Hour)
}

// Errors, as CloudWatch Logs sends them: every client error is a 400 in the JSON 1.1 shape.

func logsError(code, format string, args ...any) *apierr.Error {
	return &apierr.Error{Code: code, Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

func errInvalid(format string, args ...any) *apierr.Error {
	return logsError("InvalidParameterException", format, args...)
}

func errNoGroup() *apierr.Error {
	return logsError("ResourceNotFoundException", "The specified log group does not exist.")
}

func errNoStream() *apierr.Error {
	return logsError("ResourceNotFoundException", "The specified log stream does not exist.")
}

func errInternal(cause error) *apierr.Error {
	return (&apierr.Error{Code: "ServiceUnavailableException", Status: http.StatusInternalServerError,
		Message: "The service cannot complete the request."}).Wrap(cause)
}

func asError(err error) *apierr.Error {
	var e *apierr.Error
	if errors.As(err, &e) {
		return e
	}
	return errInternal(err)
}
