// Command scale is a benchmark, not part of Flint: how Flint's costs grow with the number of
// deployed functions and of idle (frozen) execution environments (issue 15, "density and
// growth"). It builds nothing: it takes a flint binary and the Go echo bootstrap
// (CGO_ENABLED=0 GOOS=linux go build -tags lambda.norpc ./examples/go-echo), starts real
// `flint serve` processes on loopback, each with a data directory of its own, talks to them with
// the aws-sdk-go-v2 Lambda client, and prints one table:
//
//	figure | sandbox | 1 | 100 | 1000 | growth
//
// For 1, 100 and 1,000 deployed functions (the echo function and N-1 small ones, each with code
// of its own), after graceful restarts on the same data directory:
//   - restart to first answer: from exec'ing `flint serve` again until an Invoke of the echo
//     function answers (the server's start, its state's recovery and one cold start), the
//     median of three restarts;
//   - server RSS (VmRSS of the server process, embedded NATS included: it runs in-process);
//   - ListFunctions p50, one page (50 functions, or fewer when there are fewer), paging
//     through all of them several times;
//   - warm invoke p50 of the echo function at c=1.
//
// For 1, 100 and 1,000 idle environments (provisioned concurrency of one published version of
// the echo function, so that exactly M environments are initialized and then left idle; the
// linux sandbox freezes them after --freeze-after, the process sandbox cannot):
//   - server RSS;
//   - memory per idle environment outside the runtime's own memory. The server runs in a
//     memory cgroup of its own made for the measurement (cgroup v1, a child of this program's),
//     which holds everything it starts: the linux sandbox nests its environments' cgroups below
//     the server's own, and process-sandbox runtimes are the server's children. Its usage,
//     less the page cache of files (reclaimable, and shared with whatever else reads the same
//     files, such as the runtime's code), is read before the first provisioned environment and
//     with M of them idle: it holds the server's memory, every process's anonymous memory,
//     tmpfs and shared memory, and kernel memory (namespaces, cgroups, sockets, page tables,
//     threads' stacks). From its growth the growth of the runtimes' own memory is taken away:
//     the sum of Pss_Anon + Pss_Shmem (proportional: a page shared by k processes counts 1/k to
//     each, so it counts once in the sum, as in the cgroup) over every runtime process (the
//     echo bootstrap) under the server. What is left, divided by M, is what an environment
//     costs beyond its runtime's own pages: Flint's bookkeeping in the server, the linux
//     sandbox's init process, namespaces, cgroups, sockets, and the runtime's own kernel side
//     (page tables, its threads' kernel stacks). The table breaks it down (kernel memory, the
//     server's RSS, the sandbox's processes' Pss) and gives the same figure for the runtime
//     exec'd bare M times (row "bare": no Flint, no sandbox), the part no platform can save.
//     Target ≤ 1 MiB. The M = 1 figures are within the noise of the server's heap (MiBs).
//   - warm invoke p50 of another function (the unprovisioned echo) with M environments idle;
//   - thawed invoke p50: an invoke of the provisioned version after it has been idle for longer
//     than --freeze-after (frozen in the linux sandbox; merely idle in the process sandbox).
//
// Growth: for per-request figures (ListFunctions page, invokes, memory per environment) the
// ratio of the 1,000 figure to the 100 one (ListFunctions: a page of 1 function is no
// yardstick for a page of 50; memory: the 1 figure is noise) or to the 1 one, flat when ≤ 1.5×
// (memory drawn from the server's RSS: give or take 16 MiB over the 100 environments, the most
// its idle heap was seen to shrink between two readings). For totals (RSS, restart) the cost
// per added unit from 100 to 1,000 against that from 1 to 100: at most linear when the later
// is not more than twice the earlier, give or take the figure's noise spread over the 99 units
// (8 MiB of RSS, 50 ms of restart), or when the whole growth is under a quarter of the base.
// The machine's noise is large (shared cores): read the ratios, run twice.
//
//	scale -flint bin/flint -bootstrap /tmp/go-echo/bootstrap [-sandbox process,linux] [-json]
package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

const role = "arn:aws:iam::000000000000:role/flint"

