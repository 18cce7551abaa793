package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/config"
)

// appendIDZip is a Python function that appends its request id to the file named by $OUT,
// then holds the invocation 20 ms.
var appendIDZip = map[string]zipEntry{"app.py": {body: "" +
	"import os, time\n" +
	"def handler(event, context):\n" +
	"    with open(os.environ['OUT'], 'a') as f:\n" +
	"        f.write(context.aws_request_id + '\\n')\n" +
	"    time.sleep(0.02)\n"}}

// TestAsyncSurvivesKill9 is issue 5's crash test, against the built binary: 500 Event invokes
// queued behind reserved concurrency 1, kill -9 of the server with most of them still queued,
// a restart on the same data directory. Every event accepted with 202 must run (counted by
// request id in a file the function appends to); only events in flight at the kill may run twice.
func TestAsyncSurvivesKill9(t *testing.T) {
	bin := buildFlint(t)
	data, work := t.TempDir(), t.TempDir()
	out := filepath.Join(work, "ids")

	first := startFlintProcess(t, bin, data, filepath.Join(work, "serve-1.log"))
	c := newClient(first.url)
	ctx := context.Background()
	createFunction(t, c, "append", "python3.12", "app.handler", mustZip(t, appendIDZip), func(in *lambda.CreateFunctionInput) {
		in.Environment = &types.Environment{Variables: map[string]string{"OUT": out}}
	})
	if _, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("append"),
		ReservedConcurrentExecutions: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}

	const n = 500
	accepted := sendEvents(t, c, "append", n, 8)
	if len(accepted) != n {
		t.Fatalf("%d of %d events accepted", len(accepted), n)
	}

	// Kill in the middle of the drain, with most events still queued: by then each of them has
	// been delivered and throttled several times (reserved concurrency 1), which the restarted
	// server inherits with the consumer's state.
	const killAfter = 200
	for deadline := time.Now().Add(60 * time.Second); len(readIDs(t, out)) < killAfter; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			first.dumpLog(t)
			t.Fatalf("after 60 s the function had run %d events, want %d before the kill", len(readIDs(t, out)), killAfter)
		}
	}
	first.kill(t)
	ranBefore := len(readIDs(t, out))
	t.Logf("killed the server after %d executions; %d events still queued", ranBefore, n-len(distinct(readIDs(t, out))))
	if ranBefore >= n {
		t.Fatalf("all %d events ran before the kill: the test proved nothing", n)
	}

	second := startFlintProcess(t, bin, data, filepath.Join(work, "serve-2.log"))
	ids := awaitAccepted(t, second, out, accepted)

	seen := distinct(ids)
	for id := range seen {
		if !accepted[id] {
			t.Errorf("the function ran request id %s, which no Event invoke was given", id)
		}
	}
	dups := len(ids) - len(seen)
	t.Logf("%d executions for %d events: %d duplicates", len(ids), n, dups)
	// Reserved concurrency 1: one event in flight at the kill, a few more if their acks were
	// still on their way. Anything beyond that means acknowledged work ran again.
	if dups > 5 {
		t.Errorf("%d duplicate executions, want at most 5 (only events in flight at the kill)", dups)
	}

	// The queue drains: its depth reaches 0.
	var st []asyncq.FunctionStats
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var err error
		if st, err = asyncStats(second.url); err != nil {
			t.Fatal(err)
		}
		if depth(st, "append") == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after every event ran the async queue still holds %+v", st)
		}
	}
	if got := len(readIDs(t, out)); got != len(ids) {
		t.Errorf("executions went from %d to %d after every event had run", len(ids), got)
	}
}

