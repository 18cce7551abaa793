package esm

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Kinesis streams. A stream created through the Kinesis API (internal/kinesis) is a Flint stream
// like any other (records under flint.streams.NAME.KEY, limits retention) whose JetStream
// configuration carries its shard count in its metadata (ShardsMetadata). Its records are
// spread over the shards as Kinesis spreads them: the 128-bit hash key space split evenly, a
// record's hash key being the MD5 of its partition key (as a big-endian integer) or the
// explicit hash key its producer gave. The shard is derived when reading, never stored, so a
// record published by a NATS client to flint.streams.NAME.KEY lands on the shard Kinesis would
// have put it on. A mapping over arn:aws:kinesis:REGION:ACCOUNT:stream/NAME runs
// ParallelizationFactor lanes per shard, names each record's real shard in its eventID, and
// gives the sequence number the Kinesis API gives (SequenceNumber).
const (
	// ShardsMetadata is the JetStream stream metadata key holding a Kinesis stream's shard count.
	ShardsMetadata = "flint.kinesis.shards"
	// PartitionKeyHeader carries a record's partition key when it cannot be the subject's tail
	// (a Kinesis partition key may hold spaces, wildcards, empty tokens…).
	PartitionKeyHeader = "Flint-Partition-Key"
	// HashKeyHeader carries a record's explicit hash key (decimal), which decides its shard
	// instead of its partition key's MD5.
	HashKeyHeader = "Flint-Explicit-Hash-Key"
)

var kinesisARN = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^arn:aws:kinesis:[a-z0-9-]*:\d{0,12}:stream/([a-zA-Z0-9_-]{1,64})$`)
})

// IsKinesis reports whether arn names a stream of the Kinesis API
// (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME).
func IsKinesis(arn string) bool { return kinesisARN().MatchString(arn) }

// KinesisARN is the ARN of Kinesis stream name.
func KinesisARN(region, account, name string) string {
	return "arn:aws:kinesis:" + region + ":" + account + ":stream/" + name
}

// SequenceNumber renders a stream sequence as the Kinesis API and Kinesis mappings show it:
// zero-padded decimal, so that sequence numbers sort as strings as they do as numbers.
func SequenceNumber(seq uint64) string { return fmt.Sprintf("%020d", seq) }

// ParseSequenceNumber reads a SequenceNumber (leading zeros optional).
func ParseSequenceNumber(s string) (uint64, bool) {
	if s == "" || len(s) > 64 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimLeft(s, "0"), 10, 64)
	if strings.TrimLeft(s, "0") == "" {
		return 0, true
	}
	return n, err == nil
}

// ShardID names shard i as Kinesis does.
func ShardID(i int) string { return fmt.Sprintf("shardId-%012d", i) }

// MaxHashKey is 2^128-1, the top of the hash key space.
var MaxHashKey = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

// HashKey is the hash key Kinesis gives a partition key: its MD5 as a 128-bit big-endian integer.
func HashKey(partitionKey string) *big.Int {
	sum := md5.Sum([]byte(partitionKey))
	return new(big.Int).SetBytes(sum[:])
}

// Shards is the even split of the hash key space into N shards, as Kinesis makes it for a new
// stream: shard i starts at i·⌊2^128/N⌋ and ends where the next begins, the last at 2^128-1.
type Shards struct {
	N     int
	width *big.Int
}

// NewShards splits the hash key space into n (≥ 1) shards.
func NewShards(n int) Shards {
	n = max(n, 1)
	w := new(big.Int).Lsh(big.NewInt(1), 128)
	return Shards{N: n, width: w.Div(w, big.NewInt(int64(n)))}
}

// Range is shard i's StartingHashKey and EndingHashKey.
func (s Shards) Range(i int) (start, end *big.Int) {
	start = new(big.Int).Mul(s.width, big.NewInt(int64(i)))
	if i == s.N-1 {
		return start, new(big.Int).Set(MaxHashKey)
	}
	end = new(big.Int).Mul(s.width, big.NewInt(int64(i+1)))
	return start, end.Sub(end, big.NewInt(1))
}

// Of is the shard hash key h falls in.
func (s Shards) Of(h *big.Int) int {
	q := new(big.Int).Div(h, s.width)
	if !q.IsInt64() || q.Int64() >= int64(s.N) {
		return s.N - 1
	}
	return int(q.Int64())
}

// RecordShard is the shard of a record with partition key key and headers h: its explicit hash
// key when it has one, else its partition key's MD5.
func (s Shards) RecordShard(key string, h nats.Header) int {
	if s.N <= 1 {
		return 0
	}
	if e := h.Get(HashKeyHeader); e != "" {
		if v, ok := new(big.Int).SetString(e, 10); ok && v.Sign() >= 0 && v.Cmp(MaxHashKey) <= 0 {
			return s.Of(v)
		}
	}
	return s.Of(HashKey(key))
}

// RecordKey is the partition key of a record of stream name published to subject with headers
// h: PartitionKeyHeader when set, else what follows flint.streams.NAME. (else the subject).
func RecordKey(name, subject string, h nats.Header) string {
	if k := h.Get(PartitionKeyHeader); k != "" {
		return k
	}
	if k, ok := strings.CutPrefix(subject, StreamSubject(name)+"."); ok {
		return k
	}
	return subject
}

// StreamShards reads a Kinesis stream's shard count from its JetStream metadata (0: the stream
// is not a Kinesis stream).
func StreamShards(meta map[string]string) int {
	n, err := strconv.Atoi(meta[ShardsMetadata])
	if err != nil || n < 1 {
		return 0
	}
	return n
}

// ErrNotKinesis: the stream a Kinesis ARN names is not a stream of the Kinesis API.
var ErrNotKinesis = errors.New("not a Kinesis stream")

// CheckKinesis reports whether stream name exists as a Kinesis stream (one the Kinesis API
// created): a mapping over arn:aws:kinesis:…:stream/NAME never creates its stream.
func CheckKinesis(ctx context.Context, js jetstream.JetStream, name string) error {
	st, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("stream %s: %w", name, ErrNotKinesis)
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	if StreamShards(st.CachedInfo().Config.Metadata) == 0 {
		return fmt.Errorf("stream %s: %w", name, ErrNotKinesis)
	}
	return nil
}
