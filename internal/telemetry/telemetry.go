// Package telemetry owns Flint's observability of invocations: the Prometheus metrics (their
// definitions, the registry, the /metrics handler, the bound on function labels), X-Ray trace
// headers (trace.go: parsed, made, formatted, allocation-free to parse on the warm path), and
// the OTLP exporter of spans and FaaS metrics (otlp.go). Other packages report through small
// interfaces they own (worker.Observer, invoke.Metrics) with this package's plain types
// (Invocation, Span); this package imports none of them.
package telemetry

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// EnvironmentCounts reports live execution environments by state.
type EnvironmentCounts func() (starting, idle, busy, provisioned int)

// QueueStats reports the async queue per function.
type QueueStats func() []Queue

// Queue is one function's async queue.
type Queue struct {
	Function  string
	Depth     uint64
	InFlight  int
	OldestAge time.Duration
}

// queueCollector exports the async queue at scrape time.
type queueCollector struct {
	stats                   QueueStats
	names                   *bounded
	depth, inflight, oldest *prometheus.Desc
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.inflight
	ch <- c.oldest
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	byFn := map[string]*Queue{}
	for _, q := range c.stats() {
		fn, _ := c.names.label(q.Function, "")
		sum := byFn[fn]
		if sum == nil {
			sum = &Queue{Function: fn}
			byFn[fn] = sum
		}
		sum.Depth += q.Depth
		sum.InFlight += q.InFlight
		sum.OldestAge = max(sum.OldestAge, q.OldestAge)
	}
	for _, q := range byFn {
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(q.Depth), q.Function)
		ch <- prometheus.MustNewConstMetric(c.inflight, prometheus.GaugeValue, float64(q.InFlight), q.Function)
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, q.OldestAge.Seconds(), q.Function)
	}
}

// Metrics is the registry and every metric Flint exports.
type Metrics struct {
	reg          *prometheus.Registry
	node         prometheus.Registerer // reg, every metric labelled with the node's name
	forwards     prometheus.Histogram
	invocations  *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	initDuration *prometheus.HistogramVec
	coldStarts   *prometheus.CounterVec
	throttles    *prometheus.CounterVec
	names        *bounded
	otlp         *OTLP // nil: no OTLP export

	// The vectors' children by label values, looked up once: WithLabelValues hashes and checks
	// every value on each call (two to four calls an invocation).
	seriesMu sync.RWMutex
	series   map[seriesKey]*series
}

// seriesKey is a function's and version's labels.
type seriesKey struct{ fn, v string }

// series is one function version's metrics; invocations and throttles by outcome and reason,
// filled on first use.
type series struct {
	duration, initDuration prometheus.Observer
	coldStarts             prometheus.Counter
	mu                     sync.RWMutex
	invocations, throttles map[string]prometheus.Counter
}

// seriesOf returns the metrics of fn and v (labels, as names.label gives them).
func (m *Metrics) seriesOf(fn, v string) *series {
	k := seriesKey{fn, v}
	m.seriesMu.RLock()
	s := m.series[k]
	m.seriesMu.RUnlock()
	if s != nil {
		return s
	}
	m.seriesMu.Lock()
	defer m.seriesMu.Unlock()
	if s = m.series[k]; s == nil {
		s = &series{duration: m.duration.WithLabelValues(fn, v), initDuration: m.initDuration.WithLabelValues(fn, v),
			coldStarts:  m.coldStarts.WithLabelValues(fn, v),
			invocations: map[string]prometheus.Counter{}, throttles: map[string]prometheus.Counter{}}
		m.series[k] = s
	}
	return s
}

