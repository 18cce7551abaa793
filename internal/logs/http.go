package logs

import (
	"errors"
	"net/http"
	"strconv"
	"time"
)

// followWriteTimeout bounds each write to a following client; between records the connection
// has no write deadline, so a follow outlives the server's WriteTimeout.
const followWriteTimeout = 30 * time.Second

// WriteHTTP serves fn's logs as text/plain, each record's text as is, for
// GET /flint/v1/functions/{name}/logs. Query parameters: tail=N sends only the newest N records
// (0 or absent: all; when following, absent means none), follow=true then keeps the response open
// and writes and flushes every new record until the client goes away. The caller has already
// checked that the function exists; bad parameters get 400 and store failures 500 with the cause
// logged, not sent.
func (s *Store) WriteHTTP(w http.ResponseWriter, r *http.Request, fn string) {
	q := r.URL.Query()
	follow := false
	if v := q.Get("follow"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			http.Error(w, "follow must be true or false", http.StatusBadRequest)
			return
		}
		follow = b
	}
	tail := 0
	if v := q.Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			http.Error(w, "tail must be a non-negative integer", http.StatusBadRequest)
			return
		}
		tail = n
	}
	if !validName(fn) {
		http.Error(w, ErrBadFunctionName.Error(), http.StatusBadRequest)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")

	ctx := r.Context()
	log := s.log.With("function", fn)
	if !follow {
		recs, err := s.Read(ctx, fn, tail)
		if err != nil {
			if ctx.Err() == nil {
				log.Error("serve function logs", "err", err)
				http.Error(w, "internal error reading logs", http.StatusInternalServerError)
			}
			return
		}
		for _, rec := range recs {
			if _, err := w.Write(rec.Text); err != nil {
				return
			}
		}
		return
	}

	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	// Clear the server's write deadline: a follow lasts as long as the client wants.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return
	}
	if err := rc.Flush(); err != nil {
		return
	}
	var clientErr error // a failed write means the client is gone: not worth a log line
	err := s.Follow(ctx, fn, tail, func(rec Record) error {
		clientErr = writeRecord(rc, w, rec.Text)
		return clientErr
	})
	if err != nil && err != clientErr && ctx.Err() == nil {
		// Headers are sent; the client sees the stream end.
		log.Warn("follow function logs", "err", err)
	}
}

// writeRecord writes one record to a following client and flushes it, with a write deadline.
func writeRecord(rc *http.ResponseController, w http.ResponseWriter, text []byte) error {
	if err := rc.SetWriteDeadline(time.Now().Add(followWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := w.Write(text); err != nil {
		return err
	}
	if err := rc.Flush(); err != nil {
		return err
	}
	if err := rc.SetWriteDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}
