// Package clustertest runs real Flint clusters for tests: the flint binary, built once per test
// binary, started as N `flint serve` subprocesses on loopback that join each other the way
// docs/CLUSTER.md starts them (one master key, --node, --cluster-listen, --join, each with its
// own data directory and ports), each with an aws-sdk-go-v2 Lambda and Scheduler client. A
// test kills a node with SIGKILL (Kill) and starts it again on the same data directory, ports and
// name (Restart); the nodes' output goes to files, dumped when the test fails; everything is
// stopped when the test ends.
//
// It owns test scaffolding only: it reaches Flint through its command line, its HTTP API and
// the NATS port a node opens to outside clients (--nats-listen), never through Flint's packages'
// internals, so what it shows is what an operator would see.
//
// A package using it calls Main from its TestMain, which removes the built binary at the end.
// FLINT_CLUSTERTEST_LOGS=DIR keeps every node's whole log under DIR after the test.
package clustertest

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"

	"github.com/flint-run/flint/internal/invoke"
)

// Role is the execution role functions are created with (Flint checks its shape only).
const Role = "arn:aws:iam::000000000000:role/flint"

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
	buildTook time.Duration
)

// Main runs the package's tests and then removes the flint binary Binary built. Call it from
// TestMain: func TestMain(m *testing.M) { clustertest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// Binary builds cmd/flint once per test binary (with -race when the tests are built with it, so
// it reuses their compile cache) and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		start := time.Now()
		gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
		out, err := exec.Command(gobin, "env", "GOMOD").Output()
		if err != nil {
			buildErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		if buildDir, buildErr = os.MkdirTemp("", "flint-clustertest-"); buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "flint")
		args := []string{"build", "-o", buildBin}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command(gobin, append(args, "./cmd/flint")...)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go %s ./cmd/flint: %w\n%s", strings.Join(args, " "), err, b)
			return
		}
		buildTook = time.Since(start)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// BuildTime is how long Binary's build took (zero before it ran).
func BuildTime() time.Duration { return buildTook }

// Options configure a cluster.
type Options struct {
	Nodes        int           // default 3
	AsyncAckWait time.Duration // --async-ack-wait, default 2s: a killed node's events come back soon
	LogLevel     string        // default info
	// Flags are added to every node's `flint serve` flags (after the harness's own, so they
	// may override them), e.g. --memory-budget.
	Flags []string
}

// Cluster is N `flint serve` processes joined into one cluster.
type Cluster struct {
	Nodes     []*Node
	MasterKey string // base64, FLINT_MASTER_KEY of every node
	NATSToken string // what outside NATS clients present to any node's NATSURL
	t         testing.TB
	bin       string
	opts      Options
}

// Node is one node: its fixed identity (kept across restarts) and its current process.
type Node struct {
	Index       int
	Name        string // --node
	URL         string // the Lambda API, http://127.0.0.1:PORT
	NATSURL     string // nats://127.0.0.1:PORT, for outside NATS clients (Cluster.NATSToken)
	ClusterAddr string // --cluster-listen
	DataDir     string
	LogPath     string // every start's output, appended
	Lambda      *lambda.Client
	Scheduler   *scheduler.Client

	listen, natsListen string
	join               []string

	mu   sync.Mutex
	proc *proc   // nil before the first start
	pids []int   // every start's process id, in order
	ends []error // how each ended: nil while running
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// Start builds flint if needed and starts opts.Nodes nodes together (each waits for the cluster
// before it serves), and returns once every one serves its API. The nodes are stopped when the
// test ends, their logs dumped first if it failed.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.AsyncAckWait == 0 {
		opts.AsyncAckWait = 2 * time.Second
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "info"
	}
	key := make([]byte, 32)
	token := make([]byte, 18)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	if _, err := rand.Read(token); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, bin: Binary(t), opts: opts,
		MasterKey: base64.StdEncoding.EncodeToString(key), NATSToken: base64.RawURLEncoding.EncodeToString(token)}
	logDir := t.TempDir()
	if keep := os.Getenv("FLINT_CLUSTERTEST_LOGS"); keep != "" {
		// Kept after the test, for reading the nodes' whole logs.
		logDir = filepath.Join(keep, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+"-"+time.Now().Format("150405"))
		if err := os.MkdirAll(logDir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Logf("clustertest: node logs in %s", logDir)
	}
	addrs := FreeAddrs(t, 3*opts.Nodes)
	for i := range opts.Nodes {
		n := &Node{Index: i, Name: fmt.Sprintf("node%d", i+1), DataDir: t.TempDir(),
			listen: addrs[3*i], ClusterAddr: addrs[3*i+1], natsListen: addrs[3*i+2]}
		n.URL = "http://" + n.listen
		n.NATSURL = "nats://" + n.natsListen
		n.LogPath = filepath.Join(logDir, n.Name+".log")
		for j := range opts.Nodes {
			if j != i {
				n.join = append(n.join, addrs[3*j+1])
			}
		}
		n.Lambda = LambdaClient(n.URL)
		n.Scheduler = SchedulerClient(n.URL)
		c.Nodes = append(c.Nodes, n)
	}
	t.Cleanup(c.stopAll)
	for _, n := range c.Nodes {
		if err := c.spawn(n); err != nil {
			t.Fatal(err)
		}
	}
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = c.waitServing(n, 2*time.Minute) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.DumpLogs()
		t.Fatalf("start the cluster: %v", err)
	}
	return c
}