// counter returns by[label], from vec with the labels fn, v, label on first use.
func (s *series) counter(by map[string]prometheus.Counter, vec *prometheus.CounterVec, fn, v, label string) prometheus.Counter {
	s.mu.RLock()
	c := by[label]
	s.mu.RUnlock()
	if c != nil {
		return c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c = by[label]; c == nil {
		c = vec.WithLabelValues(fn, v, label)
		by[label] = c
	}
	return c
}

// MaxFunctions bounds the function label's values: the first MaxFunctions functions a node
// sees are labelled by name; every later one is counted under OtherFunction (version
// OtherFunction too), so a scrape holds at most MaxFunctions+1 series per metric and label
// set. The OTLP metrics' faas.name and faas.version are the same labels. A node restart starts
// the count afresh.
const MaxFunctions = 1000

// OtherFunction is the function (and version) label of functions past MaxFunctions.
const OtherFunction = "_other"

// bounded admits up to max distinct function names.
type bounded struct {
	max  int
	mu   sync.RWMutex
	seen map[string]struct{}
}

// label returns the function and version labels for function, version.
func (b *bounded) label(function, version string) (string, string) {
	b.mu.RLock()
	_, ok := b.seen[function]
	b.mu.RUnlock()
	if ok {
		return function, version
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.seen[function]; ok {
		return function, version
	}
	if len(b.seen) >= b.max {
		return OtherFunction, OtherFunction
	}
	b.seen[function] = struct{}{}
	return function, version
}

// New registers Flint's metrics, each labelled node="node" when node is set (a cluster node's
// name: the nodes are scraped apart and summed by the label; a single server has none, as
// before); envs and queue are read at every scrape.
func New(node string, envs EnvironmentCounts, queue QueueStats) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		forwards: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "flint_forward_duration_seconds", Help: "Invocations this node forwarded to another node that ran them: from the request to its answer.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flint_invocations_total", Help: "Invocations by function, version and outcome (success, error, timeout, throttle).",
		}, []string{"function", "version", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flint_invocation_duration_seconds", Help: "Invocation duration as in REPORT lines.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"function", "version"}),
		initDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flint_init_duration_seconds", Help: "Init Duration of cold starts as in REPORT lines.",
			Buckets: prometheus.ExponentialBuckets(0.001, 3, 10),
		}, []string{"function", "version"}),
		coldStarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flint_cold_starts_total", Help: "Invocations that started a new execution environment.",
		}, []string{"function", "version"}),
		throttles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flint_throttles_total", Help: "Invocations throttled (sync and URL callers get 429; async events and mapping batches are retried later), by Lambda's reason.",
		}, []string{"function", "version", "reason"}),
		names:  &bounded{max: MaxFunctions, seen: map[string]struct{}{}},
		series: map[seriesKey]*series{},
	}
	state := func(name string, pick func(s, i, b, p int) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flint_environments", Help: "Live execution environments by state.",
			ConstLabels: prometheus.Labels{"state": name},
		}, func() float64 { return float64(pick(envs())) })
	}
	m.node = m.reg
	if node != "" {
		m.node = prometheus.WrapRegistererWith(prometheus.Labels{"node": node}, m.reg)
	}
	m.node.MustRegister(m.invocations, m.forwards, m.duration, m.initDuration, m.coldStarts, m.throttles,
		state("starting", func(s, _, _, _ int) int { return s }),
		state("idle", func(_, i, _, _ int) int { return i }),
		state("busy", func(_, _, b, _ int) int { return b }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flint_provisioned_environments", Help: "Environments kept initialized for provisioned concurrency.",
		}, func() float64 { _, _, _, p := envs(); return float64(p) }),
		&queueCollector{stats: queue, names: m.names,
			depth:    prometheus.NewDesc("flint_async_queue_depth", "Async events stored per function, waiting or running.", []string{"function"}, nil),
			inflight: prometheus.NewDesc("flint_async_in_flight", "Async events running per function.", []string{"function"}, nil),
			oldest:   prometheus.NewDesc("flint_async_oldest_age_seconds", "Age of the oldest stored async event per function.", []string{"function"}, nil),
		},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Timeout: 10 * time.Second})
}

// Invoked records one finished invocation (worker.Observer), and exports it over OTLP when
// that is on. The worker calls it off the caller's path.
func (m *Metrics) Invoked(inv Invocation) {
	fn, v := m.names.label(inv.Function, inv.Version)
	s := m.seriesOf(fn, v)
	s.counter(s.invocations, m.invocations, fn, v, inv.Outcome).Inc()
	s.duration.Observe(inv.Duration.Seconds())
	if inv.Init > 0 || !inv.Cold.Begin.IsZero() {
		s.coldStarts.Inc()
		s.initDuration.Observe(inv.Init.Seconds())
	}
	if m.otlp != nil {
		m.otlp.export(inv, fn, v)
	}
}

