package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/nats-io/nats.go/jetstream"
)

// laneBatchPy reports each batch to the test's collector as it arrives (the report is the
// records' delivery), with its parent (the node process invoking it), then holds the batch
// SLEEP seconds so that batches are in flight when a node is killed.
const laneBatchPy = `import base64, json, os, time, urllib.request
URL = os.environ["COLLECT"]
def handler(event, context):
    recs = [[r["kinesis"]["partitionKey"], base64.b64decode(r["kinesis"]["data"]).decode()] for r in event["Records"]]
    body = json.dumps({"recs": recs, "ppid": os.getppid()}).encode()
    urllib.request.urlopen(urllib.request.Request(URL, data=body, method="POST"), timeout=10).read()
    time.sleep(float(os.environ["SLEEP"]))
`

// laneBatch is one batch as the function reported it.
type laneBatch struct {
	Recs [][2]string `json:"recs"`
	PPID int         `json:"ppid"`
}

// readingNode returns the node whose log last says it reads mapping id's stream (the lease's
// holder logs it each time it starts reading), when it logged it, and how many such lines all
// logs hold.
func readingNode(t *testing.T, c *Cluster, id string) (node int, last time.Time, lines int) {
	node = -1
	for i, n := range c.Nodes {
		b, err := os.ReadFile(n.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.Contains(l, `msg="reading the stream on this node"`) || !strings.Contains(l, "mapping="+id) {
				continue
			}
			lines++
			ts, _, _ := strings.Cut(strings.TrimPrefix(l, "time="), " ")
			if at, err := time.Parse(time.RFC3339Nano, ts); err == nil && at.After(last) {
				node, last = i, at
			}
		}
	}
	return node, last, lines
}

// TestStreamMappingSurvivesNodeKill is issue 14's "must show" for stream mappings on real
// processes: a mapping of 10,000 records over 20 partition keys (4 lanes) on three
// `flint serve` nodes, the node reading it killed with SIGKILL once a fifth of the records are
// done. Every record reaches the function, each key's records are first delivered in order
// (by the collector's arrival order; the function reports a batch before it returns, and a
// lane starts its next batch only after), and another node takes the mapping over within the
// lease's bound: TTL (10 s) + 2 ticks after the dead node's last renewal, plus the start of its
// reader and JetStream's failover of the assets the dead node led.
func TestStreamMappingSurvivesNodeKill(t *testing.T) {
	c := Start(t, Options{})
	col := NewCollector(t)
	ctx := context.Background()
	c.Deploy(t, "lanes", "python3.11", "app.handler", map[string]string{"app.py": laneBatchPy}, func(in *lambda.CreateFunctionInput) {
		in.Environment = &types.Environment{Variables: map[string]string{"COLLECT": col.URL, "SLEEP": "0.1"}}
	})
	const keys, perKey, batch, lanes = 20, 500, 25, 4
	m, err := c.Nodes[1].Lambda.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{
		EventSourceArn: aws.String("arn:flint:jetstream:us-east-1:000000000000:stream/orders"), FunctionName: aws.String("lanes"),
		StartingPosition: types.EventSourcePositionTrimHorizon, BatchSize: aws.Int32(batch), ParallelizationFactor: aws.Int32(lanes),
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(m.UUID)
	owner := -1
	Eventually(t, 30*time.Second, "a node reads the mapping's stream", func() error {
		if owner, _, _ = readingNode(t, c, id); owner < 0 {
			return fmt.Errorf("no node logs reading it yet")
		}
		return nil
	})
	pub := (owner + 1) % len(c.Nodes)
	js, err := jetstream.New(c.NATS(t, pub))
	if err != nil {
		t.Fatal(err)
	}
	for i := range perKey {
		for k := range keys {
			if _, err := js.PublishAsync(fmt.Sprintf("flint.streams.orders.k%d", k), fmt.Appendf(nil, "k%d/%d", k, i), jetstream.WithStallWait(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		t.Fatal("publishing did not complete")
	}

	total := keys * perKey
	unique := func() (map[string]bool, []laneBatch, []time.Time) {
		seen := map[string]bool{}
		var out []laneBatch
		var at []time.Time
		for _, p := range col.Records() {
			var b laneBatch
			if err := json.Unmarshal(p.Body, &b); err != nil {
				t.Fatalf("report %s: %v", p.Body, err)
			}
			for _, r := range b.Recs {
				seen[r[1]] = true
			}
			out = append(out, b)
			at = append(at, p.At)
		}
		return seen, out, at
	}
	delivered := func() int { s, _, _ := unique(); return len(s) }
	Eventually(t, 2*time.Minute, "a fifth of the records", func() error {
		if n := delivered(); n < total/5 {
			return fmt.Errorf("%d of %d", n, total)
		}
		return nil
	})
	killed := time.Now()
	c.Kill(owner)
	t.Logf("%s (reading the stream) killed with SIGKILL with %d of %d records delivered", c.Nodes[owner].Name, delivered(), total)

	Eventually(t, 3*time.Minute, "every record", func() error {
		if n := delivered(); n < total {
			return fmt.Errorf("%d of %d", n, total)
		}
		return nil
	})
	_, batches, at := unique()
	next, seen := map[string]int{}, map[string]bool{}
	dups := 0
	for _, b := range batches {
		for _, r := range b.Recs {
			key, data := r[0], r[1]
			if seen[data] {
				dups++
				continue
			}
			seen[data] = true
			if want := fmt.Sprintf("%s/%d", key, next[key]); data != want {
				t.Fatalf("key %s: first delivery of %s, want %s next (order broken or record lost)", key, data, want)
			}
			next[key]++
		}
	}
	// The new holder logs when it starts reading; every batch reported after that is its own
	// (where a batch runs says nothing of who invoked it: placement may run a batch of the
	// killed node's on another node's warm environment just before the kill).
	now, started, lines := readingNode(t, c, id)
	if now == owner || now < 0 || !started.After(killed) {
		t.Fatalf("after the kill the last node to start reading the mapping is %d at %v (killed: %d at %v)", now, started, owner, killed)
	}
	moved := time.Duration(-1)
	for i, b := range batches {
		if node, _, ok := c.Owner(b.PPID); ok && node != owner && at[i].After(started) {
			moved = at[i].Sub(killed)
			break
		}
	}
	for _, n := range c.Nodes {
		b, _ := os.ReadFile(n.LogPath)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "part=esm") && (strings.Contains(l, id) || strings.Contains(l, "lease")) {
				t.Logf("%s: %s", n.Name, l)
			}
		}
	}
	if moved < 0 {
		t.Fatal("no batch ran on a live node after the new holder started reading")
	}
	t.Logf("the mapping moved from %s to %s: it started reading %v after the kill, its first batch arrived %v after the kill; %d records delivered twice; %d reader starts logged",
		c.Nodes[owner].Name, c.Nodes[now].Name, started.Sub(killed).Round(time.Millisecond), moved.Round(time.Millisecond), dups, lines)
	// The bound is 12 s after the last renewal plus the reader's start and JetStream's failover
	// (5–8 s after a kill -9, overlapping the lease's wait); a loaded machine adds to all.
	if moved > 45*time.Second {
		t.Errorf("the mapping moved %v after its owner was killed", moved)
	}
	// Only the batches in flight on the killed node (one per lane) are delivered again.
	if dups > lanes*batch {
		t.Errorf("%d records delivered twice; at most the %d of the batches in flight may be", dups, lanes*batch)
	}
}
