package telemetry

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	collmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	colltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// receiver is an OTLP/HTTP endpoint decoding what it is sent with OpenTelemetry's own types.
type receiver struct {
	url   string
	mu    sync.Mutex
	spans []*tracepb.Span
	// points are the faas.invocations data points' values by their faas.name/faas.version.
	points map[[2]string]int64
}

func startReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{points: map[[2]string]int64{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var in colltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range in.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				r.spans = append(r.spans, ss.GetSpans()...)
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&colltrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	})
	mux.HandleFunc("POST /v1/metrics", func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var in collmetrics.ExportMetricsServiceRequest
		if err := proto.Unmarshal(b, &in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rm := range in.GetResourceMetrics() {
			for _, sm := range rm.GetScopeMetrics() {
				for _, m := range sm.GetMetrics() {
					if m.GetName() != "faas.invocations" {
						continue
					}
					for _, dp := range m.GetSum().GetDataPoints() {
						r.points[[2]string{attr(dp.GetAttributes(), "faas.name"), attr(dp.GetAttributes(), "faas.version")}] = dp.GetAsInt()
					}
				}
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&collmetrics.ExportMetricsServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

func attr(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.GetKey() == key {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

// TestOTLPMetricAttributesBounded: the OTLP metrics' faas.name and faas.version take the
// Prometheus labels' bound: past MaxFunctions functions, the rest are counted under
// OtherFunction, in OTLP as in a scrape.
func TestOTLPMetricAttributesBounded(t *testing.T) {
	r := startReceiver(t)
	o, err := NewOTLP(t.Context(), OTLPConfig{Endpoint: r.url, MetricInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	m := New("", func() (int, int, int, int) { return 0, 0, 0, 0 }, func() []Queue { return nil })
	m.Export(o)
	const extra = 25
	for i := range MaxFunctions + extra {
		m.Invoked(Invocation{Function: "fn-" + strconv.Itoa(i), Version: "1", Outcome: "success", Start: time.Now(), Duration: time.Millisecond})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := o.Close(ctx); err != nil { // sends the metrics
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.points); n != MaxFunctions+1 {
		t.Errorf("faas.invocations has %d series, want %d (MaxFunctions and %s)", n, MaxFunctions+1, OtherFunction)
	}
	if got := r.points[[2]string{OtherFunction, OtherFunction}]; got != extra {
		t.Errorf("faas.invocations{faas.name=%s} = %d, want %d", OtherFunction, got, extra)
	}
	if got := r.points[[2]string{"fn-0", "1"}]; got != 1 {
		t.Errorf("faas.invocations{faas.name=fn-0} = %d, want 1", got)
	}
	if scraped := scrape(t, m); !strings.Contains(scraped, "\n"+`flint_invocations_total{function="_other",outcome="success",version="_other"} 25`+"\n") {
		t.Errorf("the scrape disagrees with OTLP on the bound")
	}
}

// TestThrottleSpan: a throttled invocation's span continues the caller's trace, with an error
// status and the throttle's reason; an unsampled caller's trace gets none.
func TestThrottleSpan(t *testing.T) {
	r := startReceiver(t)
	o, err := NewOTLP(t.Context(), OTLPConfig{Endpoint: r.url, SpanBatch: time.Hour, MetricInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	const h = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	now := time.Now()
	o.Throttled(Throttle{Function: "busy", Version: "$LATEST", RequestID: "req-1", Reason: "ReservedFunctionConcurrentInvocationLimitExceeded", Header: h}, now)
	o.Throttled(Throttle{Function: "quiet", Reason: "ConcurrentInvocationLimitExceeded",
		Header: "Root=1-5759e988-bd862e3fe1be46a994272794;Parent=53995c3f42cd8ad8;Sampled=0"}, now)
	sp, _ := o.Begin("", now.Add(-time.Millisecond), TriggerPubSub) // taken, then throttled: its ids are kept
	o.Throttled(Throttle{Function: "async", Reason: "ConcurrentInvocationLimitExceeded", Span: sp}, now)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := o.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.spans) != 2 {
		t.Fatalf("%d spans, want the sampled throttles' 2", len(r.spans))
	}
	got := r.spans[0]
	attrs := map[string]string{}
	for _, kv := range got.GetAttributes() {
		attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	if got.GetName() != "invoke" || got.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR ||
		got.GetStatus().GetMessage() != "TooManyRequestsException: ReservedFunctionConcurrentInvocationLimitExceeded" ||
		attrs["flint.throttle_reason"] != "ReservedFunctionConcurrentInvocationLimitExceeded" || attrs["faas.name"] != "busy" ||
		attrs["error.type"] != "TooManyRequestsException" || attrs["faas.invocation_id"] != "req-1" {
		t.Errorf("throttle span %v", got)
	}
	if hexID(got.GetTraceId()) != "5759e988bd862e3fe1be46a994272793" || hexID(got.GetParentSpanId()) != "53995c3f42cd8ad8" ||
		got.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("throttle span not in the caller's trace under its span: %v", got)
	}
	async := r.spans[1]
	if [16]byte(async.GetTraceId()) != sp.TraceID || [8]byte(async.GetSpanId()) != sp.Invoke || async.GetKind() != tracepb.Span_SPAN_KIND_CONSUMER {
		t.Errorf("throttle span of a taken invocation %v, want its ids %x/%x", async, sp.TraceID, sp.Invoke)
	}
}

func hexID(b []byte) string { return hex.EncodeToString(b) }