// TestAsyncLongEventNotRedelivered: an event that runs for several AckWaits is not delivered
// again while it runs: the queue's heartbeats (one ticker for every running event) keep it.
func TestAsyncLongEventNotRedelivered(t *testing.T) {
	out := filepath.Join(t.TempDir(), "ids")
	s := startServer(t, t.TempDir(), func(c *config.Config) { c.AsyncAckWait = time.Second })
	c := newClient(s.URL())
	createFunction(t, c, "slow", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: "" +
		"import os, time\n" +
		"def handler(event, context):\n" +
		"    with open(os.environ['OUT'], 'a') as f:\n" +
		"        f.write(context.aws_request_id + '\\n')\n" +
		"    time.sleep(3.5)\n"}}),
		func(in *lambda.CreateFunctionInput) {
			in.Timeout = aws.Int32(30)
			in.Environment = &types.Environment{Variables: map[string]string{"OUT": out}}
		})
	if accepted := sendEvents(t, c, "slow", 1, 1); len(accepted) != 1 {
		t.Fatal("the event was not accepted")
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if st, err := asyncStats(s.URL()); err == nil && depth(st, "slow") == 0 && len(readIDs(t, out)) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the event did not run to its end within 30 s: executions %v", readIDs(t, out))
		}
	}
	time.Sleep(1500 * time.Millisecond) // past another AckWait: a redelivery would have started
	if ids := readIDs(t, out); len(ids) != 1 {
		t.Fatalf("%d executions of one event that ran 3.5 s with AckWait 1 s, want 1: it was delivered again while running", len(ids))
	}
}

// TestCloseEndsRunningAsyncEvent: Server.Close with an async event running does not wait for
// the function past its grace period (its shutdown order then destroys environments); the
// event, handed back, runs again after a restart with the same request id.
func TestCloseEndsRunningAsyncEvent(t *testing.T) {
	dir, work := t.TempDir(), t.TempDir()
	out := filepath.Join(work, "ids")
	const hold = 30 * time.Second
	s := startServer(t, dir, func(c *config.Config) { c.AsyncAckWait = time.Second })
	c := newClient(s.URL())
	// The first execution of an event holds it for 30 s; a second one returns at once.
	createFunction(t, c, "long", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: "" +
		"import os, time\n" +
		"def handler(event, context):\n" +
		"    p = os.environ['OUT']\n" +
		"    again = os.path.exists(p) and context.aws_request_id in open(p).read()\n" +
		"    with open(p, 'a') as f:\n" +
		"        f.write(context.aws_request_id + '\\n')\n" +
		"    if not again:\n" +
		"        time.sleep(" + strconv.Itoa(int(hold.Seconds())) + ")\n"}}),
		func(in *lambda.CreateFunctionInput) {
			in.Timeout = aws.Int32(int32(2 * hold / time.Second))
			in.Environment = &types.Environment{Variables: map[string]string{"OUT": out}}
		})
	accepted := sendEvents(t, c, "long", 1, 1)
	if len(accepted) != 1 {
		t.Fatal("the event was not accepted")
	}
	for deadline := time.Now().Add(30 * time.Second); len(readIDs(t, out)) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the event did not start running within 30 s")
		}
	}

	start := time.Now()
	s.Close()
	// A generous bound: the environment is destroyed in milliseconds; waiting for the function
	// takes the whole 30 s.
	if took := time.Since(start); took > hold/2 {
		t.Errorf("Server.Close took %v with an async event running: it waited for the function instead of destroying its environment", took.Round(time.Millisecond))
	}

	s2 := startServer(t, dir, func(c *config.Config) { c.AsyncAckWait = time.Second })
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ids := readIDs(t, out)
		if len(ids) >= 2 {
			for id := range distinct(ids) {
				if !accepted[id] {
					t.Errorf("the function ran request id %s, want the event's own %v", id, accepted)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the event cut short by Close did not run again after the restart: executions %v", ids)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st, err := asyncStats(s2.URL())
		if err != nil {
			t.Fatal(err)
		}
		if depth(st, "long") == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the async queue still holds %+v", st)
		}
	}
}

// sendEvents sends n Event invokes of fn from c concurrent clients and returns the request ids
// accepted with 202.
func sendEvents(t *testing.T, c *lambda.Client, fn string, n, clients int) map[string]bool {
	t.Helper()
	var (
		mu       sync.Mutex
		accepted = map[string]bool{}
		wg       sync.WaitGroup
		next     = make(chan int)
	)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(fn),
					InvocationType: types.InvocationTypeEvent, Payload: []byte(fmt.Sprintf(`{"n":%d}`, i))})
				if err != nil || out.StatusCode != http.StatusAccepted {
					t.Errorf("Event invoke %d: %+v, %v", i, out, err)
					continue
				}
				id, ok := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
				if !ok || id == "" {
					t.Errorf("Event invoke %d: no request id", i)
					continue
				}
				mu.Lock()
				accepted[id] = true
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return accepted
}

