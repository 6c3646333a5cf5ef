package secretsync

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics are process-wide, registered once on controller-runtime's
// registry (served on the manager's metrics endpoint).
var (
	cofferRequestsTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "coffer_secretsync_coffer_requests_total",
		Help: "HTTP requests the SecretSync controller sent to Coffer.",
	})
	loginsTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "coffer_secretsync_logins_total",
		Help: "Kubernetes-auth logins to Coffer made by the SecretSync controller.",
	})
	syncsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "coffer_secretsync_syncs_total",
		Help: "Syncs from Coffer by result (ok, error) and source (kv, database).",
	}, []string{"source", "result"})
	registerOnce sync.Once
)

func registerMetrics() {
	registerOnce.Do(func() {
		ctrlmetrics.Registry.MustRegister(cofferRequestsTotal, loginsTotal, syncsTotal)
	})
}
