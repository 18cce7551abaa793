package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/flint-run/flint/internal/logs"
)

// Pool holds the environments of one function configuration.
type Pool struct {
	m   *Manager
	fn  Function
	log *slog.Logger

	mu          sync.Mutex
	idle        []*env // most recently used last
	all         map[*env]struct{}
	retired     bool
	provisioned int // environments to keep initialized ahead of demand
	provPending int // provisioned cold starts under way
}

// Function returns the configuration this pool runs.
func (p *Pool) Function() Function { return p.fn }

// Retire stops the pool (its configuration changed or was deleted): idle environments are
// destroyed now; busy ones, and those still in INIT for an invocation waiting on them, serve
// that invocation on the configuration it started with and are destroyed when it ends, as on
// Lambda. An invocation that reaches a retired pool after it was retired (it looked the
// function up just before the change) cold-starts there the same way. Provisioned environments
// still in INIT have no invocation waiting and are stopped.
func (p *Pool) Retire() { p.retire(false) }

// retire stops the pool; with all (shutdown), environments running or starting are destroyed
// too, their invocations aborted.
func (p *Pool) retire(all bool) {
	reason := "retired"
	if all {
		reason = "shutdown"
	}
	p.mu.Lock()
	p.retired = true
	victims := make([]*env, 0, len(p.all))
	for e := range p.all {
		if all || e.state.idle() || e.state == stateStarting && e.provisioned {
			e.markAborted(reason)
			e.to(stateDead)
			victims = append(victims, e)
		}
	}
	p.idle = nil
	p.mu.Unlock()
	for _, e := range victims {
		e.abort(reason)
	}
	p.m.forget(p)
}

// Warm counts the pool's initialized environments: idle (frozen included) and busy. A cluster
// node tells the others, which send it what would be a cold start for them.
func (p *Pool) Warm() (idle, busy int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for e := range p.all {
		if e.state == stateBusy {
			busy++
		}
	}
	return len(p.idle), busy
}

// acquire takes the most recently used idle environment.
func (p *Pool) acquire() *env {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.idle)
	if n == 0 {
		return nil
	}
	at := n - 1
	if p.provisioned > 0 { // provisioned environments serve first; on-demand ones take the spill-over
		for i := n - 1; i >= 0; i-- {
			if p.idle[i].provisioned {
				at = i
				break
			}
		}
	}
	e := p.idle[at]
	p.idle = append(p.idle[:at], p.idle[at+1:]...)
	e.to(stateBusy)
	return e
}

// maxPlacements bounds how many environments one invocation is offered to when they go away
// before taking it.
const maxPlacements = 4

// Invoke runs one invocation. respond is called once with the result as soon as it is known;
// log bookkeeping that the caller does not wait for happens after it, before Invoke returns.
// A non-nil error means the platform failed (not the function) and respond was not called:
// ErrAborted when the platform stopped the environment under the invocation (its log record is
// written if the runtime had taken it), ErrClosed after Close, ErrNoCapacity to throttle,
// ErrNoWarm for a WarmOnly request that found no idle environment (nothing started).
func (p *Pool) Invoke(ctx context.Context, req Request, respond func(*Response)) error {
	p.m.calls.Add(1)
	defer p.m.endCall()
	for attempt := 1; ; attempt++ {
		e := p.acquire()
		if e == nil {
			if req.WarmOnly {
				return ErrNoWarm
			}
			var initFail *call
			var err error
			e, initFail, err = p.start(ctx, req, nil)
			if errors.Is(err, ErrAborted) && attempt < maxPlacements {
				continue // stopped by the platform during INIT, before the event was delivered
			}
			if err != nil {
				return err
			}
			if initFail != nil {
				p.finish(initFail, respond)
				return nil
			}
			if e.fresh {
				e.fresh = false
				defer p.m.spares.ran(p.fn.Runtime) // after the invocation, whatever its end
			}
		}
		if err := e.thaw(); err != nil {
			p.log.Warn("thaw environment", "env", e.id, "err", err)
			e.abort("thaw failed")
			if attempt < maxPlacements {
				continue
			}
			return fmt.Errorf("%w: thaw: %w", ErrAborted, err)
		}
		c := e.run(req)
		switch c.outcome {
		case outcomeNotDelivered: // the environment went away before taking it
			if attempt < maxPlacements {
				continue
			}
			return ErrAborted
		case outcomeAborted: // taken, then stopped by the platform: it ran, so it has a record
			p.queueRecord(c)
			return ErrAborted
		}
		p.finish(c, respond)
		return nil
	}
}

// finish answers the caller and writes the log record.
func (p *Pool) finish(c *call, respond func(*Response)) {
	resp := &Response{Payload: c.result.Body, ContentType: c.result.ContentType}
	if c.result.ErrorType != "" {
		resp.FunctionError = "Unhandled"
		if c.outcome == outcomeSuccess {
			c.outcome = outcomeError
		}
	}
	if c.pending && c.req.Tail { // the log tail ends with REPORT: the extensions' time is in it
		c.e.awaitExtensions(c) // the caller still gets the runtime's answer, as Lambda's does
	}
	if !c.req.Tail {
		respond(resp)
		if c.pending {
			c.e.awaitExtensions(c)
		}
		// The log record (and Max Memory Used, a /proc or cgroup read) is built off the
		// request's goroutine: on a keep-alive connection the client's next request waits for it.
		p.queueRecord(c)
		return
	}
	rec := p.record(c)
	resp.LogResult = logs.Tail(rec)
	respond(resp)
	p.done(c, rec)
}
