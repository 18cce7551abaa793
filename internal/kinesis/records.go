package kinesis

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/esm"
)

const (
	maxRecordBytes  = 1 << 20 // a record's data, as Kinesis's
	maxPutRecords   = 500
	maxPutBytes     = 5 << 20 // a PutRecords request's data and partition keys
	maxPartitionKey = 256
	maxGetLimit     = 10000
	maxGetBytes     = 10 << 20 // a GetRecords answer's data, as Kinesis's
	maxScan         = 50000    // records read by one GetRecords, its shard's and the others'
	fetchBatch      = 1000
	iteratorVersion = 1
	// readerIdle is when the server forgets a call's reader (an ephemeral consumer): soon, as
	// every GetRecords makes one (instead of nats.go's 5 minutes).
	readerIdle       = 5 * time.Second
	iteratorTTLMilli = int64(IteratorTTL / time.Millisecond)
)

func encodeToken(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func decodeToken(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// iterator is a shard iterator's content: a position in one shard of one incarnation of a
// stream, and when it was issued.
type iterator struct {
	V       int    `json:"v"`
	Stream  string `json:"s"`
	Created int64  `json:"c"` // the stream's creation (Unix ms): a recreated stream is another
	Shard   int    `json:"h"`
	Seq     uint64 `json:"q"` // the next sequence to read
	Issued  int64  `json:"t"` // Unix ms
}

func (it iterator) encode() string {
	b, _ := json.Marshal(it)
	return encodeToken(b)
}

// parseIterator reads a shard iterator; its expiry is checked by the caller, which knows now.
func parseIterator(s string) (iterator, bool) {
	var it iterator
	b, err := decodeToken(s)
	if err != nil || json.Unmarshal(b, &it) != nil || it.V != iteratorVersion || it.Stream == "" || it.Shard < 0 {
		return iterator{}, false
	}
	return it, true
}

// expired says whether an iterator issued at issued (Unix ms) is past its TTL at now, and if
// so the error Kinesis gives.
func expired(issued int64, now time.Time) error {
	if now.UnixMilli()-issued <= iteratorTTLMilli {
		return nil
	}
	const layout = "Mon Jan 02 15:04:05 MST 2006"
	return kinesisError("ExpiredIteratorException", "Iterator expired. The iterator was created at time %s while right now it is %s which is further in the future than the tolerated delay of %d milliseconds.",
		time.UnixMilli(issued).UTC().Format(layout), now.UTC().Format(layout), iteratorTTLMilli)
}

// subjectKey reports whether a partition key can be a subject's tail: printable ASCII without
// spaces or wildcards, and no empty token.
func subjectKey(k string) bool {
	if k == "" || k[0] == '.' || k[len(k)-1] == '.' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || c == '*' || c == '>' || (c == '.' && k[i+1] == '.') {
			return false
		}
	}
	return true
}

// message is the JetStream message of a record of stream name.
func message(name, key, explicit string, data []byte) *nats.Msg {
	m := &nats.Msg{Data: data}
	if subjectKey(key) {
		m.Subject = esm.StreamSubject(name) + "." + key
	} else {
		sum := md5.Sum([]byte(key))
		m.Subject = esm.StreamSubject(name) + ".~" + hex.EncodeToString(sum[:])
		m.Header = nats.Header{esm.PartitionKeyHeader: []string{key}}
	}
	if explicit != "" {
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		m.Header.Set(esm.HashKeyHeader, explicit)
	}
	return m
}

// checkRecord validates one record to put; field is its path in the request ("" for PutRecord,
// "records.N.member." for PutRecords).
func checkRecord(field, key, explicit string, data []byte) error {
	if len(data) > maxRecordBytes {
		return errValidation("Value at '%sdata' failed to satisfy constraint: Member must have length less than or equal to %d", field, maxRecordBytes)
	}
	if n := len([]rune(key)); n < 1 || n > maxPartitionKey {
		return errValidation("Value '%s' at '%spartitionKey' failed to satisfy constraint: Member must have length between 1 and %d", key, field, maxPartitionKey)
	}
	for _, c := range key {
		if c < ' ' || c == 0x7f {
			return errInvalid("Flint does not take control characters in partition keys (they travel in a message header).")
		}
	}
	if explicit != "" {
		v, ok := new(big.Int).SetString(explicit, 10)
		if !ok || v.Sign() < 0 || v.Cmp(esm.MaxHashKey) > 0 {
			return errInvalid("Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was %s", explicit)
		}
	}
	return nil
}

func recordShard(k *stream, key, explicit string) int {
	var h nats.Header
	if explicit != "" {
		h = nats.Header{esm.HashKeyHeader: []string{explicit}}
	}
	return k.shards.RecordShard(key, h)
}

// PutRecord

type putRecordInput struct {
	streamRef
	PartitionKey              string `json:"PartitionKey"`
	Data                      []byte `json:"Data"`
	ExplicitHashKey           string `json:"ExplicitHashKey"`
	SequenceNumberForOrdering string `json:"SequenceNumberForOrdering"`
}

type putRecordOutput struct {
	ShardId        string `json:"ShardId"`
	SequenceNumber string `json:"SequenceNumber"`
	EncryptionType string `json:"EncryptionType"`
}

func (s *Service) putRecord(ctx context.Context, in *putRecordInput) (*putRecordOutput, error) {
	name, err := nameOf(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	if in.Data == nil {
		return nil, errValidation("Value null at 'data' failed to satisfy constraint: Member must not be null")
	}
	if err := checkRecord("", in.PartitionKey, in.ExplicitHashKey, in.Data); err != nil {
		return nil, err
	}
	k, err := s.load(ctx, name)
	if err != nil {
		return nil, err
	}
	ack, err := s.js.PublishMsg(ctx, message(name, in.PartitionKey, in.ExplicitHashKey, in.Data), jetstream.WithExpectStream(name))
	if err != nil {
		return nil, s.publishError(name, err)
	}
	return &putRecordOutput{ShardId: esm.ShardID(recordShard(k, in.PartitionKey, in.ExplicitHashKey)),
		SequenceNumber: esm.SequenceNumber(ack.Sequence), EncryptionType: "NONE"}, nil
}

// publishError is a failed publish as Kinesis would say it: the stream gone meanwhile, or a
// failure to write, which Kinesis reports as throughput exceeded (the caller retries).
func (s *Service) publishError(name string, err error) error {
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return s.errNoStream(name)
	}
	if throttled(err) {
		return kinesisError("ProvisionedThroughputExceededException", "Rate exceeded for stream %s under account %s.", name, s.account)
	}
	return errInternal(err)
}

// throttled reports whether a publish failed for want of capacity (the server slow to store,
// too many publishes in flight): Kinesis's ProvisionedThroughputExceededException, which
// producers retry with backoff.
func throttled(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrTooManyStalledMsgs)
}

