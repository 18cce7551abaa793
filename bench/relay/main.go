// Command relay is a yardstick, not part of Flint: the least work any platform can do between an
// HTTP client and an unmodified Lambda runtime speaking the Runtime API over loopback TCP. One
// process, raw HTTP/1.1 on both connections; no routing, no configuration, no logs (the
// runtime's output goes to /dev/null), no isolation, no timeouts.
//
// With one runtime (the default) it is one goroutine: its warm latency bounds from below what
// Flint, RIE or any other runtime-API platform can reach on a machine: an invoke is the client's
// round trip plus the runtime's own (the /next answer and the /response request), and the relay
// adds nothing to the two. scripts/bench-warm.sh measures it beside the loopback floor, RIE and
// Flint in one sitting.
//
// With -n N it starts N runtimes and serves each client connection on a goroutine of its own,
// which takes an idle runtime from a channel for each invoke and gives it back after: the least
// a platform must add to serve N concurrent invokes through N unmodified runtimes (one channel
// receive and send per invoke; no placement, no accounting). Its throughput and p99 at c=N are
// the yardstick for Flint's at c=N (scripts/bench-all.sh).
//
// With -startup K it serves nothing: it execs the runtime K times, one at a time, and prints
// the median time from the exec until the runtime's first GET /next arrives (then kills it),
// in microseconds: the bare start a platform's cold start of that runtime is compared with.
// -pause D waits D (not timed) before each start, as `flint bench --cold` waits between cold
// starts: on a VM a process that slept runs its first instructions much slower, so a yardstick
// measured back to back and cold starts measured apart would not compare like with like.
//
//	relay -listen 127.0.0.1:8080 ./bootstrap
//	relay -listen 127.0.0.1:8080 -n 16 ./bootstrap
//	relay -startup 20 ./bootstrap
//	relay -startup 20 -pause 250ms ./bootstrap
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address for clients (any path; POST the event)")
	n := flag.Int("n", 1, "runtimes to start; more than one serves concurrent client connections")
	startup := flag.Int("startup", 0, "instead of serving, time K bare starts of the runtime until its first /next")
	pause := flag.Duration("pause", 0, "-startup: wait this long (not timed) before each start")
	flag.Parse()
	if flag.NArg() != 1 || *n < 1 || *startup < 0 {
		fmt.Fprintln(os.Stderr, "usage: relay [-listen ADDR] [-n N] BOOTSTRAP | relay -startup K BOOTSTRAP")
		os.Exit(2)
	}
	var err error
	if *startup > 0 {
		err = timeStarts(*startup, *pause, flag.Arg(0))
	} else {
		err = run(*listen, *n, flag.Arg(0))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		os.Exit(1)
	}
}

// runtime is one started runtime, its connection parked in GET /next between invokes.
type runtime struct {
	cmd *exec.Cmd
	rt  *bufio.ReadWriter
}

// start execs the runtime and waits for its first GET /next.
func start(bootstrap string) (*runtime, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close() // one connection per runtime: the listener is not needed once it is made
	cmd := exec.Command(bootstrap)
	cmd.SysProcAttr = sysProcAttr()
	cmd.Env = append(os.Environ(), "AWS_LAMBDA_RUNTIME_API="+ln.Addr().String(), "_HANDLER=bootstrap",
		"AWS_LAMBDA_FUNCTION_NAME=relay", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1769")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	rc, err := ln.Accept()
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}
	r := &runtime{cmd: cmd, rt: bufio.NewReadWriter(bufio.NewReader(rc), bufio.NewWriter(rc))}
	if _, err := readRequest(r.rt.Reader); err != nil { // the first GET /next
		r.kill()
		return nil, err
	}
	return r, nil
}

func (r *runtime) kill() { _ = r.cmd.Process.Kill(); _ = r.cmd.Wait() }

// timeStarts prints the median of k bare starts (exec until the first /next), each after pause,
// in microseconds.
func timeStarts(k int, pause time.Duration, bootstrap string) error {
	took := make([]time.Duration, 0, k)
	for range k {
		time.Sleep(pause)
		t := time.Now()
		r, err := start(bootstrap)
		if err != nil {
			return err
		}
		took = append(took, time.Since(t))
		r.kill()
	}
	slices.Sort(took)
	fmt.Println(took[len(took)/2].Microseconds())
	return nil
}

func run(listen string, n int, bootstrap string) error {
	clientLn, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	idle := make(chan *runtime, n)
	for range n {
		r, err := start(bootstrap)
		if err != nil {
			return err
		}
		defer r.kill()
		idle <- r
	}
	fmt.Println(clientLn.Addr())
	var id atomic.Uint64
	if n == 1 { // one goroutine, no channel: the c=1 floor as it always was
		r := <-idle
		for {
			cc, err := clientLn.Accept()
			if err != nil {
				return err
			}
			if err := serve(cc, func() *runtime { return r }, func(*runtime) {}, &id); err != nil {
				return err
			}
		}
	}
	failed := make(chan error, 1)
	go func() {
		for {
			cc, err := clientLn.Accept()
			if err != nil {
				failed <- err
				return
			}
			go func() {
				if err := serve(cc, func() *runtime { return <-idle }, func(r *runtime) { idle <- r }, &id); err != nil {
					select {
					case failed <- err:
					default:
					}
				}
			}()
		}
	}()
	return <-failed
}

// serve relays one client connection's invokes until the client goes; an error is the runtime's.
func serve(cc net.Conn, take func() *runtime, give func(*runtime), id *atomic.Uint64) error {
	defer cc.Close()
	client := bufio.NewReadWriter(bufio.NewReader(cc), bufio.NewWriter(cc))
	for {
		event, err := readRequest(client.Reader)
		if err != nil {
			return nil
		}
		r := take()
		err = r.invoke(client, event, id.Add(1))
		give(r)
		if err != nil {
			return err
		}
	}
}

// invoke hands the event to the runtime's pending /next, relays its answer to the client and
// reads the runtime's next /next.
func (r *runtime) invoke(client *bufio.ReadWriter, event []byte, id uint64) error {
	rt := r.rt
	rt.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: ")
	rt.WriteString(strconv.FormatUint(id, 10))
	rt.WriteString("\r\nLambda-Runtime-Deadline-Ms: 32503680000000\r\n" +
		"Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:000000000000:function:relay\r\nContent-Length: ")
	rt.WriteString(strconv.Itoa(len(event)))
	rt.WriteString("\r\n\r\n")
	rt.Write(event)
	if err := rt.Flush(); err != nil {
		return err
	}
	answer, err := readRequest(rt.Reader) // POST /runtime/invocation/ID/response
	if err != nil {
		return err
	}
	// The client first, then the runtime's 202; its next /next is read before the next event.
	client.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ")
	client.WriteString(strconv.Itoa(len(answer)))
	client.WriteString("\r\n\r\n")
	client.Write(answer)
	_ = client.Flush()
	rt.WriteString("HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"status\":\"OK\"}")
	if err := rt.Flush(); err != nil {
		return err
	}
	_, err = readRequest(rt.Reader) // GET /next
	return err
}

// readRequest reads one HTTP/1.1 request and returns its body.
func readRequest(r *bufio.Reader) ([]byte, error) {
	req, err := http.ReadRequest(r)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(req.Body)
}
