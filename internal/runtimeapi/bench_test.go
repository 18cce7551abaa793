package runtimeapi_test

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/flint-run/flint/internal/runtimeapi"
)

// BenchmarkInvokeDirect measures Invoke on its fast path alone: a runtime on one kept-alive
// connection asks for /next and posts /response, as aws-lambda-go does; the event and the
// answer travel on that connection, read and written by Invoke. The runtime's own work (a
// small hand-written client) is in the figures, the same for every version of the package.
func BenchmarkInvokeDirect(b *testing.B) {
	hooks := newHooks()
	srv := runtimeapi.New(hooks, info, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(ln) })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	const id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
	next := []byte("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n\r\n")
	answer := []byte("POST /2018-06-01/runtime/invocation/" + id + "/response HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n" +
		"Content-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}")
	wg.Go(func() { // the runtime
		br := bufio.NewReader(c)
		read := func() bool {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				return false
			}
			_, err = io.Copy(io.Discard, resp.Body)
			return err == nil
		}
		for {
			if _, err := c.Write(next); err != nil || !read() {
				return
			}
			if _, err := c.Write(answer); err != nil || !read() {
				return
			}
		}
	})
	select { // the runtime's first /next is parked
	case <-hooks.readyc:
	case <-time.After(wait):
		b.Fatal("the runtime did not ask for /next")
	}
	payload := []byte(`{"key1":"value1","key2":"value2"}`)
	deadline := time.Now().Add(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		inv := runtimeapi.NewInvocation()
		inv.RequestID, inv.Payload, inv.Deadline = id, payload, deadline
		inv.InvokedARN = "arn:aws:lambda:us-east-1:123456789012:function:fn"
		if r, err := srv.Invoke(inv); err != nil || len(r.Body) != 11 {
			b.Fatalf("Invoke = %q, %v", r.Body, err)
		}
	}
	b.StopTimer()
	_ = srv.Close()
	_ = c.Close()
	wg.Wait()
}
