// Package cwlogs is the CloudWatch Logs API (JSON 1.1, X-Amz-Target Logs_20140328.<Op>, SigV4
// name "logs") over the function logs the logs package keeps: what `aws logs tail`, `aws logs
// filter-log-events` and the SDKs read. Each function NAME has the log group /aws/lambda/NAME,
// or the custom group its LoggingConfig.LogGroup names, which several functions may share (while
// the group has records or a retention policy), with a stream per execution environment named
// as Lambda names them (YYYY/MM/DD/[VERSION]<32 hex>; in a custom group
// YYYY/MM/DD/NAME[VERSION][<32 hex>]), and each line of an invocation's output
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
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/awsjson"
	"github.com/flint-run/flint/internal/logs"
)

const (
	targetPrefix = "Logs_20140328."
	maxBody      = 1 << 20
	// DefaultExpireEvery is how often Run removes records older than their group's retention.
	DefaultExpireEvery = 10 * time.Minute
)

// Store is what the API needs of the log store (logs.Store satisfies it). Groups are named as
// CloudWatch Logs names them: /aws/lambda/NAME, or a function's custom LoggingConfig.LogGroup.
type Store interface {
	Groups(ctx context.Context) ([]logs.Group, error)
	Group(ctx context.Context, group string) (logs.Group, bool, error)
	ScanGroup(ctx context.Context, group string, from logs.From, visit func(logs.Record) bool) error
	Retention(ctx context.Context, group string) (int, error)
	Retentions(ctx context.Context) (map[string]logs.Policy, error)
	SetRetention(ctx context.Context, group string, days int) error
	Expire(ctx context.Context, group string, before time.Time) error
	DeleteGroup(ctx context.Context, group string) error
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
	wire    awsjson.Service
}

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
	s.wire = awsjson.Service{Prefix: targetPrefix, MaxBody: maxBody, Failed: awsjson.LogFailures(s.log, "cloudwatch logs"), Internal: errInternal,
		TooLarge: func(n int) *apierr.Error { return errInvalid("Request body is larger than %d bytes.", n) }}
	s.wire.Ops = map[string]awsjson.Operation{
		"DescribeLogGroups":     awsjson.Handle(s.describeLogGroups),
		"DescribeLogStreams":    awsjson.Handle(s.describeLogStreams),
		"GetLogEvents":          awsjson.Handle(s.getLogEvents),
		"FilterLogEvents":       awsjson.Handle(s.filterLogEvents),
		"PutRetentionPolicy":    awsjson.Handle(s.putRetentionPolicy),
		"DeleteRetentionPolicy": awsjson.Handle(s.deleteRetentionPolicy),
		"DeleteLogGroup":        awsjson.Handle(s.deleteLogGroup),
	}
	return s
}

// IsLogsRequest reports whether r is a CloudWatch Logs API call, for the API to route it here.
func IsLogsRequest(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
}

// ServeHTTP serves one JSON 1.1 call: POST / with X-Amz-Target: Logs_20140328.<Operation>.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.wire.ServeHTTP(w, r) }

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
	for g, pol := range ret {
		if err := s.store.Expire(ctx, g, s.cut(pol.Days)); err != nil && ctx.Err() == nil {
			s.log.Warn("expire function logs", "log_group", g, "err", err)
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