// TestAsyncKill9WhileEnqueuing is issue 18's durability check: 16 clients send Event invokes
// and the server is killed with -9 while they do. Every event that got its 202 must run after
// the restart: the 202 is sent only once JetStream has the event, however the publishes and
// acks are batched. A kill catches a 202 sent too early only if it lands in the microseconds
// between that 202 and the store's write (tried: a publish that did not wait for its ack passed
// this test too); what it does check is that no accepted event is lost to the batching of
// acks, the restart's recovery of the stream, or the consumer's state.
func TestAsyncKill9WhileEnqueuing(t *testing.T) {
	bin := buildFlint(t)
	data, work := t.TempDir(), t.TempDir()
	out := filepath.Join(work, "ids")
	first := startFlintProcess(t, bin, data, filepath.Join(work, "serve-1.log"))
	c := newClient(first.url)
	createFunction(t, c, "append", "python3.12", "app.handler", mustZip(t, appendIDZip), func(in *lambda.CreateFunctionInput) {
		in.Environment = &types.Environment{Variables: map[string]string{"OUT": out}}
	})
	// Few environments: the events mostly wait in the queue, and the machine's cores go to
	// the senders and the server.
	if _, err := c.PutFunctionConcurrency(context.Background(), &lambda.PutFunctionConcurrencyInput{
		FunctionName: aws.String("append"), ReservedConcurrentExecutions: aws.Int32(4)}); err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		accepted = map[string]bool{}
		wg       sync.WaitGroup
		stop     = make(chan struct{})
	)
	url := first.url + "/2015-03-31/functions/append/invocations"
	client := &http.Client{Timeout: 30 * time.Second}
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{}`))
				if err != nil {
					t.Error(err)
					return
				}
				req.Header.Set("X-Amz-Invocation-Type", "Event")
				resp, err := client.Do(req)
				if err != nil {
					continue // the kill: no 202, no promise
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					mu.Lock()
					accepted[resp.Header.Get("X-Amzn-Requestid")] = true
					mu.Unlock()
				}
			}
		}()
	}
	const killAt = 600
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := len(accepted)
		mu.Unlock()
		if n >= killAt {
			break
		}
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			first.dumpLog(t)
			t.Fatalf("after 60 s %d events were accepted, want %d before the kill", n, killAt)
		}
	}
	first.kill(t)
	close(stop)
	wg.Wait()
	delete(accepted, "")
	t.Logf("killed the server with 16 clients sending; %d events accepted", len(accepted))

	second := startFlintProcess(t, bin, data, filepath.Join(work, "serve-2.log"))
	ids := awaitAccepted(t, second, out, accepted)
	t.Logf("%d executions after the restart cover all %d accepted events", len(ids), len(accepted))
}

// awaitAccepted waits up to 120 s for the function behind srv to have run every accepted event
// (by request id in the file out) and returns the ids it ran, one per execution.
func awaitAccepted(t *testing.T, srv *flintProcess, out string, accepted map[string]bool) []string {
	t.Helper()
	start := time.Now()
	var ids []string
	var missing []string
	nextReport := time.Now().Add(10 * time.Second)
	for deadline := time.Now().Add(120 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		ids = readIDs(t, out)
		seen := distinct(ids)
		missing = missing[:0]
		for id := range accepted {
			if !seen[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			break
		}
		select {
		case <-srv.done:
			srv.dumpLog(t)
			t.Fatalf("flint serve exited (%v) with %d of %d accepted events not yet run", srv.cmd.ProcessState, len(missing), len(accepted))
		default:
		}
		if time.Now().After(nextReport) {
			st, _ := asyncStats(srv.url)
			t.Logf("%v after the restart: %d executions, %d events not yet run; queue %+v", time.Since(start).Round(time.Second), len(ids), len(missing), st)
			nextReport = nextReport.Add(10 * time.Second)
		}
		if time.Now().After(deadline) {
			srv.dumpLog(t)
			st, err := asyncStats(srv.url)
			verdict := "lost: the queue no longer holds them"
			if err == nil && depth(st, "append") >= uint64(len(missing)) {
				verdict = "not lost but stuck: the queue still holds them"
			}
			t.Fatalf("120 s after the restart %d of %d accepted events had not run (%s), e.g. %v; queue %+v %v",
				len(missing), len(accepted), verdict, missing[:min(len(missing), 5)], st, err)
		}
	}
	t.Logf("every accepted event ran; the last of them %v after the restart", time.Since(start).Round(time.Millisecond))
	return ids
}

// readIDs returns the request ids the function has written, one per execution.
func readIDs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	// A line without its newline is being written right now: not counted yet.
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	return strings.Fields(string(b))
}

func distinct(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// asyncStats reads GET /flint/v1/async.
func asyncStats(url string) ([]asyncq.FunctionStats, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url + "/flint/v1/async")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /flint/v1/async: %s", resp.Status)
	}
	var out struct {
		Functions []asyncq.FunctionStats `json:"functions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("GET /flint/v1/async: %w", err)
	}
	return out.Functions, nil
}

