package worker

import (
	"time"

	"github.com/flint-run/flint/internal/logs"
	"github.com/flint-run/flint/internal/runtimeapi"
)

// call is one invocation's bookkeeping.
type call struct {
	e        *env
	req      Request
	start    time.Time
	duration time.Duration
	initDur  time.Duration
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
	select {
	case p.m.records <- c:
	default:
		p.done(c, p.record(c))
	}
}

// done stores an invocation's log record and reports it to the observer.
func (p *Pool) done(c *call, rec []byte) {
	p.store(c, rec)
	if o := p.m.cfg.Observer; o != nil {
		o.Invoked(p.fn.Name, p.fn.Version, c.outcome.String(), c.duration, c.initDur > 0)
	}
}

func (p *Pool) store(c *call, rec []byte) {
	if p.m.cfg.Logs != nil {
		p.m.cfg.Logs.Append(p.fn.Name, rec)
	}
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
	for {
		select {
		case c := <-m.records:
			write(c)
		case <-m.quit:
			for {
				select {
				case c := <-m.records:
					write(c)
				default:
					return
				}
			}
		}
	}
}

// maxReusedRecord bounds the record buffer writeRecords keeps between records: a record with a
// large output is left to the GC.
const maxReusedRecord = 64 << 10

// record returns c's log record in a buffer of its own.
func (p *Pool) record(c *call) []byte {
	return p.appendRecord(make([]byte, 0, len(c.initOut)+len(c.output)+320), c)
}

// appendRecord appends c's log record (START, output, END, REPORT) to b.
func (p *Pool) appendRecord(b []byte, c *call) []byte {
	b = append(b, c.initOut...)
	b = logs.AppendStart(b, c.req.RequestID, p.fn.Version)
	b = append(b, c.output...)
	if c.outcome == outcomeTimeout {
		b = logs.AppendTimeout(b, c.start.Add(c.duration), c.req.RequestID, p.fn.Timeout)
	}
	if c.outcome == outcomeAborted {
		b = logs.AppendAborted(b, c.start.Add(c.duration), c.req.RequestID, c.aborted)
	}
	b = logs.AppendEnd(b, c.req.RequestID)
	rep := logs.Report{RequestID: c.req.RequestID, Duration: c.duration, MemorySizeMB: p.fn.MemoryMB,
		InitDuration: c.initDur, Status: c.outcome.reportStatus()}
	if c.outcome == outcomeError || c.outcome == outcomeAborted {
		rep.ErrorType = c.result.ErrorType // none for a platform stop
	}
	rep.MaxMemoryUsedMB = c.e.maxMemoryMB()
	return logs.AppendReport(b, rep)
}
