package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/flint-run/flint/internal/config"
)

// slowInitZip is a Python function whose INIT takes about a second (a sleep at module level) and
// that answers with the configuration it runs on: its variable CONF and the code's own mark.
func slowInitZip(t testing.TB, code string) []byte {
	return mustZip(t, map[string]zipEntry{"app.py": {body: "" +
		"import os, time\n" +
		"time.sleep(1)\n" +
		"CONF = os.environ.get('CONF', '')\n" +
		"def handler(event, context):\n" +
		"    return {'conf': CONF, 'code': '" + code + "', 'n': event.get('n')}\n"}})
}

// confOf is what slowInitZip's handler answers.
type confOf struct {
	Conf string `json:"conf"`
	Code string `json:"code"`
	N    int    `json:"n"`
}

// TestInvokesRaceConfigurationChanges is issue 14: invokes waiting on environments still in
// INIT while UpdateFunctionConfiguration, UpdateFunctionCode and DeleteFunction land. The
// platform retiring a configuration is never the function's error: every invoke finishes on the
// configuration it started with (200, no FunctionError, a configuration that existed), and an
// invoke of a function deleted under it either finishes or gets a platform error.
func TestInvokesRaceConfigurationChanges(t *testing.T) {
	for _, sb := range []string{"process", "linux"} {
		t.Run(sb, func(t *testing.T) {
			if sb == "linux" && os.Geteuid() != 0 {
				t.Skip("the linux sandbox needs root (CI runs as root)")
			}
			s := startServer(t, t.TempDir(), func(c *config.Config) { c.Sandbox = sb })
			c := newClient(s.URL())
			ctx := context.Background()
			const fn = "slow-init"
			createFunction(t, c, fn, "python3.12", "app.handler", slowInitZip(t, "c0"), func(in *lambda.CreateFunctionInput) {
				in.Environment = &types.Environment{Variables: map[string]string{"CONF": "e0"}}
			})
			// Every configuration the function has had: an answer must come from one of them.
			valid := map[confOf]bool{{Conf: "e0", Code: "c0"}: true}
			conf, code := "e0", "c0"

			const rounds, perRound = 2, 4
			var (
				mu       sync.Mutex
				problems []string
				n        int
			)
			// burst starts perRound invokes at once (each a cold start: the envs of the last
			// configuration were retired), runs change while they are in INIT, and waits for them.
			burst := func(change func(), deleted bool) {
				var wg sync.WaitGroup
				for range perRound {
					n++
					i := n
					wg.Add(1)
					go func() {
						defer wg.Done()
						out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: fmt.Appendf(nil, `{"n":%d}`, i)})
						mu.Lock()
						defer mu.Unlock()
						if p := raceProblem(out, err, i, valid, deleted); p != "" {
							problems = append(problems, p)
						}
					}()
				}
				time.Sleep(600 * time.Millisecond) // the environments are in INIT (1 s)
				change()
				wg.Wait()
			}
			for r := 1; r <= rounds; r++ {
				burst(func() {
					conf = fmt.Sprintf("e%d", r)
					mu.Lock()
					valid[confOf{Conf: conf, Code: code}] = true
					mu.Unlock()
					if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(fn),
						Environment: &types.Environment{Variables: map[string]string{"CONF": conf}}}); err != nil {
						t.Fatalf("UpdateFunctionConfiguration: %v", err)
					}
				}, false)
				burst(func() {
					code = fmt.Sprintf("c%d", r)
					mu.Lock()
					valid[confOf{Conf: conf, Code: code}] = true
					mu.Unlock()
					if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(fn),
						ZipFile: slowInitZip(t, code)}); err != nil {
						t.Fatalf("UpdateFunctionCode: %v", err)
					}
				}, false)
			}
			burst(func() {
				if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(fn)}); err != nil {
					t.Fatalf("DeleteFunction: %v", err)
				}
			}, true)
			for _, p := range problems {
				t.Error(p)
			}
			t.Logf("%d invokes raced %d configuration and %d code updates and a delete; %d problems", n, rounds, rounds, len(problems))
		})
	}
}

