package telemetry

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Span is one invocation's trace context for the OTLP exporter: made by OTLP.Begin when the
// invocation service takes the invocation, carried by the worker to its Observer, exported
// once the invocation has finished (off the caller's path). nil when OTLP export is off.
type Span struct {
	TraceID [16]byte
	Parent  [8]byte // the caller's span (from its trace header); zero: the trace starts here
	Invoke  [8]byte // the invocation's span
	Runtime [8]byte // the runtime's span: the Parent the function sees in its trace header
	Sampled bool
	// Received is when the invocation service took the invocation; Enqueued, for an async
	// event, when it was queued (the queue wait runs from there).
	Received, Enqueued time.Time
	Trigger            string // TriggerHTTP, TriggerPubSub, TriggerDatasource
	Links              []TraceContext
}

// Invocation is one finished invocation as the worker reports it to its Observer.
type Invocation struct {
	Function, Version string
	Outcome           string // success, error, timeout
	RequestID         string
	ErrorType         string // the function's error type, if it failed
	Start             time.Time
	Duration          time.Duration // the runtime's, as REPORT's Duration
	Init              time.Duration // Init Duration of a cold start, 0 when warm
	Cold              ColdStart     // zero Begin: warm
	Span              *Span
}

// ColdStart is when each phase of a cold start ended.
type ColdStart struct {
	Begin   time.Time // the invocation found no idle environment
	Code    time.Time // code and layers unpacked
	Created time.Time // the sandbox made (or a pre-initialized runtime taken)
	Exec    time.Time // the runtime asked to start (or bound): Init Duration starts here
	Ready   time.Time // the runtime's first /next
	// Prestarted: a pre-initialized runtime was bound instead of starting one.
	Prestarted bool
}

// OTLP exports spans and the FaaS metrics over OTLP/HTTP (protobuf) with the OpenTelemetry SDK,
// in batches on the SDK's goroutines.
type OTLP struct {
	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
	tracer trace.Tracer

	invokeDur, initDur            metric.Float64Histogram
	coldStarts, errorsN, timeouts metric.Int64Counter
	invocations                   metric.Int64Counter

	// attrs caches each function version's and trigger's metric attributes (an attribute set
	// costs several allocations to build); bounded by maxAttrSets.
	mu    sync.Mutex
	attrs map[attrKey]metric.MeasurementOption
}

type attrKey struct{ fn, version, trigger string }

const maxAttrSets = 4096

// OTLPConfig configures the exporter.
type OTLPConfig struct {
	// Endpoint is the collector's base URL (as OTEL_EXPORTER_OTLP_ENDPOINT): spans go to
	// Endpoint/v1/traces and metrics to Endpoint/v1/metrics.
	Endpoint string
	Node     string // service.instance.id; "" for a single server
	// SpanBatch is the longest a finished span waits to be sent (default 1 s); MetricInterval
	// how often metrics are sent (default 10 s). Close sends what is left.
	SpanBatch, MetricInterval time.Duration
}

