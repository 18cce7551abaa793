package server_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/flint-run/flint/internal/config"
)

// load sends n POSTs of body to url from c keep-alive clients, like ../shared/bench/loadgen, and
// reports p50/p99 latency and throughput.
func load(b *testing.B, url string, c int) {
	b.Helper()
	body := []byte(`{"hello":"world"}`)
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * c}}
	defer client.CloseIdleConnections()
	send := func() (time.Duration, error) {
		start := time.Now()
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Amz-Function-Error") != "" {
			return 0, fmt.Errorf("status %d, function error %q: %s", resp.StatusCode, resp.Header.Get("X-Amz-Function-Error"), out)
		}
		return time.Since(start), nil
	}
	drive(b, c, 200, "req/s", send) // warm-up: environments started, connections open
}

// drive calls send warmup times, then b.N times from c goroutines, and reports the p50/p99 of
// the durations send returns and the calls per second (as unit).
func drive(b *testing.B, c, warmup int, unit string, send func() (time.Duration, error)) {
	b.Helper()
	for range warmup {
		if _, err := send(); err != nil {
			b.Fatal(err)
		}
	}
	per := max(b.N/c, 1)
	lat := make([][]time.Duration, c)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := make([]time.Duration, 0, per)
			for range per {
				d, err := send()
				if err != nil {
					b.Error(err) // Fatal belongs to the benchmark's own goroutine
					return
				}
				l = append(l, d)
			}
			lat[w] = l
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	if b.Failed() || len(all) == 0 {
		return
	}
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) }
	b.ReportMetric(pct(0.50), "p50_us")
	b.ReportMetric(pct(0.99), "p99_us")
	b.ReportMetric(float64(len(all))/wall.Seconds(), unit)
}

// benchBackends are the sandbox backends benchmarks compare (linux only where it can run).
func benchBackends() []string {
	if os.Geteuid() == 0 {
		return []string{"process", "linux"}
	}
	return []string{"process"}
}

func withSandbox(name string) func(*config.Config) {
	return func(c *config.Config) { c.Sandbox = name }
}

// BenchmarkWarmInvoke: client → Flint → aws-lambda-go echo runtime → client, warm, per backend.
func BenchmarkWarmInvoke(b *testing.B) {
	for _, backend := range benchBackends() {
		b.Run(backend, func(b *testing.B) {
			// The node's memory budget would refuse 16 × 1769 MB on this machine; the echo uses
			// a few MB of it.
			s := startServer(b, b.TempDir(), withSandbox(backend), func(c *config.Config) { c.MemoryBudgetMB = 1 << 20 })
			// 1769 MB is one full vCPU in the linux sandbox (as on Lambda): at 128 MB a busy
			// function is held to 7% of a CPU and the benchmark would measure the quota.
			createFunction(b, newClient(s.URL()), "echo", "provided.al2023", "bootstrap", goEchoZip,
				func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(1769) })
			url := s.URL() + "/2015-03-31/functions/echo/invocations"
			for _, c := range []int{1, 16} {
				b.Run("c="+strconv.Itoa(c), func(b *testing.B) { load(b, url, c) })
			}
		})
	}
}

// BenchmarkLoopbackFloor is the physical floor in the same run: a bare HTTP echo on loopback.
func BenchmarkLoopbackFloor(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := io.ReadAll(r.Body)
		_, _ = w.Write(p)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	for _, c := range []int{1, 16} {
		b.Run("c="+strconv.Itoa(c), func(b *testing.B) { load(b, "http://"+ln.Addr().String()+"/", c) })
	}
}

