package server_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/server"
)

// newKinesisClient is aws-sdk-go-v2's real Kinesis client pointed at Flint, unmodified.
func newKinesisClient(url string) *kinesis.Client {
	return kinesisClientWith(url, "AKIDFLINTTEST", "secret")
}

func kinesisClientWith(url, id, secret string) *kinesis.Client {
	return kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""), RetryMaxAttempts: 1})
}

// kinesisWorker appends "KEY DATA SEQ SHARD" for every record of every batch, checking the
// record is Kinesis-shaped with the aws ARN.
const kinesisWorker = `import os, base64
D = os.environ['DIR']
def handler(event, context):
    out = []
    for r in event['Records']:
        k = r['kinesis']
        assert r['eventSource'] == 'aws:kinesis' and r['eventName'] == 'aws:kinesis:record', r
        assert r['eventSourceARN'] == os.environ.get('ARN', 'arn:aws:kinesis:us-east-1:000000000000:stream/events'), r
        shard, seq = r['eventID'].split(':')
        assert seq == k['sequenceNumber'], r
        out.append('%s %s %s %s\n' % (k['partitionKey'], base64.b64decode(k['data']).decode(), seq, shard))
    fd = os.open(os.path.join(D, 'recs'), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, ''.join(out).encode())
    os.close(fd)
    return {}
`

// shardOf is the shard of a partition key on a 4-shard stream: the top two bits of its MD5
// (the key space split evenly in 4), computed here apart from Flint's code.
func shardOf(key string) string {
	sum := md5.Sum([]byte(key))
	return fmt.Sprintf("shardId-%012d", sum[0]>>6)
}

type putRec struct{ key, data, seq, shard string }

