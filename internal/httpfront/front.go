// Package httpfront is the API's HTTP/1.1 front door. It serves the requests that make most of a
// node's traffic (Invoke calls: a POST with a Content-Length, a small head, nothing else asked
// of the server) itself, on the connection's goroutine, and hands every other connection to a
// net/http server, which then serves it for the rest of its life.
//
// What it saves is net/http's per-request machinery, not its parsing rules: for each request
// net/http sets four or five read and write deadlines (each a runtime timer), starts a
// goroutine that reads the connection in the background once the body is consumed (to notice
// a client that hangs up) and stops it again before answering, and makes a cancelable context
// per request. On a 2-CPU machine those are 10–20 % of an Event invoke's server CPU and a
// goroutine wake-up in the middle of every request. The front door keeps one coarse deadline
// per connection (moved at most every 30 s), sets a precise one only while it waits for a head
// or body that did not come in one read, and does not watch a connection during its handler.
// A handler's context therefore ends with its request, not when the client hangs up, which
// Flint's invoke path never relied on (an invocation runs to its end, as on Lambda).
//
// Whatever it does not fully understand (another protocol version, Transfer-Encoding, Expect,
// Upgrade, an obsolete line fold, a header name or value net/http would refuse, a head larger
// than its buffer) goes to net/http untouched, which answers it as it always did.
package httpfront

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Config says what the front door serves and how long it waits.
type Config struct {
	// Handler serves the requests the front door takes.
	Handler http.Handler
	// Fallback serves every connection the front door hands over. Its Handler should be Handler;
	// its timeouts apply to those connections.
	Fallback *http.Server
	// Serves reports whether a request with this method and (escaped) path is one the front door
	// serves itself, when its framing allows. Nil serves none: every connection is handed over.
	Serves func(method, path string) bool
	// IdleTimeout bounds the wait for a connection's next request, HeaderTimeout the read of a
	// head that came in pieces, ReadTimeout the read of a body that did, WriteTimeout a response.
	IdleTimeout, HeaderTimeout, ReadTimeout, WriteTimeout time.Duration
	Log                                                   *slog.Logger
}

// bufferSize is each connection's read and write buffer. A request whose head does not fit is
// handed to net/http (an SDK's Invoke head with a SigV4 signature is about 1 KiB).
const bufferSize = 4096

// deadlineSlack is how far a connection's coarse deadline may lag: it is moved only when it is
// this much closer than its full timeout, so a busy connection sets it once per 30 s, and an idle
// connection is closed between IdleTimeout−30 s and IdleTimeout after its last request.
const deadlineSlack = 30 * time.Second

// Server is the front door on one listener.
type Server struct {
	cfg     Config
	handoff *handoffListener

	mu       sync.Mutex
	ln       net.Listener
	conns    map[*conn]struct{}
	drained  chan struct{} // closed when shutting down and the last connection has ended
	drain    sync.Once
	shutting atomic.Bool

	served, handedOver atomic.Uint64
}

// Stats counts what the front door did.
type Stats struct {
	Served     uint64 // requests it served itself
	HandedOver uint64 // connections it gave to net/http
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	return Stats{Served: s.served.Load(), HandedOver: s.handedOver.Load()}
}

// New returns a front door for cfg.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, conns: map[*conn]struct{}{}, drained: make(chan struct{})}
}

// Serve accepts connections on ln until Shutdown or Close, then waits for the fallback server
// to stop, and returns http.ErrServerClosed (or the error that stopped accepting).
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		_ = ln.Close()
		return http.ErrServerClosed
	}
	s.ln = ln
	s.handoff = newHandoffListener(ln.Addr())
	s.mu.Unlock()
	fallbackDone := make(chan error, 1)
	go func() { fallbackDone <- s.cfg.Fallback.Serve(s.handoff) }()

	err := s.accept(ln)
	if !s.shutting.Load() {
		// Not a shutdown: the fallback stops taking connections too (those it has go on).
		_ = s.handoff.Close()
	}
	if ferr := <-fallbackDone; ferr != nil && !errors.Is(ferr, http.ErrServerClosed) && err == nil {
		err = ferr
	}
	if s.shutting.Load() {
		return http.ErrServerClosed
	}
	return err
}

func (s *Server) accept(ln net.Listener) error {
	var backoff time.Duration
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.shutting.Load() {
				return http.ErrServerClosed
			}
			// As net/http: a transient failure (out of file descriptors, a connection aborted
			// before it was accepted) is waited out, not the end of the API.
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.cfg.Log.Warn("accept", "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := newConn(s, rwc)
		if !s.track(c, true) {
			_ = rwc.Close()
			continue
		}
		go c.serve()
	}
}

// track adds or removes c; it refuses new connections once shutting down.
func (s *Server) track(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.shutting.Load() {
			return false
		}
		s.conns[c] = struct{}{}
		return true
	}
	delete(s.conns, c)
	if s.shutting.Load() && len(s.conns) == 0 {
		s.drain.Do(func() { close(s.drained) })
	}
	return true
}

