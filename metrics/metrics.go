package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard-gw/switchboard/cluster"
	"github.com/switchboard-gw/switchboard/delivery"
	"github.com/switchboard-gw/switchboard/gateway"
	"github.com/switchboard-gw/switchboard/httpapi"
)

// Sources are where the collector reads its figures at each scrape. A nil
// field leaves its metrics out.
type Sources struct {
	Gateway *gateway.Gateway
	// Deliveries is the dispatcher's status (outbox, upstreams).
	Deliveries func() delivery.Status
	// REST counts REST calls; ClientLimitsRefused what the per-address and
	// per-user limits refused (both from the HTTP API).
	REST                func() []httpapi.RESTStat
	ClientLimitsRefused func() map[string]int64
	// Bus is the NATS bus's counters; nil on a single node.
	Bus func() cluster.NATSStats
	// Now is the clock for the outbox's oldest-event age. Nil means
	// time.Now.
	Now func() time.Time
}

// Metrics is a node's Prometheus registry.
type Metrics struct {
	reg      *prometheus.Registry
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	src      *collector
}

// New returns the registry of a node, with the Go runtime and process
// collectors besides the gateway's own. Set the sources with SetSources
// once the parts they read exist.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_webhook_calls_total",
			Help: "Webhook calls and notification attempts by hub, upstream, event and outcome (ok, error, not_sent, breaker_open).",
		}, []string{"hub", "upstream", "event", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "switchboard_webhook_duration_seconds",
			Help: "Time from sending a webhook to the end of its answer, for calls that were sent.",
			// 5 ms to 10 s (the default upstream timeout) and a bit past.
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"hub", "upstream", "event"}),
		src: &collector{},
	}
	m.reg.MustRegister(m.calls, m.duration, m.src,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// SetSources tells the collector where to read. Call it once, before the
// handler is served.
func (m *Metrics) SetSources(s Sources) {
	if s.Now == nil {
		s.Now = time.Now
	}
	m.src.src = s
}

// ObserveAttempt records one webhook attempt; wire it as
// delivery.DispatcherConfig.OnAttempt.
func (m *Metrics) ObserveAttempt(a delivery.Attempt) {
	m.calls.WithLabelValues(a.Hub, a.Upstream, a.Event, a.Outcome).Inc()
	if a.Outcome == delivery.OutcomeOK || a.Outcome == delivery.OutcomeError {
		m.duration.WithLabelValues(a.Hub, a.Upstream, a.Event).Observe(a.Latency.Seconds())
	}
}

// ForgetUpstream drops the webhook series of an upstream that was
// removed, so deleted upstreams do not pile up series. The other
// per-upstream metrics are read from the dispatcher at each scrape and go
// with it on their own.
func (m *Metrics) ForgetUpstream(hub, name string) {
	l := prometheus.Labels{"hub": hub, "upstream": name}
	m.calls.DeletePartialMatch(l)
	m.duration.DeletePartialMatch(l)
}

// Handler serves the registry in Prometheus' exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the registry itself, for tests and for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }
