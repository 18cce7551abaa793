package server_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/server"
)

// laneWorker appends "KEY DATA SEQ" for every record of a batch to DIR/recs when the batch
// arrives (one write, so concurrent environments do not interleave lines: a record's line is
// its delivery), then "START_TIME RECORDS CWD" to DIR/batches: the process sandbox runs the
// function in the code directory of the node that invoked it, so CWD names the node.
const laneWorker = `import os, base64, time
D = os.environ['DIR']
def append(name, text):
    fd = os.open(os.path.join(D, name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, text.encode())
    os.close(fd)
def handler(event, context):
    t = time.time()
    out = []
    for r in event['Records']:
        k = r['kinesis']
        out.append('%s %s %s\n' % (k['partitionKey'], base64.b64decode(k['data']).decode(), k['sequenceNumber']))
    append('recs', ''.join(out))
    append('batches', '%.6f %d %s\n' % (t, len(out), os.getcwd()))
    time.sleep(float(os.environ.get('SLEEP', '0')))
`

// publishRecords publishes perKey records to each of keys partition keys of stream name
// through an outside NATS client of s, round-robin over the keys: key kK's i-th record is
// "kK/i".
func publishRecords(t *testing.T, s *server.Server, name string, keys, perKey int) {
	t.Helper()
	nc, err := nats.Connect(s.NATSURL(), nats.Token(s.NATSToken()))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range perKey {
		for k := range keys {
			if _, err := js.PublishAsync(fmt.Sprintf("flint.streams.%s.k%d", name, k), fmt.Appendf(nil, "k%d/%d", k, i), stallWait); err != nil {
				t.Fatal(err)
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		t.Fatal("publishing did not complete")
	}
}

// fileLines returns the lines of a file the function appends to (none when it has not yet).
func fileLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// uniqueRecords counts the distinct records DIR/recs holds.
func uniqueRecords(t *testing.T, dir string) int {
	seen := map[string]bool{}
	for _, line := range fileLines(t, filepath.Join(dir, "recs")) {
		if f := strings.Fields(line); len(f) == 3 {
			seen[f[1]] = true
		}
	}
	return len(seen)
}

// batchRun is one batch as laneWorker recorded it.
type batchRun struct {
	at   time.Time
	n    int
	node string // the data directory of the node that ran it
}

func batchRuns(t *testing.T, dir string, nodes []*clusterNode) []batchRun {
	var out []batchRun
	for _, line := range fileLines(t, filepath.Join(dir, "batches")) {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("bad batch line %q", line)
		}
		sec, _ := strconv.ParseFloat(f[0], 64)
		n, _ := strconv.Atoi(f[1])
		b := batchRun{at: time.Unix(0, int64(sec*1e9)), n: n}
		for _, nd := range nodes {
			if strings.HasPrefix(f[2], nd.cfg.DataDir+string(filepath.Separator)) {
				b.node = nd.cfg.Node
			}
		}
		if b.node == "" {
			t.Fatalf("batch run in %s: no node's data directory", f[2])
		}
		out = append(out, b)
	}
	return out
}

// TestClusterStreamFailover is issue 14's failover check for stream mappings, in one process:
// a mapping of 10,000 records over 20 partition keys (4 lanes) on three nodes, its owner
// crashed once a fifth of the records are done. The crash stops the node's embedded NATS server
// at once (its routes and copies vanish, nothing is released: what the others see of a
// process that died), then closes the node's Flint parts, so that no more batches start there
// (a batch running at that moment finishes, as a batch on a killed machine would not: that only
// adds a duplicate). Every record is processed, each key's records are first delivered in
// order, and the mapping moves to another node within the lease's bound
// (TTL 10 s + 2 ticks = 12 s after the owner's last renewal, plus the start of its reader).
// internal/clustertest has the same check on subprocesses killed with SIGKILL.
func TestClusterStreamFailover(t *testing.T) {
	nodes := startCluster(t, 3, func(c *config.Config) { c.NATSListen = "127.0.0.1:0" })
	ctx := context.Background()
	dir := t.TempDir()
	c := newClusterClient(nodes[0].srv.URL())
	createFunction(t, c, "lanes", "python3.11", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: laneWorker}}),
		func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"DIR": dir, "SLEEP": "0.1"}}
		})
	const keys, perKey, batch, lanes = 20, 500, 25, 4
	m, err := newClusterClient(nodes[1].srv.URL()).CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{
		EventSourceArn: aws.String(streamArn + "orders"), FunctionName: aws.String("lanes"),
		StartingPosition: types.EventSourcePositionTrimHorizon, BatchSize: aws.Int32(batch),
		ParallelizationFactor: aws.Int32(lanes),
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(m.UUID)
	var owner *clusterNode
	eventually(t, 30*time.Second, "a node holds the mapping", func() error {
		h, err := server.LaneHolder(ctx, nodes[0].srv, id)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if n.cfg.Node == h {
				owner = n
				return nil
			}
		}
		return fmt.Errorf("holder %q", h)
	})
	var publisher *clusterNode
	for _, n := range nodes {
		if n != owner {
			publisher = n
			break
		}
	}
	publishRecords(t, publisher.srv, "orders", keys, perKey)
	total := keys * perKey
	waitFor(t, "a fifth of the records", 2*time.Minute, func() bool { return uniqueRecords(t, dir) >= total/5 })

	crashed := time.Now()
	server.Crash(owner.srv)
	before := uniqueRecords(t, dir)
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		owner.srv.Close()
	}()
	t.Cleanup(func() {
		<-closed // before startCluster's cleanup closes the others
		owner.srv = nil
	})
	t.Logf("%s (owner) crashed with %d of %d records processed", owner.cfg.Node, before, total)

	// When the lease names another node (looked at every 50 ms), the crashed node has stopped
	// (its Flint parts were closed long before): every batch that begins later is the new
	// holder's. (Where a batch runs says nothing of who invoked it: placement may run it on
	// another node's warm environment.)
	var holder string
	eventually(t, time.Minute, "another node takes the mapping's lease", func() error {
		h, err := server.LaneHolder(ctx, publisher.srv, id)
		if err == nil && (h == owner.cfg.Node || h == "") {
			err = fmt.Errorf("held by %q", h)
		}
		holder = h
		return err
	})
	taken := time.Since(crashed)
	waitFor(t, "every record", 3*time.Minute, func() bool { return uniqueRecords(t, dir) >= total })
	dups := checkStreamOrder(t, dir, keys, perKey)
	moved := time.Duration(-1)
	for _, b := range batchRuns(t, dir, nodes) {
		if d := b.at.Sub(crashed); d >= taken && (moved < 0 || d < moved) {
			moved = d
		}
	}
	if moved < 0 {
		t.Fatal("no batch began after the lease moved")
	}
	t.Logf("the mapping moved from %s to %s: its lease taken over %v after the crash, the first batch after that began %v after the crash; %d records delivered twice (batches in flight on the crashed node)",
		owner.cfg.Node, holder, taken.Round(time.Millisecond), moved.Round(time.Millisecond), dups)
	// The bound is 12 s after the last renewal plus the reader's start; a loaded machine adds
	// to both (a reader start that meets a JetStream election fails and is retried: 30.5 s was
	// seen once with another cluster test running beside it), so only a miss by far fails here.
	if moved > time.Minute {
		t.Errorf("the mapping moved %v after its owner crashed; the lease's bound is 12 s plus the reader's start", moved)
	}
	// A crashed owner's batches in flight (at most one per lane, and one more a lane may have
	// begun before the node's Flint parts stopped) are all that is delivered twice.
	if dups > 2*lanes*batch {
		t.Errorf("%d records delivered twice; at most %d (two batches per lane) may be", dups, 2*lanes*batch)
	}
}

// TestStreamSingleNodeTakesNoLease: a single node reads its stream mappings itself, as before
// clusters: it never opens the lane leases bucket.
func TestStreamSingleNodeTakesNoLease(t *testing.T) {
	s := startServer(t, t.TempDir(), func(c *config.Config) { c.NATSListen = "127.0.0.1:0" })
	c := newClusterClient(s.URL())
	ctx := context.Background()
	dir := t.TempDir()
	createFunction(t, c, "lanes", "python3.11", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: laneWorker}}),
		func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"DIR": dir}}
		})
	if _, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("lanes"),
		EventSourceArn: aws.String(streamArn + "solo"), StartingPosition: types.EventSourcePositionTrimHorizon}); err != nil {
		t.Fatal(err)
	}
	publishRecords(t, s, "solo", 2, 10)
	waitFor(t, "every record", time.Minute, func() bool { return uniqueRecords(t, dir) >= 20 })
	if _, err := s.JetStream().KeyValue(ctx, "flint_esm_leases"); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Errorf("the lane leases bucket on a single node: %v, want none", err)
	}
}
