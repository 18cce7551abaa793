package worker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flint-run/flint/internal/runtimeapi"
	"github.com/flint-run/flint/internal/sandbox"
	"github.com/flint-run/flint/internal/telemetry"
)

// env is one execution environment.
type env struct {
	p  *Pool
	id string
	// logStream is the environment's log stream: its AWS_LAMBDA_LOG_STREAM_NAME, and the stream
	// its records are stored under.
	logStream string
	inst      sandbox.Instance
	api       *runtimeapi.Server
	out       *capture
	extOut    []*os.File     // the external extensions' output pipes, read by WatchExtension
	services  []*http.Server // one per Config.Services; set before the environment is registered

	// Guarded by p.mu; state changes only through to (state.go).
	state    envState
	lastUsed time.Time

	provisioned bool // kept ready for provisioned concurrency: never reaped or evicted
	// fresh: counted as demand for spares (spares.ran) until its first invocation ends; read
	// and cleared by the Invoke that started it, which has it alone until then.
	fresh bool

	fmu sync.Mutex // serialises Freeze and Thaw
	// suspended: the sandbox is frozen or being frozen; written under fmu. The pool's view is
	// state (Frozen); this is the sandbox's, which an acquired environment keeps until thawed.
	suspended atomic.Bool

	initDur time.Duration
	cold    *telemetry.ColdStart // the cold start's phases, until the first invocation takes them
	initOut []byte

	// aborted says why the platform destroys the environment for its own reasons (shutdown,
	// retirement, eviction, reaping), nil if it does not: an invocation it had is not the
	// function's failure. Set before the environment is marked dead.
	aborted atomic.Pointer[string]

	readyOnce   sync.Once
	ready       chan struct{}
	initErr     chan runtimeapi.Result
	exited      chan struct{}
	exit        sandbox.Exit
	destroyOnce sync.Once
}

// run delivers one invocation to a busy environment and waits for its result.
func (e *env) run(req Request) *call {
	p := e.p
	now := p.m.now()
	c := &call{e: e, req: req, start: now, initDur: e.initDur, cold: e.cold, initOut: e.initOut}
	e.initDur, e.initOut, e.cold = 0, nil, nil
	inv := runtimeapi.NewInvocation()
	inv.RequestID = req.RequestID
	inv.Payload = req.Payload
	inv.Deadline = now.Add(p.fn.Timeout)
	inv.InvokedARN = req.InvokedARN
	inv.ClientContext = req.ClientContext
	inv.TraceID = req.TraceID
	ext, tel := e.api.HasExtensions(), e.api.Subscribed()
	if ext || tel {
		if failed := e.api.ExtensionFailed(); failed != "" {
			// An extension died since the last invocation: this environment must go; the
			// invocation goes to another one.
			e.destroy("extension failed")
			c.outcome = outcomeNotDelivered
			return c
		}
		if tel {
			e.api.EndBacklog()
			e.telemetryStart(req, now)
		}
		if ext {
			e.api.DispatchInvoke(inv)
		}
	}
	res, err := e.api.Invoke(inv)
	c.duration = p.m.now().Sub(now)
	switch {
	case errors.Is(err, runtimeapi.ErrNotDelivered):
		c.outcome = outcomeNotDelivered
	case errors.Is(err, runtimeapi.ErrAborted): // by monitor, which only aborts a marked environment
		c.outcome = outcomeAborted
		c.aborted = *e.aborted.Load()
		c.output = e.out.take()
	case errors.Is(err, runtimeapi.ErrTimedOut):
		c.outcome = outcomeTimeout
		c.result = runtimeapi.Result{ErrorType: "Sandbox.Timedout", ContentType: "application/json",
			Body: runtimeapi.ErrorBody("Sandbox.Timedout", fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds",
				req.RequestID, p.fn.Timeout.Seconds()))}
		e.destroy("timeout") // Lambda resets the environment after a timeout
		c.output = e.out.take()
	default:
		c.result = res
		if ext || tel {
			c.output, c.extOutput = e.out.takeMarked()
			c.pending = true // awaitExtensions releases it, after the caller is answered
			return c
		}
		c.output = e.out.take()
		e.release()
	}
	return c
}

// release makes a busy environment idle again (or destroys it if its pool was retired). It runs
// before the caller is answered, so back-to-back invocations reuse the environment.
func (e *env) release() {
	p := e.p
	p.mu.Lock()
	retired := p.retired
	if e.state == stateBusy && !retired {
		e.to(stateIdle)
		e.lastUsed = p.m.now()
		p.idle = append(p.idle, e)
	}
	p.mu.Unlock()
	if retired {
		e.destroy("retired")
	}
}