// PutRecords

type putRecordsEntry struct {
	PartitionKey    string `json:"PartitionKey"`
	Data            []byte `json:"Data"`
	ExplicitHashKey string `json:"ExplicitHashKey"`
}

type putRecordsInput struct {
	streamRef
	Records []putRecordsEntry `json:"Records"`
}

type putRecordsResult struct {
	SequenceNumber string `json:"SequenceNumber,omitempty"`
	ShardId        string `json:"ShardId,omitempty"`
	ErrorCode      string `json:"ErrorCode,omitempty"`
	ErrorMessage   string `json:"ErrorMessage,omitempty"`
}

type putRecordsOutput struct {
	FailedRecordCount int                `json:"FailedRecordCount"`
	Records           []putRecordsResult `json:"Records"`
	EncryptionType    string             `json:"EncryptionType"`
}

func (s *Service) putRecords(ctx context.Context, in *putRecordsInput) (*putRecordsOutput, error) {
	name, err := nameOf(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	if in.Records == nil {
		return nil, errValidation("Value null at 'records' failed to satisfy constraint: Member must not be null")
	}
	if n := len(in.Records); n < 1 || n > maxPutRecords {
		rel := "greater than or equal to 1"
		if n > maxPutRecords {
			rel = "less than or equal to 500"
		}
		return nil, errValidation("Value at 'records' failed to satisfy constraint: Member must have length %s", rel)
	}
	total := 0
	for i, r := range in.Records {
		if r.Data == nil {
			return nil, errValidation("Value null at 'records.%d.member.data' failed to satisfy constraint: Member must not be null", i+1)
		}
		if err := checkRecord("records."+strconv.Itoa(i+1)+".member.", r.PartitionKey, r.ExplicitHashKey, r.Data); err != nil {
			return nil, err
		}
		total += len(r.Data) + len(r.PartitionKey)
	}
	if total > maxPutBytes {
		return nil, errInvalid("Records size exceeds 5 MB limit")
	}
	k, err := s.load(ctx, name)
	if err != nil {
		return nil, err
	}
	// Published in order, asynchronously, then awaited: one connection publishes in order, so the
	// records of one partition key keep the request's order in the stream.
	futures := make([]jetstream.PubAckFuture, len(in.Records))
	out := &putRecordsOutput{Records: make([]putRecordsResult, len(in.Records)), EncryptionType: "NONE"}
	fail := func(i int, err error) {
		out.FailedRecordCount++
		code, msg := "InternalFailure", "Internal service failure."
		if throttled(err) {
			r := in.Records[i]
			code, msg = "ProvisionedThroughputExceededException", "Rate exceeded for shard "+esm.ShardID(recordShard(k, r.PartitionKey, r.ExplicitHashKey))+" in stream "+name+" under account "+s.account+"."
		}
		s.log.Warn("put record", "stream", name, "err", err)
		out.Records[i] = putRecordsResult{ErrorCode: code, ErrorMessage: msg}
	}
	for i, r := range in.Records {
		f, err := s.js.PublishMsgAsync(message(name, r.PartitionKey, r.ExplicitHashKey, r.Data), jetstream.WithExpectStream(name))
		if err != nil {
			fail(i, err)
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			r := in.Records[i]
			out.Records[i] = putRecordsResult{ShardId: esm.ShardID(recordShard(k, r.PartitionKey, r.ExplicitHashKey)),
				SequenceNumber: esm.SequenceNumber(ack.Sequence)}
		case err := <-f.Err():
			fail(i, err)
		case <-ctx.Done():
			fail(i, ctx.Err())
		}
	}
	return out, nil
}

// GetShardIterator

type getShardIteratorInput struct {
	streamRef
	ShardId                string   `json:"ShardId"`
	ShardIteratorType      string   `json:"ShardIteratorType"`
	StartingSequenceNumber string   `json:"StartingSequenceNumber"`
	Timestamp              *float64 `json:"Timestamp"`
}

func (s *Service) getShardIterator(ctx context.Context, in *getShardIteratorInput) (any, error) {
	name, err := nameOf(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	switch in.ShardIteratorType {
	case "TRIM_HORIZON", "LATEST", "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER", "AT_TIMESTAMP":
	default:
		return nil, errValidation("Value '%s' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, AT_SEQUENCE_NUMBER, AT_TIMESTAMP, TRIM_HORIZON, LATEST]", in.ShardIteratorType)
	}
	if in.ShardId == "" {
		return nil, errValidation("Value null at 'shardId' failed to satisfy constraint: Member must not be null")
	}
	bySeq := in.ShardIteratorType == "AT_SEQUENCE_NUMBER" || in.ShardIteratorType == "AFTER_SEQUENCE_NUMBER"
	if bySeq != (in.StartingSequenceNumber != "") {
		return nil, errInvalid("StartingSequenceNumber must be given with ShardIteratorType AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER, and only with them.")
	}
	if (in.ShardIteratorType == "AT_TIMESTAMP") != (in.Timestamp != nil) {
		return nil, errInvalid("Timestamp must be given with ShardIteratorType AT_TIMESTAMP, and only with it.")
	}
	k, err := s.load(ctx, name)
	if err != nil {
		return nil, err
	}
	shard, ok := k.shardIndex(in.ShardId)
	if !ok {
		return nil, kinesisError("ResourceNotFoundException", "Shard %s in stream %s under account %s does not exist", in.ShardId, name, s.account)
	}
	state := k.info.State
	it := iterator{V: iteratorVersion, Stream: name, Created: k.created.UnixMilli(), Shard: shard, Issued: s.now().UnixMilli()}
	switch in.ShardIteratorType {
	case "TRIM_HORIZON":
		it.Seq = max(state.FirstSeq, 1)
	case "LATEST":
		it.Seq = state.LastSeq + 1
	case "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER":
		seq, ok := esm.ParseSequenceNumber(in.StartingSequenceNumber)
		if !ok || seq == 0 {
			return nil, errInvalid("StartingSequenceNumber %s used in GetShardIterator on shard %s in stream %s under account %s is invalid.", in.StartingSequenceNumber, esm.ShardID(shard), name, s.account)
		}
		if err := s.checkSeqShard(ctx, k, shard, seq, in.StartingSequenceNumber); err != nil {
			return nil, err
		}
		it.Seq = seq
		if in.ShardIteratorType == "AFTER_SEQUENCE_NUMBER" {
			it.Seq++
		}
	case "AT_TIMESTAMP":
		it.Seq, err = s.seqAt(ctx, k, time.UnixMilli(int64(*in.Timestamp*1000)))
		if err != nil {
			return nil, err
		}
	}
	return map[string]string{"ShardIterator": it.encode()}, nil
}

// checkSeqShard refuses a sequence number of another shard (or past the stream's end), as
// Kinesis does; one that has aged out of the stream is a position like any other.
func (s *Service) checkSeqShard(ctx context.Context, k *stream, shard int, seq uint64, given string) error {
	invalid := errInvalid("StartingSequenceNumber %s used in GetShardIterator on shard %s in stream %s under account %s is invalid because it did not come from this stream.", given, esm.ShardID(shard), k.name, s.account)
	if seq > k.info.State.LastSeq {
		return invalid
	}
	m, err := k.st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return errInternal(err)
	}
	key := esm.RecordKey(k.name, m.Subject, m.Header)
	if k.shards.RecordShard(key, m.Header) != shard {
		return invalid
	}
	return nil
}

// seqAt is the first sequence stored at or after t (the next one to come if none is).
func (s *Service) seqAt(ctx context.Context, k *stream, t time.Time) (uint64, error) {
	cons, err := s.js.OrderedConsumer(ctx, k.name, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &t, InactiveThreshold: readerIdle})
	if err != nil {
		return 0, errInternal(err)
	}
	b, err := cons.FetchNoWait(1)
	if err != nil {
		return 0, errInternal(err)
	}
	for msg := range b.Messages() {
		if md, err := msg.Metadata(); err == nil {
			return md.Sequence.Stream, nil
		}
	}
	return k.info.State.LastSeq + 1, nil
}

