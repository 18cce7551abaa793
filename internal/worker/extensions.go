package worker

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flint-run/flint/internal/runtimeapi"
	"github.com/flint-run/flint/internal/sandbox"
)

// External extensions: executables in /opt/extensions (from the function's layers), each its
// own process in the environment, which the sandbox starts beside the runtime
// (sandbox.Spec.Extensions): the runtime's exec errors stay the sandbox's (Runtime.
// InvalidEntrypoint), and nothing of the function's image is needed to start them. Each one's
// stdout and stderr are a pipe of its own, read by the Runtime API server (WatchExtension):
// its lines are "extension" telemetry events and its end of file is the process's end, so a
// crash is seen at once. Destroy ends the extensions with the rest of the environment.
// Extensions do not see the runtime's own variables (Lambda's list).

// extensionsDir is where layers put external extensions.
var extensionsDir = path.Join(sandbox.GuestOptRoot, "extensions")

// runtimeOnly are the variables extensions do not get.
var runtimeOnly = []string{"_HANDLER", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "AWS_EXECUTION_ENV",
	"AWS_LAMBDA_LOG_FORMAT", "AWS_LAMBDA_LOG_LEVEL", "AWS_XRAY_CONTEXT_MISSING", "AWS_XRAY_DAEMON_ADDRESS",
	"_AWS_XRAY_DAEMON_ADDRESS", "_AWS_XRAY_DAEMON_PORT"}

// extensionPipes is the sandbox's Spec.Extensions for names, the environment's variables
// environ without runtimeOnly, each with a pipe of its own for its output: the environment gets
// the write ends (close them once it holds its own copies), the worker reads the others.
func extensionPipes(names, environ []string) (exts []sandbox.Extension, outs []*os.File, err error) {
	env := make([]string, 0, len(environ))
	for _, kv := range environ {
		if k, _, _ := strings.Cut(kv, "="); !slices.Contains(runtimeOnly, k) {
			env = append(env, kv)
		}
	}
	for _, n := range names {
		r, w, err := os.Pipe()
		if err != nil {
			closeExtensionPipes(exts, outs)
			return nil, nil, fmt.Errorf("extension output pipe: %w", err)
		}
		exts = append(exts, sandbox.Extension{Path: path.Join(extensionsDir, n), Env: env, Output: w})
		outs = append(outs, r)
	}
	return exts, outs, nil
}

// closeExtensionPipes closes the ends extensionPipes made that are still open.
func closeExtensionPipes(exts []sandbox.Extension, outs []*os.File) {
	for _, x := range exts {
		if x.Output != nil {
			x.Output.Close()
		}
	}
	for _, r := range outs {
		if r != nil {
			r.Close()
		}
	}
}

// extensionNames lists the external extensions the function's layers hold (optDir is the
// merged layers' host directory): the executables directly under extensions/, by file name,
// which is also the name each must register with.
func extensionNames(optDir string) []string {
	if optDir == "" {
		return nil
	}
	dir := filepath.Join(optDir, "extensions")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, de := range ents {
		fi, err := os.Stat(filepath.Join(dir, de.Name()))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			continue
		}
		names = append(names, de.Name())
	}
	slices.Sort(names)
	// Lambda's limit is 10 (the 11th registration is refused); past the sandbox's, the rest
	// are not started.
	return names[:min(len(names), sandbox.MaxExtensions)]
}

// checkLocaldomain warns, once, when environments that share the host's network (no
// sandbox.Dialer: the process sandbox) start extensions and the host does not name
// sandbox.localdomain: Flint delivers telemetry there itself (runtimeapi's dialEnv), but an
// extension that resolves the name to listen on it, as AWS's samples do, fails. Flint does not
// change the host's /etc/hosts for it. Off the cold start's path.
func (m *Manager) checkLocaldomain(inst sandbox.Instance) {
	if _, ok := inst.(sandbox.Dialer); ok {
		return
	}
	m.hostsChecked.Do(func() {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			// Bounded: Close waits for it.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			addrs, err := net.DefaultResolver.LookupHost(ctx, "sandbox.localdomain")
			for _, a := range addrs {
				if ip := net.ParseIP(a); ip != nil && ip.IsLoopback() {
					return
				}
			}
			m.log.Warn("sandbox.localdomain does not name this host's loopback: extensions that listen on it fail in the process sandbox (add \"127.0.0.1 sandbox.localdomain\" to /etc/hosts, or use the linux sandbox, whose environments name it)",
				"addrs", addrs, "err", err)
		}()
	})
}