// depth is fn's queue depth in st (0 when it is not listed).
func depth(st []asyncq.FunctionStats, fn string) uint64 {
	for _, f := range st {
		if f.Function == fn {
			return f.Depth
		}
	}
	return 0
}

// buildFlint builds cmd/flint into a temporary directory.
func buildFlint(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "flint")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "./cmd/flint")
	cmd.Dir = filepath.Join("..", "..")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/flint: %v\n%s", err, b)
	}
	return bin
}

// flintProcess is `flint serve` running as a subprocess.
type flintProcess struct {
	cmd     *exec.Cmd
	url     string
	logPath string
	done    chan struct{}
}

// asyncFlags run a process-sandbox server whose functions can write the test's files, with short
// async delays.
var asyncFlags = []string{"--log-level", "warn", "--sandbox", "process", "--async-ack-wait", "2s", "--async-retry-delay", "100ms"}

// startFlintProcess starts `flint serve` with flags on a free port with its data in data and its
// output in logPath, and waits until the API answers. It is killed when the test ends. Should
// another process take the port between the check and the bind, it tries another.
func startFlintProcess(t *testing.T, bin, data, logPath string, flags ...string) *flintProcess {
	t.Helper()
	if len(flags) == 0 {
		flags = asyncFlags
	}
	for attempt := 1; ; attempt++ {
		p, err := tryStartFlint(t, bin, data, logPath, flags)
		if err == nil {
			return p
		}
		p.dumpLog(t)
		b, _ := os.ReadFile(logPath)
		if attempt == 3 || !strings.Contains(string(b), "address already in use") {
			t.Fatal(err)
		}
	}
}

func tryStartFlint(t *testing.T, bin, data, logPath string, flags []string) (*flintProcess, error) {
	t.Helper()
	addr := freeAddr(t)
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(bin, append([]string{"serve", "--listen", addr, "--data", data}, flags...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &flintProcess{cmd: cmd, url: "http://" + addr, logPath: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill(t) })

	client := &http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		// /metrics answers without a signature, so this works whether or not keys exist.
		resp, err := client.Get(p.url + "/metrics")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.done:
			return p, fmt.Errorf("flint serve exited before answering: %v", cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("flint serve did not answer within 60 s: %v", err)
		}
	}
}

// kill sends SIGKILL and waits for the process to be gone; it is a no-op once it has exited.
func (p *flintProcess) kill(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("kill flint serve: %v", err)
	}
	<-p.done
}

func (p *flintProcess) dumpLog(t *testing.T) {
	t.Helper()
	b, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	t.Logf("last lines of %s:\n%s", filepath.Base(p.logPath), strings.Join(lines[max(len(lines)-60, 0):], "\n"))
}

// freeAddr returns a loopback address with a port nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
