package telemetry

import (
	"context"
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
