package resolver

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	queries   *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	listRules *prometheus.GaugeVec
	reloads   *prometheus.CounterVec
	panics    prometheus.Counter
}

// newMetrics creates the resolver's metrics and registers them with reg
// when it is non-nil.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tether", Subsystem: "dns", Name: "queries_total",
			Help: "DNS queries by type and result (blocked, local, cached, stale, forwarded, refused, ratelimited, failed).",
		}, []string{"type", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "tether", Subsystem: "dns", Name: "query_duration_seconds",
			Help:    "Time to answer a query, by result.",
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
		}, []string{"result"}),
		listRules: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "tether", Subsystem: "dns", Name: "list_rules",
			Help: "Rules loaded from each list.",
		}, []string{"list", "category"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tether", Subsystem: "dns", Name: "list_reloads_total",
			Help: "List reloads by result (ok, partial, failed).",
		}, []string{"result"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "tether", Subsystem: "dns", Name: "panics_total",
			Help: "Panics recovered in the DNS chain (each answered SERVFAIL; their log is rate-limited).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.queries, m.latency, m.listRules, m.reloads, m.panics)
	}
	return m
}
