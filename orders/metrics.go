package orders

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	placed     prometheus.Counter
	received   *prometheus.CounterVec
	duplicates prometheus.Counter
	conflicts  prometheus.Counter
	attempts   *prometheus.CounterVec
	handoff    prometheus.Histogram
	pending    prometheus.Gauge
	erased     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		placed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "imtgt", Subsystem: "orders", Name: "placed_total",
			Help: "Orders placed by marketplaces on this (buyer's) node."}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "imtgt", Subsystem: "orders", Name: "received_total",
			Help: "Orders received from buyers' nodes, by resulting status (received, rejected)."}, []string{"status"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "imtgt", Subsystem: "orders", Name: "duplicate_deliveries_total",
			Help: "Repeated deliveries answered with the original receipt."}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "imtgt", Subsystem: "orders", Name: "conflicts_total",
			Help: "Messages refused: same order and sequence as one received before, different content."}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "imtgt", Subsystem: "orders", Name: "delivery_attempts_total",
			Help: "Outbox delivery attempts, by result (ok, retry)."}, []string{"result"}),
		handoff: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "imtgt", Subsystem: "orders", Name: "handoff_seconds",
			Help:    "From an outbox row's creation to its receipt being durable on this node.",
			Buckets: []float64{.001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 5, 30, 120, 600}}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "imtgt", Subsystem: "orders", Name: "outbox_pending",
			Help: "Outbox rows waiting for delivery, as of the relay's last pass."}),
		erased: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "imtgt", Subsystem: "orders", Name: "personal_data_erased_total",
			Help: "Orders whose buyer personal data was erased at the end of retention."}),
	}
	reg.MustRegister(m.placed, m.received, m.duplicates, m.conflicts, m.attempts, m.handoff, m.pending, m.erased)
	return m
}