// Shutdown stops accepting, closes connections waiting for a request, lets requests being served
// finish (their connections then close), and shuts the fallback server down likewise; it
// returns when all are done or ctx ends (then with ctx's error, connections left open: Close
// ends them).
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginShutdown()
	fallback := make(chan error, 1)
	go func() { fallback <- s.cfg.Fallback.Shutdown(ctx) }()
	select {
	case <-s.drained:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-fallback
}

// Close closes the listener and every connection at once, the fallback server's too.
func (s *Server) Close() error {
	s.beginShutdown()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.rwc.Close()
	}
	s.mu.Unlock()
	return s.cfg.Fallback.Close()
}

func (s *Server) beginShutdown() {
	s.mu.Lock()
	first := !s.shutting.Swap(true)
	if first {
		if s.ln != nil {
			_ = s.ln.Close()
		}
		if len(s.conns) == 0 {
			s.drain.Do(func() { close(s.drained) })
		}
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	serving := s.handoff != nil
	s.mu.Unlock()
	if !serving {
		// Serve never ran: the fallback is closed through its own Shutdown or Close.
		return
	}
	for _, c := range conns {
		c.wakeIfIdle()
	}
}

// conn is one connection the front door serves.
type conn struct {
	srv    *Server
	rwc    net.Conn
	remote string
	br     *bufio.Reader
	bw     *bufio.Writer
	// scratch holds the header lines a response's server adds, reused by each response.
	scratch []byte

	// idle is set while the connection waits for a request's first byte: Shutdown then ends
	// the wait at once.
	idleMu sync.Mutex
	idle   bool

	// readUntil and writeUntil are the deadlines set on rwc; zero when a precise one was set for
	// one request and must be replaced.
	readUntil, writeUntil time.Time
}

func newConn(s *Server, rwc net.Conn) *conn {
	return &conn{srv: s, rwc: rwc, remote: rwc.RemoteAddr().String(),
		br: bufio.NewReaderSize(rwc, bufferSize), bw: bufio.NewWriterSize(rwc, bufferSize),
		scratch: make([]byte, 0, 256)}
}

func (c *conn) setIdle(idle bool) bool {
	c.idleMu.Lock()
	defer c.idleMu.Unlock()
	if idle && c.srv.shutting.Load() {
		return false
	}
	c.idle = idle
	return true
}

func (c *conn) wakeIfIdle() {
	c.idleMu.Lock()
	defer c.idleMu.Unlock()
	if c.idle {
		_ = c.rwc.SetReadDeadline(aLongTimeAgo)
	}
}

var aLongTimeAgo = time.Unix(1, 0)

// coarseDeadlines moves the connection's deadlines when they are deadlineSlack closer than their
// full timeouts (or were set for one request).
func (c *conn) coarseDeadlines(now time.Time) {
	if d := c.srv.cfg.IdleTimeout; d > 0 && (c.readUntil.IsZero() || c.readUntil.Sub(now) < d-deadlineSlack) {
		c.readUntil = now.Add(d)
		_ = c.rwc.SetReadDeadline(c.readUntil)
	}
	if d := c.srv.cfg.WriteTimeout; d > 0 && (c.writeUntil.IsZero() || c.writeUntil.Sub(now) < d-deadlineSlack) {
		c.writeUntil = now.Add(d)
		_ = c.rwc.SetWriteDeadline(c.writeUntil)
	}
}

// preciseRead sets a read deadline d from now for this request only.
func (c *conn) preciseRead(d time.Duration) {
	if d <= 0 {
		return
	}
	c.readUntil = time.Time{}
	_ = c.rwc.SetReadDeadline(time.Now().Add(d))
}

func (c *conn) serve() {
	handedOver := false
	defer func() {
		if !handedOver {
			_ = c.rwc.Close()
		}
		c.srv.track(c, false)
	}()
	for {
		c.coarseDeadlines(time.Now())
		if !c.setIdle(true) {
			return
		}
		head, err := c.readHead()
		c.setIdle(false)
		if err != nil {
			if errors.Is(err, errHandOver) {
				handedOver = c.handOver()
			}
			return
		}
		c.srv.served.Add(1)
		if !c.serveRequest(head) || c.srv.shutting.Load() {
			return
		}
	}
}

// handOver gives the connection, with what has been read of it, to the fallback server.
func (c *conn) handOver() bool {
	c.readUntil, c.writeUntil = time.Time{}, time.Time{}
	_ = c.rwc.SetDeadline(time.Time{}) // net/http sets its own
	if !c.srv.handoff.deliver(&replayConn{Conn: c.rwc, br: c.br}) {
		return false
	}
	c.srv.handedOver.Add(1)
	return true
}

// replayConn is a connection whose first bytes were read into br.
type replayConn struct {
	net.Conn
	br *bufio.Reader
}

func (r *replayConn) Read(p []byte) (int, error) {
	if r.br != nil {
		if r.br.Buffered() > 0 {
			return r.br.Read(p)
		}
		r.br = nil
	}
	return r.Conn.Read(p)
}

// handoffListener is the fallback server's listener: the connections the front door hands over.
type handoffListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) deliver(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }
