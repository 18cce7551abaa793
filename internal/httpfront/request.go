package httpfront

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// errHandOver says the connection's next request is one for net/http.
var errHandOver = errors.New("httpfront: hand over to net/http")

// head is a request head the front door serves.
type head struct {
	method, uri, host string
	url               *url.URL
	header            http.Header
	contentLength     int64
	closeAfter        bool // Connection: close
}

// readHead reads the next request's head without consuming it, then either consumes it and
// returns it parsed, or returns errHandOver (the head still unread, for net/http), or the
// connection's error.
func (c *conn) readHead() (head, error) {
	waited := false
	for {
		buf, _ := c.br.Peek(c.br.Buffered())
		if end, found := headEnd(buf); found {
			if end < 0 {
				return head{}, errHandOver // lines ended by a bare LF: net/http takes those
			}
			h, ok := c.parseHead(buf[:end+2])
			if !ok {
				return head{}, errHandOver
			}
			_, _ = c.br.Discard(end + 4)
			return h, nil
		}
		if c.br.Buffered() == c.br.Size() {
			return head{}, errHandOver // larger than the front door's buffer
		}
		if c.br.Buffered() > 0 && !waited {
			// A head in pieces: its rest must come within HeaderTimeout, not IdleTimeout.
			c.preciseRead(c.srv.cfg.HeaderTimeout)
			waited = true
		}
		if _, err := c.br.Peek(c.br.Buffered() + 1); err != nil {
			return head{}, err // as net/http, which answers no head that ends in an error
		}
	}
}

var crlfcrlf = []byte("\r\n\r\n")

// headEnd finds the empty line that ends the head in buf, as net/http does (an LF, with or
// without a CR before it, after a line's LF): found is false when buf holds no such line yet;
// end is the index of the CRLFCRLF that ends a head of CRLF lines, or -1 when the empty line
// or the line before it ends in a bare LF.
func headEnd(buf []byte) (end int, found bool) {
	i := bytes.Index(buf, []byte("\n\r\n"))
	j := bytes.Index(buf, []byte("\n\n"))
	switch {
	case i < 0 && j < 0:
		return 0, false
	case j >= 0 && (i < 0 || j < i):
		return -1, true
	case i == 0 || buf[i-1] != '\r':
		return -1, true
	}
	return i - 1, true
}

// parseHead parses b (the head up to and including its last line's CRLF) if the front door
// serves it: Serves takes its method and path, and its framing is plain (parsePlain).
func (c *conn) parseHead(b []byte) (head, bool) {
	if c.srv.cfg.Serves == nil {
		return head{}, false
	}
	return parsePlain(b, c.srv.cfg.Serves)
}