// sizes are the counts of functions and of idle environments measured.
var sizes = []int{1, 100, 1000}

func main() {
	flintBin := flag.String("flint", "bin/flint", "the flint binary to run")
	bootstrap := flag.String("bootstrap", "", "the Go echo bootstrap (built from ./examples/go-echo)")
	sandboxes := flag.String("sandbox", "process,linux", "sandboxes to measure, comma-separated")
	asJSON := flag.Bool("json", false, "print the figures as one JSON object after the table")
	keep := flag.Bool("keep", false, "keep the data directories and server logs")
	sizeList := flag.String("sizes", "1,100,1000", "the three sizes measured (a quick look: 1,10,30)")
	flag.Parse()
	if _, err := fmt.Sscanf(*sizeList, "%d,%d,%d", &sizes[0], &sizes[1], &sizes[2]); err != nil || sizes[0] < 1 || sizes[1] <= sizes[0] || sizes[2] <= sizes[1] {
		fmt.Fprintln(os.Stderr, "scale: -sizes takes three increasing counts, e.g. 1,100,1000")
		os.Exit(2)
	}
	if *bootstrap == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: scale -flint FLINT -bootstrap BOOTSTRAP [-sandbox process,linux] [-sizes 1,100,1000] [-json] [-keep]")
		os.Exit(2)
	}
	if err := run(*flintBin, *bootstrap, strings.Split(*sandboxes, ","), *asJSON, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

// figures are one sandbox's measurements, by figure name, one value per size.
type figures map[string][]float64

func run(flintBin, bootstrap string, sandboxes []string, asJSON, keep bool) error {
	flintBin, err := filepath.Abs(flintBin)
	if err != nil {
		return err
	}
	code, err := os.ReadFile(bootstrap)
	if err != nil {
		return err
	}
	echoZip, err := zipOf(map[string][]byte{"bootstrap": code})
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "flint-scale-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Fprintln(os.Stderr, "scale: keeping", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	started := time.Now()
	all := map[string]figures{}
	for _, sb := range sandboxes {
		fig := figures{}
		all[sb] = fig
		b := &bench{flint: flintBin, sandbox: sb, tmp: tmp, echoZip: echoZip, fig: fig}
		fmt.Fprintf(os.Stderr, "scale: %s sandbox: functions…\n", sb)
		if err := b.functions(); err != nil {
			return fmt.Errorf("%s sandbox, functions: %w", sb, err)
		}
		fmt.Fprintf(os.Stderr, "scale: %s sandbox: idle environments…\n", sb)
		if err := b.environments(); err != nil {
			return fmt.Errorf("%s sandbox, environments: %w", sb, err)
		}
	}
	fmt.Fprintln(os.Stderr, "scale: bare runtimes…")
	bare := figures{}
	for i, m := range sizes {
		v, err := bareOutside(bootstrap, m)
		if err != nil {
			fmt.Fprintf(os.Stderr, "scale: bare runtimes: %v\n", err)
			bare = nil
			break
		}
		bare.set("idle envs: memory per env outside the runtime (KiB)", i, v)
	}
	if bare != nil {
		all["bare"] = bare
		sandboxes = append(sandboxes, "bare")
	}
	printTable(os.Stdout, sandboxes, all)
	fmt.Printf("scale took %.0f s\n", time.Since(started).Seconds())
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(all)
	}
	return nil
}

// bench measures one sandbox.
type bench struct {
	flint, sandbox, tmp string
	echoZip             []byte
	fig                 figures
	runs                int
}

func (b *bench) set(name string, i int, v float64) { b.fig.set(name, i, v) }

func (f figures) set(name string, i int, v float64) {
	if f[name] == nil {
		f[name] = make([]float64, len(sizes))
	}
	f[name][i] = v
}

