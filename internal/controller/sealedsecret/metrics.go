package sealedsecret

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metric names are the Bitnami controller's, so existing dashboards and
// alerts keep working after the switch.
const metricNamespace = "sealed_secrets_controller"

// Reasons of unseal_errors_total.
const (
	errReasonUnseal    = "unseal"
	errReasonUpdate    = "update"
	errReasonUnmanaged = "unmanaged"
	errReasonStatus    = "status"
	errReasonFetch     = "fetch"
)

var (
	unsealRequests = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: metricNamespace,
		Name:      "unseal_requests_total",
		Help:      "Total number of sealed secret unseal requests",
	})
	unsealErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricNamespace,
		Name:      "unseal_errors_total",
		Help:      "Total number of sealed secret unseal errors by reason",
	}, []string{"reason", "namespace"})
	conditionInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: metricNamespace,
		Name:      "condition_info",
		Help:      "Current SealedSecret condition status. Values are -1 (false), 0 (unknown or absent), 1 (true)",
	}, []string{"namespace", "name", "condition"})
	httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricNamespace,
		Name:      "http_requests_total",
		Help:      "A counter for requests to the wrapped handler.",
	}, []string{"path", "code", "method"})
	keysLoaded = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: metricNamespace,
		Name:      "keys",
		Help:      "Number of sealing key pairs the controller holds",
	})

	registerOnce sync.Once
)

// registerMetrics adds the collectors to controller-runtime's registry,
// which the manager serves on its metrics endpoint.
func registerMetrics() {
	registerOnce.Do(func() {
		ctrlmetrics.Registry.MustRegister(unsealRequests, unsealErrors, conditionInfo, httpRequests, keysLoaded)
	})
}
