// Package metrics holds Coffer's Prometheus collectors. One *Set is built
// per server and handed to the HTTP layer (request counts and latency by
// mount and status) and to the core (audit failures, seal state, tokens);
// sys/metrics renders it in the Prometheus text format.
//
// Labels never carry secrets or full paths: only mount points, statuses and
// device names.
package metrics

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

// Set is the collection of Coffer metrics.
type Set struct {
	reg *prometheus.Registry

	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	auditFailures *prometheus.CounterVec
	auditRefused  prometheus.Counter
	loginLimited  prometheus.Counter
	irrevocable   prometheus.Counter
}

// New returns a Set registered in a fresh registry (with Go runtime and
// process collectors).
func New() *Set {
	s := &Set{reg: prometheus.NewRegistry()}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "coffer", Name: "http_requests_total",
		Help: "Requests served, by mount point, operation and HTTP status.",
	}, []string{"mount", "operation", "status"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "coffer", Name: "http_request_duration_seconds",
		Help:    "Request latency, by mount point.",
		Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
	}, []string{"mount"})
	s.auditFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "coffer", Name: "audit_device_failures_total",
		Help: "Records an audit device failed to write, by device path.",
	}, []string{"device"})
	s.auditRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "coffer", Name: "audit_refused_requests_total",
		Help: "Requests refused because no audit device could record them (fail closed).",
	})
	s.loginLimited = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "coffer", Name: "login_rate_limited_total",
		Help: "Login requests refused with 429 by the login rate limiter.",
	})
	s.irrevocable = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "coffer", Name: "leases_irrevocable_total",
		Help: "Leases marked irrevocable after their secret could not be revoked.",
	})
	s.reg.MustRegister(s.requests, s.latency, s.auditFailures, s.auditRefused, s.loginLimited, s.irrevocable,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return s
}

// ObserveRequest records one served request.
func (s *Set) ObserveRequest(mount, op string, status int, d time.Duration) {
	if s == nil {
		return
	}
	if mount == "" {
		mount = "none"
	}
	s.requests.WithLabelValues(mount, op, strconv.Itoa(status)).Inc()
	s.latency.WithLabelValues(mount).Observe(d.Seconds())
}

// AuditFailure records a failed write of one audit device.
func (s *Set) AuditFailure(device string) {
	if s != nil {
		s.auditFailures.WithLabelValues(device).Inc()
	}
}

// AuditRefused records a request refused because nothing could audit it.
func (s *Set) AuditRefused() {
	if s != nil {
		s.auditRefused.Inc()
	}
}

// LoginLimited records a login refused by the rate limiter.
func (s *Set) LoginLimited() {
	if s != nil {
		s.loginLimited.Inc()
	}
}

// Register adds extra collectors (gauges computed by the core at scrape).
func (s *Set) Register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := s.reg.Register(c); err != nil {
			return fmt.Errorf("register collector: %w", err)
		}
	}
	return nil
}

// Text renders every metric in the Prometheus text exposition format.
func (s *Set) Text() ([]byte, string, error) {
	mfs, err := s.reg.Gather()
	if err != nil {
		return nil, "", fmt.Errorf("gather metrics: %w", err)
	}
	var buf bytes.Buffer
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	enc := expfmt.NewEncoder(&buf, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return nil, "", fmt.Errorf("encode metrics: %w", err)
		}
	}
	return buf.Bytes(), string(format), nil
}

// LeaseIrrevocable records a lease marked irrevocable.
func (s *Set) LeaseIrrevocable() {
	if s != nil {
		s.irrevocable.Inc()
	}
}
