package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	stypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
)

// tickPy reports each run to the test's collector: the occurrence (scheduled time and execution
// id, filled in by the scheduler), the request id, and the node process running it.
const tickPy = `import json, os, urllib.request
URL = os.environ["COLLECT"]
def handler(event, context):
    body = json.dumps({"t": event["t"], "x": event["x"], "rid": context.aws_request_id, "ppid": os.getppid()}).encode()
    urllib.request.urlopen(urllib.request.Request(URL, data=body, method="POST"), timeout=10).read()
`

// tick is one run of an occurrence.
type tick struct {
	T    string `json:"t"` // <aws.scheduler.scheduled-time>, to the second
	X    string `json:"x"` // <aws.scheduler.execution-id>
	RID  string `json:"rid"`
	PPID int    `json:"ppid"`
	at   time.Time
}

// TestScheduleSurvivesNodeKill is issue 14's "must show" for schedules on real processes: a
// rate(1 minute) schedule, its minute scaled to 1 s (flint serve's hidden --schedule-minute),
// keeps firing while a node is killed with SIGKILL and after it is restarted, and each
// occurrence runs exactly once. Every node's scheduler fires a due occurrence; the async queue
// keeps one event per occurrence (its message id is derived from the schedule and the
// occurrence). The one run an occurrence may get again is a redelivery of a run the dead node
// had started (an async event in flight on a node that dies runs again: at least once).
func TestScheduleSurvivesNodeKill(t *testing.T) {
	const minute = time.Second
	c := Start(t, Options{Flags: []string{"--schedule-minute", minute.String()}, LogLevel: os.Getenv("FLINT_CLUSTERTEST_LOGLEVEL")})
	col := NewCollector(t)
	ctx := context.Background()
	c.Deploy(t, "tick", "python3.11", "app.handler", map[string]string{"app.py": tickPy}, func(in *lambda.CreateFunctionInput) {
		in.Environment = &types.Environment{Variables: map[string]string{"COLLECT": col.URL}}
	})
	if _, err := c.Nodes[0].Scheduler.CreateSchedule(ctx, &scheduler.CreateScheduleInput{Name: aws.String("every-minute"),
		ScheduleExpression: aws.String("rate(1 minute)"),
		FlexibleTimeWindow: &stypes.FlexibleTimeWindow{Mode: stypes.FlexibleTimeWindowModeOff},
		Target: &stypes.Target{Arn: aws.String("arn:aws:lambda:us-east-1:000000000000:function:tick"), RoleArn: aws.String(Role),
			Input: aws.String(`{"t":"<aws.scheduler.scheduled-time>","x":"<aws.scheduler.execution-id>"}`)}}); err != nil {
		t.Fatal(err)
	}

	ticks := func() []tick {
		var out []tick
		for _, p := range col.Records() {
			var k tick
			if err := json.Unmarshal(p.Body, &k); err != nil {
				t.Fatalf("collector got %q: %v", p.Body, err)
			}
			k.at = p.At
			out = append(out, k)
		}
		return out
	}
	waitTicks := func(n int, what string) {
		t.Helper()
		Eventually(t, 60*time.Second, what, func() error {
			if got := len(ticks()); got < n {
				return fmt.Errorf("%d runs", got)
			}
			return nil
		})
	}

	waitTicks(5, "5 occurrences before the kill")
	// Kill the node leading the async queue's consumer, through which every firing's event is
	// fetched, whichever node enqueued it.
	before := ticks()
	victim, err := c.AsyncConsumerLeader(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	c.Kill(victim)
	killedAt := time.Now()
	t.Logf("killed %s, the async consumer's leader, after %d runs", c.Nodes[victim].Name, len(before))

	// Dead for 15 s: longer than a leader election (5–8 s) and what the other nodes take to
	// notice their fetches went nowhere, so the schedule must go on without the node, not only
	// after it is back.
	time.Sleep(15 * time.Second)
	whileDead := len(ticks()) - len(before)
	var firstAfterKill time.Duration
	for _, k := range ticks() {
		if d := k.at.Sub(killedAt); d > 0 && (firstAfterKill == 0 || d < firstAfterKill) {
			firstAfterKill = d
		}
	}
	restartAt := time.Now()
	c.Restart(victim)
	restartedAt := time.Now()
	t.Logf("%s dead for %v (%d runs meanwhile, the first %v after the kill); serving again %v after its restart", c.Nodes[victim].Name,
		restartAt.Sub(killedAt).Round(time.Millisecond), whileDead, firstAfterKill.Round(time.Millisecond), restartedAt.Sub(restartAt).Round(time.Millisecond))
	// Wait for 5 occurrences after the restart and for every occurrence from the first to the
	// last to have run (a throttled event runs again after a delay), then a moment more: copies
	// of the last occurrences, were any fired twice, would run within it.
	scheduled := func(k tick) time.Time {
		ts, err := time.Parse(time.RFC3339, k.T)
		if err != nil {
			t.Fatalf("occurrence %s: scheduled time %q: %v", k.X, k.T, err)
		}
		return ts
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		seen := map[time.Time]bool{}
		var first, last time.Time
		for _, k := range ticks() {
			ts := scheduled(k)
			seen[ts] = true
			if first.IsZero() || ts.Before(first) {
				first = ts
			}
			if ts.After(last) {
				last = ts
			}
		}
		complete := len(seen) == int(last.Sub(first)/minute)+1
		if complete && last.After(restartedAt.Add(5*minute)) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("60 s after the restart: occurrences from %s to %s, %d of them ran", first.Format(time.TimeOnly), last.Format(time.TimeOnly), len(seen))
			break
		}
	}
	time.Sleep(2 * time.Second)

	all := ticks()
	byX := map[string][]tick{}
	for _, k := range all {
		byX[k.X] = append(byX[k.X], k)
		if k.RID != k.X {
			t.Errorf("occurrence %s ran with request id %s, want its execution id", k.X, k.RID)
		}
	}
	type occurrence struct {
		t    time.Time
		runs []tick
	}
	var occs []occurrence
	for x, ks := range byX {
		ts := scheduled(ks[0])
		for _, k := range ks[1:] {
			if k.T != ks[0].T {
				t.Errorf("occurrence %s ran for scheduled times %s and %s", x, ks[0].T, k.T)
			}
		}
		occs = append(occs, occurrence{t: ts, runs: ks})
	}
	sort.Slice(occs, func(a, b int) bool { return occs[a].t.Before(occs[b].t) })
	var line []string
	redelivered := 0
	for i, o := range occs {
		if i > 0 && o.t.Equal(occs[i-1].t) {
			t.Errorf("two occurrences (execution ids) for scheduled time %s", o.t.Format(time.TimeOnly))
		}
		if i > 0 {
			if gap := o.t.Sub(occs[i-1].t); gap != minute {
				t.Errorf("occurrences %s and %s are %v apart: %d occurrences between them did not run",
					occs[i-1].t.Format(time.TimeOnly), o.t.Format(time.TimeOnly), gap, int(gap/minute)-1)
			}
		}
		var where []string
		for _, k := range o.runs {
			if node, start, ok := c.Owner(k.PPID); ok {
				where = append(where, fmt.Sprintf("%s#%d", c.Nodes[node].Name, start+1))
			} else {
				where = append(where, fmt.Sprintf("pid %d (no node)", k.PPID))
			}
		}
		line = append(line, o.t.Format(time.TimeOnly)+" "+strings.Join(where, "+"))
		if len(o.runs) == 1 {
			continue
		}
		// A second run is a redelivery only if the first was on the killed node's first process,
		// before the kill, and there were exactly two.
		first := o.runs[0]
		node, start, _ := c.Owner(first.PPID)
		if len(o.runs) == 2 && node == victim && start == 0 && first.at.Before(killedAt) {
			redelivered++
			continue
		}
		t.Errorf("occurrence %s ran %d times: %v", o.t.Format(time.TimeOnly), len(o.runs), where)
	}
	t.Logf("%d occurrences, %d runs (%d redelivered after the kill): %s", len(occs), len(all), redelivered, strings.Join(line, ", "))

	// It kept firing with the node dead and after its restart.
	if whileDead == 0 {
		t.Errorf("no occurrence ran in the %v the node was dead", restartAt.Sub(killedAt).Round(time.Millisecond))
	}
	after := 0
	for _, o := range occs {
		if o.t.After(restartedAt) {
			after++
		}
	}
	if after == 0 {
		t.Error("no occurrence after the restart")
	}
}