// args are the node's `flint serve` arguments, the same at every start.
func (c *Cluster) args(n *Node) []string {
	args := []string{"serve", "--listen", n.listen, "--data", n.DataDir, "--node", n.Name,
		"--cluster-listen", n.ClusterAddr, "--join", strings.Join(n.join, ","),
		"--nats-listen", n.natsListen, "--nats-token", c.NATSToken,
		"--sandbox", "process", "--log-level", c.opts.LogLevel,
		"--async-ack-wait", c.opts.AsyncAckWait.String(), "--async-retry-delay", "100ms"}
	return append(args, c.opts.Flags...)
}

// spawn starts n's process; it does not wait for it to serve.
func (c *Cluster) spawn(n *Node) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc != nil && !exited(n.proc) {
		return fmt.Errorf("%s is running already", n.Name)
	}
	logFile, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own descriptor
	fmt.Fprintf(logFile, "=== clustertest: start %d of %s at %s: flint %s\n", len(n.pids)+1, n.Name,
		time.Now().UTC().Format(time.RFC3339Nano), strings.Join(c.args(n), " "))
	cmd := exec.Command(c.bin, c.args(n)...)
	cmd.Env = append(os.Environ(), "FLINT_MASTER_KEY="+c.MasterKey)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", n.Name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	n.proc = p
	n.pids = append(n.pids, cmd.Process.Pid)
	n.ends = append(n.ends, nil)
	k := len(n.ends) - 1
	go func() {
		err := cmd.Wait()
		if err == nil {
			err = errors.New("exit status 0")
		}
		n.mu.Lock()
		n.ends[k] = err
		n.mu.Unlock()
		close(p.done)
	}()
	return nil
}

func exited(p *proc) bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitServing waits until n's API answers (a clustered node opens it once it has caught up).
func (c *Cluster) waitServing(n *Node, bound time.Duration) error {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(bound)
	for {
		// /metrics answers without a signature, whether or not access keys exist.
		resp, err := client.Get(n.URL + "/metrics")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		if exited(p) {
			return fmt.Errorf("%s exited before serving: %v", n.Name, p.cmd.ProcessState)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not serve within %v: %v", n.Name, bound, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill sends node i SIGKILL and waits until its process is gone.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	n := c.Nodes[i]
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil || exited(p) {
		c.t.Fatalf("kill %s: it is not running", n.Name)
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		c.t.Fatalf("kill %s: %v", n.Name, err)
	}
	<-p.done
}

// Restart starts node i again with the same data directory, ports and name, and waits until it
// serves (a node that restarts first catches up with the others).
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	n := c.Nodes[i]
	if err := c.spawn(n); err != nil {
		c.t.Fatal(err)
	}
	if err := c.waitServing(n, 2*time.Minute); err != nil {
		c.DumpLogs()
		c.t.Fatalf("restart: %v", err)
	}
}

// Alive reports whether node i's process is running.
func (c *Cluster) Alive(i int) bool {
	n := c.Nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc != nil && !exited(n.proc)
}

// Live returns the indexes of the nodes whose processes are running.
func (c *Cluster) Live() []int {
	var out []int
	for i := range c.Nodes {
		if c.Alive(i) {
			out = append(out, i)
		}
	}
	return out
}

// PIDs returns node i's process ids, one per start, oldest first.
func (c *Cluster) PIDs(i int) []int {
	n := c.Nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]int(nil), n.pids...)
}