// NewOTLP starts an exporter to cfg.Endpoint; Close flushes and stops it.
func NewOTLP(ctx context.Context, cfg OTLPConfig) (*OTLP, error) {
	base, err := url.Parse(cfg.Endpoint)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("otlp endpoint %q: want an http(s) URL such as http://127.0.0.1:4318", cfg.Endpoint)
	}
	root := strings.TrimSuffix(base.String(), "/")
	if cfg.SpanBatch <= 0 {
		cfg.SpanBatch = time.Second
	}
	if cfg.MetricInterval <= 0 {
		cfg.MetricInterval = 10 * time.Second
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", "flint"), attribute.String("cloud.provider", "flint")}
	if cfg.Node != "" {
		attrs = append(attrs, attribute.String("service.instance.id", cfg.Node))
	}
	res := resource.NewSchemaless(attrs...)
	spans, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(root+"/v1/traces"))
	if err != nil {
		return nil, fmt.Errorf("otlp span exporter: %w", err)
	}
	metrics, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(root+"/v1/metrics"))
	if err != nil {
		return nil, fmt.Errorf("otlp metric exporter: %w", err)
	}
	o := &OTLP{attrs: map[attrKey]metric.MeasurementOption{}}
	o.tp = sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithIDGenerator(presetIDs{}),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
		sdktrace.WithBatcher(spans, sdktrace.WithBatchTimeout(cfg.SpanBatch), sdktrace.WithMaxQueueSize(8192)))
	o.mp = sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(metrics, sdkmetric.WithInterval(cfg.MetricInterval))))
	o.tracer = o.tp.Tracer("github.com/flint-run/flint")
	m := o.mp.Meter("github.com/flint-run/flint")
	// The FaaS metrics of OpenTelemetry's semantic conventions (faas.*), per faas.name,
	// faas.version and faas.trigger.
	if o.invokeDur, err = m.Float64Histogram("faas.invoke_duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of the function's handler, as REPORT's Duration.")); err != nil {
		return nil, err
	}
	if o.initDur, err = m.Float64Histogram("faas.init_duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of a cold start's INIT, as REPORT's Init Duration.")); err != nil {
		return nil, err
	}
	if o.coldStarts, err = m.Int64Counter("faas.coldstarts", metric.WithDescription("Invocations that started an execution environment.")); err != nil {
		return nil, err
	}
	if o.errorsN, err = m.Int64Counter("faas.errors", metric.WithDescription("Invocations the function failed (errors and timeouts).")); err != nil {
		return nil, err
	}
	if o.timeouts, err = m.Int64Counter("faas.timeouts", metric.WithDescription("Invocations that ran past the function's timeout.")); err != nil {
		return nil, err
	}
	if o.invocations, err = m.Int64Counter("faas.invocations", metric.WithDescription("Invocations that ran.")); err != nil {
		return nil, err
	}
	return o, nil
}

// Close sends what is left and stops the exporter.
func (o *OTLP) Close(ctx context.Context) error {
	return errors.Join(o.tp.Shutdown(ctx), o.mp.Shutdown(ctx))
}

// Begin makes the trace context of an invocation taken at now: the caller's trace header
// continued (a malformed or missing one starts a new trace), its span ids chosen, and the
// header the runtime gets, whose Parent is the runtime's span.
func (o *OTLP) Begin(header string, now time.Time, trigger string) (*Span, string) {
	sp := &Span{Received: now, Trigger: trigger}
	tc, ok := ParseTraceHeader(header)
	if !ok {
		tc = TraceContext{TraceID: newRoot(now)}
	}
	sp.TraceID, sp.Parent = tc.TraceID, tc.Parent
	sp.Sampled = tc.Sampled != '0'
	putUint64(sp.Invoke[:], nonZero())
	putUint64(sp.Runtime[:], nonZero())
	out := TraceContext{TraceID: tc.TraceID, Parent: sp.Runtime, Sampled: '0'}
	if sp.Sampled {
		out.Sampled = '1'
	}
	return sp, FormatTraceHeader(out)
}

// presetIDs gives spans the ids chosen beforehand (Begin), carried in the context: the trace ID
// is the X-Ray root's, and the runtime span's id is the Parent the function was given.
type presetIDs struct{}

type idsKey struct{}

type ids struct {
	trace trace.TraceID
	span  trace.SpanID
}

func (presetIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	p, _ := ctx.Value(idsKey{}).(ids)
	if !p.trace.IsValid() {
		var r [16]byte
		putUint64(r[:8], nonZero())
		putUint64(r[8:], nonZero())
		p.trace = r
	}
	return p.trace, presetIDs{}.NewSpanID(ctx, p.trace)
}

func (presetIDs) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	if p, ok := ctx.Value(idsKey{}).(ids); ok && p.span.IsValid() {
		return p.span
	}
	var s trace.SpanID
	putUint64(s[:], nonZero())
	return s
}

// export records a finished invocation: its spans (when it has a Span) and the FaaS metrics,
// whose faas.name and faas.version are fn and version: the Prometheus labels, bounded as they
// are (Metrics.Invoked passes them; see MaxFunctions), so that an OTLP backend gets no more
// series than a scrape. Spans name the function as it is: they are not series.
func (o *OTLP) export(inv Invocation, fn, version string) {
	sp := inv.Span
	trigger := TriggerHTTP
	if sp != nil {
		trigger = sp.Trigger
	}
	k := attrKey{fn, version, trigger}
	o.mu.Lock()
	attrs, ok := o.attrs[k]
	if !ok {
		attrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("faas.name", fn),
			attribute.String("faas.version", version), attribute.String("faas.trigger", trigger)))
		if len(o.attrs) < maxAttrSets {
			o.attrs[k] = attrs
		}
	}
	o.mu.Unlock()
	bg := context.Background()
	o.invocations.Add(bg, 1, attrs)
	o.invokeDur.Record(bg, inv.Duration.Seconds(), attrs)
	if !inv.Cold.Begin.IsZero() || inv.Init > 0 {
		o.coldStarts.Add(bg, 1, attrs)
		if inv.Init > 0 {
			o.initDur.Record(bg, inv.Init.Seconds(), attrs)
		}
	}
	if inv.Outcome != "success" {
		o.errorsN.Add(bg, 1, attrs)
	}
	if inv.Outcome == "timeout" {
		o.timeouts.Add(bg, 1, attrs)
	}
	if sp == nil || !sp.Sampled {
		return
	}
	o.spans(inv, sp)
}

