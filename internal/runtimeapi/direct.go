package runtimeapi

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Outcomes of Invoke besides a result.
var (
	// ErrNotDelivered: the environment closed before the runtime took the invocation; the caller
	// may place it on another environment.
	ErrNotDelivered = errors.New("runtimeapi: invocation not delivered")
	// ErrTimedOut: the deadline passed; the invocation is claimed and the caller must reset the
	// environment.
	ErrTimedOut = errors.New("runtimeapi: invocation timed out")
	// ErrAborted: the platform settled the invocation with Invocation.Abort.
	ErrAborted = errors.New("runtimeapi: invocation aborted by the platform")
)

var (
	errParkedElsewhere = errors.New("runtimeapi: runtime parked on another connection")
	errAnswered        = errors.New("runtimeapi: invocation answered on another connection")
)

// rconn is a runtime's connection taken over from net/http.
type rconn struct {
	c      net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	close1 bool // the runtime asked to close the connection after the next response

	kicked    atomic.Bool
	closeOnce sync.Once
	hdr       []byte
	// iov and bufs are writeResponse's writev vectors, kept here: a net.Buffers on the stack
	// escapes through the interface WriteTo writes to, an allocation per response.
	iov  [2][]byte
	bufs net.Buffers
}

func (rc *rconn) close() { rc.closeOnce.Do(func() { _ = rc.c.Close() }) }

// kick interrupts a blocked read: the runtime showed up on another connection.
func (rc *rconn) kick() {
	rc.kicked.Store(true)
	_ = rc.c.SetReadDeadline(time.Unix(1, 0))
}

// writeResponse writes one HTTP/1.1 response in a single writev. extra appends header lines.
func (rc *rconn) writeResponse(status int, contentType string, body []byte, extra func([]byte) []byte) error {
	h := rc.hdr[:0]
	h = append(h, "HTTP/1.1 "...)
	h = strconv.AppendInt(h, int64(status), 10)
	h = append(h, ' ')
	h = append(h, http.StatusText(status)...)
	h = append(h, "\r\nContent-Type: "...)
	h = append(h, contentType...)
	h = append(h, "\r\nContent-Length: "...)
	h = strconv.AppendInt(h, int64(len(body)), 10)
	h = append(h, "\r\n"...)
	if extra != nil {
		h = extra(h)
	}
	if rc.close1 {
		h = append(h, "Connection: close\r\n"...)
	}
	h = append(h, "\r\n"...)
	rc.hdr = h
	rc.iov = [2][]byte{h, body}
	rc.bufs = rc.iov[:]
	_, err := rc.bufs.WriteTo(rc.c)
	rc.iov = [2][]byte{} // not to keep the payload alive until the next response
	return err
}

// readRequest reads the runtime's next request on rc until deadline.
func (s *Server) readRequest(rc *rconn, deadline time.Time, answered func() bool) (*http.Request, error) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil, net.ErrClosed
	}
	// An answer that came on another connection before this reader was published found no one
	// to kick: look for it here, under the same lock result() takes after completing.
	if answered != nil && answered() {
		s.mu.Unlock()
		return nil, errAnswered
	}
	if len(s.parked) > 0 { // the runtime is waiting on another connection already
		s.mu.Unlock()
		return nil, errParkedElsewhere
	}
	// The deadline is set before the reader is published, so a kick cannot be overwritten.
	_ = rc.c.SetReadDeadline(deadline)
	s.reading = rc
	s.mu.Unlock()
	_, err := rc.br.Peek(1) // wait for the runtime without consuming: a kick loses nothing
	s.mu.Lock()
	s.reading = nil
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if rc.kicked.Load() { // kicked as the data came: the request waits for the next reader
		return nil, os.ErrDeadlineExceeded
	}
	req, err := http.ReadRequest(rc.br)
	if err == nil {
		rc.close1 = req.Close
		if strings.EqualFold(req.Header.Get("Expect"), "100-continue") {
			_, err = rc.c.Write([]byte("HTTP/1.1 100 Continue\r\n\r\n"))
		}
	}
	return req, err
}