// dialer returns how the Telemetry API reaches a listener inside inst's environment.
func dialer(inst sandbox.Instance) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if d, ok := inst.(sandbox.Dialer); ok {
		return d.Dial
	}
	var d net.Dialer
	return d.DialContext
}

// accountOf is the account of a function's ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME).
func accountOf(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}

// shutdownReason maps why an environment is destroyed onto the SHUTDOWN event's reason.
func shutdownReason(reason string) string {
	switch {
	case reason == "timeout" || reason == "init timeout":
		return runtimeapi.ShutdownTimeout
	case reason == "exited" || strings.HasPrefix(reason, "init") || strings.HasPrefix(reason, "extension") ||
		reason == "start failed" || reason == "end init" || reason == "entrypoint not executable":
		return runtimeapi.ShutdownFailure
	}
	return runtimeapi.ShutdownSpindown
}

// Telemetry records (the Telemetry API's schema, telemetry-schema-reference.md).

func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())/10) / 100 }

func initType(provisioned bool) string {
	if provisioned {
		return "provisioned-concurrency"
	}
	return "on-demand"
}

type traceContext struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

func tracingOf(id string) *traceContext {
	if id == "" {
		return nil
	}
	return &traceContext{Type: "X-Amzn-Trace-Id", Value: id}
}

// runtimeStatus is the Telemetry API's status of an invocation's or INIT's end.
func runtimeStatus(o outcome, errorType string) string {
	switch {
	case o == outcomeSuccess && errorType == "":
		return "success"
	case o == outcomeTimeout:
		return "timeout"
	case strings.HasPrefix(errorType, "Runtime.") || strings.HasPrefix(errorType, "Sandbox.") ||
		strings.HasPrefix(errorType, "Extension.") || o == outcomeAborted:
		return "failure"
	}
	return "error"
}

// emitFunctionLines reports each line of a function's output as a "function" event, but the
// extensions' lines (the spans ext), which were "extension" events already.
func emitFunctionLines(api *runtimeapi.Server, at time.Time, out []byte, ext [][2]int) {
	for off := 0; off < len(out); {
		end := len(out)
		if i := strings.IndexByte(string(out[off:]), '\n'); i >= 0 {
			end = off + i
		}
		line := string(out[off:end])
		extension := false
		for _, sp := range ext {
			extension = extension || (off >= sp[0] && off < sp[1])
		}
		if line != "" && !extension {
			api.EmitAt(at, "function", runtimeapi.KindFunction, line)
		}
		off = end + 1
	}
}

// telemetryStart reports an invocation's platform.start.
func (e *env) telemetryStart(req Request, at time.Time) {
	e.api.EmitAt(at, "platform.start", runtimeapi.KindPlatform, struct {
		RequestID string        `json:"requestId"`
		Version   string        `json:"version"`
		Tracing   *traceContext `json:"tracing,omitempty"`
	}{req.RequestID, e.p.fn.Version, tracingOf(req.TraceID)})
}

// telemetryRuntimeDone reports platform.runtimeDone: the runtime's answer.
func (e *env) telemetryRuntimeDone(c *call) {
	type metrics struct {
		DurationMs    float64 `json:"durationMs"`
		ProducedBytes int     `json:"producedBytes"`
	}
	e.api.EmitAt(c.start.Add(c.duration), "platform.runtimeDone", runtimeapi.KindPlatform, struct {
		RequestID string        `json:"requestId"`
		Status    string        `json:"status"`
		ErrorType string        `json:"errorType,omitempty"`
		Metrics   metrics       `json:"metrics"`
		Tracing   *traceContext `json:"tracing,omitempty"`
	}{c.req.RequestID, runtimeStatus(c.outcome, c.result.ErrorType), c.result.ErrorType,
		metrics{ms(c.duration), len(c.result.Body)}, tracingOf(c.req.TraceID)})
}

