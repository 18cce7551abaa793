package httpfront

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// maxBuffered is how much of a body without a declared Content-Length is held to be sent with
// one; past it (or at a Flush) the response goes out chunked.
const maxBuffered = 64 << 10

// response is the http.ResponseWriter of a request the front door serves. It also implements
// http.Flusher and the methods http.ResponseController looks for (FlushError,
// SetReadDeadline, SetWriteDeadline); it cannot be hijacked.
type response struct {
	c      *conn
	req    *http.Request
	header http.Header

	status      int
	wroteHeader bool  // WriteHeader has run (a status of 200 or more)
	headSent    bool  // the status line and header are in the connection's buffer
	chunked     bool  // the body goes out in chunks (no Content-Length was declared)
	declared    int64 // the handler's Content-Length, or -1
	written     int64 // body bytes the handler wrote
	buf         []byte
	closeAfter  bool
	err         error // the connection's write error: nothing more can be sent
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("httpfront: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 {
		// An informational response goes out at once with the header set so far; the final
		// one is still to come (as net/http; 101 is not offered: nothing is upgraded here).
		if code != http.StatusSwitchingProtocols {
			w.writeStatusAndHeader(code, nil)
			w.err = w.c.bw.Flush()
		}
		return
	}
	w.wroteHeader, w.status = true, code
	if v := w.header["Content-Length"]; len(v) == 1 {
		if n, err := strconv.ParseInt(v[0], 10, 64); err == nil && n >= 0 {
			w.declared = n
		} else {
			delete(w.header, "Content-Length") // as net/http: an invalid one is dropped
		}
	}
	if v := w.header["Connection"]; len(v) > 0 && v[0] == "close" {
		w.closeAfter = true
	}
}

func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		return 0, http.ErrContentLength
	}
	if w.err != nil {
		return 0, w.err
	}
	w.written += int64(len(p))
	if !w.headSent {
		if w.declared < 0 && len(w.buf)+len(p) <= maxBuffered {
			w.buf = append(w.buf, p...)
			return len(p), nil
		}
		w.sendHead(p, false)
	}
	w.writeBody(p)
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

func (w *response) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

// Flush sends what the handler has written so far.
func (w *response) Flush() { _ = w.FlushError() }

// FlushError is Flush with its error, for http.ResponseController.
func (w *response) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		w.sendHead(nil, false)
	}
	if w.err == nil {
		w.err = w.c.bw.Flush()
	}
	return w.err
}

// SetReadDeadline sets the connection's read deadline for the rest of this request.
func (w *response) SetReadDeadline(t time.Time) error {
	w.c.readUntil = time.Time{}
	return w.c.rwc.SetReadDeadline(t)
}

// SetWriteDeadline sets the connection's write deadline for the rest of this request.
func (w *response) SetWriteDeadline(t time.Time) error {
	w.c.writeUntil = time.Time{}
	return w.c.rwc.SetWriteDeadline(t)
}

// sendHead puts the status line and header in the connection's buffer, followed by what was
// held back. With final (the handler has returned) a body without a declared length is all held
// and goes with its Content-Length; else it goes out in chunks. first is the body's first bytes
// not held (for the Content-Type's sniffing).
func (w *response) sendHead(first []byte, final bool) {
	w.headSent = true
	extra := w.c.scratch[:0]
	if bodyAllowed(w.status) && w.declared < 0 && w.req.Method != http.MethodHead {
		if final {
			extra = strconv.AppendInt(append(extra, "Content-Length: "...), int64(len(w.buf)), 10)
			extra = append(extra, "\r\n"...)
		} else {
			w.chunked = true
			extra = append(extra, "Transfer-Encoding: chunked\r\n"...)
		}
	}
	sniff := w.buf
	if len(sniff) == 0 {
		sniff = first
	}
	w.writeStatusAndHeader(w.status, w.finalHeader(extra, sniff))
	if len(w.buf) > 0 {
		held := w.buf
		w.buf = w.buf[:0]
		w.writeBody(held)
	}
}

// finalHeader adds to extra the header lines the server supplies: Content-Type (sniffed from
// the body's first bytes, as net/http does, when the handler set none), Date, Connection.
func (w *response) finalHeader(extra, body []byte) []byte {
	if _, ok := w.header["Content-Type"]; !ok && bodyAllowed(w.status) && len(body) > 0 && len(w.header["Transfer-Encoding"]) == 0 {
		extra = append(append(append(extra, "Content-Type: "...), http.DetectContentType(body)...), "\r\n"...)
	}
	if _, ok := w.header["Date"]; !ok {
		extra = append(append(append(extra, "Date: "...), httpDate()...), "\r\n"...)
	}
	if w.closeAfter && len(w.header["Connection"]) == 0 {
		extra = append(extra, "Connection: close\r\n"...)
	}
	return extra
}

func (w *response) writeStatusAndHeader(code int, extra []byte) {
	bw := w.c.bw
	var num [3]byte
	_, _ = bw.WriteString("HTTP/1.1 ")
	_, _ = bw.Write(strconv.AppendInt(num[:0], int64(code), 10))
	_ = bw.WriteByte(' ')
	_, _ = bw.WriteString(http.StatusText(code))
	_, _ = bw.WriteString("\r\n")
	if err := w.header.Write(bw); err != nil && w.err == nil {
		w.err = err
	}
	_, _ = bw.Write(extra)
	_, _ = bw.WriteString("\r\n")
}

func (w *response) writeBody(p []byte) {
	if w.err != nil || len(p) == 0 || w.req.Method == http.MethodHead {
		return
	}
	bw := w.c.bw
	if w.chunked {
		var hex [16]byte
		_, _ = bw.Write(strconv.AppendInt(hex[:0], int64(len(p)), 16))
		_, _ = bw.WriteString("\r\n")
	}
	if _, err := bw.Write(p); err != nil {
		w.err = err
		return
	}
	if w.chunked {
		_, w.err = bw.WriteString("\r\n")
	}
}

// finish ends the response once the handler has returned and flushes it to the connection.
func (w *response) finish() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		w.sendHead(nil, true)
	} else if w.chunked && w.err == nil {
		_, w.err = w.c.bw.WriteString("0\r\n\r\n")
	}
	if w.declared >= 0 && w.written != w.declared && bodyAllowed(w.status) && w.req.Method != http.MethodHead {
		// Fewer bytes than declared: the client waits for the rest, so the connection cannot
		// carry another response (as net/http).
		w.closeAfter = true
	}
	if w.err == nil {
		w.err = w.c.bw.Flush()
	}
	return w.err
}

// bodyAllowed is net/http's rule: 1xx, 204 and 304 responses carry no body.
func bodyAllowed(status int) bool {
	return !(status >= 100 && status <= 199 || status == http.StatusNoContent || status == http.StatusNotModified)
}

// dateCache is the Date header's value, formatted once a second.
type dateCache struct {
	unix int64
	text []byte
}

var date atomic.Pointer[dateCache]

func httpDate() []byte {
	now := time.Now()
	if d := date.Load(); d != nil && d.unix == now.Unix() {
		return d.text
	}
	d := &dateCache{unix: now.Unix(), text: now.UTC().AppendFormat(nil, http.TimeFormat)}
	date.Store(d)
	return d.text
}