// raceProblem describes what is wrong with invoke i's outcome, "" if nothing. After a delete
// a platform error (never a function error) is allowed.
func raceProblem(out *lambda.InvokeOutput, err error, i int, valid map[confOf]bool, deleted bool) string {
	if err != nil {
		var ae smithy.APIError
		if deleted && errors.As(err, &ae) && (ae.ErrorCode() == "ResourceNotFoundException" || ae.ErrorCode() == "ServiceException") {
			return ""
		}
		return fmt.Sprintf("invoke %d: %v", i, err)
	}
	if out.FunctionError != nil {
		return fmt.Sprintf("invoke %d: FunctionError %s: %s", i, aws.ToString(out.FunctionError), out.Payload)
	}
	var got confOf
	if err := json.Unmarshal(out.Payload, &got); err != nil || got.N != i {
		return fmt.Sprintf("invoke %d: payload %s", i, out.Payload)
	}
	got.N = 0
	if !valid[got] {
		return fmt.Sprintf("invoke %d ran on code %s with CONF=%s, a configuration the function never had", i, got.Code, got.Conf)
	}
	return ""
}

// markZip is a Python function that writes "start <id> <kind> <time>" to $OUT when it begins
// and "end <id> <kind> <time>" when it is done, prints "ran <id>" (its output, in the logs) and
// sleeps event.sleep seconds (default 50 ms) in between.
var markZip = map[string]zipEntry{"app.py": {body: "" +
	"import os, time\n" +
	"def mark(what, rid, kind):\n" +
	"    with open(os.environ['OUT'], 'a') as f:\n" +
	"        f.write('%s %s %s %.6f\\n' % (what, rid, kind, time.time()))\n" +
	"def handler(event, context):\n" +
	"    rid, kind = context.aws_request_id, event.get('kind', '')\n" +
	"    mark('start', rid, kind)\n" +
	"    print('ran', rid, flush=True)\n" +
	"    time.sleep(event.get('sleep', 0.05))\n" +
	"    mark('end', rid, kind)\n" +
	"    return {'id': rid}\n"}}

// mark is one line markZip wrote.
type mark struct {
	what, id, kind string
	at             time.Time
}

func readMarks(t *testing.T, path string) []mark {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []mark
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			continue // a line being written
		}
		sec, err := strconv.ParseFloat(f[3], 64)
		if err != nil {
			continue
		}
		out = append(out, mark{what: f[0], id: f[1], kind: f[2], at: time.Unix(0, int64(sec*1e9))})
	}
	return out
}

// TestSIGTERMUnderLoadKeepsLogsAndEvents is issue 15, against the built binary: SIGTERM while
// sync invokes and Event invokes keep coming (the events queue up behind reserved concurrency)
// and a slow sync invoke runs. The server stops taking work at once (queued events do not start
// while it drains), lets the slow invoke finish (200), and every invocation that ran, before the
// signal, during the shutdown or after the restart, has its START, END, REPORT and output in the
// logs; every event accepted with 202 runs (after the restart if not before).
func TestSIGTERMUnderLoadKeepsLogsAndEvents(t *testing.T) {
	bin := buildFlint(t)
	data, work := t.TempDir(), t.TempDir()
	out := filepath.Join(work, "marks")
	first := startFlintProcess(t, bin, data, filepath.Join(work, "serve-1.log"))
	c := newClient(first.url)
	ctx := context.Background()
	// fn takes the sync invokes; queued the events, at most `reserved` at a time, so that a
	// backlog waits in the queue when the signal comes.
	const fn, queued, reserved, events = "marked", "queued", 2, 80
	for _, name := range []string{fn, queued} {
		createFunction(t, c, name, "python3.12", "app.handler", mustZip(t, markZip), func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"OUT": out}}
		})
	}
	if _, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String(queued),
		ReservedConcurrentExecutions: aws.Int32(reserved)}); err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		okSync   = map[string]bool{} // request ids answered 200
		accepted = map[string]bool{} // request ids answered 202
		slowOut  *lambda.InvokeOutput
		slowErr  error
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	load := func(kind string) {
		defer wg.Done()
		in := &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{"kind":"` + kind + `"}`)}
		if kind == "async" {
			in.FunctionName = aws.String(queued)
			in.InvocationType = types.InvocationTypeEvent
		}
		for {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			enough := kind == "async" && len(accepted) >= events
			mu.Unlock()
			if enough { // a backlog the drained queue can run after the restart in a few seconds
				time.Sleep(20 * time.Millisecond)
				continue
			}
			res, err := c.Invoke(ctx, in)
			if err != nil {
				time.Sleep(20 * time.Millisecond) // shutting down or restarting
				continue
			}
			id, _ := awsmiddleware.GetRequestIDMetadata(res.ResultMetadata)
			mu.Lock()
			switch {
			case kind == "async" && res.StatusCode == http.StatusAccepted:
				accepted[id] = true
			case kind == "sync" && res.StatusCode == http.StatusOK && res.FunctionError == nil:
				okSync[id] = true
			default:
				t.Errorf("%s invoke: status %d, FunctionError %v: %s", kind, res.StatusCode, aws.ToString(res.FunctionError), res.Payload)
			}
			mu.Unlock()
		}
	}
	for range 3 {
		wg.Add(2)
		go load("sync")
		go load("async")
	}
	// The load is running: both kinds have started invocations.
	waitFor(t, "sync and async invocations running", 30*time.Second, func() bool {
		marks := readMarks(t, out)
		return slices.ContainsFunc(marks, func(m mark) bool { return m.what == "start" && m.kind == "sync" }) &&
			slices.ContainsFunc(marks, func(m mark) bool { return m.what == "start" && m.kind == "async" })
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		slowOut, slowErr = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{"kind":"slow","sleep":2}`)})
	}()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if slices.ContainsFunc(readMarks(t, out), func(m mark) bool { return m.what == "start" && m.kind == "slow" }) {
			break
		}
		if time.Now().After(deadline) {
			first.dumpLog(t)
			t.Fatal("the slow invoke did not start within 30 s")
		}
	}
	signalled := time.Now()
	if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-first.done:
	case <-time.After(30 * time.Second):
		first.dumpLog(t)
		t.Fatal("flint serve did not exit within 30 s of SIGTERM")
	}
	exited := time.Now()
	close(stop)
	wg.Wait()
	if code := first.cmd.ProcessState.ExitCode(); code != 0 {
		first.dumpLog(t)
		t.Errorf("flint serve exited with %v after SIGTERM, want status 0", first.cmd.ProcessState)
	}
	t.Logf("SIGTERM: the server exited after %v; %d sync invokes answered 200, %d events accepted, %d of them run before the restart",
		exited.Sub(signalled).Round(time.Millisecond), len(okSync), len(accepted), countEnded(readMarks(t, out), accepted))
	if slowErr != nil || slowOut.FunctionError != nil {
		t.Errorf("the invoke running at SIGTERM was not let finish: %v %+v", slowErr, slowOut)
	}

	// Stop taking work first: while the slow invoke keeps the shutdown waiting (2 s), the queued
	// events stay queued. Only events admitted before the signal may start after it: at most
	// `reserved` of them (twice that for those admitted at the very moment a running one ended).
	var late []string
	for _, m := range readMarks(t, out) {
		if m.what == "start" && m.kind == "async" && m.at.After(signalled) && m.at.Before(exited) {
			late = append(late, fmt.Sprintf("%s at +%v", m.id, m.at.Sub(signalled).Round(time.Millisecond)))
		}
	}
	if len(late) > 2*reserved {
		t.Errorf("%d queued events started during the shutdown, want at most %d (admitted before SIGTERM): the consumer kept taking work: %v",
			len(late), 2*reserved, late)
	}

	second := startFlintProcess(t, bin, data, filepath.Join(work, "serve-2.log"))
	// Every accepted event runs (those not run before the shutdown, after the restart).
	var missing []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		started := map[string]bool{}
		for _, m := range readMarks(t, out) {
			if m.what == "end" {
				started[m.id] = true
			}
		}
		missing = missing[:0]
		for id := range accepted {
			if !started[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			second.dumpLog(t)
			t.Fatalf("30 s after the restart %d of %d accepted events had not run, e.g. %v", len(missing), len(accepted), missing[:min(len(missing), 5)])
		}
	}

	// Every execution (a start mark; an event cut short runs again with the same request id)
	// and every sync invoke answered 200 has its record: START, its output, END and REPORT.
	ran := map[string]string{} // request id → function
	runs := map[string]int{}   // request id → executions
	for _, m := range readMarks(t, out) {
		if m.what == "start" {
			runs[m.id]++
			ran[m.id] = fn
			if m.kind == "async" {
				ran[m.id] = queued
			}
		}
	}
	for id := range okSync {
		ran[id] = fn
		runs[id] = max(runs[id], 1)
	}
	var lacking []string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		logs := map[string]string{}
		for _, name := range []string{fn, queued} {
			body, err := httpGet(second.url + "/flint/v1/functions/" + name + "/logs")
			if err != nil {
				t.Fatal(err)
			}
			logs[name] = body
		}
		lacking = lacking[:0]
		for id, name := range ran {
			for _, want := range []string{"START RequestId: " + id, "ran " + id, "END RequestId: " + id, "REPORT RequestId: " + id} {
				if got := strings.Count(logs[name], want); got < runs[id] {
					lacking = append(lacking, fmt.Sprintf("%s (%d of %d executions)", want, got, runs[id]))
				}
			}
		}
		if len(lacking) == 0 {
			break
		}
		if time.Now().After(deadline) {
			first.dumpLog(t)
			t.Fatalf("of %d invocations that ran, the logs lack %d lines, e.g. %q", len(ran), len(lacking), lacking[:min(len(lacking), 6)])
		}
	}
	n := 0
	for _, k := range runs {
		n += k
	}
	t.Logf("%d executions of %d request ids; each has START, output, END and REPORT in the logs; all %d accepted events ran", n, len(ran), len(accepted))
}