// bareOutside is the yardstick for memory per idle environment: m runtimes exec'd bare (no
// sandbox, no Flint), each parked in its first GET /next on a listener that never answers, in
// a memory cgroup of their own; the cgroup's usage less the runtimes' Pss, per runtime, in
// KiB, by the same method as Flint's figure. What is left is the kernel's side of a process
// (page tables, its threads' stacks, its socket): a cost of the runtime, not of Flint.
func bareOutside(bootstrap string, m int) (float64, error) {
	cg, err := makeCgroup(fmt.Sprintf("flint-scale-%d-bare-%d", os.Getpid(), m))
	if err != nil {
		return 0, err
	}
	defer removeCgroup(cg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	accepted := make(chan net.Conn, m)
	go func() { // ends when ln is closed
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	base, _, err := cgroupUsage(cg)
	if err != nil {
		return 0, err
	}
	var cmds []*exec.Cmd
	defer func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}()
	for range m {
		cmd := exec.Command("/bin/sh", "-c", `echo $$ >"$0/cgroup.procs" && exec "$@"`, cg, bootstrap)
		cmd.Env = []string{"AWS_LAMBDA_RUNTIME_API=" + ln.Addr().String(), "_HANDLER=bootstrap",
			"AWS_LAMBDA_FUNCTION_NAME=bare", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128"}
		cmd.SysProcAttr = sysProcAttr()
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		cmds = append(cmds, cmd)
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for len(conns) < m {
		select {
		case c := <-accepted:
			conns = append(conns, c)
		case <-time.After(time.Minute):
			return 0, fmt.Errorf("%d of %d bare runtimes connected", len(conns), m)
		}
	}
	time.Sleep(500 * time.Millisecond) // every /next sent, the runtimes settled
	usage, _, err := cgroupUsage(cg)
	if err != nil {
		return 0, err
	}
	var pss int64
	for _, c := range cmds {
		p, err := processPss(c.Process.Pid)
		if err != nil {
			return 0, err
		}
		pss += p
	}
	return float64(usage-base-pss) / 1024 / float64(m), nil
}

// functions measures the server with 1, 100 and 1,000 functions deployed.
func (b *bench) functions() error {
	ctx := context.Background()
	s, err := b.newServer("functions")
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.start(ctx); err != nil {
		return err
	}
	if err := createEcho(ctx, s.client, "echo", b.echoZip, false); err != nil {
		return err
	}
	deployed := 1
	for i, n := range sizes {
		if err := createSmall(ctx, s.client, deployed, n); err != nil {
			return err
		}
		deployed = n
		var restarts []time.Duration // the median of three: one start is at the mercy of the shared cores
		for range 3 {
			if err := s.stop(); err != nil {
				return err
			}
			t := time.Now()
			if err := s.start(ctx); err != nil {
				return err
			}
			if err := firstAnswer(ctx, s.client, "echo", time.Minute); err != nil {
				return fmt.Errorf("after restart with %d functions: %w", n, err)
			}
			restarts = append(restarts, time.Since(t))
		}
		b.set("restart to first answer (ms)", i, ms(median(restarts)))
		warm, err := invokeP50(ctx, s.client, "echo", 300)
		if err != nil {
			return err
		}
		b.set("warm invoke p50 (µs)", i, us(warm))
		list, err := listP50(ctx, s.client, n)
		if err != nil {
			return err
		}
		b.set("ListFunctions p50, a page (µs)", i, us(list))
		rss, err := vmRSS(s.pid())
		if err != nil {
			return err
		}
		b.set("server RSS (MiB)", i, mib(rss))
	}
	return s.stop()
}

// environments measures the server with 1, 100 and 1,000 idle provisioned environments.
func (b *bench) environments() error {
	ctx := context.Background()
	s, err := b.newServer("envs")
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.start(ctx); err != nil {
		return err
	}
	if err := createEcho(ctx, s.client, "echo", b.echoZip, false); err != nil {
		return err
	}
	if err := createEcho(ctx, s.client, "idle", b.echoZip, true); err != nil {
		return err
	}
	if err := firstAnswer(ctx, s.client, "echo", time.Minute); err != nil {
		return err
	}
	time.Sleep(time.Second) // the echo environment frozen, the server's start-up garbage settled
	base, err := s.memory()
	if err != nil {
		return err
	}
	for i, m := range sizes {
		t := time.Now()
		if _, err := s.client.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{
			FunctionName: aws.String("idle"), Qualifier: aws.String("1"), ProvisionedConcurrentExecutions: aws.Int32(int32(m)),
		}); err != nil {
			return err
		}
		if err := waitProvisioned(ctx, s.client, m, 5*time.Minute); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "scale: %s: %d provisioned environments ready in %.1f s\n", b.sandbox, m, time.Since(t).Seconds())
		if b.sandbox == "linux" {
			if err := s.waitFrozen(m+1, time.Minute); err != nil { // and the echo function's
				return err
			}
		}
		// Settled: the last environments' start-up done (on a busy machine it lingers).
		time.Sleep(2 * time.Second)
		now, err := s.memory()
		if err != nil {
			return err
		}
		if now.runtimes != base.runtimes+m {
			return fmt.Errorf("%d runtime processes under the server with %d environments provisioned, want %d", now.runtimes, m, base.runtimes+m)
		}
		b.set("idle envs: server RSS (MiB)", i, mib(now.serverRSS))
		b.set("idle envs: runtime Pss per env (KiB)", i, kib(now.runtimePss-base.runtimePss)/float64(m))
		if now.cgroup > 0 && base.cgroup > 0 {
			outside := float64(now.cgroup-base.cgroup) - float64(now.runtimePss-base.runtimePss)
			b.set("idle envs: memory per env outside the runtime (KiB)", i, outside/1024/float64(m))
			b.set("idle envs: of it, kernel memory per env (KiB)", i, kib(now.kmem-base.kmem)/float64(m))
		}
		b.set("idle envs: of it, server RSS per env (KiB)", i, (kib(now.serverRSS)-kib(base.serverRSS))/float64(m))
		b.set("idle envs: of it, sandbox processes' Pss per env (KiB)", i, kib(now.otherPss-base.otherPss)/float64(m))
		warm, err := invokeP50(ctx, s.client, "echo", 300)
		if err != nil {
			return err
		}
		b.set("idle envs: warm invoke p50 (µs)", i, us(warm))
		thawed, err := thawedP50(ctx, s.client, 15)
		if err != nil {
			return err
		}
		b.set("idle envs: thawed invoke p50 (µs)", i, us(thawed))
	}
	return s.stop()
}

// server is one `flint serve` process on a data directory of its own, started and stopped again
// on it; it runs in a memory cgroup of its own when the host has cgroup v1's memory controller.
type server struct {
	flint, sandbox, data, listen, logPath string
	cgroup                                string // "" when none
	client                                *lambda.Client
	cmd                                   *exec.Cmd
	done                                  chan struct{}
}

func (b *bench) newServer(what string) (*server, error) {
	b.runs++
	name := fmt.Sprintf("%s-%s", b.sandbox, what)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	listen := ln.Addr().String()
	ln.Close()
	s := &server{flint: b.flint, sandbox: b.sandbox, data: filepath.Join(b.tmp, name), listen: listen,
		logPath: filepath.Join(b.tmp, name+".log")}
	s.client = lambda.New(lambda.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String("http://" + listen),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDFLINTSCALE", "secret", ""),
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
	})
	s.cgroup, err = makeCgroup(fmt.Sprintf("flint-scale-%d-%s", os.Getpid(), name))
	if err != nil {
		fmt.Fprintf(os.Stderr, "scale: no memory cgroup (%v): memory per environment is not measured\n", err)
	}
	return s, nil
}