// timedOut tells a passed deadline from a kick or a closed connection.
func timedOut(rc *rconn, err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) && !rc.kicked.Load()
}

// Invoke hands inv to the runtime and returns its result. It runs on the caller's goroutine and,
// on the fast path, talks to the runtime's own connection directly: no goroutine hand-off.
func (s *Server) Invoke(inv *Invocation) (Result, error) {
	r, err := s.invoke(inv)
	if err == nil && inv.aborted { // a nil error means r came from done, after Abort's write
		return Result{}, ErrAborted
	}
	return r, err
}

func (s *Server) invoke(inv *Invocation) (Result, error) {
	rc, err := s.parkedRuntime(inv.Deadline)
	if err != nil {
		if errors.Is(err, ErrTimedOut) && !inv.Claim() {
			return <-inv.done, nil
		}
		return Result{}, err
	}
	s.mu.Lock()
	s.current = inv
	s.mu.Unlock()
	if err := rc.writeResponse(http.StatusOK, contentTypeOr(inv.ContentType), inv.Payload, inv.appendHeaders); err != nil || rc.close1 {
		rc.close() // the runtime answers on a new connection (or is gone: the monitor reports it)
		return s.await(inv)
	}
	for {
		req, err := s.readRequest(rc, inv.Deadline, inv.Completed)
		if errors.Is(err, errAnswered) {
			s.keep(rc) // the runtime's next /next may come on it
			return s.await(inv)
		}
		if err != nil {
			if timedOut(rc, err) {
				rc.close()
				if inv.Claim() {
					return Result{}, ErrTimedOut
				}
				return <-inv.done, nil
			}
			if !rc.kicked.Load() {
				rc.close()
			} else {
				s.keep(rc)
			}
			return s.await(inv)
		}
		switch s.serveDirect(rc, req) {
		case directParked: // answered on another connection; this is the runtime's next /next
			s.offer(rc)
			return <-inv.done, nil
		case directDetached:
			return s.await(inv)
		}
		switch {
		case rc.close1:
			rc.close()
			return s.await(inv)
		case inv.Completed():
			s.keep(rc) // its next request will be /next, read by the next Invoke
			return <-inv.done, nil
		}
	}
}

// offer parks rc, whose /next is read and unanswered, for the next Invoke.
func (s *Server) offer(rc *rconn) {
	_ = rc.c.SetReadDeadline(time.Time{})
	rc.kicked.Store(false)
	select {
	case s.parked <- rc:
	default:
		_ = rc.writeResponse(http.StatusForbidden, "application/json", errBusy, nil)
		rc.close()
	}
}

// await waits for inv's result to arrive through the net/http handlers (or the monitor).
func (s *Server) await(inv *Invocation) (Result, error) {
	t := time.NewTimer(time.Until(inv.Deadline))
	defer t.Stop()
	select {
	case r := <-inv.done:
		return r, nil
	case <-t.C:
		if inv.Claim() {
			return Result{}, ErrTimedOut
		}
		return <-inv.done, nil
	}
}

// keep makes rc the connection the runtime's next /next is expected on.
func (s *Server) keep(rc *rconn) {
	_ = rc.c.SetReadDeadline(time.Time{})
	rc.kicked.Store(false)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		rc.close()
		return
	}
	old := s.owned
	s.owned = rc
	s.mu.Unlock()
	if old != nil && old != rc {
		old.close()
	}
}

// parkedRuntime returns a connection whose /next request is read and unanswered, waiting until
// deadline for the runtime to ask.
func (s *Server) parkedRuntime(deadline time.Time) (*rconn, error) {
	select {
	case rc := <-s.parked:
		// The runtime came back on another connection before this Invoke read the kept one:
		// that one is done with, as when its read is kicked below.
		s.mu.Lock()
		old := s.owned
		if old != rc {
			s.owned = nil
		}
		s.mu.Unlock()
		if old != nil && old != rc {
			old.close()
		}
		return rc, nil
	default:
	}
	s.mu.Lock()
	rc := s.owned
	s.owned = nil
	s.mu.Unlock()
	for rc != nil {
		req, err := s.readRequest(rc, deadline, nil)
		if err != nil {
			rc.close() // gone, timed out, or the runtime came back on another connection
			if timedOut(rc, err) {
				return nil, ErrTimedOut
			}
			break
		}
		switch s.serveDirect(rc, req) {
		case directParked:
			return rc, nil
		case directDetached:
			rc = nil
			continue
		}
		if rc.close1 {
			rc.close()
			break
		}
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case rc := <-s.parked:
		return rc, nil
	case <-s.closed:
		return nil, ErrNotDelivered
	case <-t.C:
		return nil, ErrTimedOut
	}
}