// countEnded counts the ids that have an end mark.
func countEnded(marks []mark, ids map[string]bool) int {
	n := 0
	seen := map[string]bool{}
	for _, m := range marks {
		if m.what == "end" && ids[m.id] && !seen[m.id] {
			seen[m.id] = true
			n++
		}
	}
	return n
}

// TestCloseStopsInvocationsPastGrace: Close lets running invocations finish for its grace
// period, then stops them. That is the platform's doing, not the function's: the sync caller
// gets a service error (never a FunctionError), the async event runs again after the restart,
// and the cut-off execution still has its record, with the reason, in the logs.
func TestCloseStopsInvocationsPastGrace(t *testing.T) {
	dir, work := t.TempDir(), t.TempDir()
	out := filepath.Join(work, "ids")
	s := startServer(t, dir)
	c := newClient(s.URL())
	// An execution holds 60 s unless its request id ran before.
	createFunction(t, c, "stuck", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: "" +
		"import os, time\n" +
		"def handler(event, context):\n" +
		"    p, rid = os.environ['OUT'], context.aws_request_id\n" +
		"    again = os.path.exists(p) and rid in open(p).read()\n" +
		"    with open(p, 'a') as f:\n" +
		"        f.write(rid + '\\n')\n" +
		"    print('ran', rid, flush=True)\n" +
		"    if not again:\n" +
		"        time.sleep(60)\n"}}),
		func(in *lambda.CreateFunctionInput) {
			in.Timeout = aws.Int32(120)
			in.Environment = &types.Environment{Variables: map[string]string{"OUT": out}}
		})
	accepted := sendEvents(t, c, "stuck", 1, 1)
	type result struct {
		out *lambda.InvokeOutput
		err error
	}
	syncDone := make(chan result, 1)
	go func() {
		o, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("stuck"), Payload: []byte(`{}`)})
		syncDone <- result{o, err}
	}()
	for deadline := time.Now().Add(30 * time.Second); len(readIDs(t, out)) < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the invocations did not start within 30 s: %v", readIDs(t, out))
		}
	}
	ids := readIDs(t, out)

	start := time.Now()
	s.Close()
	t.Logf("Server.Close took %v", time.Since(start).Round(time.Millisecond))
	r := <-syncDone
	var ae smithy.APIError
	switch {
	case r.err == nil:
		t.Errorf("the sync invoke stopped by the shutdown answered %d, FunctionError %q: %s; want a service error",
			r.out.StatusCode, aws.ToString(r.out.FunctionError), r.out.Payload)
	case !errors.As(r.err, &ae) || ae.ErrorCode() != "ServiceException":
		t.Errorf("the sync invoke stopped by the shutdown: %v, want ServiceException", r.err)
	}

	// The event is handed back, not left to wait out AckWait (30 s) from its delivery.
	s2 := startServer(t, dir)
	for deadline := time.Now().Add(15 * time.Second); len(readIDs(t, out)) < 3; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("15 s after the restart the event stopped by the shutdown had not run again: %v (accepted %v)", readIDs(t, out), accepted)
		}
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		body, err := httpGet(s2.URL() + "/flint/v1/functions/stuck/logs")
		if err != nil {
			t.Fatal(err)
		}
		var lacking []string
		for _, id := range ids {
			runs := 1
			if accepted[id] {
				runs = 2 // cut off, then run again
			}
			for _, want := range []string{"START RequestId: " + id, "ran " + id, "END RequestId: " + id, "REPORT RequestId: " + id} {
				if strings.Count(body, want) < runs {
					lacking = append(lacking, fmt.Sprintf("%d× %q", runs, want))
				}
			}
			if want := id + " Invocation stopped by the platform: shutdown"; !strings.Contains(body, want) {
				lacking = append(lacking, want)
			}
		}
		if len(lacking) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the logs lack %q:\n%s", lacking, body)
		}
	}
}