// GetRecords

type getRecordsInput struct {
	ShardIterator string `json:"ShardIterator"`
	Limit         *int   `json:"Limit"`
	StreamARN     string `json:"StreamARN"`
}

type recordOut struct {
	SequenceNumber              string  `json:"SequenceNumber"`
	ApproximateArrivalTimestamp float64 `json:"ApproximateArrivalTimestamp"`
	Data                        []byte  `json:"Data"`
	PartitionKey                string  `json:"PartitionKey"`
}

type getRecordsOutput struct {
	Records            []recordOut `json:"Records"`
	NextShardIterator  string      `json:"NextShardIterator"`
	MillisBehindLatest int64       `json:"MillisBehindLatest"`
}

func (s *Service) getRecords(ctx context.Context, in *getRecordsInput) (*getRecordsOutput, error) {
	if in.ShardIterator == "" {
		return nil, errValidation("Value null at 'shardIterator' failed to satisfy constraint: Member must not be null")
	}
	limit := maxGetLimit
	if in.Limit != nil {
		if *in.Limit < 1 || *in.Limit > maxGetLimit {
			return nil, errValidation("Value '%d' at 'limit' failed to satisfy constraint: Member must have value between 1 and 10000", *in.Limit)
		}
		limit = *in.Limit
	}
	it, ok := parseIterator(in.ShardIterator)
	if !ok {
		return nil, errInvalid("Invalid ShardIterator.")
	}
	now := s.now()
	if err := expired(it.Issued, now); err != nil {
		return nil, err
	}
	k, err := s.load(ctx, it.Stream)
	if err != nil {
		return nil, err
	}
	if k.created.UnixMilli() != it.Created || it.Shard >= k.shards.N {
		return nil, kinesisError("ResourceNotFoundException", "Shard %s in stream %s under account %s does not exist", esm.ShardID(it.Shard), it.Stream, s.account)
	}
	state := k.info.State
	out := &getRecordsOutput{Records: []recordOut{}}
	pos := max(it.Seq, state.FirstSeq, 1)
	if pos <= state.LastSeq {
		var lastRead time.Time
		pos, lastRead, err = s.scan(ctx, k, it.Shard, pos, limit, out)
		if err != nil {
			return nil, err
		}
		if pos <= state.LastSeq && !lastRead.IsZero() {
			out.MillisBehindLatest = max(state.LastTime.Sub(lastRead).Milliseconds(), 0)
		}
	}
	next := it
	next.Seq, next.Issued = pos, now.UnixMilli()
	out.NextShardIterator = next.encode()
	return out, nil
}

