// Command relay is a yardstick, not part of Flint: the least work any platform can do between an
// HTTP client and an unmodified Lambda runtime speaking the Runtime API over loopback TCP. One
// process, one goroutine, one runtime, raw HTTP/1.1 on both connections; no routing, no
// configuration, no logs (the runtime's output goes to /dev/null), no isolation, no timeouts.
//
// Its warm latency bounds from below what Flint, RIE or any other runtime-API platform can reach
// on a machine: an invoke is the client's round trip plus the runtime's own (the /next answer
// and the /response request), and the relay adds nothing to the two. scripts/bench-warm.sh
// measures it beside the loopback floor, RIE and Flint in one sitting.
//
//	relay -listen 127.0.0.1:8080 ./bootstrap
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
	"strconv"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address for clients (any path; POST the event)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: relay [-listen ADDR] BOOTSTRAP")
		os.Exit(2)
	}
	if err := run(*listen, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		os.Exit(1)
	}
}

func run(listen, bootstrap string) error {
	runtimeLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	clientLn, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	cmd := exec.Command(bootstrap)
	cmd.SysProcAttr = sysProcAttr()
	cmd.Env = append(os.Environ(), "AWS_LAMBDA_RUNTIME_API="+runtimeLn.Addr().String(), "_HANDLER=bootstrap",
		"AWS_LAMBDA_FUNCTION_NAME=relay", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1769")
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill() }()
	rc, err := runtimeLn.Accept()
	if err != nil {
		return err
	}
	rt := bufio.NewReadWriter(bufio.NewReader(rc), bufio.NewWriter(rc))
	if _, err := readRequest(rt.Reader); err != nil { // the first GET /next
		return err
	}
	fmt.Println(clientLn.Addr())
	var id uint64
	for {
		cc, err := clientLn.Accept()
		if err != nil {
			return err
		}
		client := bufio.NewReadWriter(bufio.NewReader(cc), bufio.NewWriter(cc))
		for {
			event, err := readRequest(client.Reader)
			if err != nil {
				_ = cc.Close()
				break
			}
			id++
			// Answer the runtime's pending /next with the event.
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
			if _, err := readRequest(rt.Reader); err != nil { // GET /next
				return err
			}
		}
	}
}

// readRequest reads one HTTP/1.1 request and returns its body.
func readRequest(r *bufio.Reader) ([]byte, error) {
	req, err := http.ReadRequest(r)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(req.Body)
}
