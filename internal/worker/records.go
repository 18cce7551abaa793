package worker

import (
	"time"

	"github.com/flint-run/flint/internal/logs"
	"github.com/flint-run/flint/internal/runtimeapi"
	"github.com/flint-run/flint/internal/telemetry"
)

// call is one invocation's bookkeeping.
type call struct {
	e        *env
	req      Request
	start    time.Time
	duration time.Duration
	initDur  time.Duration
	cold     *telemetry.ColdStart // the cold start that made the environment; nil when warm
	initOut  []byte
	output   []byte
	result   runtimeapi.Result
	outcome  outcome
	aborted  string // why the platform stopped the environment under the invocation (outcomeAborted)
	// pending: the runtime answered, and the environment has extensions or telemetry
	// subscribers; env.awaitExtensions finishes the invocation (and releases the environment).
	pending bool
	// extOutput are the spans of output that are extensions' lines (not "function" events).
	extOutput [][2]int
}

// outcome is how an invocation ended. It is the worker's own signal, never read from what a
// runtime sends: a function may report any error type, "flint.Retry" included, and it stays
// the function's error.
type outcome uint8

const (
	outcomeSuccess outcome = iota
	outcomeError           // the function (or its runtime, or its INIT) failed: Unhandled
	outcomeTimeout         // past the function's timeout, or INIT past the init timeout
	// outcomeNotDelivered: the environment went away before the runtime took the event; the
	// invocation is placed on another environment and has no record.
	outcomeNotDelivered
	// outcomeAborted: the runtime had the event when the platform stopped the environment (see
	// env.aborted); not the function's error (ErrAborted), but it ran, so it has a record.
	outcomeAborted
)

// outcomeNames are the Observer's outcome labels (metrics) and REPORT's Status words. A
// platform stop is "error" in both, as it was before outcomes were typed.
var outcomeNames = [...]string{
	outcomeSuccess:      "success",
	outcomeError:        "error",
	outcomeTimeout:      "timeout",
	outcomeNotDelivered: "not delivered",
	outcomeAborted:      "error",
}

func (o outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// reportStatus is REPORT's Status: none on success.
func (o outcome) reportStatus() string {
	if o == outcomeSuccess {
		return ""
	}
	return o.String()
}

// queueRecord hands c to the record writer (or, when its queue is full, writes the record here).
func (p *Pool) queueRecord(c *call) {
	if !p.m.records.Put(c) {
		p.done(c, p.record(c))
	}
}

// recordLinger is how long finished invocations gather before the record writer builds their
// records, for as long as they keep coming. Handing each one over on its own woke the writer's
// goroutine once per invocation (a thread's futex wake, on this VM dearer than the record);
// the caller has its answer by then, and logs.Store lingers longer before it publishes.
const recordLinger = time.Millisecond

// done stores an invocation's log record and reports it to the observer.
func (p *Pool) done(c *call, rec []byte) {
	p.store(c, rec)
	if o := p.m.cfg.Observer; o != nil {
		inv := telemetry.Invocation{Function: p.fn.Name, Version: p.fn.Version, Outcome: c.outcome.String(),
			RequestID: c.req.RequestID, ErrorType: c.result.ErrorType, Start: c.start, Duration: c.duration,
			Init: c.initDur, Span: c.req.Span}
		if c.cold != nil {
			inv.Cold = *c.cold
		}
		o.Invoked(inv)
	}
}

func (p *Pool) store(c *call, rec []byte) {
	switch sink := p.m.cfg.Logs.(type) {
	case nil:
	case RecordSink:
		// Strings and times only: no allocation beyond Append's.
		sink.AppendRecord(p.fn.Name, logs.Meta{Env: c.e.id, Version: p.fn.Version, Start: c.start,
			Duration: c.duration, Init: c.initDur, Stream: c.e.logStream, Group: p.fn.Logging.Group}, rec)
	default:
		sink.Append(p.fn.Name, rec)
	}
}

// RecordSink is a LogSink that also keeps what CloudWatch Logs' view needs of a record: the
// environment that ran it (a stream per environment), its version, and when it ran (each line's
// time). Found by type assertion; the same rules as LogSink's Append.
type RecordSink interface {
	AppendRecord(function string, m logs.Meta, record []byte)
}

// writeRecords builds and stores the log records queued by finish until quit. The records are
// built in one buffer, reused: the LogSink copies what it keeps.
func (m *Manager) writeRecords() {
	defer close(m.recordsDone)
	var buf []byte
	write := func(c *call) {
		buf = c.e.p.appendRecord(buf[:0], c)
		c.e.p.done(c, buf)
		if cap(buf) > maxReusedRecord {
			buf = nil
		}
	}
	m.records.Run(m.quit, func(batch []*call) {
		for _, c := range batch {
			write(c)
		}
	})
}

// maxReusedRecord bounds the record buffer writeRecords keeps between records: a record with a
// large output is left to the GC.
const maxReusedRecord = 64 << 10

// record returns c's log record in a buffer of its own.
func (p *Pool) record(c *call) []byte {
	return p.appendRecord(make([]byte, 0, len(c.initOut)+len(c.output)+320), c)
}

// appendRecord appends c's log record (START, output, END, REPORT) to b; in the JSON log format
// the platform.start and platform.report events in place of those lines, and on a cold start
// platform.initStart and platform.initReport around the INIT's output, unless the function's
// system log level is above INFO.
func (p *Pool) appendRecord(b []byte, c *call) []byte {
	json := p.fn.Logging.JSON
	platform := !json || p.fn.Logging.SystemLevel != "WARN"
	if json && platform && c.initDur > 0 {
		in := logs.Init{Type: initType(c.e.provisioned), RuntimeVersion: p.fn.Runtime.Name, FunctionName: p.fn.Name,
			FunctionVersion: p.fn.Version, Duration: c.initDur}
		b = logs.AppendInitStartJSON(b, c.start.Add(-c.initDur), in)
		b = append(b, c.initOut...)
		b = logs.AppendInitReportJSON(b, c.start, in)
	} else {
		b = append(b, c.initOut...)
	}
	switch {
	case !json:
		b = logs.AppendStart(b, c.req.RequestID, p.fn.Version)
	case platform:
		b = logs.AppendStartJSON(b, c.start, c.req.RequestID, p.fn.Version)
	}
	b = append(b, c.output...)
	if !json && c.outcome == outcomeTimeout {
		b = logs.AppendTimeout(b, c.start.Add(c.duration), c.req.RequestID, p.fn.Timeout)
	}
	if !json && c.outcome == outcomeAborted {
		b = logs.AppendAborted(b, c.start.Add(c.duration), c.req.RequestID, c.aborted)
	}
	if !platform {
		return b
	}
	rep := logs.Report{RequestID: c.req.RequestID, Duration: c.duration, MemorySizeMB: p.fn.MemoryMB,
		InitDuration: c.initDur, Status: c.outcome.reportStatus()}
	if c.outcome == outcomeError || c.outcome == outcomeAborted {
		rep.ErrorType = c.result.ErrorType // none for a platform stop
	}
	rep.MaxMemoryUsedMB = c.e.maxMemoryMB()
	if json {
		return logs.AppendReportJSON(b, c.start.Add(c.duration), rep)
	}
	b = logs.AppendEnd(b, c.req.RequestID)
	return logs.AppendReport(b, rep)
}