// start execs the server and waits until its API answers.
func (s *server) start(ctx context.Context) error {
	log, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	args := []string{"serve", "--listen", s.listen, "--data", s.data, "--sandbox", s.sandbox, "--log-level", "warn",
		// Room for 1,000 environments of 128 MB and 1,000 provisioned ones beside the unreserved
		// minimum; nothing reaped while measuring.
		"--memory-budget", "1000000", "--account-concurrency", "2000", "--keep-alive", "1h"}
	argv := append([]string{s.flint}, args...)
	if s.cgroup != "" {
		// Into the cgroup before the server starts anything, so that all it starts is there too.
		argv = append([]string{"/bin/sh", "-c", `echo $$ >"$0/cgroup.procs" && exec "$@"`, s.cgroup}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.done) }()
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := hc.Get("http://" + s.listen + "/metrics")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("flint serve exited: %v (log %s)", cmd.ProcessState, s.logPath)
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("flint serve did not answer within 2 minutes (log %s)", s.logPath)
		}
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// stop stops the server gracefully (SIGTERM), killing it after a minute.
func (s *server) stop() error {
	if s.cmd == nil {
		return nil
	}
	defer func() { s.cmd = nil }()
	select {
	case <-s.done:
		return fmt.Errorf("flint serve had exited: %v (log %s)", s.cmd.ProcessState, s.logPath)
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return nil
	case <-time.After(time.Minute):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("flint serve did not stop within a minute of SIGTERM (log %s)", s.logPath)
	}
}