// parsePlain parses b (a head up to and including its last line's CRLF) if it is plain:
// HTTP/1.1, a method and path serves takes (nil: any), one Host, at most one Content-Length, no
// Transfer-Encoding, Expect, Upgrade or Trailer, a Connection of only keep-alive or close, and
// every line as net/http's server would accept it.
func parsePlain(b []byte, serves func(method, path string) bool) (head, bool) {
	// One string for the whole head: every name and value is a slice of it.
	s := string(b)
	line, rest, _ := strings.Cut(s, "\r\n")
	method, line, ok1 := strings.Cut(line, " ")
	uri, proto, ok2 := strings.Cut(line, " ")
	// A method is a token, as a header name is.
	if !ok1 || !ok2 || proto != "HTTP/1.1" || !httpguts.ValidHeaderFieldName(method) || len(uri) == 0 || uri[0] != '/' {
		return head{}, false
	}
	if serves != nil {
		if path, _, _ := strings.Cut(uri, "?"); !serves(method, path) {
			return head{}, false
		}
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return head{}, false
	}
	h := head{method: method, uri: uri, url: u, contentLength: -1}
	n := strings.Count(rest, "\r\n")
	h.header = make(http.Header, n)
	values := make([]string, n)
	hosts := 0
	for i := 0; rest != ""; i++ {
		line, rest, _ = strings.Cut(rest, "\r\n")
		name, value, ok := strings.Cut(line, ":")
		if !ok || !httpguts.ValidHeaderFieldName(name) {
			return head{}, false // also an obsolete line fold: its line starts with a space
		}
		value = strings.Trim(value, " \t")
		if !httpguts.ValidHeaderFieldValue(value) {
			return head{}, false
		}
		name = textproto.CanonicalMIMEHeaderKey(name) // no allocation when it already is
		switch name {
		case "Host":
			hosts++
			h.host = value
			continue // as net/http: in Request.Host, not in Header
		case "Content-Length":
			if h.contentLength >= 0 {
				return head{}, false
			}
			n, err := strconv.ParseUint(value, 10, 63)
			if err != nil || value[0] == '+' {
				return head{}, false
			}
			h.contentLength = int64(n)
		case "Transfer-Encoding", "Expect", "Upgrade", "Trailer":
			return head{}, false
		case "Connection":
			for _, tok := range strings.Split(value, ",") {
				switch strings.ToLower(strings.TrimSpace(tok)) {
				case "close":
					h.closeAfter = true
				case "keep-alive", "":
				default:
					return head{}, false
				}
			}
		}
		values[i] = value
		if prev := h.header[name]; prev != nil {
			h.header[name] = append(prev, value) // a repeated name: rare
		} else {
			h.header[name] = values[i : i+1 : i+1]
		}
	}
	if hosts != 1 || !httpguts.ValidHostHeader(h.host) {
		return head{}, false
	}
	if h.contentLength < 0 {
		h.contentLength = 0 // HTTP/1.1 without Content-Length or Transfer-Encoding: no body
	}
	return h, true
}

// body is a request's body: the next n bytes of the connection's reader.
type body struct {
	br *bufio.Reader
	n  int64
}

func (b *body) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	k, err := b.br.Read(p)
	b.n -= int64(k)
	if err == io.EOF && b.n > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err == nil && b.n == 0 {
		err = io.EOF
	}
	return k, err
}

func (b *body) Close() error { return nil }

// maxDrain is how much of a body its handler left unread is read and dropped to keep the
// connection (net/http's figure); past it the connection closes after the response.
const maxDrain = 256 << 10

// serveRequest serves one request and reports whether the connection stays open.
func (c *conn) serveRequest(h head) bool {
	var reqBody io.ReadCloser = http.NoBody
	var bd *body
	if h.contentLength > 0 {
		bd = &body{br: c.br, n: h.contentLength}
		reqBody = bd
		if int64(c.br.Buffered()) < h.contentLength {
			c.preciseRead(c.srv.cfg.ReadTimeout)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := (&http.Request{}).WithContext(ctx)
	r.Method, r.URL, r.Proto, r.ProtoMajor, r.ProtoMinor = h.method, h.url, "HTTP/1.1", 1, 1
	r.Header, r.Body, r.ContentLength, r.Host = h.header, reqBody, h.contentLength, h.host
	r.RemoteAddr, r.RequestURI, r.Close = c.remote, h.uri, h.closeAfter
	w := response{c: c, req: r, header: make(http.Header, 8), closeAfter: h.closeAfter, declared: -1}
	c.srv.cfg.Handler.ServeHTTP(&w, r)
	unread := bd != nil && bd.n > 0
	if unread && bd.n > maxDrain {
		w.closeAfter = true
	}
	if err := w.finish(); err != nil {
		return false
	}
	if unread && !w.closeAfter {
		if _, err := io.Copy(io.Discard, bd); err != nil {
			return false
		}
	}
	if w.closeAfter && unread {
		c.closeWriteAndWait()
	}
	return !w.closeAfter
}

// closeWriteAndWait ends the connection's sending side and waits a little before it is closed,
// so that a client still sending a body the server did not read gets the response before the
// reset that closing a socket with unread data sends (net/http does the same).
func (c *conn) closeWriteAndWait() {
	if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		time.Sleep(500 * time.Millisecond)
	}
}
