// Package kinesis is the Kinesis Data Streams API (JSON 1.1, X-Amz-Target
// Kinesis_20131202.<Op>, SigV4 name "kinesis") over Flint's streams: what Kinesis producers and
// consumers written for AWS (the SDKs, the AWS CLI) call, unmodified, on Flint's one endpoint:
// CreateStream (provisioned or on-demand: 4 shards), DescribeStream, DescribeStreamSummary,
// ListStreams, ListShards, DeleteStream, Increase/DecreaseStreamRetentionPeriod, PutRecord,
// PutRecords, GetShardIterator, GetRecords and the stream tag operations. aws-sdk-go-v2's
// kinesis client (v1.57.0) and the AWS CLI send JSON 1.1, not CBOR, so no client option is
// needed.
//
// # Streams, shards and sequence numbers
//
// A Kinesis stream NAME is the JetStream stream NAME that Flint's stream mappings read
// (internal/esm): limits retention with MaxAge the retention period (24 h by default), records
// under flint.streams.NAME.KEY with partition key KEY. A record put through this API and one
// published by a NATS client to that subject are the same record, and mappings over
// arn:flint:jetstream:…:stream/NAME and arn:aws:kinesis:…:stream/NAME read the same data.
//
// The stream's own JetStream configuration holds what Kinesis knows of it, in its metadata:
// the shard count (esm.ShardsMetadata), the capacity mode, the creation time and the tags.
// Keeping them there rather than in a bucket of their own makes a stream and its description
// one object, created, changed and deleted in one step, with no state to reconcile after a
// crash between two writes; the retention period is the stream's MaxAge itself.
//
// Shards are not stored apart either. ShardCount shards split the 128-bit hash key space evenly
// (esm.Shards, as Kinesis splits a new stream); a record's shard is derived from its partition
// key's MD5 (or its explicit hash key) whenever it is read. That keeps one subject per partition
// key, the contract NATS producers and the existing mappings already have, and costs GetRecords
// a scan of the stream's other shards' records: bounded per call (maxScan), after which the
// call answers what it found with a NextShardIterator past what it read, as Kinesis may.
// Resharding (UpdateShardCount, SplitShard, MergeShards) is not served, so the shard of a
// record never changes. A partition key that cannot be a subject's tail (spaces, wildcards,
// empty tokens, non-ASCII) is carried in the esm.PartitionKeyHeader header, under a subject
// made of its MD5; an explicit hash key in esm.HashKeyHeader.
//
// A record's sequence number is its JetStream stream sequence, zero-padded to 20 digits
// (esm.SequenceNumber), so sequence numbers are unique in the stream, increase in each shard
// and sort as strings as they do as numbers. Shard iterators are opaque tokens naming the
// stream (and its creation, so a recreated stream's iterators are refused), the shard and the
// next sequence to read; they expire 5 minutes after they are issued, as Kinesis's do.
//
// The package owns the wire and the mapping of Kinesis's model onto JetStream; it neither routes
// requests (the API asks IsKinesisRequest) nor checks signatures, and it runs no goroutine.
package kinesis

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/awsjson"
)

const (
	targetPrefix = "Kinesis_20131202."
	// maxBody bounds a request: PutRecords carries up to 5 MiB of records, base64 in JSON.
	maxBody = 8 << 20
	// IteratorTTL is how long a shard iterator stays good, as Kinesis's.
	IteratorTTL = 5 * time.Minute
)

// Config configures New. JS is required.
type Config struct {
	JS        jetstream.JetStream
	Region    string // in ARNs; "us-east-1" if empty
	AccountID string // in ARNs; "000000000000" if empty
	Log       *slog.Logger
	Now       func() time.Time // the clock iterators expire by; time.Now if nil
}

// Service serves the Kinesis Data Streams API.
type Service struct {
	js      jetstream.JetStream
	region  string
	account string
	log     *slog.Logger
	clock   atomic.Pointer[func() time.Time]
	wire    awsjson.Service
}

// New returns the service over cfg.JS.
func New(cfg Config) *Service {
	s := &Service{js: cfg.JS, region: cfg.Region, account: cfg.AccountID, log: cfg.Log}
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
	s.wire = awsjson.Service{Prefix: targetPrefix, MaxBody: maxBody, Failed: awsjson.LogFailures(s.log, "kinesis"), Internal: errInternal,
		TooLarge: func(n int) *apierr.Error { return errInvalid("Request body is larger than %d bytes.", n) }}
	s.wire.Ops = map[string]awsjson.Operation{
		"CreateStream":                  awsjson.Handle(s.createStream),
		"DescribeStream":                awsjson.Handle(s.describeStream),
		"DescribeStreamSummary":         awsjson.Handle(s.describeStreamSummary),
		"ListStreams":                   awsjson.Handle(s.listStreams),
		"ListShards":                    awsjson.Handle(s.listShards),
		"DeleteStream":                  awsjson.Handle(s.deleteStream),
		"IncreaseStreamRetentionPeriod": awsjson.Handle(s.increaseRetention),
		"DecreaseStreamRetentionPeriod": awsjson.Handle(s.decreaseRetention),
		"PutRecord":                     awsjson.Handle(s.putRecord),
		"PutRecords":                    awsjson.Handle(s.putRecords),
		"GetShardIterator":              awsjson.Handle(s.getShardIterator),
		"GetRecords":                    awsjson.Handle(s.getRecords),
		"AddTagsToStream":               awsjson.Handle(s.addTags),
		"ListTagsForStream":             awsjson.Handle(s.listTags),
		"RemoveTagsFromStream":          awsjson.Handle(s.removeTags),
	}
	return s
}

// IsKinesisRequest reports whether r is a Kinesis API call, for the API to route it here.
func IsKinesisRequest(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
}

// ServeHTTP serves one JSON 1.1 call: POST / with X-Amz-Target: Kinesis_20131202.<Operation>.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.wire.ServeHTTP(w, r) }

// SetClock replaces the clock iterators expire by (nil: time.Now); for tests.
func (s *Service) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.clock.Store(&now)
}

func (s *Service) now() time.Time { return (*s.clock.Load())() }

// Errors, as Kinesis sends them: every client error is a 400 in the JSON 1.1 shape.

func kinesisError(code, format string, args ...any) *apierr.Error {
	return &apierr.Error{Code: code, Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

func errInvalid(format string, args ...any) *apierr.Error {
	return kinesisError("InvalidArgumentException", format, args...)
}

func errValidation(format string, args ...any) *apierr.Error {
	return kinesisError("ValidationException", "1 validation error detected: "+format, args...)
}

func (s *Service) errNoStream(name string) *apierr.Error {
	return kinesisError("ResourceNotFoundException", "Stream %s under account %s not found.", name, s.account)
}

func (s *Service) errInUse(name string) *apierr.Error {
	return kinesisError("ResourceInUseException", "Stream %s under account %s already exists.", name, s.account)
}

func errInternal(cause error) *apierr.Error {
	return (&apierr.Error{Code: "InternalFailure", Status: http.StatusInternalServerError,
		Message: "Internal service failure."}).Wrap(cause)
}