// Throttled records an invocation not admitted: a throttle by reason, and an invocation with
// outcome "throttle".
func (m *Metrics) Throttled(function, version, reason string) {
	fn, v := m.names.label(function, version)
	s := m.seriesOf(fn, v)
	s.counter(s.throttles, m.throttles, fn, v, reason).Inc()
	s.counter(s.invocations, m.invocations, fn, v, "throttle").Inc()
}

// Export sends every invocation recorded from now on over OTLP too.
func (m *Metrics) Export(o *OTLP) { m.otlp = o }

// Forwarded records the time a forwarded invocation took, from the request to the answer of
// the node that ran it (invoke's routing finds this method by type assertion).
func (m *Metrics) Forwarded(d time.Duration) { m.forwards.Observe(d.Seconds()) }

// Cluster is what a node knows of its part in the cluster, read at every scrape.
type Cluster struct {
	// MemoryUsedMB of the node's memory budget BudgetMB (0: unbounded) is taken by live
	// environments.
	MemoryUsedMB, MemoryBudgetMB int
	// Forwards this node sent that ran elsewhere, received and ran, and refused or had
	// refused ("not started": placed elsewhere).
	ForwardsSent, ForwardsReceived, ForwardsRefused int64
	// Leases of the concurrency ledger: slots leased from the cluster, and admissions the
	// ledger refused (every slot leased, or the ledger unreachable).
	LeasesGranted, LeasesDenied int64
	Draining                    bool
	Peers                       []Peer
}

// Peer is another node as this one sees it in the nodes bucket.
type Peer struct {
	Name         string
	HeartbeatAge time.Duration
}

// Cluster registers the cluster figures, read from stats at every scrape.
func (m *Metrics) Cluster(stats func() Cluster) {
	m.node.MustRegister(&clusterCollector{stats: stats,
		memUsed:   prometheus.NewDesc("flint_memory_used_bytes", "Memory budget taken by live environments (their MemorySize).", nil, nil),
		memBudget: prometheus.NewDesc("flint_memory_budget_bytes", "The node's memory budget for environments (0: unbounded).", nil, nil),
		sent:      prometheus.NewDesc("flint_forwards_sent_total", "Invocations this node forwarded to another node that ran them.", nil, nil),
		received:  prometheus.NewDesc("flint_forwards_received_total", "Invocations another node forwarded here that ran here.", nil, nil),
		refused:   prometheus.NewDesc("flint_forwards_refused_total", "Forwards answered \"not started\" (by this node or to it): placed elsewhere.", nil, nil),
		leases:    prometheus.NewDesc("flint_ledger_leases_total", "Concurrency ledger: slots leased from the cluster (granted) and admissions it refused (denied).", []string{"result"}, nil),
		draining:  prometheus.NewDesc("flint_node_draining", "1 while this node drains (takes no new work).", nil, nil),
		age:       prometheus.NewDesc("flint_peer_heartbeat_age_seconds", "Age of each other node's last heartbeat, as this node reads the nodes bucket.", []string{"peer"}, nil),
	})
}

type clusterCollector struct {
	stats                                                              func() Cluster
	memUsed, memBudget, sent, received, refused, leases, draining, age *prometheus.Desc
}

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.memUsed, c.memBudget, c.sent, c.received, c.refused, c.leases, c.draining, c.age} {
		ch <- d
	}
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	const mb = 1 << 20
	draining := 0.0
	if s.Draining {
		draining = 1
	}
	ch <- prometheus.MustNewConstMetric(c.memUsed, prometheus.GaugeValue, float64(s.MemoryUsedMB)*mb)
	ch <- prometheus.MustNewConstMetric(c.memBudget, prometheus.GaugeValue, float64(s.MemoryBudgetMB)*mb)
	ch <- prometheus.MustNewConstMetric(c.sent, prometheus.CounterValue, float64(s.ForwardsSent))
	ch <- prometheus.MustNewConstMetric(c.received, prometheus.CounterValue, float64(s.ForwardsReceived))
	ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(s.ForwardsRefused))
	ch <- prometheus.MustNewConstMetric(c.leases, prometheus.CounterValue, float64(s.LeasesGranted), "granted")
	ch <- prometheus.MustNewConstMetric(c.leases, prometheus.CounterValue, float64(s.LeasesDenied), "denied")
	ch <- prometheus.MustNewConstMetric(c.draining, prometheus.GaugeValue, draining)
	for _, p := range s.Peers {
		ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, p.HeartbeatAge.Seconds(), p.Name)
	}
}