// spans writes an invocation's spans, after the fact, with their recorded times:
//
//	invoke (server; from the event's queueing for async ones, else from Received)
//	├── queue wait (async)
//	├── cold start ── code, sandbox, init
//	└── runtime (the function's invocation: its own spans are children of this one)
func (o *OTLP) spans(inv Invocation, sp *Span) {
	end := inv.Start.Add(inv.Duration)
	begin := sp.Received
	if !sp.Enqueued.IsZero() && sp.Enqueued.Before(begin) {
		begin = sp.Enqueued
	}
	if begin.IsZero() || begin.After(inv.Start) {
		begin = inv.Start
	}
	ctx := context.Background()
	if sp.Parent != [8]byte{} {
		ctx = trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: sp.TraceID, SpanID: sp.Parent, TraceFlags: trace.FlagsSampled, Remote: true}))
	}
	links := make([]trace.Link, 0, len(sp.Links))
	for _, l := range sp.Links {
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: l.TraceID, SpanID: l.Parent, Remote: true})
		if sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	kind := trace.SpanKindServer
	if sp.Trigger != TriggerHTTP {
		kind = trace.SpanKindConsumer
	}
	// A provisioned environment's cold start happened before its first invocation came: only
	// one the invocation waited for is part of its trace.
	cold := !inv.Cold.Begin.IsZero() && !inv.Cold.Begin.Before(sp.Received)
	ictx, invoke := o.tracer.Start(context.WithValue(ctx, idsKey{}, ids{trace: sp.TraceID, span: sp.Invoke}), "invoke",
		trace.WithTimestamp(begin), trace.WithSpanKind(kind), trace.WithLinks(links...),
		trace.WithAttributes(attribute.String("faas.name", inv.Function), attribute.String("faas.version", inv.Version),
			attribute.String("faas.invocation_id", inv.RequestID), attribute.String("faas.trigger", sp.Trigger),
			attribute.Bool("faas.coldstart", cold)))
	if !sp.Enqueued.IsZero() && sp.Enqueued.Before(sp.Received) {
		_, s := o.tracer.Start(context.WithValue(ictx, idsKey{}, ids{}), "queue wait", trace.WithTimestamp(sp.Enqueued))
		s.End(trace.WithTimestamp(sp.Received))
	}
	if cs := inv.Cold; cold {
		cctx, c := o.tracer.Start(context.WithValue(ictx, idsKey{}, ids{}), "cold start", trace.WithTimestamp(cs.Begin),
			trace.WithAttributes(attribute.Bool("flint.prestarted", cs.Prestarted)))
		phase := func(name string, from, to time.Time) {
			if from.IsZero() || to.IsZero() {
				return
			}
			_, s := o.tracer.Start(cctx, name, trace.WithTimestamp(from))
			s.End(trace.WithTimestamp(to))
		}
		phase("code", cs.Begin, cs.Code)
		phase("sandbox", cs.Code, cs.Created)
		phase("init", cs.Exec, cs.Ready)
		c.End(trace.WithTimestamp(cs.Ready))
	}
	_, rt := o.tracer.Start(context.WithValue(ictx, idsKey{}, ids{span: sp.Runtime}), "runtime",
		trace.WithTimestamp(inv.Start), trace.WithSpanKind(trace.SpanKindInternal))
	if inv.Outcome != "success" {
		rt.SetStatus(codes.Error, inv.ErrorType)
		invoke.SetStatus(codes.Error, inv.Outcome)
	}
	rt.End(trace.WithTimestamp(end))
	invoke.End(trace.WithTimestamp(end))
}