// Owner returns which node, and which of its starts (0 is the first), had process id pid: a
// process-sandbox function's parent (os.getppid()) is the node running it. ok is false for a
// pid no node had.
func (c *Cluster) Owner(pid int) (node, start int, ok bool) {
	for i := range c.Nodes {
		for k, p := range c.PIDs(i) {
			if p == pid {
				return i, k, true
			}
		}
	}
	return 0, 0, false
}

// URLs returns every node's API URL.
func (c *Cluster) URLs() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.URL)
	}
	return out
}

// Clients returns every node's Lambda client.
func (c *Cluster) Clients() []*lambda.Client {
	var out []*lambda.Client
	for _, n := range c.Nodes {
		out = append(out, n.Lambda)
	}
	return out
}

// stopAll stops every running node at once (a node stopped alone after the others would wait
// for a quorum that is gone): SIGTERM, then SIGKILL after 15 s. Logs are dumped first if the
// test failed.
func (c *Cluster) stopAll() {
	if c.t.Failed() {
		c.DumpLogs()
	}
	var ps []*proc
	for _, n := range c.Nodes {
		n.mu.Lock()
		if n.proc != nil && !exited(n.proc) {
			ps = append(ps, n.proc)
			_ = n.proc.cmd.Process.Signal(syscall.SIGTERM)
		}
		n.mu.Unlock()
	}
	deadline := time.After(15 * time.Second)
	for _, p := range ps {
		select {
		case <-p.done:
		case <-deadline:
			c.t.Logf("clustertest: a node did not stop within 15 s of SIGTERM; killing what is left")
			for _, p := range ps {
				_ = p.cmd.Process.Kill()
			}
			for _, p := range ps {
				<-p.done
			}
			return
		}
	}
}

// DumpLogs writes the last lines of every node's log to the test log.
func (c *Cluster) DumpLogs() {
	for _, n := range c.Nodes {
		b, err := os.ReadFile(n.LogPath)
		if err != nil {
			c.t.Logf("%s: %v", n.LogPath, err)
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		c.t.Logf("last lines of %s's log (%s):\n%s", n.Name, n.LogPath, strings.Join(lines[max(len(lines)-80, 0):], "\n"))
	}
}

// GrepLogs returns the lines of every node's log that contain any of subs (at most limit, the
// first ones), each prefixed with its node: what a failure needs when the last lines are not it.
func (c *Cluster) GrepLogs(limit int, subs ...string) []string {
	var out []string
	for _, n := range c.Nodes {
		b, err := os.ReadFile(n.LogPath)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", n.Name, err))
			continue
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			for _, sub := range subs {
				if strings.Contains(line, sub) {
					out = append(out, n.Name+": "+line)
					break
				}
			}
		}
	}
	return out[:min(len(out), limit)]
}

// Deploy creates function name through the first live node from files (path → content, zipped
// by Zip) and waits until every live node's GetFunction finds it, so a test may invoke it
// through any node. Timeout is 10 s unless mutate changes it.
func (c *Cluster) Deploy(t testing.TB, name, runtime, handler string, files map[string]string, mutate ...func(*lambda.CreateFunctionInput)) {
	t.Helper()
	live := c.Live()
	if len(live) == 0 {
		t.Fatal("deploy: no node is running")
	}
	in := &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Runtime:      types.Runtime(runtime),
		Handler:      aws.String(handler),
		Role:         aws.String(Role),
		Code:         &types.FunctionCode{ZipFile: Zip(t, files)},
		Timeout:      aws.Int32(10),
	}
	for _, m := range mutate {
		m(in)
	}
	ctx := context.Background()
	if _, err := c.Nodes[live[0]].Lambda.CreateFunction(ctx, in); err != nil {
		t.Fatalf("CreateFunction %s through %s: %v", name, c.Nodes[live[0]].Name, err)
	}
	for _, i := range live {
		Eventually(t, 30*time.Second, fmt.Sprintf("%s knows function %s", c.Nodes[i].Name, name), func() error {
			_, err := c.Nodes[i].Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
			return err
		})
	}
	c.AwaitViews(t, 30*time.Second)
}