// scan reads the stream from pos, keeping shard's records, until limit records, maxGetBytes of
// data or maxScan records read, or the end of the stream; it returns the next position to read
// and the arrival of the last record read.
func (s *Service) scan(ctx context.Context, k *stream, shard int, pos uint64, limit int, out *getRecordsOutput) (uint64, time.Time, error) {
	cons, err := s.js.OrderedConsumer(ctx, k.name, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: pos, InactiveThreshold: readerIdle})
	if err != nil {
		return pos, time.Time{}, errInternal(err)
	}
	var lastRead time.Time
	scanned, bytes := 0, 0
	for scanned < maxScan {
		b, err := cons.FetchNoWait(min(fetchBatch, maxScan-scanned))
		if err != nil {
			return pos, lastRead, errInternal(err)
		}
		got := 0
		for msg := range b.Messages() {
			got++
			md, err := msg.Metadata()
			if err != nil {
				continue
			}
			if len(out.Records) >= limit || bytes >= maxGetBytes {
				continue // drain the batch; pos stays at the first record not taken
			}
			scanned++
			key := esm.RecordKey(k.name, msg.Subject(), msg.Headers())
			if k.shards.RecordShard(key, msg.Headers()) == shard {
				out.Records = append(out.Records, recordOut{SequenceNumber: esm.SequenceNumber(md.Sequence.Stream),
					ApproximateArrivalTimestamp: epoch(md.Timestamp), Data: msg.Data(), PartitionKey: key})
				bytes += len(msg.Data())
			}
			pos, lastRead = md.Sequence.Stream+1, md.Timestamp
		}
		if err := b.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return pos, lastRead, errInternal(err)
		}
		if got == 0 || len(out.Records) >= limit || bytes >= maxGetBytes {
			break
		}
	}
	return pos, lastRead, nil
}
