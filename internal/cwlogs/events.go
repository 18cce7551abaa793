package cwlogs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/flint-run/flint/internal/logs"
)

// event is one line of a function's output, as CloudWatch Logs keeps it.
type event struct {
	stream string
	ts     int64 // milliseconds since the epoch: when the line was written
	ingest int64 // when the record holding it was stored
	msg    string
	pos    pos
}

// pos is an event's place among a function's events: its record's stream sequence and its line
// within the record. Positions only grow, so they make stable event IDs and cursors.
type pos struct {
	seq  uint64
	line int
}

func (p pos) less(q pos) bool { return p.seq < q.seq || p.seq == q.seq && p.line < q.line }

// id is the event's ID: 56 digits, as AWS's are, from its position.
func (p pos) id() string { return fmt.Sprintf("%036d%020d", p.seq, p.line) }

// lineTimeLayout is how runtimes begin their lines with a time (Node's console, Python's
// logging after the level, Lambda's timeout line): 2024-01-02T15:04:05.000Z.
const lineTimeLayout = "2006-01-02T15:04:05.000Z"

// events splits a stored record into its lines, each an event with its own time: output before
// START (the INIT's) at the start of INIT, START at the invocation's start, END and REPORT at
// its end (in the JSON format: platform.initStart and the INIT's output at the start of INIT,
// platform.initReport and platform.start at the invocation's start, platform.report at its end), and the function's lines at the time they carry (clamped to the invocation) or else
// the time of the line before. A record stored without a Meta has its stored time throughout,
// in a stream of the day it was stored.
func events(r logs.Record) []event {
	ingest := r.Time.UnixMilli()
	stream := r.Stream
	start, end := r.Time, r.Time
	var initAt time.Time
	if stream == "" {
		sum := sha256.Sum256([]byte(r.Function + "/" + r.Time.Format("2006/01/02")))
		stream = r.Time.Format("2006/01/02") + "/[" + logs.Latest + "]" + hex.EncodeToString(sum[:16])
	} else {
		start, end = r.Start, r.End
		initAt = start.Add(-r.Init)
	}
	started := !bytes.Contains(r.Text, []byte("START RequestId: ")) && !bytes.Contains(r.Text, []byte(jsonStart)) || r.Stream == ""
	cur := start
	if !started {
		cur = initAt
	}
	var out []event
	text := r.Text
	for line := 0; len(text) > 0; line++ {
		var msg []byte
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			msg, text = text[:i+1], text[i+1:]
		} else {
			msg, text = text, nil
		}
		if len(bytes.TrimSpace(msg)) == 0 {
			continue
		}
		s := string(msg)
		switch {
		case r.Stream == "":
		case strings.HasPrefix(s, "START RequestId: "), platformEvent(s, jsonStart):
			started, cur = true, start
		case strings.HasPrefix(s, "END RequestId: "), strings.HasPrefix(s, "REPORT RequestId: "), platformEvent(s, jsonReport):
			cur = end
		case !started && platformEvent(s, jsonInitReport):
			cur = start // the INIT ended as the invocation began
		case started:
			if t, ok := lineTime(s); ok && !t.Before(cur) {
				cur = t
				if cur.After(end) {
					cur = end
				}
			}
		}
		out = append(out, event{stream: stream, ts: cur.UnixMilli(), ingest: ingest, msg: s, pos: pos{r.Seq, line}})
	}
	return out
}

// The JSON log format's platform events, as logs.Append*JSON write them:
// {"time":"2024-01-02T15:04:05.000Z","type":"platform.start","record":{...}}.
const (
	jsonStart      = `","type":"platform.start","record":`
	jsonReport     = `","type":"platform.report","record":`
	jsonInitReport = `","type":"platform.initReport","record":`
)

// platformEvent reports whether line s is the platform event whose type part is typ.
func platformEvent(s, typ string) bool {
	const head = len(`{"time":"`) + len(lineTimeLayout)
	return strings.HasPrefix(s, `{"time":"`) && len(s) > head && strings.HasPrefix(s[head:], typ)
}

// lineTime reads the time a line begins with, directly or after a "[LEVEL]\t" prefix.
func lineTime(s string) (time.Time, bool) {
	if strings.HasPrefix(s, "[") {
		if i := strings.IndexByte(s, '\t'); i > 0 && i < 16 {
			s = s[i+1:]
		}
	}
	if len(s) < len(lineTimeLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(lineTimeLayout, s[:len(lineTimeLayout)])
	return t, err == nil
}
