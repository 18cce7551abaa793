package server_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	collmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	colltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/server"
)

// traceFn returns the _X_AMZN_TRACE_ID its runtime set, fails on {"fail": true}, and fails its
// first execution of a {"flaky": NAME} event (marking DIR/NAME) so that the async queue retries it.
const traceFn = `import os, time
def handler(event, context):
    if event.get('sleep'):
        time.sleep(event['sleep'])
    if event.get('fail'):
        raise Exception('asked to fail')
    flaky = event.get('flaky') if isinstance(event, dict) else None
    if flaky:
        mark = os.path.join(os.environ['DIR'], flaky)
        if not os.path.exists(mark):
            open(mark, 'w').close()
            raise Exception('first attempt fails')
    return {'trace': os.environ.get('_X_AMZN_TRACE_ID')}
`

// batchTraceFn writes, per batch, its own trace header and each record's AWSTraceHeader to DIR/batches.
const batchTraceFn = `import os, json
def handler(event, context):
    line = {'trace': os.environ.get('_X_AMZN_TRACE_ID'),
            'records': [r['attributes'].get('AWSTraceHeader') for r in event['Records']],
            'attrs': [sorted(r['messageAttributes']) for r in event['Records']]}
    with open(os.path.join(os.environ['DIR'], 'batches'), 'a') as f:
        f.write(json.dumps(line) + '\n')
    return {}
`

var wellFormedRoot = regexp.MustCompile(`^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=[01]$`)

// withTraceHeader sends X-Amzn-Trace-Id with an SDK call, as a traced caller does.
func withTraceHeader(h string) func(*lambda.Options) {
	return func(o *lambda.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Build.Add(middleware.BuildMiddlewareFunc("traceHeader", func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
				if req, ok := in.Request.(*smithyhttp.Request); ok {
					req.Header.Set("X-Amzn-Trace-Id", h)
				}
				return next.HandleBuild(ctx, in)
			}), middleware.After)
		})
	}
}

