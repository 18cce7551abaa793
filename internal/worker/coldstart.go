package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/flint-run/flint/internal/runtimeapi"
	"github.com/flint-run/flint/internal/runtimes"
	"github.com/flint-run/flint/internal/sandbox"
	"github.com/flint-run/flint/internal/telemetry"
)

// start cold-starts an environment for req. It returns either a ready, busy environment, or a
// finished call describing an init failure (reported on this invocation, as Lambda does).
// onLive is nil for an on-demand start; a provisioned start (provision.go) passes the function
// called under p.mu as the environment stops counting as starting.
func (p *Pool) start(ctx context.Context, req Request, onLive func()) (*env, *call, error) {
	return p.startEnv(ctx, req, onLive, true)
}

// startEnv is start; with mayBind it binds the function to a pre-initialized runtime if one is
// ready (spares.go), and starts one afresh if that fails.
func (p *Pool) startEnv(ctx context.Context, req Request, onLive func(), mayBind bool) (started *env, _ *call, _ error) {
	provisioned := onLive != nil
	ctx = context.WithoutCancel(ctx)
	p.m.mu.Lock()
	closed := p.m.closed
	p.m.mu.Unlock()
	if closed {
		return nil, nil, ErrClosed
	}
	if err := p.m.reserve(p.fn.MemoryMB); err != nil {
		return nil, nil, err
	}
	registered := false // from then on the environment's destroy gives the memory back
	defer func() {
		if !registered {
			p.m.release(p.fn.MemoryMB)
		}
	}()
	begin := p.m.now()
	e := &env{p: p, id: newID(), state: stateStarting, ready: make(chan struct{}), provisioned: provisioned,
		initErr: make(chan runtimeapi.Result, 1), exited: make(chan struct{})}
	fail := func(typ, msg string) (*env, *call, error) {
		c := &call{e: e, req: req, start: begin, duration: p.m.now().Sub(begin), outcome: outcomeError,
			result: runtimeapi.Result{ErrorType: typ, ContentType: "application/json",
				Body: runtimeapi.ErrorBody(typ, "RequestId: "+req.RequestID+" Error: "+msg)}}
		return nil, c, nil
	}
	codeDir, err := p.fn.Code(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("code for %s: %w", p.fn.Name, err)
	}
	optDir := ""
	if p.fn.Opt != nil {
		if optDir, err = p.fn.Opt(ctx); err != nil {
			return nil, nil, fmt.Errorf("layers for %s: %w", p.fn.Name, err)
		}
	}
	e.cold = &telemetry.ColdStart{Begin: begin, Code: p.m.now()}
	argv, renv, err := p.m.cfg.Runtimes.Entrypoint(p.fn.Runtime, codeDir, optDir)
	if errors.Is(err, runtimes.ErrNoBootstrap) {
		return fail("Runtime.InvalidEntrypoint", err.Error())
	}
	if err != nil {
		return nil, nil, fmt.Errorf("entrypoint for %s: %w", p.fn.Name, err)
	}
	token := newSessionToken()
	e.logStream = p.logStreamName()
	environ, err := p.environ(renv, provisioned, token, e.logStream)
	if err != nil {
		return nil, nil, err
	}
	// External extensions start with the runtime (extensions.go); a pre-initialized runtime
	// started without them, so it is not used.
	extensions := extensionNames(optDir)
	if len(extensions) > 0 {
		mayBind = false
	}
	var exts []sandbox.Extension
	var extOut []*os.File // the worker's ends of the extensions' output pipes, until watched
	closeExt := func() { closeExtensionPipes(exts, extOut); exts, extOut = nil, nil }
	var sp *spare
	if mayBind {
		var counted bool
		sp, counted = p.m.spares.take(p.fn.Runtime, argv, environ)
		if counted {
			defer p.m.spares.done(p.fn.Runtime)
			// An on-demand environment stays new until its first invocation ends (Pool.Invoke);
			// a provisioned one, or a start that failed, is over here.
			defer func() {
				if started != nil && !provisioned {
					started.fresh = true
				} else {
					p.m.spares.ran(p.fn.Runtime)
				}
			}()
		}
	}
	var inst sandbox.Instance
	var r, w *os.File // the output pipe; w is nil once the environment holds its own copy
	if sp != nil {
		e.id, inst, r = sp.id, sp.inst, sp.out
		if e.out, err = newCapture(r); err != nil {
			p.m.spares.discard(sp)
			return nil, nil, fmt.Errorf("output pipe: %w", err)
		}
	} else {
		if r, w, err = os.Pipe(); err != nil {
			return nil, nil, fmt.Errorf("output pipe: %w", err)
		}
		if e.out, err = newCapture(r); err != nil {
			r.Close()
			w.Close()
			return nil, nil, fmt.Errorf("output pipe: %w", err)
		}
		if exts, extOut, err = extensionPipes(extensions, environ); err != nil {
			r.Close()
			w.Close()
			return nil, nil, err
		}
		spec := sandbox.Spec{ID: e.id, TaskDir: codeDir, OptDir: optDir, RuntimeDir: p.m.cfg.RuntimeDir, Argv: argv,
			Env: environ, Ports: p.m.ports, MemoryMB: p.fn.MemoryMB, EphemeralStorageMB: p.fn.EphemeralMB, Output: w,
			Extensions: exts}
		if inst, err = p.m.cfg.Backend.Create(ctx, spec); err != nil {
			r.Close()
			w.Close()
			closeExt()
			return nil, nil, fmt.Errorf("create environment for %s: %w", p.fn.Name, err)
		}
	}
	closeW := func() {
		if w != nil {
			w.Close()
		}
		closeExt()
	}
	e.inst = inst
	// The services' servers are made before the environment is registered (from then on a
	// concurrent destroy may read e.services), and serve once it is.
	if e.services, err = p.services(inst, EnvInfo{ID: e.id, SessionToken: token, Function: p.fn.Name,
		Version: p.fn.Version, ARN: p.fn.ARN}); err != nil {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_ = inst.Destroy(dctx)
		cancel()
		r.Close()
		closeW()
		return nil, nil, fmt.Errorf("services for %s: %w", p.fn.Name, err)
	}
	e.api = runtimeapi.New(e, runtimeapi.FunctionInfo{Name: p.fn.Name, Version: p.fn.Version, Handler: p.fn.Handler,
		AccountID: accountOf(p.fn.ARN)},
		p.log.With("env", e.id))
	e.api.ExpectExtensions(extensions)
	e.extOut = extOut // before the environment is registered: a destroy from then on reads it
	if len(extensions) > 0 {
		p.m.checkLocaldomain(inst)
	}
	e.api.SetDialer(dialer(inst))
	e.api.SetOutput(e.out.write)
	// Registered under the Manager's lock, so that Close (which sets closed under it, then
	// destroys what its pools hold) either sees this environment or this start sees closed; and
	// a retired pool whose environments were all gone is the Manager's again.
	p.m.mu.Lock()
	if p.m.closed {
		p.m.mu.Unlock()
		_ = e.api.Close()
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_ = inst.Destroy(dctx)
		cancel()
		r.Close()
		closeW()
		return nil, nil, ErrClosed
	}
	p.m.pools[p] = struct{}{}
	p.mu.Lock()
	p.all[e] = struct{}{}
	p.mu.Unlock()
	p.m.mu.Unlock()
	registered = true
	// Each extension's output is read until its process ends (Destroy ends it at the latest).
	for n, r := range extOut {
		name := extensions[n]
		p.m.wg.Add(1)
		go func() { defer p.m.wg.Done(); e.api.WatchExtension(name, r); r.Close() }()
	}
	extOut = nil
	p.m.wg.Add(2)
	go func() { defer p.m.wg.Done(); e.out.run() }()
	go func() {
		defer p.m.wg.Done()
		if err := e.api.Serve(inst.RuntimeAPI()); err != nil {
			p.log.Warn("runtime api stopped", "env", e.id, "err", err)
		}
	}()
	for n, srv := range e.services {
		ln := inst.Listener(p.m.ports[n].Number)
		p.m.wg.Add(1)
		go func() { // ends when destroy shuts srv down or the backend closes ln
			defer p.m.wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				p.log.Warn("service stopped", "env", e.id, "port", p.m.ports[n].Number, "err", err)
			}
		}()
	}
	// Taken before Start: a fast runtime can reach its first /next before Start returns (the
	// linux sandbox answers once its init has exec'd the runtime and reported so), and a clock
	// started after that said 0.00 ms. So Init Duration counts from asking the sandbox to exec.
	execAt := p.m.now()
	e.cold.Created, e.cold.Exec, e.cold.Prestarted = execAt, execAt, sp != nil
	e.telemetryInitStart(execAt)
	if sp != nil {
		// A pre-initialized runtime's Init Duration counts from the bind: its interpreter
		// started before the invoke, off its path.
		err = sp.inst.Bind(ctx, sandbox.Binding{TaskDir: codeDir, OptDir: optDir, Env: environ,
			MemoryMB: p.fn.MemoryMB, EphemeralStorageMB: p.fn.EphemeralMB})
		if err != nil {
			p.log.Warn("bind a pre-initialized runtime; starting one afresh", "env", e.id, "err", err)
			e.destroy("bind failed")
			return p.startEnv(ctx, req, onLive, false)
		}
		p.m.bound.Add(1)
	} else {
		err = inst.Start(ctx)
		closeW() // the environment holds its own copies
	}
	if ee, ok := errors.AsType[*sandbox.ExecError](err); ok {
		// The package's entrypoint cannot be executed: the function's error, as on Lambda.
		e.destroy("entrypoint not executable")
		return fail("Runtime.InvalidEntrypoint", ee.Error())
	}
	if err != nil {
		e.destroy("start failed")
		if why := e.aborted.Load(); why != nil {
			// The platform destroyed the environment while it was being started (Close, an
			// eviction): the start failed because of that, not on its own.
			return nil, nil, fmt.Errorf("%w during INIT (%s): %w", ErrAborted, *why, err)
		}
		return nil, nil, fmt.Errorf("start environment for %s: %w", p.fn.Name, err)
	}
	p.m.wg.Add(1)
	go func() { defer p.m.wg.Done(); e.monitor() }()

	timer := time.NewTimer(p.m.cfg.InitTimeout)
	defer timer.Stop()
	select {
	case <-e.ready:
		p.mu.Lock()
		if e.state == stateStarting {
			e.to(stateBusy)
			if onLive != nil {
				onLive()
			}
		}
		dead := e.state == stateDead
		p.mu.Unlock()
		if why := e.aborted.Load(); dead && why != nil {
			return nil, nil, fmt.Errorf("%w during INIT (%s)", ErrAborted, *why)
		}
		if dead {
			return fail("Runtime.ExitError", "Runtime exited without providing a reason")
		}
		// Like Lambda's Init Duration: the runtime's own start, from exec to its first /next.
		e.cold.Ready = p.m.now()
		e.initDur = e.cold.Ready.Sub(execAt)
		if e.api.Subscribed() {
			e.telemetryInitDone(e.initDur, "success", "")
		} else {
			e.api.EndBacklog() // no subscription came during INIT: keep nothing for one
		}
		if ib, ok := inst.(sandbox.InitBooster); ok {
			if err := ib.EndInit(ctx); err != nil {
				e.destroy("end init")
				return nil, nil, fmt.Errorf("end init of %s: %w", p.fn.Name, err)
			}
		}
		e.initOut = e.out.take()
		return e, nil, nil
	case res := <-e.initErr:
		e.destroy("init error")
		c := &call{e: e, req: req, start: begin, duration: p.m.now().Sub(begin), outcome: outcomeError,
			result: res, initOut: e.out.take()}
		if c.result.ErrorType == "" {
			c.result.ErrorType = "Runtime.Unknown"
		}
		return nil, c, nil
	case <-e.exited:
		if why := e.aborted.Load(); why != nil {
			return nil, nil, fmt.Errorf("%w during INIT (%s)", ErrAborted, *why)
		}
		_, c, _ := fail("Runtime.ExitError", "Runtime exited with error: "+e.exit.String())
		c.initOut = e.out.take()
		return nil, c, nil
	case <-timer.C:
		e.destroy("init timeout")
		_, c, _ := fail("Sandbox.Timedout", fmt.Sprintf("Task timed out after %.2f seconds", p.m.cfg.InitTimeout.Seconds()))
		c.outcome = outcomeTimeout
		c.initOut = e.out.take()
		return nil, c, nil
	}
}