// TestKinesisAPI drives the Kinesis API with aws-sdk-go-v2's kinesis client: a 4-shard stream,
// 10,000 records over 20 partition keys with PutRecords (plus records put by a NATS client and
// ones whose keys cannot be subjects), each on the shard its MD5 says; GetRecords over every
// shard returns them all, each key in order; a Lambda mapping over the arn:aws:kinesis ARN
// delivers them to a function in per-key order with the API's sequence numbers and real
// shards; bad input gets Kinesis's errors and stores nothing.
func TestKinesisAPI(t *testing.T) {
	data, dir := t.TempDir(), t.TempDir()
	s := startServer(t, data, func(c *config.Config) { c.NATSListen = "127.0.0.1:0" })
	kc := newKinesisClient(s.URL())
	ctx := context.Background()

	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("events"), ShardCount: aws.Int32(4)}); err != nil {
		t.Fatal(err)
	}
	if err := kinesis.NewStreamExistsWaiter(kc).Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("events")}, 30*time.Second); err != nil {
		t.Fatalf("StreamExists waiter: %v", err)
	}
	desc, err := kc.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("events")})
	if err != nil {
		t.Fatal(err)
	}
	d := desc.StreamDescription
	if len(d.Shards) != 4 || aws.ToString(d.StreamARN) != "arn:aws:kinesis:us-east-1:000000000000:stream/events" ||
		d.StreamStatus != ktypes.StreamStatusActive || aws.ToInt32(d.RetentionPeriodHours) != 24 ||
		aws.ToString(d.Shards[1].HashKeyRange.StartingHashKey) != "85070591730234615865843651857942052864" ||
		aws.ToString(d.Shards[3].HashKeyRange.EndingHashKey) != "340282366920938463463374607431768211455" {
		t.Fatalf("DescribeStream = %+v", d)
	}

	// 10,000 records over 20 keys, 500 a call, then two a NATS client publishes and two whose
	// partition keys cannot be subjects.
	const keys, perKey = 20, 500
	var puts []putRec
	var batch []ktypes.PutRecordsRequestEntry
	flush := func() {
		out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("events"), Records: batch})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToInt32(out.FailedRecordCount) != 0 || len(out.Records) != len(batch) {
			t.Fatalf("PutRecords: %d failed of %d", aws.ToInt32(out.FailedRecordCount), len(out.Records))
		}
		for i, r := range out.Records {
			key := aws.ToString(batch[i].PartitionKey)
			if got := aws.ToString(r.ShardId); got != shardOf(key) {
				t.Fatalf("record of key %s put on %s, want %s", key, got, shardOf(key))
			}
			puts = append(puts, putRec{key, string(batch[i].Data), aws.ToString(r.SequenceNumber), aws.ToString(r.ShardId)})
		}
		batch = batch[:0]
	}
	putStart := time.Now()
	for i := range perKey {
		for k := range keys {
			key := fmt.Sprintf("k%d", k)
			batch = append(batch, ktypes.PutRecordsRequestEntry{PartitionKey: aws.String(key), Data: []byte(fmt.Sprintf("%s/%d", key, i))})
			if len(batch) == 500 {
				flush()
			}
		}
	}
	t.Logf("PutRecords: %d records in %v", len(puts), time.Since(putStart))
	nc, err := nats.Connect(s.NATSURL(), nats.Token(s.NATSToken()))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	for i := perKey; i < perKey+2; i++ {
		ack, err := js.Publish(ctx, "flint.streams.events.k3", []byte(fmt.Sprintf("k3/%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		puts = append(puts, putRec{"k3", fmt.Sprintf("k3/%d", i), fmt.Sprintf("%020d", ack.Sequence), shardOf("k3")})
	}
	for i, key := range []string{"key with spaces", "ключ"} {
		out, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("events"), PartitionKey: aws.String(key), Data: []byte(fmt.Sprintf("odd/%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.ShardId) != shardOf(key) {
			t.Fatalf("PutRecord %q on %s, want %s", key, aws.ToString(out.ShardId), shardOf(key))
		}
		puts = append(puts, putRec{key, fmt.Sprintf("odd/%d", i), aws.ToString(out.SequenceNumber), shardOf(key)})
	}
	exp, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("events"), PartitionKey: aws.String("k0"),
		ExplicitHashKey: aws.String("170141183460469231731687303715884105728"), Data: []byte("explicit")})
	if err != nil || aws.ToString(exp.ShardId) != "shardId-000000000002" {
		t.Fatalf("PutRecord with ExplicitHashKey 2^127 = %+v, %v (want shard 2)", exp, err)
	}
	puts = append(puts, putRec{"k0", "explicit", aws.ToString(exp.SequenceNumber), "shardId-000000000002"})
	for i := 1; i < len(puts); i++ {
		if puts[i].seq <= puts[i-1].seq {
			t.Fatalf("sequence numbers do not increase as strings: %s then %s", puts[i-1].seq, puts[i].seq)
		}
	}

	// GetRecords over every shard, in pages of 700.
	bySeq := map[string]putRec{}
	for _, p := range puts {
		bySeq[p.seq] = p
	}
	got := map[string]bool{}
	getStart := time.Now()
	for _, sh := range d.Shards {
		it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("events"), ShardId: sh.ShardId, ShardIteratorType: ktypes.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		iter, last := it.ShardIterator, ""
		for range 100 {
			out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(700)})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range out.Records {
				seq := aws.ToString(r.SequenceNumber)
				p, ok := bySeq[seq]
				if !ok || p.key != aws.ToString(r.PartitionKey) || p.data != string(r.Data) || p.shard != aws.ToString(sh.ShardId) {
					t.Fatalf("%s: GetRecords returned %s %q %q, put as %+v", aws.ToString(sh.ShardId), seq, aws.ToString(r.PartitionKey), r.Data, p)
				}
				if seq <= last || got[seq] {
					t.Fatalf("%s: record %s after %s", aws.ToString(sh.ShardId), seq, last)
				}
				got[seq], last = true, seq
			}
			iter = out.NextShardIterator
			if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
				break
			}
		}
	}
	if len(got) != len(puts) {
		t.Fatalf("GetRecords over every shard returned %d records of %d", len(got), len(puts))
	}
	t.Logf("GetRecords over 4 shards: %d records in %v", len(got), time.Since(getStart))

	// AT/AFTER_SEQUENCE_NUMBER and LATEST.
	mid := puts[1234]
	for typ, want := range map[ktypes.ShardIteratorType]bool{ktypes.ShardIteratorTypeAtSequenceNumber: true, ktypes.ShardIteratorTypeAfterSequenceNumber: false} {
		it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("events"), ShardId: aws.String(mid.shard),
			ShardIteratorType: typ, StartingSequenceNumber: aws.String(mid.seq)})
		if err != nil {
			t.Fatal(err)
		}
		out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(1)})
		if err != nil || len(out.Records) != 1 || (aws.ToString(out.Records[0].SequenceNumber) == mid.seq) != want {
			t.Fatalf("%s %s: %+v, %v", typ, mid.seq, out, err)
		}
	}
	// AT_TIMESTAMP: from before the first record, the shard's first; from the future, nothing.
	for ts, want := range map[time.Time]int{time.Now().Add(-time.Hour): 1, time.Now().Add(time.Hour): 0} {
		it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("events"), ShardId: aws.String(puts[0].shard),
			ShardIteratorType: ktypes.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(ts)})
		if err != nil {
			t.Fatal(err)
		}
		out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(1)})
		if err != nil || len(out.Records) != want || (want == 1 && aws.ToString(out.Records[0].SequenceNumber) != puts[0].seq) {
			t.Fatalf("AT_TIMESTAMP %v: %+v, %v", ts, out, err)
		}
	}
	// ListShards and DescribeStream page.
	page, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("events"), MaxResults: aws.Int32(3)})
	if err != nil || len(page.Shards) != 3 || page.NextToken == nil {
		t.Fatalf("ListShards(MaxResults 3) = %+v, %v", page, err)
	}
	if page, err = kc.ListShards(ctx, &kinesis.ListShardsInput{NextToken: page.NextToken}); err != nil || len(page.Shards) != 1 ||
		aws.ToString(page.Shards[0].ShardId) != "shardId-000000000003" || page.NextToken != nil {
		t.Fatalf("ListShards(NextToken) = %+v, %v", page, err)
	}
	if dp, err := kc.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("events"), Limit: aws.Int32(2),
		ExclusiveStartShardId: aws.String("shardId-000000000001")}); err != nil || len(dp.StreamDescription.Shards) != 2 ||
		aws.ToBool(dp.StreamDescription.HasMoreShards) {
		t.Fatalf("DescribeStream(Limit 2, after shard 1) = %+v, %v", dp, err)
	}

	latest := map[string]*string{}
	for _, sh := range d.Shards {
		it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("events"), ShardId: sh.ShardId, ShardIteratorType: ktypes.ShardIteratorTypeLatest})
		if err != nil {
			t.Fatal(err)
		}
		latest[aws.ToString(sh.ShardId)] = it.ShardIterator
	}

	// Bad input: Kinesis's errors, and nothing stored.
	big := bytes.Repeat([]byte("x"), 1<<20+1)
	many := make([]ktypes.PutRecordsRequestEntry, 501)
	for i := range many {
		many[i] = ktypes.PutRecordsRequestEntry{PartitionKey: aws.String("k1"), Data: []byte("x")}
	}
	otherShard := "shardId-000000000000"
	if mid.shard == otherShard {
		otherShard = "shardId-000000000001"
	}
	for _, tc := range []struct {
		name, code string
		call       func() error
	}{
		{"unknown stream", "ResourceNotFoundException", func() error {
			_, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("nope"), PartitionKey: aws.String("k"), Data: []byte("x")})
			return err
		}},
		{"501 records", "ValidationException", func() error {
			_, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("events"), Records: many})
			return err
		}},
		{"oversize record", "ValidationException", func() error {
			_, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("events"), PartitionKey: aws.String("k1"), Data: big})
			return err
		}},
		{"oversize record in a batch", "ValidationException", func() error {
			_, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("events"), Records: []ktypes.PutRecordsRequestEntry{
				{PartitionKey: aws.String("k1"), Data: []byte("fine")}, {PartitionKey: aws.String("k1"), Data: big}}})
			return err
		}},
		{"bad explicit hash key", "InvalidArgumentException", func() error {
			_, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("events"), PartitionKey: aws.String("k1"), Data: []byte("x"),
				ExplicitHashKey: aws.String("340282366920938463463374607431768211456")})
			return err
		}},
		{"bad iterator type", "ValidationException", func() error {
			_, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("events"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: "SOMEWHERE"})
			return err
		}},
		{"unknown shard", "ResourceNotFoundException", func() error {
			_, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("events"), ShardId: aws.String("shardId-000000000004"), ShardIteratorType: ktypes.ShardIteratorTypeLatest})
			return err
		}},
		{"sequence number of another shard", "InvalidArgumentException", func() error {
			_, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("events"), ShardId: aws.String(otherShard),
				ShardIteratorType: ktypes.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(mid.seq)})
			return err
		}},
		{"garbage iterator", "InvalidArgumentException", func() error {
			_, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String("AAAAbogus")})
			return err
		}},
		{"existing stream", "ResourceInUseException", func() error {
			_, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("events"), ShardCount: aws.Int32(2)})
			return err
		}},
		{"shorter retention", "InvalidArgumentException", func() error {
			_, err := kc.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("events"), RetentionPeriodHours: aws.Int32(12)})
			return err
		}},
	} {
		var ae smithy.APIError
		if err := tc.call(); !errors.As(err, &ae) || ae.ErrorCode() != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	// An iterator 5 minutes and a second old has expired.
	server.SetKinesisClock(s, func() time.Time { return time.Now().Add(5*time.Minute + time.Second) })
	_, err = kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: latest["shardId-000000000000"]})
	var expired *ktypes.ExpiredIteratorException
	if !errors.As(err, &expired) {
		t.Errorf("GetRecords with an expired iterator: %v, want ExpiredIteratorException", err)
	}
	server.SetKinesisClock(s, nil)
	for shard, it := range latest {
		out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it})
		if err != nil || len(out.Records) != 0 {
			t.Fatalf("%s after the refused calls: %d records, %v (want none)", shard, len(out.Records), err)
		}
	}
	if _, err := kc.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("events"), RetentionPeriodHours: aws.Int32(48)}); err != nil {
		t.Fatal(err)
	}
	sum, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: d.StreamARN})
	if err != nil || aws.ToInt32(sum.StreamDescriptionSummary.RetentionPeriodHours) != 48 || aws.ToInt32(sum.StreamDescriptionSummary.OpenShardCount) != 4 {
		t.Fatalf("DescribeStreamSummary after IncreaseStreamRetentionPeriod(48) = %+v, %v", sum, err)
	}
	if _, err := kc.DecreaseStreamRetentionPeriod(ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: aws.String("events"), RetentionPeriodHours: aws.Int32(72)}); !errors.As(err, new(*ktypes.InvalidArgumentException)) {
		t.Errorf("DecreaseStreamRetentionPeriod to longer: %v", err)
	}
	if _, err := kc.DecreaseStreamRetentionPeriod(ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: aws.String("events"), RetentionPeriodHours: aws.Int32(36)}); err != nil {
		t.Fatal(err)
	}
	if sum, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("events")}); err != nil || aws.ToInt32(sum.StreamDescriptionSummary.RetentionPeriodHours) != 36 {
		t.Fatalf("DescribeStreamSummary after DecreaseStreamRetentionPeriod(36) = %+v, %v", sum, err)
	}

	// A mapping over the aws ARN delivers every record in per-key order, with the API's sequence
	// numbers and real shards.
	c := newClient(s.URL())
	createFunction(t, c, "reader", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: kinesisWorker}}),
		func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"DIR": dir}}
		})
	if _, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{
		EventSourceArn: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/nope"), FunctionName: aws.String("reader"),
		StartingPosition: types.EventSourcePositionTrimHorizon}); apiErrorCode(err) != "InvalidParameterValueException" {
		t.Errorf("mapping over a stream the Kinesis API did not create: %v", err)
	}
	if _, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{
		EventSourceArn: d.StreamARN, FunctionName: aws.String("reader"), StartingPosition: types.EventSourcePositionTrimHorizon,
		BatchSize: aws.Int32(100), ParallelizationFactor: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	var lines []string
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(filepath.Join(dir, "recs"))
		lines = strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) >= len(puts) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(lines) != len(puts) {
		t.Fatalf("the mapping delivered %d records of %d", len(lines), len(puts))
	}
	lastOf := map[string]string{}
	for _, line := range lines {
		f := strings.Fields(line)
		seq, shard := f[len(f)-2], f[len(f)-1]
		key := strings.Join(f[:len(f)-3], " ")
		p, ok := bySeq[seq]
		if !ok || p.key != key || p.data != f[len(f)-3] || p.shard != shard {
			t.Fatalf("delivered %q, put as %+v", line, p)
		}
		// Order holds per key on a shard (the explicit hash key put one of k0's elsewhere).
		if seq <= lastOf[key+"@"+shard] {
			t.Fatalf("key %s on %s: record %s delivered after %s", key, shard, seq, lastOf[key+"@"+shard])
		}
		lastOf[key+"@"+shard] = seq
	}

	// Tags.
	if _, err := kc.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("events"), Tags: map[string]string{"team": "a", "env": "test"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.RemoveTagsFromStream(ctx, &kinesis.RemoveTagsFromStreamInput{StreamName: aws.String("events"), TagKeys: []string{"team"}}); err != nil {
		t.Fatal(err)
	}
	if tags, err := kc.ListTagsForStream(ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String("events")}); err != nil ||
		len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "env" || aws.ToString(tags.Tags[0].Value) != "test" {
		t.Fatalf("ListTagsForStream = %+v, %v", tags, err)
	}

	// ListStreams and DeleteStream.
	ls, err := kc.ListStreams(ctx, &kinesis.ListStreamsInput{})
	if err != nil || !slices.Equal(ls.StreamNames, []string{"events"}) {
		t.Fatalf("ListStreams = %+v, %v", ls, err)
	}
	if _, err := kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("events")}); err != nil {
		t.Fatal(err)
	}
	var nf *ktypes.ResourceNotFoundException
	if _, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("events")}); !errors.As(err, &nf) {
		t.Fatalf("DescribeStreamSummary after DeleteStream: %v", err)
	}
}

