package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/asyncq"
)

// workPy holds each event 75 ms (so events are in flight on a node when it is killed), then
// reports the run to the test's collector (event id, request id, a token of its own, and its
// parent: the node process running it) and returns the same token, which the on-success record
// carries: a record whose token the collector never got was counted done without running.
const workPy = `import json, os, time, urllib.request, uuid
URL = os.environ["COLLECT"]
def handler(event, context):
    time.sleep(0.075)
    run = uuid.uuid4().hex
    body = json.dumps({"id": event["id"], "rid": context.aws_request_id, "run": run, "ppid": os.getppid()}).encode()
    urllib.request.urlopen(urllib.request.Request(URL, data=body, method="POST"), timeout=10).read()
    return {"id": event["id"], "run": run}
`

// run is one execution the function reported.
type run struct {
	ID   int    `json:"id"`
	RID  string `json:"rid"`
	Run  string `json:"run"`
	PPID int    `json:"ppid"`
	at   time.Time
}

// sent is what the test knows of one event it sent.
type sent struct {
	rid      string // request id of the 202; "" until accepted
	at       time.Time
	node     int // the node that accepted it
	skipped  int // sends not made: the node was dead
	failures int // sends that got no 202 (the node refusing, or the answer lost)
}

// TestAsyncEventsSurviveNodeKill is issue 14's "must show" for the async queue on real processes:
// 500 Event invokes sent round-robin to three nodes through the aws-sdk-go-v2 client, one node
// killed with SIGKILL while they run and restarted later. Every event that got a 202 runs (the
// function reports each run to the test), and every on-success record Flint writes names a run
// the function really made (its token), so nothing on the dead node is counted done without
// running. A send the dead node refuses goes to the next node.
func TestAsyncEventsSurviveNodeKill(t *testing.T) {
	c := Start(t, Options{})
	col := NewCollector(t)
	ctx := context.Background()
	const fn, doneStream = "work", "work-done"
	c.Deploy(t, fn, "python3.11", "app.handler", map[string]string{"app.py": workPy}, func(in *lambda.CreateFunctionInput) {
		in.Environment = &types.Environment{Variables: map[string]string{"COLLECT": col.URL}}
	})
	if _, err := c.Nodes[0].Lambda.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{
		FunctionName:      aws.String(fn),
		DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String("arn:flint:jetstream:us-east-1:000000000000:stream/" + doneStream)}},
	}); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		Eventually(t, 30*time.Second, n.Name+" has the event invoke config", func() error {
			_, err := n.Lambda.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String(fn)})
			return err
		})
	}
	// The nodes run events with the config their views hold, which follow the store by KV
	// watches: on a loaded machine, with the cluster electing leaders, seconds behind it.
	c.AwaitViews(t, 30*time.Second)

	// The victim is the node leading the async queue's consumer, through which every node's
	// fetches and acknowledgements go: the worst node to lose.
	const n = 500
	victim, err := c.AsyncConsumerLeader(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		events = make([]sent, n)
	)
	// Senders stop when the test ends, however it ends.
	sendCtx, stopSending := context.WithCancel(ctx)
	send := func(i int) {
		for attempt := 0; sendCtx.Err() == nil; attempt++ {
			node := (i + attempt) % len(c.Nodes)
			if attempt > 0 && attempt%len(c.Nodes) == 0 {
				time.Sleep(200 * time.Millisecond)
			}
			if attempt > 60 {
				t.Errorf("event %d: no node accepted it in %d attempts", i, attempt)
				return
			}
			if !c.Alive(node) {
				mu.Lock()
				events[i].skipped++
				mu.Unlock()
				continue
			}
			out, err := c.Nodes[node].Lambda.Invoke(sendCtx, &lambda.InvokeInput{FunctionName: aws.String(fn),
				InvocationType: types.InvocationTypeEvent, Payload: fmt.Appendf(nil, `{"id":%d}`, i)})
			var rid string
			if err == nil {
				rid, _ = awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
			}
			if err != nil || out.StatusCode != http.StatusAccepted || rid == "" {
				if sendCtx.Err() == nil {
					t.Logf("event %d through %s: %v (sent again elsewhere)", i, c.Nodes[node].Name, err)
				}
				mu.Lock()
				events[i].failures++
				mu.Unlock()
				continue
			}
			mu.Lock()
			events[i].rid, events[i].node, events[i].at = rid, node, time.Now()
			mu.Unlock()
			return
		}
	}
	// Round-robin, paced at about 100 events a second by 6 senders, so that events are queued,
	// running and arriving when the node dies.
	next := make(chan int)
	var senders sync.WaitGroup
	for range 6 {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for i := range next {
				send(i)
			}
		}()
	}
	sendStart := time.Now()
	go func() {
		defer close(next)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := range n {
			select {
			case <-tick.C:
			case <-sendCtx.Done():
				return
			}
			select {
			case next <- i:
			case <-sendCtx.Done():
				return
			}
		}
	}()
	sendingDone := make(chan struct{})
	go func() { senders.Wait(); close(sendingDone) }()
	defer func() { stopSending(); <-sendingDone }()

	runs := func() []run {
		var out []run
		for _, p := range col.Records() {
			var r run
			if err := json.Unmarshal(p.Body, &r); err != nil {
				t.Fatalf("collector got %q: %v", p.Body, err)
			}
			r.at = p.At
			out = append(out, r)
		}
		return out
	}
	onVictim := func(rs []run) int {
		k := 0
		for _, r := range rs {
			if node, _, _ := c.Owner(r.PPID); node == victim {
				k++
			}
		}
		return k
	}

	// Kill the victim once it has run a few events and about 200 are accepted.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		accepted := 0
		for _, e := range events {
			if e.rid != "" {
				accepted++
			}
		}
		mu.Unlock()
		if accepted >= 200 && onVictim(runs()) >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s: %d events accepted, %d runs (%d on %s)", accepted, col.Len(), onVictim(runs()), c.Nodes[victim].Name)
		}
	}
	c.Kill(victim)
	killedAt := time.Now()
	before := runs()
	mu.Lock()
	acceptedByVictim := 0
	for _, e := range events {
		if e.rid != "" && e.node == victim {
			acceptedByVictim++
		}
	}
	mu.Unlock()
	t.Logf("killed %s (the async consumer's leader) %v after the first send: %d runs so far (%d on it); it had accepted %d events",
		c.Nodes[victim].Name, killedAt.Sub(sendStart).Round(time.Millisecond), len(before), onVictim(before), acceptedByVictim)

	// The other two nodes must run every accepted event, and write its success record, without
	// the dead one: it stays dead until they have, or for 60 s (a generous bound). And they must
	// not wait for it: the first event accepted after the kill runs within 20 s of it (a leader
	// election takes 5–8 s, the events in flight on the dead node come back after the 2 s ack
	// wait; a node whose fetch waited on the dead leader used to notice only after two missed
	// 15 s heartbeats, 30 s).
	records := map[string][]asyncq.Record{} // by request id
	reader := c.ReadStream(doneStream)
	defer reader.Close()
	var missingRun, missingDone []int
	var readErr error
	complete := func() bool {
		msgs, err := reader.Read(ctx)
		readErr = err
		for _, m := range msgs {
			var r asyncq.Record
			if err := json.Unmarshal(m.Data, &r); err != nil {
				t.Fatalf("destination record %s: %v", m.Data, err)
			}
			records[r.RequestContext.RequestID] = append(records[r.RequestContext.RequestID], r)
		}
		select {
		case <-sendingDone:
		default:
			return false
		}
		ranRID := map[string]bool{}
		for _, r := range runs() {
			ranRID[r.RID] = true
		}
		missingRun, missingDone = missingRun[:0], missingDone[:0]
		mu.Lock()
		defer mu.Unlock()
		for i, e := range events {
			if e.rid == "" {
				continue // reported below
			}
			if !ranRID[e.rid] {
				missingRun = append(missingRun, i)
			}
			if len(records[e.rid]) == 0 {
				missingDone = append(missingDone, i)
			}
		}
		return len(missingRun) == 0 && len(missingDone) == 0
	}
	// explain tells, for events without a success record, where and when they were accepted and
	// ran, and what the nodes logged about destinations and acks: enough to tell a record lost
	// in JetStream from one never written.
	explain := func(missing []int) {
		mu.Lock()
		defer mu.Unlock()
		byID := map[int][]run{}
		for _, r := range runs() {
			byID[r.ID] = append(byID[r.ID], r)
		}
		for _, i := range missing[:min(10, len(missing))] {
			e := events[i]
			line := fmt.Sprintf("event %d (%s): accepted by %s %v from the kill;", i, e.rid, c.Nodes[e.node].Name, e.at.Sub(killedAt).Round(time.Millisecond))
			for _, r := range byID[i] {
				node, start, _ := c.Owner(r.PPID)
				line += fmt.Sprintf(" ran on %s start %d %v from the kill;", c.Nodes[node].Name, start+1, r.at.Sub(killedAt).Round(time.Millisecond))
			}
			t.Log(line)
			for _, l := range c.GrepLogs(10, e.rid) {
				t.Log(l)
			}
		}
		for _, l := range c.GrepLogs(80, "work-done'", "work-done\"", "level=WARN msg=\"JetStream", "level=ERROR msg=\"JetStream") {
			t.Log(l)
		}
		for _, l := range c.GrepLogs(60, "destination", "ack async event", "async invoke failed") {
			t.Log(l)
		}
		// The stream as each live node's JetStream answers, read again from its start: a record
		// found now that the reader did not return is the reader's fault, not Flint's.
		want := map[string]int{}
		for _, i := range missing {
			want[events[i].rid] = i
		}
		t.Logf("the reader has read %d records, up to sequence %d", len(records), reader.next-1)
		for _, i := range c.Live() {
			js, err := jetstream.New(c.NATS(t, i))
			if err != nil {
				t.Fatal(err)
			}
			st, err := js.Stream(ctx, doneStream)
			if err != nil {
				t.Logf("through %s: %v", c.Nodes[i].Name, err)
				continue
			}
			info := st.CachedInfo()
			t.Logf("through %s: %+v; cluster %+v", c.Nodes[i].Name, info.State, info.Cluster)
			found := 0
			for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
				m, err := st.GetMsg(ctx, seq)
				if err != nil {
					t.Logf("through %s: message %d: %v", c.Nodes[i].Name, seq, err)
					continue
				}
				var r asyncq.Record
				if json.Unmarshal(m.Data, &r) == nil {
					if _, ok := want[r.RequestContext.RequestID]; ok {
						found++
					}
				}
			}
			t.Logf("through %s: %d of the %d missing records are in the stream", c.Nodes[i].Name, found, len(want))
		}
	}
	for !complete() {
		if time.Since(killedAt) > 60*time.Second {
			explain(missingDone)
			t.Errorf("with %s dead for 60 s the other nodes left %d accepted events unrun (e.g. %v) and %d without a success record (e.g. %v); last read error %v",
				c.Nodes[victim].Name, len(missingRun), missingRun[:min(5, len(missingRun))], len(missingDone), missingDone[:min(5, len(missingDone))], readErr)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	doneAt := time.Now()
	var resumed time.Duration // the first run of an event accepted after the kill
	mu.Lock()
	for _, r := range runs() {
		if d := r.at.Sub(killedAt); r.ID >= 0 && r.ID < n && events[r.ID].at.After(killedAt) && (resumed == 0 || d < resumed) {
			resumed = d
		}
	}
	mu.Unlock()
	if resumed == 0 || resumed > 20*time.Second {
		t.Errorf("the first event accepted after the kill ran %v after it (0: none ran while %s was dead), want within 20 s", resumed.Round(time.Millisecond), c.Nodes[victim].Name)
	}
	t1 := time.Now()
	c.Restart(victim)
	t.Logf("%s restarted; serving after %v", c.Nodes[victim].Name, time.Since(t1).Round(time.Millisecond))
	for deadline := killedAt.Add(120 * time.Second); !complete(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("120 s after the kill: %d accepted events never ran (e.g. %v), %d have no success record (e.g. %v); last read error %v",
				len(missingRun), missingRun[:min(5, len(missingRun))], len(missingDone), missingDone[:min(5, len(missingDone))], readErr)
		}
	}

	// Everything accepted ran; now check what ran against what was sent and what Flint counted.
	all := runs()
	byRID := map[string][]run{}
	byToken := map[string]run{}
	firstRun := map[string]time.Time{}
	for _, r := range all {
		byRID[r.RID] = append(byRID[r.RID], r)
		byToken[r.Run] = r
		if f, ok := firstRun[r.RID]; !ok || r.at.Before(f) {
			firstRun[r.RID] = r.at
		}
	}
	mu.Lock()
	defer mu.Unlock()
	accepted := map[string]int{} // request id → event
	var last time.Time
	failedSends, skippedSends := 0, 0
	for i, e := range events {
		failedSends += e.failures
		skippedSends += e.skipped
		if e.rid == "" {
			t.Errorf("event %d was never accepted", i)
			continue
		}
		accepted[e.rid] = i
		if firstRun[e.rid].After(last) {
			last = firstRun[e.rid]
		}
	}
	for rid, rs := range byRID {
		i, ok := accepted[rid]
		if !ok {
			// A send whose 202 was lost (the node died answering) may still have queued it.
			if events[rs[0].ID].failures == 0 {
				t.Errorf("the function ran request id %s (event %d), which no send was given", rid, rs[0].ID)
			}
			continue
		}
		for _, r := range rs {
			if r.ID != i {
				t.Errorf("request id %s ran event %d, want %d", rid, r.ID, i)
			}
		}
	}
	doneRecords, dupDone := 0, 0
	for rid, rs := range records {
		doneRecords += len(rs)
		dupDone += len(rs) - 1
		for _, rec := range rs {
			var out struct {
				ID  int
				Run string
			}
			if rec.RequestContext.Condition != "Success" {
				t.Errorf("on-success record of %s has condition %q", rid, rec.RequestContext.Condition)
			}
			if err := json.Unmarshal(rec.ResponsePayload, &out); err != nil {
				t.Errorf("on-success record of %s: response %s: %v", rid, rec.ResponsePayload, err)
				continue
			}
			r, ok := byToken[out.Run]
			if !ok || r.RID != rid {
				t.Errorf("Flint counted %s (event %d) done with run %q, which the function never reported for it (%+v)", rid, out.ID, out.Run, r)
			}
		}
	}

	// What happened, for the report.
	where := func(r run) string {
		node, start, ok := c.Owner(r.PPID)
		if !ok {
			return fmt.Sprintf("pid %d (no node)", r.PPID)
		}
		return fmt.Sprintf("%s start %d", c.Nodes[node].Name, start+1)
	}
	perNode := map[string]int{}
	again := map[string]int{} // how events that ran twice ran: where, when against the kill
	redone := 0
	for _, rs := range byRID {
		if len(rs) > 1 {
			redone++
			sort.Slice(rs, func(a, b int) bool { return rs[a].at.Before(rs[b].at) })
			when := "after"
			if rs[0].at.Before(killedAt) {
				when = "before"
			}
			again[fmt.Sprintf("first on %s %s the kill, then on %s", where(rs[0]), when, where(rs[1]))]++
		}
		for _, r := range rs {
			perNode[where(r)]++
		}
	}
	for k, v := range again {
		t.Logf("ran twice: %d events %s", v, k)
	}
	keys := make([]string, 0, len(perNode))
	for k := range perNode {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var byNode string
	for _, k := range keys {
		byNode += fmt.Sprintf(" %s: %d;", k, perNode[k])
	}
	t.Logf("%d events accepted (%d not sent to the dead node and %d refused or unanswered: sent again to the next node); %d runs, %d events ran more than once; %d success records (%d duplicates)",
		len(accepted), skippedSends, failedSends, len(all), redone, doneRecords, dupDone)
	t.Logf("runs by node:%s", byNode)
	t.Logf("the nodes logged %d failed acks, %d destination retries, %d invocations that failed to run",
		len(c.GrepLogs(1<<20, "ack async event")), len(c.GrepLogs(1<<20, "destination: retrying")), len(c.GrepLogs(1<<20, "async invoke failed")))
	t.Logf("after the kill: the first event accepted after it ran %v later, the last accepted event first ran %v later, every success record was in %v later",
		resumed.Round(time.Millisecond), last.Sub(killedAt).Round(time.Millisecond), doneAt.Sub(killedAt).Round(time.Millisecond))
	if onVictim(before) == 0 {
		t.Error("the killed node had run nothing: the kill proved nothing")
	}

	// The queue drains.
	Eventually(t, 30*time.Second, "the async queue is empty", func() error {
		st, err := asyncDepth(ctx, c.Nodes[0].URL, fn)
		if err != nil || st != 0 {
			return fmt.Errorf("depth %d, %v", st, err)
		}
		return nil
	})
}

// asyncDepth is fn's async queue depth as GET /flint/v1/async reports it.
func asyncDepth(ctx context.Context, url, fn string) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/flint/v1/async", nil)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct {
		Functions []asyncq.FunctionStats `json:"functions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, fmt.Errorf("GET /flint/v1/async: %s: %w", resp.Status, err)
	}
	for _, f := range out.Functions {
		if f.Function == fn {
			return f.Depth, nil
		}
	}
	return 0, nil
}
