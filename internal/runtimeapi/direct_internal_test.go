package runtimeapi

import (
	"io"
	"net"
	"net/http"
	"testing"
)

// TestWriteResponseAllocations: writing a response to a runtime's connection (the event, the
// 202 to its /response) allocates nothing once the connection's header buffer has grown.
func TestWriteResponseAllocations(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	go func() { _, _ = io.Copy(io.Discard, peer) }() // the runtime, reading
	rc := &rconn{c: c}
	body := []byte(`{"key1":"value1","key2":"value2"}`)
	inv := &Invocation{RequestID: "8476a536-e9f4-11e8-9739-2dfe598c3fcd", InvokedARN: "arn:aws:lambda:us-east-1:123456789012:function:fn"}
	write := func() {
		if err := rc.writeResponse(http.StatusOK, "application/json", body, inv.appendHeaders); err != nil {
			t.Fatal(err)
		}
	}
	write()
	if got := testing.AllocsPerRun(200, write); got != 0 {
		t.Errorf("writeResponse allocations = %v, want 0", got)
	}
}