// FunctionStats is what a scrape reads of this node's functions.
type FunctionStats struct {
	// Concurrency is the invocations running per function (all versions).
	Concurrency  map[string]int
	Environments []Environments
	Mappings     []MappingLag
}

// Environments counts one function version's environments by state.
type Environments struct {
	Function, Version                         string
	Starting, Idle, Busy, Frozen, Provisioned int
}

// MappingLag is how far an event source mapping is behind its source.
type MappingLag struct {
	UUID, Function string // Function: the mapped function's name
	Behind         uint64
	OldestAge      time.Duration
}

// Functions registers the per-function figures, read from stats at every scrape.
func (m *Metrics) Functions(stats func() FunctionStats) {
	m.node.MustRegister(&functionCollector{stats: stats, names: m.names,
		concurrent:  prometheus.NewDesc("flint_concurrent_executions", "Invocations running on this node per function (all versions), as admission counts them.", []string{"function"}, nil),
		envs:        prometheus.NewDesc("flint_function_environments", "Live execution environments per function version and state (starting, idle, frozen, busy).", []string{"function", "version", "state"}, nil),
		provisioned: prometheus.NewDesc("flint_function_provisioned_environments", "Environments kept for provisioned concurrency per function version (any state).", []string{"function", "version"}, nil),
		behind:      prometheus.NewDesc("flint_mapping_records_behind", "Records an event source mapping has not finished: queue messages waiting or running; stream records after the reader plus those read and not finished.", []string{"mapping", "function"}, nil),
		oldest:      prometheus.NewDesc("flint_mapping_oldest_record_age_seconds", "Age of the oldest record an event source mapping has not finished (0: none).", []string{"mapping", "function"}, nil),
	})
}

type functionCollector struct {
	stats                                         func() FunctionStats
	names                                         *bounded
	concurrent, envs, provisioned, behind, oldest *prometheus.Desc
}

func (c *functionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.concurrent, c.envs, c.provisioned, c.behind, c.oldest} {
		ch <- d
	}
}

func (c *functionCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	conc := map[string]int{}
	for fn, n := range s.Concurrency {
		f, _ := c.names.label(fn, "")
		conc[f] += n
	}
	for fn, n := range conc {
		ch <- prometheus.MustNewConstMetric(c.concurrent, prometheus.GaugeValue, float64(n), fn)
	}
	type fv struct{ fn, v string }
	envs := map[fv]*Environments{}
	for _, e := range s.Environments {
		f, v := c.names.label(e.Function, e.Version)
		sum := envs[fv{f, v}]
		if sum == nil {
			sum = &Environments{}
			envs[fv{f, v}] = sum
		}
		sum.Starting += e.Starting
		sum.Idle += e.Idle
		sum.Busy += e.Busy
		sum.Frozen += e.Frozen
		sum.Provisioned += e.Provisioned
	}
	for k, e := range envs {
		for _, st := range []struct {
			name string
			n    int
		}{{"starting", e.Starting}, {"idle", e.Idle}, {"frozen", e.Frozen}, {"busy", e.Busy}} {
			ch <- prometheus.MustNewConstMetric(c.envs, prometheus.GaugeValue, float64(st.n), k.fn, k.v, st.name)
		}
		ch <- prometheus.MustNewConstMetric(c.provisioned, prometheus.GaugeValue, float64(e.Provisioned), k.fn, k.v)
	}
	for _, l := range s.Mappings {
		f, _ := c.names.label(l.Function, "")
		ch <- prometheus.MustNewConstMetric(c.behind, prometheus.GaugeValue, float64(l.Behind), l.UUID, f)
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, l.OldestAge.Seconds(), l.UUID, f)
	}
}