// functionTrace invokes fn synchronously and returns the _X_AMZN_TRACE_ID it saw.
func functionTrace(t *testing.T, c *lambda.Client, fn string, opts ...func(*lambda.Options)) string {
	t.Helper()
	out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{}`)}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if out.FunctionError != nil {
		t.Fatalf("%s failed: %s", fn, out.Payload)
	}
	var r struct{ Trace string }
	if err := json.Unmarshal(out.Payload, &r); err != nil {
		t.Fatalf("%s answered %s: %v", fn, out.Payload, err)
	}
	return r.Trace
}

func rootOf(h string) string {
	for _, f := range strings.Split(h, ";") {
		if v, ok := strings.CutPrefix(f, "Root="); ok {
			return v
		}
	}
	return ""
}

func parentOf(h string) string {
	for _, f := range strings.Split(h, ";") {
		if v, ok := strings.CutPrefix(f, "Parent="); ok {
			return v
		}
	}
	return ""
}

// TestTraces: every invocation carries a trace header to its runtime (_X_AMZN_TRACE_ID): the
// caller's, else a new root; async events keep theirs through retries and destinations; queue
// batches get a trace of their own and see their records'; and /metrics counts a known load
// exactly. One server (OTLP export off, the default) serves every case.
func TestTraces(t *testing.T) {
	s := startServer(t, t.TempDir(), func(c *config.Config) {
		c.NATSListen = "127.0.0.1:0"
		c.AsyncRetryDelay = 50 * time.Millisecond
	})
	c := newClient(s.URL())
	ctx := context.Background()
	dir := t.TempDir()
	code := mustZip(t, map[string]zipEntry{"app.py": {body: traceFn}})
	withDir := func(in *lambda.CreateFunctionInput) {
		in.Environment = &types.Environment{Variables: map[string]string{"DIR": dir}}
	}
	createFunction(t, c, "traced", "python3.12", "app.handler", code, withDir)

	t.Run("caller's header reaches the function", func(t *testing.T) {
		const h = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
		if got := functionTrace(t, c, "traced", withTraceHeader(h)); got != h {
			t.Errorf("_X_AMZN_TRACE_ID = %q, want the caller's %q", got, h)
		}
	})
	t.Run("no header starts a new root", func(t *testing.T) {
		a := functionTrace(t, c, "traced")
		b := functionTrace(t, c, "traced")
		if !wellFormedRoot.MatchString(a) || !wellFormedRoot.MatchString(b) {
			t.Fatalf("_X_AMZN_TRACE_ID = %q, %q: want X-Ray roots", a, b)
		}
		if rootOf(a) == rootOf(b) {
			t.Errorf("two invocations share the root %s", rootOf(a))
		}
		// The root's first part is the trace's start in Unix seconds.
		ts, _ := hex.DecodeString(rootOf(a)[2:10])
		at := time.Unix(int64(ts[0])<<24|int64(ts[1])<<16|int64(ts[2])<<8|int64(ts[3]), 0)
		if d := time.Since(at); d < -time.Minute || d > time.Hour {
			t.Errorf("root %s dates from %v", rootOf(a), at)
		}
	})
	t.Run("malformed header starts a new root", func(t *testing.T) {
		if got := functionTrace(t, c, "traced", withTraceHeader("Root=nonsense")); !wellFormedRoot.MatchString(got) {
			t.Errorf("_X_AMZN_TRACE_ID = %q: want a new X-Ray root", got)
		}
	})

	t.Run("async, retries and destinations", func(t *testing.T) {
		// traced-async: its retried execution's result goes to the function traced-dest, whose
		// own result goes to the stream traces-ok.
		createFunction(t, c, "traced-async", "python3.12", "app.handler", code, withDir)
		createFunction(t, c, "traced-dest", "python3.12", "app.handler", code, withDir)
		for fn, dest := range map[string]string{"traced-async": "arn:aws:lambda:us-east-1:000000000000:function:traced-dest", "traced-dest": streamArn + "traces-ok"} {
			if _, err := c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(fn),
				DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String(dest)}}}); err != nil {
				t.Fatal(err)
			}
		}
		const h = "Root=1-6759e988-0123456789abcdef01234567;Parent=1111222233334444;Sampled=1"
		if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("traced-async"), InvocationType: types.InvocationTypeEvent,
			Payload: []byte(`{"flaky":"async-once"}`)}, withTraceHeader(h)); err != nil {
			t.Fatal(err)
		}
		msg := destinationMsgs(t, s, "traces-ok", 1)[0]
		if got := msg.Headers().Get("X-Amzn-Trace-Id"); rootOf(got) != rootOf(h) {
			t.Errorf("destination record's X-Amzn-Trace-Id = %q, want root %s", got, rootOf(h))
		}
		var dest asyncq.Record // traced-dest's record: its event was traced-async's record
		if err := json.Unmarshal(msg.Data(), &dest); err != nil {
			t.Fatal(err)
		}
		var first asyncq.Record
		if err := json.Unmarshal(dest.RequestPayload, &first); err != nil {
			t.Fatalf("traced-dest's event %s: %v", dest.RequestPayload, err)
		}
		var ran, destRan struct{ Trace string }
		_ = json.Unmarshal(first.ResponsePayload, &ran)
		_ = json.Unmarshal(dest.ResponsePayload, &destRan)
		if first.RequestContext.ApproximateInvokeCount != 2 {
			t.Errorf("traced-async ran %d times, want 2 (a retry)", first.RequestContext.ApproximateInvokeCount)
		}
		if rootOf(ran.Trace) != rootOf(h) {
			t.Errorf("the async function's retried execution saw %q, want root %s", ran.Trace, rootOf(h))
		}
		if rootOf(destRan.Trace) != rootOf(h) {
			t.Errorf("the destination function saw %q, want root %s", destRan.Trace, rootOf(h))
		}
	})

	t.Run("async without a header gets one root for the event", func(t *testing.T) {
		createFunction(t, c, "traced-norecv", "python3.12", "app.handler", code, withDir)
		if _, err := c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("traced-norecv"),
			DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String(streamArn + "norecv-ok")}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("traced-norecv"), InvocationType: types.InvocationTypeEvent,
			Payload: []byte(`{"flaky":"norecv-once"}`)}); err != nil {
			t.Fatal(err)
		}
		msg := destinationMsgs(t, s, "norecv-ok", 1)[0]
		var r asyncq.Record
		_ = json.Unmarshal(msg.Data(), &r)
		var ran struct{ Trace string }
		_ = json.Unmarshal(r.ResponsePayload, &ran)
		hdr := msg.Headers().Get("X-Amzn-Trace-Id")
		if !wellFormedRoot.MatchString(ran.Trace) || rootOf(hdr) != rootOf(ran.Trace) {
			t.Errorf("retried execution saw %q, record carries %q: want one new root", ran.Trace, hdr)
		}
	})

	t.Run("queue batches", func(t *testing.T) {
		bdir := t.TempDir()
		createFunction(t, c, "traced-batch", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: batchTraceFn}}),
			func(in *lambda.CreateFunctionInput) {
				in.Environment = &types.Environment{Variables: map[string]string{"DIR": bdir}}
			})
		m := enabledQueueMapping(t, c, "traced-jobs", "traced-batch")
		js := outsideJetStream(t, s)
		const h = "Root=1-6759e988-fedcba9876543210fedcba98;Parent=5555666677778888;Sampled=1"
		traced := nats.NewMsg("flint.queues.traced-jobs")
		traced.Data = []byte("one")
		traced.Header.Set("X-Amzn-Trace-Id", h)
		if _, err := js.PublishMsg(ctx, traced); err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, "flint.queues.traced-jobs", []byte("two")); err != nil {
			t.Fatal(err)
		}
		var lines []string
		waitFor(t, "two batches", 30*time.Second, func() bool {
			b, _ := os.ReadFile(filepath.Join(bdir, "batches"))
			lines = strings.Split(strings.TrimSpace(string(b)), "\n")
			return len(lines) == 2
		})
		var seen []string
		for _, l := range lines {
			var b struct {
				Trace   string
				Records []*string
				Attrs   [][]string
			}
			if err := json.Unmarshal([]byte(l), &b); err != nil {
				t.Fatalf("batch line %q: %v", l, err)
			}
			if !wellFormedRoot.MatchString(b.Trace) || rootOf(b.Trace) == rootOf(h) {
				t.Errorf("a batch ran with trace %q: want a new root of its own", b.Trace)
			}
			if len(b.Records) != 1 || len(b.Attrs) != 1 || len(b.Attrs[0]) != 0 {
				t.Fatalf("batch %s: want one record, its trace header not among its messageAttributes", l)
			}
			if b.Records[0] != nil {
				seen = append(seen, *b.Records[0])
			}
		}
		if len(seen) != 1 || seen[0] != h {
			t.Errorf("records' attributes.AWSTraceHeader = %q, want only the traced message's %q", seen, h)
		}
		// Once done, the mapping shows no lag.
		waitFor(t, "mapping lag 0", 10*time.Second, func() bool {
			f := scrapeMetrics(t, s.URL())
			v, ok := sample(f, "flint_mapping_records_behind", map[string]string{"mapping": aws.ToString(m.UUID), "function": "traced-batch"})
			return ok && v == 0
		})
	})

	t.Run("mapping lag", func(t *testing.T) {
		createFunction(t, c, "slow-batch", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: "import time\ndef handler(e, c):\n    time.sleep(0.4)\n    return {}\n"}}))
		q, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{EventSourceArn: aws.String(queueArn + "lag-jobs"),
			FunctionName: aws.String("slow-batch"), BatchSize: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{EventSourceArn: aws.String(streamArn + "lag-events"),
			FunctionName: aws.String("slow-batch"), BatchSize: aws.Int32(1), StartingPosition: types.EventSourcePositionTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []*string{q.UUID, st.UUID} {
			waitFor(t, "mapping enabled", 10*time.Second, func() bool {
				got, err := c.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: id})
				return err == nil && aws.ToString(got.State) == "Enabled"
			})
		}
		nc, err := nats.Connect(s.NATSURL(), nats.Token(s.NATSToken()))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		const n = 4
		for range n {
			if _, err := js.Publish(ctx, "flint.queues.lag-jobs", []byte("x")); err != nil {
				t.Fatal(err)
			}
			if _, err := js.Publish(ctx, "flint.streams.lag-events.k", []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		// The stream's records run one at a time (one key, one lane): it falls behind by the
		// records not yet finished; the queue's run at once, each waiting or running until acked.
		peak := map[string]float64{}
		aged := map[string]bool{}
		waitFor(t, "both mappings caught up after lagging", 30*time.Second, func() bool {
			f := scrapeMetrics(t, s.URL())
			done := true
			for _, id := range []string{aws.ToString(q.UUID), aws.ToString(st.UUID)} {
				l := map[string]string{"mapping": id, "function": "slow-batch"}
				behind, ok := sample(f, "flint_mapping_records_behind", l)
				age, _ := sample(f, "flint_mapping_oldest_record_age_seconds", l)
				peak[id] = max(peak[id], behind)
				if behind > 0 && age > 0 {
					aged[id] = true
				}
				done = done && ok && behind == 0 && peak[id] >= 2
			}
			return done
		})
		for _, id := range []string{aws.ToString(q.UUID), aws.ToString(st.UUID)} {
			if peak[id] > n || !aged[id] {
				t.Errorf("mapping %s: peak records behind %v (of %d), an oldest age seen: %v", id, peak[id], n, aged[id])
			}
		}
	})

	t.Run("prometheus counts a known load exactly", func(t *testing.T) {
		createFunction(t, c, "counted", "python3.12", "app.handler", code, withDir)
		const n, e, th = 12, 3, 4 // invocations sent; of them errors and throttles
		for i := range n - th {
			payload := `{}`
			if i < e {
				payload = `{"fail":true}`
			}
			out := invoke(t, c, "counted", payload)
			if (out.FunctionError != nil) != (i < e) {
				t.Fatalf("invoke %d: FunctionError %v", i, out.FunctionError)
			}
		}
		if _, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("counted"), ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
			t.Fatal(err)
		}
		for range th {
			_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("counted"), Payload: []byte(`{}`)})
			var tm *types.TooManyRequestsException
			if !errors.As(err, &tm) {
				t.Fatalf("invoke with reserved concurrency 0: %v, want TooManyRequestsException", err)
			}
		}
		fn := map[string]string{"function": "counted", "version": "$LATEST"}
		with := func(k, v string) map[string]string {
			m := map[string]string{k: v}
			for a, b := range fn {
				m[a] = b
			}
			return m
		}
		var f map[string]*dto.MetricFamily
		waitFor(t, "every invocation recorded", 10*time.Second, func() bool {
			f = scrapeMetrics(t, s.URL())
			return sum(f, "flint_invocations_total", fn) == n
		})
		time.Sleep(200 * time.Millisecond) // nothing more arrives
		f = scrapeMetrics(t, s.URL())
		for _, tc := range []struct {
			metric string
			labels map[string]string
			want   float64
		}{
			{"flint_invocations_total", fn, n},
			{"flint_invocations_total", with("outcome", "success"), n - e - th},
			{"flint_invocations_total", with("outcome", "error"), e},
			{"flint_invocations_total", with("outcome", "throttle"), th},
			{"flint_throttles_total", with("reason", "ReservedFunctionConcurrentInvocationLimitExceeded"), th},
			{"flint_throttles_total", fn, th},
			{"flint_cold_starts_total", fn, 1},
			{"flint_invocation_duration_seconds", fn, n - th}, // the histogram's count
			{"flint_init_duration_seconds", fn, 1},
			{"flint_concurrent_executions", map[string]string{"function": "counted"}, 0},
			{"flint_function_environments", with("state", "idle"), 1},
		} {
			if got := sum(f, tc.metric, tc.labels); got != tc.want {
				t.Errorf("%s%v = %v, want %v", tc.metric, tc.labels, got, tc.want)
			}
		}
	})
}

// scrapeMetrics reads /metrics with Prometheus's own text parser.
func scrapeMetrics(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	f, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// sum adds the samples of a family whose labels include every one given (a histogram's count).
func sum(f map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	total := 0.0
	mf := f[name]
	if mf == nil {
		return 0
	}
	for _, m := range mf.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	return total
}

// sample is the one sample of a family with exactly these labels (ok false: none).
func sample(f map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	mf := f[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		if hasLabels(m, labels) {
			return m.GetGauge().GetValue() + m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

func hasLabels(m *dto.Metric, labels map[string]string) bool {
	for k, v := range labels {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == k && l.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// otlpReceiver is an OTLP/HTTP endpoint that decodes what it is sent with OpenTelemetry's own
// protobuf types.
type otlpReceiver struct {
	url string

	mu      sync.Mutex
	spans   []*tracepb.Span
	metrics map[string]bool // metric names received
}

func startReceiver(t testing.TB) *otlpReceiver {
	t.Helper()
	r := &otlpReceiver{metrics: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var in colltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &in); err != nil {
			t.Errorf("receiver: traces: %v", err)
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
			t.Errorf("receiver: metrics: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rm := range in.GetResourceMetrics() {
			for _, sm := range rm.GetScopeMetrics() {
				for _, m := range sm.GetMetrics() {
					r.metrics[m.GetName()] = true
				}
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&collmetrics.ExportMetricsServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	r.url = "http://" + ln.Addr().String()
	return r
}

// trace returns the spans received of the trace with this id (hex).
func (r *otlpReceiver) trace(id string) []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range r.spans {
		if hex.EncodeToString(s.GetTraceId()) == id {
			out = append(out, s)
		}
	}
	return out
}

// TestOTLPExport: with --otlp-endpoint, each invocation's spans reach an OTLP/HTTP receiver
// with the X-Ray root as trace ID: invoke (child of the caller's span), its cold start with
// its phases and init, and the runtime's span, whose id is the Parent the function saw; an
// async event adds its queue wait; a queue batch is a trace of its own linked to its record's;
// the FaaS metrics arrive too.
func TestOTLPExport(t *testing.T) {
	recv := startReceiver(t)
	s := startServer(t, t.TempDir(), func(c *config.Config) {
		c.OTLPEndpoint = recv.url
		c.NATSListen = "127.0.0.1:0"
	})
	c := newClient(s.URL())
	ctx := context.Background()
	dir := t.TempDir()
	createFunction(t, c, "spanned", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: traceFn}}),
		func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"DIR": dir}}
		})
	const caller = "53995c3f42cd8ad8"
	const h = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=" + caller + ";Sampled=1"
	const traceID = "5759e988bd862e3fe1be46a994272793"
	seen := functionTrace(t, c, "spanned", withTraceHeader(h)) // a cold start
	if rootOf(seen) != rootOf(h) || parentOf(seen) == caller || !wellFormedRoot.MatchString(seen) {
		t.Fatalf("the function saw %q: want root %s, with the runtime's span as Parent", seen, rootOf(h))
	}
	var spans []*tracepb.Span
	byName := map[string]*tracepb.Span{}
	waitFor(t, "the cold invocation's spans", 20*time.Second, func() bool {
		spans = recv.trace(traceID)
		for _, sp := range spans {
			byName[sp.GetName()] = sp
		}
		return len(byName) >= 6
	})
	id := func(b []byte) string { return hex.EncodeToString(b) }
	inv, rt, cold := byName["invoke"], byName["runtime"], byName["cold start"]
	if inv == nil || rt == nil || cold == nil || byName["code"] == nil || byName["sandbox"] == nil || byName["init"] == nil {
		t.Fatalf("spans %v: want invoke, cold start, code, sandbox, init, runtime", byName)
	}
	for _, tc := range []struct{ child, parent string }{
		{"invoke", caller},
		{"runtime", id(inv.GetSpanId())},
		{"cold start", id(inv.GetSpanId())},
		{"code", id(cold.GetSpanId())},
		{"sandbox", id(cold.GetSpanId())},
		{"init", id(cold.GetSpanId())},
	} {
		if got := id(byName[tc.child].GetParentSpanId()); got != tc.parent {
			t.Errorf("%s's parent = %s, want %s", tc.child, got, tc.parent)
		}
	}
	if id(rt.GetSpanId()) != parentOf(seen) {
		t.Errorf("runtime span %s, but the function's Parent is %s", id(rt.GetSpanId()), parentOf(seen))
	}
	if inv.GetKind() != tracepb.Span_SPAN_KIND_SERVER || inv.GetStartTimeUnixNano() > rt.GetStartTimeUnixNano() ||
		inv.GetEndTimeUnixNano() < rt.GetEndTimeUnixNano() || rt.GetEndTimeUnixNano() <= rt.GetStartTimeUnixNano() {
		t.Errorf("invoke %v does not enclose runtime %v", inv, rt)
	}
	attrs := map[string]string{}
	for _, kv := range inv.GetAttributes() {
		attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	if attrs["faas.name"] != "spanned" || attrs["faas.trigger"] != "http" || len(attrs["faas.invocation_id"]) != 36 {
		t.Errorf("invoke's attributes %v", attrs)
	}

	// A warm invocation without a header: a new trace, no cold start.
	warm := functionTrace(t, c, "spanned")
	wid := strings.ReplaceAll(strings.TrimPrefix(rootOf(warm), "1-"), "-", "")
	var names []string
	waitFor(t, "the warm invocation's spans", 20*time.Second, func() bool {
		names = names[:0]
		for _, sp := range recv.trace(wid) {
			names = append(names, sp.GetName())
		}
		return len(names) >= 2
	})
	if strings.Join(names, ",") != "runtime,invoke" && strings.Join(names, ",") != "invoke,runtime" {
		t.Errorf("warm invocation's spans %v: want invoke and runtime", names)
	}

	// An async event: its invoke span begins with the queue wait.
	const ah = "Root=1-5759e989-00000000000000000000abcd;Parent=00000000000000aa;Sampled=1"
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("spanned"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{}`)},
		withTraceHeader(ah)); err != nil {
		t.Fatal(err)
	}
	var qw, ainv *tracepb.Span
	waitFor(t, "the async invocation's spans", 30*time.Second, func() bool {
		for _, sp := range recv.trace("5759e98900000000000000000000abcd") {
			switch sp.GetName() {
			case "queue wait":
				qw = sp
			case "invoke":
				ainv = sp
			}
		}
		return qw != nil && ainv != nil
	})
	if id(qw.GetParentSpanId()) != id(ainv.GetSpanId()) || ainv.GetKind() != tracepb.Span_SPAN_KIND_CONSUMER ||
		qw.GetStartTimeUnixNano() != ainv.GetStartTimeUnixNano() || id(ainv.GetParentSpanId()) != "00000000000000aa" {
		t.Errorf("async spans: queue wait %v, invoke %v", qw, ainv)
	}

	// A queue batch: a trace of its own, its invoke span linked to the traced record's.
	enabledQueueMapping(t, c, "spanned-jobs", "spanned")
	js := outsideJetStream(t, s)
	msg := nats.NewMsg("flint.queues.spanned-jobs")
	msg.Data = []byte("{}")
	msg.Header.Set("X-Amzn-Trace-Id", "Root=1-5759e98b-00000000000000000000beef;Parent=00000000000000bb;Sampled=1")
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	var batch *tracepb.Span
	waitFor(t, "the batch's invoke span", 30*time.Second, func() bool {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		for _, sp := range recv.spans {
			for _, kv := range sp.GetAttributes() {
				if sp.GetName() == "invoke" && kv.GetKey() == "faas.trigger" && kv.GetValue().GetStringValue() == "datasource" {
					batch = sp
				}
			}
		}
		return batch != nil
	})
	if l := batch.GetLinks(); len(l) != 1 || id(l[0].GetTraceId()) != "5759e98b00000000000000000000beef" || id(l[0].GetSpanId()) != "00000000000000bb" ||
		id(batch.GetTraceId()) == "5759e98b00000000000000000000beef" {
		t.Errorf("batch span in trace %s with links %v: want a trace of its own linked to the record's", id(batch.GetTraceId()), l)
	}

	// An error and a timeout count in faas.errors and faas.timeouts.
	if out := invoke(t, c, "spanned", `{"fail":true}`); out.FunctionError == nil {
		t.Fatal("asked to fail, it did not")
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("spanned"), Timeout: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	if out := invoke(t, c, "spanned", `{"sleep":3}`); out.FunctionError == nil {
		t.Fatal("a 3 s sleep in a 1 s timeout did not fail")
	}

	// Metrics are sent periodically and at shutdown.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	for _, m := range []string{"faas.invoke_duration", "faas.init_duration", "faas.coldstarts", "faas.invocations", "faas.errors", "faas.timeouts"} {
		if !recv.metrics[m] {
			t.Errorf("metric %s not received (got %v)", m, recv.metrics)
		}
	}
}