// served is what serveDirect did with a runtime's connection.
type served uint8

const (
	directReplied  served = iota // answered the request; rc stays with Invoke
	directParked                 // left a /next unanswered, for an event
	directDetached               // gave rc to a goroutine of its own (see detach)
)

// serveDirect serves one request read from a runtime connection by Invoke, through the route
// table, as ServeHTTP does for requests read by net/http.
func (s *Server) serveDirect(rc *rconn, req *http.Request) served {
	rt, id := match(req.Method, req.URL.Path)
	if rt != nil && rt.wait {
		s.detach(rc, req, rt, id)
		return directDetached
	}
	rep := s.serve(req, rt, id)
	if rep.park {
		return directParked
	}
	if err := rc.writeReply(rep); err != nil {
		rc.close1 = true
	}
	_, _ = io.Copy(io.Discard, req.Body)
	return directReplied
}

// detach serves a request that may wait until the environment closes (an extension's long poll
// that came on a connection the runtime's client shares) on a goroutine of its own, since
// Invoke cannot wait for it, and closes the connection after the answer. The goroutine ends
// when the handler does, which Close brings about, and Close waits for it.
func (s *Server) detach(rc *rconn, req *http.Request, rt *route, id string) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		rc.close()
		return
	}
	s.detached.Add(1) // under mu, before Close's Wait
	s.mu.Unlock()
	_ = rc.c.SetReadDeadline(time.Time{})
	go func() {
		defer s.detached.Done()
		defer rc.close()
		rep := rt.serve(s, req, id)
		rc.close1 = true
		// Close waits for this goroutine: a client that neither sends nor reads cannot hold it up.
		_ = rc.c.SetDeadline(time.Now().Add(time.Second))
		_, _ = io.Copy(io.Discard, req.Body)
		_ = rc.writeReply(rep)
	}()
}

// writeReply writes rep in one writev; a zero status writes nothing.
func (rc *rconn) writeReply(rep reply) error {
	if rep.status == 0 {
		return nil
	}
	var extra func([]byte) []byte
	if rep.header != "" {
		extra = func(h []byte) []byte { return appendHeader(h, rep.header, rep.value) }
	}
	return rc.writeResponse(rep.status, contentTypeOr(rep.contentType), rep.body, extra)
}

// appendHeaders adds the Lambda-Runtime-* headers of a /next response.
func (inv *Invocation) appendHeaders(h []byte) []byte {
	h = append(h, "Lambda-Runtime-Aws-Request-Id: "...)
	h = append(h, inv.RequestID...)
	h = append(h, "\r\nLambda-Runtime-Deadline-Ms: "...)
	h = strconv.AppendInt(h, inv.Deadline.UnixMilli(), 10)
	h = append(h, "\r\nLambda-Runtime-Invoked-Function-Arn: "...)
	h = append(h, inv.InvokedARN...)
	h = append(h, "\r\n"...)
	h = appendHeader(h, "Lambda-Runtime-Trace-Id", inv.TraceID)
	h = appendHeader(h, "Lambda-Runtime-Client-Context", inv.ClientContext)
	h = appendHeader(h, "Lambda-Runtime-Cognito-Identity", inv.CognitoIdentity)
	return h
}

var headerSafe = strings.NewReplacer("\r", "", "\n", "")

func appendHeader(h []byte, name, value string) []byte {
	if value == "" {
		return h
	}
	h = append(h, name...)
	h = append(h, ": "...)
	h = append(h, headerSafe.Replace(value)...)
	return append(h, "\r\n"...)
}