// Throttle is an invocation refused with TooManyRequestsException, for its span.
type Throttle struct {
	Function, Version string
	RequestID         string
	Reason            string // Lambda's ThrottleReason
	// Span is the invocation's trace context when it had one before the throttle (Begin); nil:
	// the span continues Header (the caller's X-Amzn-Trace-Id) and takes Trigger.
	Span            *Span
	Header, Trigger string
}

// Throttled exports the span of an invocation refused at now: "invoke", from when it was taken
// until now, with an error status and the throttle's reason. The invocation service calls it
// on the throttled path only, never when OTLP export is off.
func (o *OTLP) Throttled(th Throttle, now time.Time) {
	sp := th.Span
	if sp == nil {
		trigger := th.Trigger
		if trigger == "" {
			trigger = TriggerHTTP
		}
		sp, _ = o.Begin(th.Header, now, trigger)
	}
	if !sp.Sampled {
		return
	}
	ctx := context.Background()
	if sp.Parent != [8]byte{} {
		ctx = trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: sp.TraceID, SpanID: sp.Parent, TraceFlags: trace.FlagsSampled, Remote: true}))
	}
	kind := trace.SpanKindServer
	if sp.Trigger != TriggerHTTP {
		kind = trace.SpanKindConsumer
	}
	begin := sp.Received
	if begin.IsZero() || begin.After(now) {
		begin = now
	}
	_, s := o.tracer.Start(context.WithValue(ctx, idsKey{}, ids{trace: sp.TraceID, span: sp.Invoke}), "invoke",
		trace.WithTimestamp(begin), trace.WithSpanKind(kind),
		trace.WithAttributes(attribute.String("faas.name", th.Function), attribute.String("faas.version", th.Version),
			attribute.String("faas.invocation_id", th.RequestID), attribute.String("faas.trigger", sp.Trigger),
			attribute.String("error.type", "TooManyRequestsException"), attribute.String("flint.throttle_reason", th.Reason)))
	s.SetStatus(codes.Error, "TooManyRequestsException: "+th.Reason)
	s.End(trace.WithTimestamp(now))
}

// Encode writes the span's ids and times as one header value, for an invocation forwarded to
// another node of a cluster: that node runs it and exports its spans, with the ids this node
// chose (the function was already given the runtime span's id as its Parent). Links are not
// carried: only event source batches have them, and those run where they are read.
func (sp *Span) Encode() string {
	b := make([]byte, 0, 160)
	b = hex.AppendEncode(b, sp.TraceID[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, sp.Parent[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, sp.Invoke[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, sp.Runtime[:])
	b = append(b, '-')
	if sp.Sampled {
		b = append(b, '1')
	} else {
		b = append(b, '0')
	}
	b = append(b, '-')
	b = strconv.AppendInt(b, sp.Received.UnixNano(), 10)
	b = append(b, '-')
	if !sp.Enqueued.IsZero() {
		b = strconv.AppendInt(b, sp.Enqueued.UnixNano(), 10)
	}
	b = append(b, '-')
	b = append(b, sp.Trigger...)
	return string(b)
}

// DecodeSpan reads what Encode wrote; false if s is not such a value.
func DecodeSpan(s string) (*Span, bool) {
	f := strings.Split(s, "-")
	if len(f) != 8 || len(f[4]) != 1 || (f[4][0] != '0' && f[4][0] != '1') {
		return nil, false
	}
	sp := &Span{Sampled: f[4][0] == '1'}
	for i, dst := range [][]byte{sp.TraceID[:], sp.Parent[:], sp.Invoke[:], sp.Runtime[:]} {
		if len(f[i]) != 2*len(dst) {
			return nil, false
		}
		if _, err := hex.Decode(dst, []byte(f[i])); err != nil {
			return nil, false
		}
	}
	recv, err := strconv.ParseInt(f[5], 10, 64)
	if err != nil {
		return nil, false
	}
	sp.Received = time.Unix(0, recv)
	if f[6] != "" {
		enq, err := strconv.ParseInt(f[6], 10, 64)
		if err != nil {
			return nil, false
		}
		sp.Enqueued = time.Unix(0, enq)
	}
	switch f[7] {
	case TriggerHTTP, TriggerPubSub, TriggerDatasource:
		sp.Trigger = f[7]
	default:
		return nil, false
	}
	if sp.TraceID == ([16]byte{}) || sp.Invoke == ([8]byte{}) || sp.Runtime == ([8]byte{}) {
		return nil, false
	}
	return sp, true
}