// telemetryReport reports platform.report, once the extensions are done too.
func (e *env) telemetryReport(c *call) {
	type metrics struct {
		DurationMs       float64  `json:"durationMs"`
		BilledDurationMs int64    `json:"billedDurationMs"`
		MemorySizeMB     int      `json:"memorySizeMB"`
		MaxMemoryUsedMB  int      `json:"maxMemoryUsedMB"`
		InitDurationMs   *float64 `json:"initDurationMs,omitempty"`
	}
	// Billed as REPORT bills it: the ceiling in whole milliseconds, at least 1.
	billed := max(int64((c.duration+time.Millisecond-1)/time.Millisecond), 1)
	m := metrics{DurationMs: ms(c.duration), BilledDurationMs: billed,
		MemorySizeMB: e.p.fn.MemoryMB, MaxMemoryUsedMB: e.maxMemoryMB()}
	if c.initDur > 0 {
		d := ms(c.initDur)
		m.InitDurationMs = &d
	}
	e.api.Emit("platform.report", runtimeapi.KindPlatform, struct {
		RequestID string        `json:"requestId"`
		Status    string        `json:"status"`
		ErrorType string        `json:"errorType,omitempty"`
		Metrics   metrics       `json:"metrics"`
		Tracing   *traceContext `json:"tracing,omitempty"`
	}{c.req.RequestID, runtimeStatus(c.outcome, c.result.ErrorType), c.result.ErrorType, m, tracingOf(c.req.TraceID)})
}

// telemetryInitStart reports INIT's start (before the runtime starts); telemetryInitDone its end.
func (e *env) telemetryInitStart(at time.Time) {
	e.api.EmitAt(at, "platform.initStart", runtimeapi.KindPlatform, map[string]string{
		"initializationType": initType(e.provisioned), "phase": "init",
		"runtimeVersion": e.p.fn.Runtime.Name})
}

func (e *env) telemetryInitDone(d time.Duration, status, errorType string) {
	it := initType(e.provisioned)
	done := map[string]string{"initializationType": it, "phase": "init", "status": status}
	if errorType != "" {
		done["errorType"] = errorType
	}
	e.api.Emit("platform.initRuntimeDone", runtimeapi.KindPlatform, done)
	rep := map[string]any{"initializationType": it, "phase": "init", "status": status, "metrics": map[string]float64{"durationMs": ms(d)}}
	if errorType != "" {
		rep["errorType"] = errorType
	}
	e.api.Emit("platform.initReport", runtimeapi.KindPlatform, rep)
}

// awaitExtensions finishes an invocation whose environment has extensions or telemetry
// subscribers (c.pending), after the caller may have been answered: it waits until every
// extension sent INVOKE has asked for its next event (within the function's timeout), reports
// the invocation's telemetry, and makes the environment idle again or resets it. Duration
// counts the extensions' time, as Lambda's does.
func (e *env) awaitExtensions(c *call) {
	p := e.p
	c.pending = false
	tel := e.api.Subscribed()
	if tel {
		if e.api.Wants(runtimeapi.KindFunction) {
			emitFunctionLines(e.api, c.start.Add(c.duration), c.output, c.extOutput)
		}
		e.telemetryRuntimeDone(c)
	}
	failed := ""
	var err error
	if e.api.HasExtensions() {
		failed, err = e.api.AwaitExtensions(c.start.Add(p.fn.Timeout))
		c.duration = p.m.now().Sub(c.start)
	}
	switch {
	case failed != "":
		c.outcome = outcomeError
		c.result.ErrorType = failed
	case err != nil && err != runtimeapi.ErrAborted:
		c.outcome = outcomeTimeout
	}
	if tel {
		e.telemetryReport(c)
	}
	switch {
	case failed != "":
		e.destroy("extension failed")
	case err == runtimeapi.ErrAborted: // destroyed meanwhile
	case err != nil:
		e.destroy("timeout")
	default:
		e.release()
	}
}

// shutdown runs the Extensions API's SHUTDOWN phase before the environment is destroyed, if an
// extension registered for it or subscribed to telemetry (its last events are delivered).
func (e *env) shutdown(reason string) {
	if e.suspended.Load() {
		if err := e.thaw(); err != nil {
			return
		}
	}
	e.api.Shutdown(shutdownReason(reason))
}