// close stops the server if it runs and removes its cgroup.
func (s *server) close() {
	if s.cmd != nil {
		_ = s.cmd.Process.Kill()
		<-s.done
		s.cmd = nil
	}
	if s.cgroup != "" {
		// A killed linux-sandbox server's reaper clears its environments' cgroups after it: wait.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			removeCgroup(s.cgroup)
			if _, err := os.Stat(s.cgroup); os.IsNotExist(err) || time.Now().After(deadline) {
				break
			}
		}
	}
}

// memory is what the server and what it started hold at one moment.
type memory struct {
	serverRSS  int64 // VmRSS of the server process
	cgroup     int64 // the server's memory cgroup's usage (0: none)
	kmem       int64 // of it, kernel memory
	runtimePss int64 // the sum of the Pss of every runtime process under the server
	runtimes   int   // how many there are
	otherPss   int64 // the sum of the Pss of the other processes under it (linux: inits, reaper)
}

func (s *server) memory() (memory, error) {
	var m memory
	var err error
	if m.serverRSS, err = vmRSS(s.pid()); err != nil {
		return m, err
	}
	pids, others, err := descendants(s.pid())
	if err != nil {
		return m, err
	}
	m.runtimes = len(pids)
	for _, p := range pids {
		pss, err := processPss(p)
		if err != nil {
			return m, err
		}
		m.runtimePss += pss
	}
	for _, p := range others {
		if pss, err := processPss(p); err == nil { // a spare init may come and go
			m.otherPss += pss
		}
	}
	if s.cgroup != "" {
		if m.cgroup, m.kmem, err = cgroupUsage(s.cgroup); err != nil {
			return m, err
		}
	}
	return m, nil
}

// waitFrozen waits until n runtimes under the server are frozen.
func (s *server) waitFrozen(n int, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		pids, _, err := descendants(s.pid())
		if err != nil {
			return err
		}
		frozen := 0
		for _, p := range pids {
			if isFrozen(p) {
				frozen++
			}
		}
		if frozen >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d environments frozen after %v", frozen, n, bound)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// createEcho creates the echo function: the one whose warm invokes are timed with a whole
// vCPU (1,769 MB), as scripts/bench-all.sh does (at 128 MB the linux sandbox's CPU share, 7% of
// a CPU, throttles a run of back-to-back invokes for tens of ms a period), the provisioned one
// (published as version 1) with 128 MB, the smallest environments.
func createEcho(ctx context.Context, c *lambda.Client, name string, zip []byte, publish bool) error {
	memory := int32(1769)
	if publish {
		memory = 128
	}
	_, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String(name), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String(role), Code: &types.FunctionCode{ZipFile: zip}, MemorySize: aws.Int32(memory),
		Timeout: aws.Int32(10), Publish: publish,
	})
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	return nil
}