// TestTracesLinux: in the linux sandbox (the Runtime API on the environment's own network
// namespace, the runtime started by the sandbox's init) the caller's trace reaches the function
// and the cold start's spans, its phases and init, reach the receiver.
func TestTracesLinux(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the linux sandbox needs root")
	}
	recv := startReceiver(t)
	s := startServer(t, t.TempDir(), withSandbox("linux"), func(c *config.Config) { c.OTLPEndpoint = recv.url })
	c := newClient(s.URL())
	createFunction(t, c, "spanned", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: traceFn}}))
	const h = "Root=1-5759e98a-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	seen := functionTrace(t, c, "spanned", withTraceHeader(h))
	if rootOf(seen) != rootOf(h) || !wellFormedRoot.MatchString(seen) {
		t.Fatalf("the function saw %q, want root %s", seen, rootOf(h))
	}
	byName := map[string]*tracepb.Span{}
	waitFor(t, "the cold invocation's spans", 20*time.Second, func() bool {
		for _, sp := range recv.trace("5759e98abd862e3fe1be46a994272793") {
			byName[sp.GetName()] = sp
		}
		return len(byName) >= 6
	})
	if rt := byName["runtime"]; rt == nil || hex.EncodeToString(rt.GetSpanId()) != parentOf(seen) {
		t.Errorf("runtime span %v; the function's Parent is %s", rt, parentOf(seen))
	}
	if init, cold := byName["init"], byName["cold start"]; init == nil || cold == nil ||
		hex.EncodeToString(init.GetParentSpanId()) != hex.EncodeToString(cold.GetSpanId()) || init.GetEndTimeUnixNano() <= init.GetStartTimeUnixNano() {
		t.Errorf("init %v under cold start %v", init, cold)
	}
}

