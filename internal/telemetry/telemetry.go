// Package telemetry owns Flint's Prometheus metrics: their definitions, the registry and the
// /metrics handler. Other packages report through small interfaces they own (worker.Observer);
// this package imports none of them.
package telemetry

import (
	"net/http"
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
	depth, inflight, oldest *prometheus.Desc
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.inflight
	ch <- c.oldest
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	for _, q := range c.stats() {
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(q.Depth), q.Function)
		ch <- prometheus.MustNewConstMetric(c.inflight, prometheus.GaugeValue, float64(q.InFlight), q.Function)
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, q.OldestAge.Seconds(), q.Function)
	}
}

// Metrics is the registry and every metric Flint exports.
type Metrics struct {
	reg         *prometheus.Registry
	invocations *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	coldStarts  *prometheus.CounterVec
	throttles   *prometheus.CounterVec
}

// New registers Flint's metrics; envs and queue are read at every scrape.
func New(envs EnvironmentCounts, queue QueueStats) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flint_invocations_total", Help: "Invocations by function, version and outcome (success, error, timeout).",
		}, []string{"function", "version", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flint_invocation_duration_seconds", Help: "Invocation duration as in REPORT lines.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"function"}),
		coldStarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flint_cold_starts_total", Help: "Invocations that started a new execution environment.",
		}, []string{"function"}),
		throttles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flint_throttles_total", Help: "Invocations throttled (sync and URL callers get 429; async events and mapping batches are retried later), by Lambda's reason.",
		}, []string{"function", "reason"}),
	}
	state := func(name string, pick func(s, i, b, p int) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flint_environments", Help: "Live execution environments by state.",
			ConstLabels: prometheus.Labels{"state": name},
		}, func() float64 { return float64(pick(envs())) })
	}
	m.reg.MustRegister(m.invocations, m.duration, m.coldStarts, m.throttles,
		state("starting", func(s, _, _, _ int) int { return s }),
		state("idle", func(_, i, _, _ int) int { return i }),
		state("busy", func(_, _, b, _ int) int { return b }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flint_provisioned_environments", Help: "Environments kept initialized for provisioned concurrency.",
		}, func() float64 { _, _, _, p := envs(); return float64(p) }),
		&queueCollector{stats: queue,
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

// Invoked records one finished invocation.
func (m *Metrics) Invoked(function, version, outcome string, d time.Duration, cold bool) {
	m.invocations.WithLabelValues(function, version, outcome).Inc()
	m.duration.WithLabelValues(function).Observe(d.Seconds())
	if cold {
		m.coldStarts.WithLabelValues(function).Inc()
	}
}

// Throttled records a 429.
func (m *Metrics) Throttled(function, reason string) {
	m.throttles.WithLabelValues(function, reason).Inc()
}