// createSmall creates functions fn-FROM … fn-(TO-1), each with a small package of its own, a few
// at a time.
func createSmall(ctx context.Context, c *lambda.Client, from, to int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				name := fmt.Sprintf("fn-%04d", i)
				zip, err := zipOf(map[string][]byte{"bootstrap": []byte("#!/bin/sh\n# " + name + "\nexit 1\n")})
				if err == nil {
					_, err = c.CreateFunction(ctx, &lambda.CreateFunctionInput{
						FunctionName: aws.String(name), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
						Role: aws.String(role), Code: &types.FunctionCode{ZipFile: zip},
					})
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("create %s: %w", name, err)
						cancel()
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := from; i < to && ctx.Err() == nil; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	return first
}

// firstAnswer invokes fn until it answers.
func firstAnswer(ctx context.Context, c *lambda.Client, fn string, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{}`)})
		if err == nil && out.FunctionError == nil {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("function error %s: %s", *out.FunctionError, out.Payload)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("invoke %s: %w", fn, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func invokeOnce(ctx context.Context, c *lambda.Client, fn, qualifier string) (time.Duration, error) {
	in := &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{"scale":true}`)}
	if qualifier != "" {
		in.Qualifier = aws.String(qualifier)
	}
	t := time.Now()
	out, err := c.Invoke(ctx, in)
	took := time.Since(t)
	if err != nil {
		return 0, fmt.Errorf("invoke %s: %w", fn, err)
	}
	if out.FunctionError != nil {
		return 0, fmt.Errorf("invoke %s: function error %s: %s", fn, *out.FunctionError, out.Payload)
	}
	return took, nil
}

// invokeP50 is the median of n invokes of fn at c=1, after a few unmeasured ones.
func invokeP50(ctx context.Context, c *lambda.Client, fn string, n int) (time.Duration, error) {
	var took []time.Duration
	for i := range n + 20 {
		d, err := invokeOnce(ctx, c, fn, "")
		if err != nil {
			return 0, err
		}
		if i >= 20 {
			took = append(took, d)
		}
	}
	return median(took), nil
}

// thawedP50 is the median of n invokes of idle:1, each after the environments have been idle
// for longer than the server's --freeze-after (100 ms).
func thawedP50(ctx context.Context, c *lambda.Client, n int) (time.Duration, error) {
	var took []time.Duration
	for range n {
		time.Sleep(300 * time.Millisecond)
		d, err := invokeOnce(ctx, c, "idle", "1")
		if err != nil {
			return 0, err
		}
		took = append(took, d)
	}
	return median(took), nil
}

// listP50 pages through every function (want of them) with ListFunctions' default page size
// until at least 40 pages were read, and returns the median page's time.
func listP50(ctx context.Context, c *lambda.Client, want int) (time.Duration, error) {
	var took []time.Duration
	for len(took) < 40 {
		p := lambda.NewListFunctionsPaginator(c, &lambda.ListFunctionsInput{})
		got := 0
		for p.HasMorePages() {
			t := time.Now()
			out, err := p.NextPage(ctx)
			if err != nil {
				return 0, fmt.Errorf("ListFunctions: %w", err)
			}
			took = append(took, time.Since(t))
			got += len(out.Functions)
		}
		if got != want {
			return 0, fmt.Errorf("ListFunctions listed %d functions, want %d", got, want)
		}
	}
	return median(took), nil
}

// waitProvisioned waits until idle:1 has m provisioned environments ready.
func waitProvisioned(ctx context.Context, c *lambda.Client, m int, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		out, err := c.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{
			FunctionName: aws.String("idle"), Qualifier: aws.String("1")})
		if err != nil {
			return err
		}
		if out.Status == types.ProvisionedConcurrencyStatusEnumFailed {
			return fmt.Errorf("provisioned concurrency failed: %s", aws.ToString(out.StatusReason))
		}
		if aws.ToInt32(out.AvailableProvisionedConcurrentExecutions) >= int32(m) && out.Status == types.ProvisionedConcurrencyStatusEnumReady {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d provisioned environments ready after %v", aws.ToInt32(out.AvailableProvisionedConcurrentExecutions), m, bound)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func zipOf(files map[string][]byte) ([]byte, error) {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for name, body := range files {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(0o755)
		f, err := w.CreateHeader(h)
		if err != nil {
			return nil, err
		}
		if _, err := f.Write(body); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[len(d)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
func us(d time.Duration) float64 { return float64(d.Microseconds()) }
func mib(b int64) float64        { return float64(b) / (1 << 20) }
func kib(b int64) float64        { return float64(b) / 1024 }

var errNotLinux = errors.New("needs Linux")