// Ready implements runtimeapi.Hooks: the first /next ends INIT.
func (e *env) Ready() { e.readyOnce.Do(func() { close(e.ready) }) }

// InitError implements runtimeapi.Hooks.
func (e *env) InitError(r runtimeapi.Result) {
	select {
	case e.initErr <- r:
	default:
	}
}

// monitor waits for the environment's process to end and fails the invocation it was running.
func (e *env) monitor() {
	exit, _ := e.inst.Wait(context.Background())
	e.exit = exit
	p := e.p
	p.mu.Lock()
	e.to(stateDead)
	for i, x := range p.idle {
		if x == e {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			break
		}
	}
	p.mu.Unlock()
	close(e.exited)
	if inv := e.api.Current(); inv != nil && e.aborted.Load() != nil {
		inv.Abort()
	} else if inv != nil {
		typ, reason := "Runtime.ExitError", exit.String()
		if exit.OOMKilled {
			typ, reason = "Runtime.OutOfMemory", "signal: killed"
		}
		inv.Complete(runtimeapi.Result{ErrorType: typ, ContentType: "application/json",
			Body: runtimeapi.ErrorBody(typ, "RequestId: "+inv.RequestID+" Error: Runtime exited with error: "+reason)})
	}
	e.destroy("exited")
}

// abort destroys the environment for the platform's own reasons: an invocation it is running
// or starting for is aborted (ErrAborted, placed again if not yet delivered), never reported as
// the function's error.
func (e *env) abort(reason string) {
	e.markAborted(reason)
	e.destroy(reason)
}

// markAborted records that the platform is about to destroy the environment (the first reason
// wins); callers that mark it dead under the pool's lock call it first, so that an invocation
// seeing it dead also sees why.
func (e *env) markAborted(reason string) { e.aborted.CompareAndSwap(nil, &reason) }

// destroy releases the environment; safe to call from any goroutine, any number of times.
func (e *env) destroy(reason string) {
	e.destroyOnce.Do(func() { e.teardown(reason) })
}

func (e *env) teardown(reason string) {
	p := e.p
	p.mu.Lock()
	e.to(stateDead)
	for i, x := range p.idle {
		if x == e {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			break
		}
	}
	p.mu.Unlock()
	// The memory budget is given back now, not after the SHUTDOWN phase below: a cold start
	// evicting this environment must not find the budget still taken.
	p.m.release(p.fn.MemoryMB)
	if e.api.WantsShutdown() || e.api.Subscribed() {
		// Extensions get SHUTDOWN and up to 2 s before the sandbox goes: off the caller's
		// goroutine (a reaper or Close ends many environments at once).
		p.m.wg.Add(1)
		go func() {
			defer p.m.wg.Done()
			e.shutdown(reason)
			e.destroySandbox(reason)
		}()
		return
	}
	e.destroySandbox(reason)
}

// destroySandbox ends the environment's sandbox, Runtime API and services.
func (e *env) destroySandbox(reason string) {
	p := e.p
	p.mu.Lock()
	delete(p.all, e)
	empty := p.retired && len(p.all) == 0
	p.mu.Unlock()
	if empty {
		p.m.forget(p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.inst.Destroy(ctx); err != nil {
		p.log.Warn("destroy environment", "env", e.id, "reason", reason, "err", err)
	}
	_ = e.api.Close()
	for _, r := range e.extOut {
		// Their readers end at the extensions' end, which Destroy brought, unless a process
		// that escaped it (the process sandbox's, in a session of its own) holds a write end.
		_ = r.SetReadDeadline(time.Now())
	}
	p.m.wg.Add(1)
	go func() { defer p.m.wg.Done(); e.out.close() }()
	if len(e.services) > 0 {
		p.m.wg.Add(1)
		go func() { defer p.m.wg.Done(); e.stopServices() }()
	}
	p.log.Debug("environment destroyed", "env", e.id, "reason", reason)
}

func (e *env) maxMemoryMB() int {
	if mr, ok := e.inst.(sandbox.MemoryReporter); ok {
		if b, err := mr.MaxMemoryUsed(); err == nil {
			return int((b + (1<<20 - 1)) >> 20)
		}
	}
	return 0
}
