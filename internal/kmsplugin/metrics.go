package kmsplugin

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the plugin's Prometheus collectors, in a registry of their
// own. Labels carry gRPC method names and status codes only.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	healthy  prometheus.Gauge
}

// NewMetrics returns a fresh set of collectors (with the Go runtime and
// process collectors).
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "coffer", Subsystem: "kms", Name: "requests_total",
		Help: "KMS v2 gRPC requests served, by method (Status, Encrypt, Decrypt) and gRPC status code.",
	}, []string{"method", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "coffer", Subsystem: "kms", Name: "request_duration_seconds",
		Help:    "KMS v2 gRPC request latency, by method.",
		Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
	}, []string{"method"})
	m.healthy = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "coffer", Subsystem: "kms", Name: "healthy",
		Help: "1 when the last health probe (encrypt/decrypt round trip) succeeded, else 0.",
	})
	m.reg.MustRegister(m.requests, m.latency, m.healthy,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) observe(method, code string, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(method, code).Inc()
	m.latency.WithLabelValues(method).Observe(d.Seconds())
}

func (m *Metrics) setHealthy(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.healthy.Set(1)
	} else {
		m.healthy.Set(0)
	}
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