// BenchmarkRelay is the lower bound in the same run: bench/relay, the least work any platform can
// do between a client and the same unmodified aws-lambda-go runtime (one goroutine, raw HTTP, no
// logs, no isolation). It serves one client at a time, so c=1 only.
func BenchmarkRelay(b *testing.B) {
	dir := b.TempDir()
	if _, err := buildGo(dir, "../../examples/go-echo"); err != nil { // leaves dir/bootstrap
		b.Fatal(err)
	}
	relay := filepath.Join(dir, "relay")
	if out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", relay, "../../bench/relay").CombinedOutput(); err != nil {
		b.Fatalf("build bench/relay: %v\n%s", err, out)
	}
	cmd := exec.Command(relay, "-listen", "127.0.0.1:0", filepath.Join(dir, "bootstrap"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the runtime too is killed with the group
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	addr, err := bufio.NewReader(stdout).ReadString('\n') // printed once the runtime waits in /next
	if err != nil {
		b.Fatalf("relay: %v", err)
	}
	b.Run("c=1", func(b *testing.B) { load(b, "http://"+strings.TrimSpace(addr)+"/", 1) })
}

var initDuration = regexp.MustCompile(`Init Duration: ([0-9.]+) ms`)

// BenchmarkColdStart measures invokes that each need a new environment (the configuration changes
// between iterations, outside the timer), per backend. cold_ms is the client-observed latency of
// the cold invoke (median and p99); overhead_ms is what Flint adds to it: the cold invoke's latency
// minus the runtime's own init (REPORT's Init Duration: exec to first /next) minus a warm invoke's
// latency.
func BenchmarkColdStart(b *testing.B) {
	for _, backend := range benchBackends() {
		b.Run(backend, func(b *testing.B) { coldStarts(b, backend, "provided.al2023", "bootstrap", goEchoZip) })
	}
}

// BenchmarkColdStartRuntimes: cold starts of Python and Node hello functions (to set beside AWS
// Lambda's published Init Durations: python3.12 ~83 ms, nodejs22.x ~139 ms).
func BenchmarkColdStartRuntimes(b *testing.B) {
	py := mustZip(b, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return {'hello': 'world'}\n"}})
	node := mustZip(b, map[string]zipEntry{"index.mjs": {body: "export const handler = async () => ({hello: 'world'})\n"}})
	for _, backend := range benchBackends() {
		b.Run(backend+"/python3.12", func(b *testing.B) { coldStarts(b, backend, "python3.12", "app.handler", py) })
		b.Run(backend+"/nodejs20.x", func(b *testing.B) { coldStarts(b, backend, "nodejs20.x", "index.handler", node) })
	}
}

func coldStarts(b *testing.B, backend, runtime, handler string, zip []byte) {
	s := startServer(b, b.TempDir(), withSandbox(backend))
	c := newClient(s.URL())
	createFunction(b, c, "cold", runtime, handler, zip)
	ctx := context.Background()
	var cold, initD, warm, overhead []float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("cold"),
			Environment: &types.Environment{Variables: map[string]string{"ITERATION": strconv.Itoa(i)}}}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		out := invoke(b, c, "cold", `{}`, withTail)
		coldMS := float64(time.Since(start).Microseconds()) / 1000
		b.StopTimer()
		m := initDuration.FindStringSubmatch(decodeTail(b, out))
		if m == nil {
			b.Fatalf("cold invoke without Init Duration: %s", out.Payload)
		}
		initMS, _ := strconv.ParseFloat(m[1], 64)
		start = time.Now()
		invoke(b, c, "cold", `{}`, withTail)
		warmMS := float64(time.Since(start).Microseconds()) / 1000
		cold, initD, warm = append(cold, coldMS), append(initD, initMS), append(warm, warmMS)
		overhead = append(overhead, coldMS-initMS-warmMS)
		b.StartTimer()
	}
	pct := func(v []float64, p float64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		return v[int(p*float64(len(v)-1))]
	}
	b.ReportMetric(pct(cold, 0.5), "cold_p50_ms")
	b.ReportMetric(pct(cold, 0.99), "cold_p99_ms")
	b.ReportMetric(pct(initD, 0.5), "init_ms")
	b.ReportMetric(pct(warm, 0.5), "warm_ms")
	b.ReportMetric(pct(overhead, 0.5), "overhead_ms")
}

// BenchmarkScaleOut: from zero environments, 64 concurrent clients invoke a Go function that
// holds each invocation 20 ms (so every client needs an environment of its own). all_serving_ms
// is the time until every client has had its first answer; req/s is the throughput of the
// following 2 seconds with all 64 clients running.
func BenchmarkScaleOut(b *testing.B) {
	const clients = 64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := startServer(b, b.TempDir())
		createFunction(b, newClient(s.URL()), "scale", "provided.al2023", "bootstrap", goEchoZip)
		url := s.URL() + "/2015-03-31/functions/scale/invocations"
		client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
		send := func() {
			resp, err := client.Post(url, "application/json", bytes.NewReader([]byte(`{"sleep_ms":20}`)))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("X-Amz-Function-Error") != "" {
				b.Errorf("status %d %s", resp.StatusCode, resp.Header.Get("X-Amz-Function-Error"))
			}
		}
		b.StartTimer()
		start := time.Now()
		var first, all sync.WaitGroup
		var steady atomic.Int64
		var steadyStart time.Time
		first.Add(clients)
		all.Add(clients)
		gate := make(chan struct{})
		for range clients {
			go func() {
				defer all.Done()
				send()
				first.Done()
				<-gate
				for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
					send()
					steady.Add(1)
				}
			}()
		}
		first.Wait()
		allServing := time.Since(start)
		steadyStart = time.Now()
		close(gate)
		all.Wait()
		b.StopTimer()
		b.ReportMetric(float64(allServing.Microseconds())/1000, "all_serving_ms")
		b.ReportMetric(float64(steady.Load())/time.Since(steadyStart).Seconds(), "req/s")
		b.ReportMetric(float64(s.Workers().Stats().Idle), "environments")
		client.CloseIdleConnections()
		s.Close()
	}
}
