package kinesis

import (
	"crypto/md5"
	"encoding/hex"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/esm"
)

// TestShardRanges checks the split of the hash key space against the ranges Kinesis gives a new
// stream (as DescribeStream shows them for 1, 3 and 4 shards).
func TestShardRanges(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want [][2]string
	}{
		{1, [][2]string{{"0", "340282366920938463463374607431768211455"}}},
		{3, [][2]string{
			{"0", "113427455640312821154458202477256070484"},
			{"113427455640312821154458202477256070485", "226854911280625642308916404954512140969"},
			{"226854911280625642308916404954512140970", "340282366920938463463374607431768211455"}}},
		{4, [][2]string{
			{"0", "85070591730234615865843651857942052863"},
			{"85070591730234615865843651857942052864", "170141183460469231731687303715884105727"},
			{"170141183460469231731687303715884105728", "255211775190703847597530955573826158591"},
			{"255211775190703847597530955573826158592", "340282366920938463463374607431768211455"}}},
	} {
		s := esm.NewShards(tc.n)
		for i, w := range tc.want {
			lo, hi := s.Range(i)
			if lo.String() != w[0] || hi.String() != w[1] {
				t.Errorf("%d shards: shard %d = %s–%s, want %s–%s", tc.n, i, lo, hi, w[0], w[1])
			}
			// The ends of a range are in it, and one past its end is in the next.
			if s.Of(lo) != i || s.Of(hi) != i {
				t.Errorf("%d shards: the ends of shard %d map to %d and %d", tc.n, i, s.Of(lo), s.Of(hi))
			}
			if i+1 < tc.n && s.Of(new(big.Int).Add(hi, big.NewInt(1))) != i+1 {
				t.Errorf("%d shards: one past shard %d's end is not in shard %d", tc.n, i, i+1)
			}
		}
	}
}

// TestPartitionKeyShard checks that a partition key goes where its MD5 says: with 4 shards the
// hash key's top two bits are the shard; an explicit hash key overrides the partition key.
func TestPartitionKeyShard(t *testing.T) {
	s := esm.NewShards(4)
	for _, key := range []string{"a", "k0", "k1", "k19", "user-42", "key with space", "ü"} {
		sum := md5.Sum([]byte(key))
		if got := esm.HashKey(key).Text(16); strings.TrimLeft(hex.EncodeToString(sum[:]), "0") != got {
			t.Errorf("HashKey(%q) = %s, want the MD5 %x", key, got, sum)
		}
		if got, want := s.RecordShard(key, nil), int(sum[0]>>6); got != want {
			t.Errorf("shard of %q = %d, want %d", key, got, want)
		}
	}
	h := map[string][]string{esm.HashKeyHeader: {"170141183460469231731687303715884105728"}}
	if got := s.RecordShard("a", h); got != 2 {
		t.Errorf("explicit hash key 2^127: shard %d, want 2", got)
	}
}

// TestSequenceNumbers checks that sequence numbers sort as strings as they do as numbers and
// read back.
func TestSequenceNumbers(t *testing.T) {
	seqs := []uint64{1, 2, 9, 10, 99, 100, 12345, 1 << 40, 1<<64 - 1}
	var strs []string
	for _, q := range seqs {
		s := esm.SequenceNumber(q)
		if back, ok := esm.ParseSequenceNumber(s); !ok || back != q {
			t.Errorf("ParseSequenceNumber(%s) = %d, %v", s, back, ok)
		}
		strs = append(strs, s)
	}
	if !slices.IsSorted(strs) {
		t.Errorf("sequence numbers do not sort as strings: %v", strs)
	}
	for _, bad := range []string{"", "x1", "-1", "1.5", "99999999999999999999999"} {
		if _, ok := esm.ParseSequenceNumber(bad); ok {
			t.Errorf("ParseSequenceNumber(%q) accepted", bad)
		}
	}
}

// TestIterators checks that a shard iterator reads back, that garbage is refused, and that it
// expires after 5 minutes with Kinesis's error.
func TestIterators(t *testing.T) {
	issued := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	it := iterator{V: iteratorVersion, Stream: "events", Created: 42, Shard: 3, Seq: 1234, Issued: issued.UnixMilli()}
	got, ok := parseIterator(it.encode())
	if !ok || got != it {
		t.Fatalf("parseIterator(encode(%+v)) = %+v, %v", it, got, ok)
	}
	for _, bad := range []string{"", "not-base64!", encodeToken([]byte(`{"v":2,"s":"x"}`)), encodeToken([]byte(`{"v":1}`)), it.encode()[1:]} {
		if _, ok := parseIterator(bad); ok {
			t.Errorf("parseIterator(%q) accepted", bad)
		}
	}
	if err := expired(it.Issued, issued.Add(IteratorTTL)); err != nil {
		t.Errorf("an iterator 5 minutes old: %v", err)
	}
	err := expired(it.Issued, issued.Add(IteratorTTL+time.Millisecond))
	if err == nil || !strings.HasPrefix(err.Error(), "ExpiredIteratorException: Iterator expired. The iterator was created at time Mon Dec 07 03:00:00 UTC 2026") {
		t.Errorf("an iterator 5 minutes and 1 ms old: %v", err)
	}
}

// TestSubjectKey checks which partition keys travel as the subject's tail.
func TestSubjectKey(t *testing.T) {
	for key, want := range map[string]bool{"k1": true, "a.b": true, "user-42": true,
		"": false, "a b": false, "a..b": false, ".a": false, "a.": false, "*": false, "a>": false, "ü": false} {
		if got := subjectKey(key); got != want {
			t.Errorf("subjectKey(%q) = %v, want %v", key, got, want)
		}
		if key == "" {
			continue // refused before it would be a message (checkRecord)
		}
		if m := message("events", key, "", nil); want != (m.Header.Get(esm.PartitionKeyHeader) == "") ||
			esm.RecordKey("events", m.Subject, m.Header) != key {
			t.Errorf("message for %q: subject %s header %v", key, m.Subject, m.Header)
		}
	}
}
