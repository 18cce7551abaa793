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
	status   string // "", "timeout", "error"
	aborted  string // why the platform stopped the environment under the invocation, "" if it did not
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
		outcome := "success"
		switch c.status {
		case "timeout":
			outcome = "timeout"
		case "error":
			outcome = "error"
		}
		o.Invoked(p.fn.Name, p.fn.Version, outcome, c.duration, c.initDur > 0)
	}
}

func (p *Pool) store(c *call, rec []byte) {
	if p.m.cfg.Logs != nil {
		p.m.cfg.Logs.Append(p.fn.Name, rec)
	}
}

// writeRecords builds and stores the log records queued by finish until quit.
func (m *Manager) writeRecords() {
	defer close(m.recordsDone)
	for {
		select {
		case c := <-m.records:
			c.e.p.done(c, c.e.p.record(c))
		case <-m.quit:
			for {
				select {
				case c := <-m.records:
					c.e.p.done(c, c.e.p.record(c))
				default:
					return
				}
			}
		}
	}
}

func (p *Pool) record(c *call) []byte {
	b := make([]byte, 0, len(c.initOut)+len(c.output)+320)
	b = append(b, c.initOut...)
	b = logs.AppendStart(b, c.req.RequestID, p.fn.Version)
	b = append(b, c.output...)
	if c.status == "timeout" {
		b = logs.AppendTimeout(b, c.start.Add(c.duration), c.req.RequestID, p.fn.Timeout)
	}
	if c.aborted != "" {
		b = logs.AppendAborted(b, c.start.Add(c.duration), c.req.RequestID, c.aborted)
	}
	b = logs.AppendEnd(b, c.req.RequestID)
	rep := logs.Report{RequestID: c.req.RequestID, Duration: c.duration, MemorySizeMB: p.fn.MemoryMB,
		InitDuration: c.initDur, Status: c.status}
	if c.status == "error" || c.status == "timeout" {
		rep.ErrorType = c.result.ErrorType
	}
	if c.status == "timeout" {
		rep.ErrorType = ""
	}
	rep.MaxMemoryUsedMB = c.e.maxMemoryMB()
	return logs.AppendReport(b, rep)
}