// BenchmarkWarmInvokeOTLP is BenchmarkWarmInvoke's process c=1 case with OTLP export off and on
// (spans and metrics to a receiver on loopback): what export costs a warm invocation.
func BenchmarkWarmInvokeOTLP(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			s := startServer(b, b.TempDir(), func(c *config.Config) {
				c.MemoryBudgetMB = 1 << 20
				if on {
					c.OTLPEndpoint = startReceiver(b).url
				}
			})
			createFunction(b, newClient(s.URL()), "echo", "provided.al2023", "bootstrap", goEchoZip,
				func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(1769) })
			load(b, s.URL()+"/2015-03-31/functions/echo/invocations", 1)
		})
	}
}

// enabledQueueMapping maps the queue of that name to fn, one record per batch, once enabled.
func enabledQueueMapping(t *testing.T, c *lambda.Client, queue, fn string) *lambda.CreateEventSourceMappingOutput {
	t.Helper()
	ctx := context.Background()
	m, err := c.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{EventSourceArn: aws.String(queueArn + queue),
		FunctionName: aws.String(fn), BatchSize: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "mapping enabled", 10*time.Second, func() bool {
		got, err := c.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: m.UUID})
		return err == nil && aws.ToString(got.State) == "Enabled"
	})
	return m
}

// outsideJetStream is JetStream as an outside NATS client of s sees it (closed with the test).
func outsideJetStream(t *testing.T, s *server.Server) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(s.NATSURL(), nats.Token(s.NATSToken()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