// TestKinesisAWSCLI puts and gets a record with Debian's AWS CLI v2 against Flint.
func TestKinesisAWSCLI(t *testing.T) {
	const cli = "/usr/bin/aws"
	if _, err := os.Stat(cli); err != nil {
		t.Skip("Debian's AWS CLI v2 is not installed")
	}
	s := startServer(t, t.TempDir())
	aws := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(cli, append([]string{"--endpoint-url", s.URL(), "--region", "us-east-1", "--output", "text"}, args...)...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIDFLINTTEST", "AWS_SECRET_ACCESS_KEY=secret", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	aws("kinesis", "create-stream", "--stream-name", "cli", "--shard-count", "2")
	if got := aws("kinesis", "list-streams", "--query", "StreamNames[0]"); got != "cli" {
		t.Fatalf("list-streams: %q", got)
	}
	shard := aws("kinesis", "put-record", "--stream-name", "cli", "--partition-key", "user-1", "--data", "aGVsbG8=", "--query", "ShardId")
	if want := "shardId-" + fmt.Sprintf("%012d", md5.Sum([]byte("user-1"))[0]>>7); shard != want {
		t.Fatalf("put-record on %s, want %s", shard, want)
	}
	it := aws("kinesis", "get-shard-iterator", "--stream-name", "cli", "--shard-id", shard, "--shard-iterator-type", "TRIM_HORIZON", "--query", "ShardIterator")
	if got := aws("kinesis", "get-records", "--shard-iterator", it, "--query", "Records[0].[PartitionKey,Data]"); got != "user-1\taGVsbG8=" {
		t.Fatalf("get-records: %q", got)
	}
}

// TestKinesisMapping runs the stream mapping machinery over a Kinesis stream on a server that
// checks signatures: a poisoned record reported with ReportBatchItemFailures (by the API's
// sequence number) goes alone to the on-failure destination after its retries,
// described with its real shard and sequence number, and every other record reaches the
// function in per-key order; a second function mapped over the same stream by its Flint ARN
// reads the same records.
func TestKinesisMapping(t *testing.T) {
	data, dir, mirror := t.TempDir(), t.TempDir(), t.TempDir()
	key := createAccessKey(t, data, "test")
	s := startServer(t, data, func(c *config.Config) { c.NATSListen = "127.0.0.1:0"; c.StreamRetryDelay = 20 * time.Millisecond })
	ctx := context.Background()
	var ae smithy.APIError
	if _, err := kinesisClientWith(s.URL(), key.AccessKeyID, "wrong"+key.SecretAccessKey[5:]).ListStreams(ctx, &kinesis.ListStreamsInput{}); !errors.As(err, &ae) || ae.ErrorCode() != "InvalidSignatureException" {
		t.Fatalf("wrong secret: %v", err)
	}
	kc := kinesisClientWith(s.URL(), key.AccessKeyID, key.SecretAccessKey)
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("events"),
		StreamModeDetails: &ktypes.StreamModeDetails{StreamMode: ktypes.StreamModeOnDemand}}); err != nil {
		t.Fatal(err)
	}
	const keys, perKey = 3, 30
	var recs []ktypes.PutRecordsRequestEntry
	for i := range perKey {
		for k := range keys {
			recs = append(recs, ktypes.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("k%d", k)), Data: []byte(fmt.Sprintf("k%d/%d", k, i))})
		}
	}
	// Last, so that it ends its batch: a batch that failed whole (the partial response not
	// understood) would reach the destination from its first record, not from the poison.
	recs = append(recs, ktypes.PutRecordsRequestEntry{PartitionKey: aws.String("k1"), Data: []byte("poison")})
	out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("events"), Records: recs})
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("PutRecords: %v", err)
	}
	var poisonSeq, poisonShard string
	seqs := map[string]string{} // data → sequence number
	for i, r := range out.Records {
		seqs[string(recs[i].Data)] = aws.ToString(r.SequenceNumber)
		if string(recs[i].Data) == "poison" {
			poisonSeq, poisonShard = aws.ToString(r.SequenceNumber), aws.ToString(r.ShardId)
		}
	}

	c := clientWith(s.URL(), key.AccessKeyID, key.SecretAccessKey)
	zip := mustZip(t, map[string]zipEntry{"app.py": {body: streamWorker}})
	createFunction(t, c, "reader", "python3.12", "app.handler", zip, func(in *lambda.CreateFunctionInput) {
		in.Environment = &types.Environment{Variables: map[string]string{"DIR": dir}}
	})
	createFunction(t, c, "mirror", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: kinesisWorker}}), func(in *lambda.CreateFunctionInput) {
		in.Environment = &types.Environment{Variables: map[string]string{"DIR": mirror, "ARN": streamArn + "events"}}
	})
	if _, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{
		EventSourceArn: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/events"), FunctionName: aws.String("reader"),
		StartingPosition: types.EventSourcePositionTrimHorizon, BatchSize: aws.Int32(10),
		FunctionResponseTypes: []types.FunctionResponseType{types.FunctionResponseTypeReportBatchItemFailures},
		MaximumRetryAttempts:  aws.Int32(1),
		DestinationConfig:     &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String(streamArn + "kdlq")}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{
		EventSourceArn: aws.String(streamArn + "events"), FunctionName: aws.String("mirror"),
		StartingPosition: types.EventSourcePositionTrimHorizon, BatchSize: aws.Int32(50)}); err != nil {
		t.Fatal(err)
	}

	msg := nextMsg(t, must(jetstream.New(must(nats.Connect(s.NATSURL(), nats.Token(s.NATSToken()))))), "kdlq")
	var failure struct {
		RequestContext struct {
			Condition string `json:"condition"`
			Attempts  int    `json:"approximateInvokeCount"`
		} `json:"requestContext"`
		Info map[string]any `json:"KinesisBatchInfo"`
	}
	if err := json.Unmarshal(msg.Data(), &failure); err != nil {
		t.Fatal(err)
	}
	if i := failure.Info; failure.RequestContext.Condition != "RetryAttemptsExhausted" || i["startSequenceNumber"] != poisonSeq ||
		i["endSequenceNumber"] != poisonSeq || i["batchSize"] != 1.0 || i["shardId"] != poisonShard ||
		i["streamArn"] != "arn:aws:kinesis:us-east-1:000000000000:stream/events" {
		t.Errorf("on-failure record = %s; want the poisoned record %s on %s alone", msg.Data(), poisonSeq, poisonShard)
	}
	waitFor(t, "every record", time.Minute, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "recs"))
		m, _ := os.ReadFile(filepath.Join(mirror, "recs"))
		return strings.Count(string(b), "\n") >= keys*perKey && strings.Count(string(m), "\n") >= keys*perKey+1
	})
	checkStreamOrder(t, dir, keys, perKey)
	// The mirror read the same records by the Flint ARN: one shard, plain sequence numbers.
	m, _ := os.ReadFile(filepath.Join(mirror, "recs"))
	lines := strings.Split(strings.TrimSpace(string(m)), "\n")
	if len(lines) != keys*perKey+1 {
		t.Fatalf("the Flint ARN mapping delivered %d records, want %d", len(lines), keys*perKey+1)
	}
	for _, line := range lines {
		f := strings.Fields(line)
		if want := strings.TrimLeft(seqs[f[1]], "0"); f[2] != want || f[3] != "shardId-000000000000" {
			t.Fatalf("Flint ARN mapping delivered %q, want sequence %s on shardId-000000000000", line, want)
		}
	}
}