// AwaitViews waits until every live node's in-memory views hold everything the store held when
// it asked (GET /flint/v1/views): the configuration its invocations run with, which follows the
// store by KV watches that can lag, or start over, while a loaded cluster elects leaders. An API
// read (GetFunction, GetFunctionEventInvokeConfig) reads the store, not the view.
func (c *Cluster) AwaitViews(t testing.TB, bound time.Duration) {
	t.Helper()
	for _, i := range c.Live() {
		Eventually(t, bound, c.Nodes[i].Name+"'s views are current", func() error {
			views, err := c.Views(context.Background(), i)
			if err != nil {
				return err
			}
			for _, v := range views {
				if v.Applied < v.Stored {
					return fmt.Errorf("view %s has applied revision %d of %d", v.View, v.Applied, v.Stored)
				}
			}
			return nil
		})
	}
}

// Views returns node i's views (GET /flint/v1/views).
func (c *Cluster) Views(ctx context.Context, i int) ([]invoke.ViewState, error) {
	var out struct {
		Views []invoke.ViewState `json:"views"`
	}
	err := c.getJSON(ctx, i, "/flint/v1/views", &out)
	return out.Views, err
}

// getJSON decodes node i's answer to GET path into out; any status but 200 is an error.
func (c *Cluster) getJSON(ctx context.Context, i int, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Nodes[i].URL+path, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s on %s: %s", path, c.Nodes[i].Name, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("GET %s on %s: %w", path, c.Nodes[i].Name, err)
	}
	return nil
}

// Zip returns a zip of files (path → content); "bootstrap" files and *.sh are executable.
func Zip(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for name, body := range files {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		mode := os.FileMode(0o644)
		if filepath.Base(name) == "bootstrap" || strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		h.SetMode(mode)
		f, err := w.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// LambdaClient is an aws-sdk-go-v2 Lambda client for the API at url. It does not retry: a test
// sees every refusal.
func LambdaClient(url string) *lambda.Client {
	return lambda.New(lambda.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(url),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDFLINTTEST", "secret", ""),
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Timeout: 30 * time.Second},
	})
}

// SchedulerClient is an aws-sdk-go-v2 EventBridge Scheduler client for the API at url.
func SchedulerClient(url string) *scheduler.Client {
	return scheduler.New(scheduler.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(url),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDFLINTTEST", "secret", ""),
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Timeout: 30 * time.Second},
	})
}

// Eventually retries f every 50 ms until it returns nil, and fails the test with f's last error
// once bound has passed.
func Eventually(t testing.TB, bound time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, bound, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FreeAddrs returns n distinct loopback addresses nothing listens on right now. The ports are
// below the kernel's ephemeral range when it leaves room (Linux: 32768 up), so the outgoing
// connections of everything else running cannot take one between now and the node's bind, or
// while its node is dead and waits to restart on it.
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	var out []string
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	low := ephemeralLow()
	for tries := 0; len(out) < n; tries++ {
		addr := "127.0.0.1:0"
		if low > 20000 && tries < 100*n {
			addr = fmt.Sprintf("127.0.0.1:%d", 10000+mathrand.IntN(low-10000))
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			if addr != "127.0.0.1:0" {
				continue // taken: another
			}
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	return out
}

// ephemeralLow is the first port the kernel hands out to outgoing connections (0: unknown).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	var low, high int
	if _, err := fmt.Sscan(string(b), &low, &high); err != nil {
		return 0
	}
	return low
}

// NodeStates asks node i for the cluster's members (GET /flint/v1/nodes, what `flint nodes`
// shows) and returns each member's state (up, down or stopped) by name.
func (c *Cluster) NodeStates(ctx context.Context, i int) (map[string]string, error) {
	var out struct {
		Nodes []struct {
			Name  string `json:"name"`
			State string `json:"state"`
		} `json:"nodes"`
	}
	if err := c.getJSON(ctx, i, "/flint/v1/nodes", &out); err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, n := range out.Nodes {
		m[n.Name] = n.State
	}
	return m, nil
}

// AsyncConsumerLeader returns the index of the node leading the async queue's consumer, as
// node i reports it (GET /flint/v1/async): the node every other node's async fetches and
// acknowledgements go through.
func (c *Cluster) AsyncConsumerLeader(ctx context.Context, i int) (int, error) {
	var out struct {
		ConsumerLeader string `json:"consumer_leader"`
	}
	if err := c.getJSON(ctx, i, "/flint/v1/async", &out); err != nil {
		return 0, err
	}
	for j, n := range c.Nodes {
		if n.Name == out.ConsumerLeader {
			return j, nil
		}
	}
	return 0, fmt.Errorf("GET /flint/v1/async on %s: consumer leader %q is no node's name", c.Nodes[i].Name, out.ConsumerLeader)
}
