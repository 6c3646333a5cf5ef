package controller

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// Defaults of `coffer controller`.
const (
	// DefaultNamespace is where the controller keeps its state when it
	// cannot tell which namespace it runs in (out of cluster): kube-system,
	// where kubeseal looks for the sealed-secrets controller by default.
	DefaultNamespace        = "kube-system"
	DefaultMetricsAddr      = ":8081"
	DefaultHealthAddr       = ":8082"
	DefaultLeaderElectionID = "coffer-controller.coffer.dev"
)

// serviceAccountNamespaceFile holds the pod's namespace in a cluster.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// Config configures the manager. The zero value is not usable: start from
// DefaultConfig.
type Config struct {
	// Kubeconfig and Context select the cluster; with no Kubeconfig the
	// usual rules apply ($KUBECONFIG, ~/.kube/config), then the in-cluster
	// service account.
	Kubeconfig string
	Context    string
	// QPS and Burst limit the client's requests to the API server.
	QPS   float32
	Burst int

	// Namespace is the controller's own namespace: leader election lease,
	// and the reconcilers' state (SealedSecrets keys).
	Namespace string
	// WatchNamespaces limits the watched objects to these namespaces; empty
	// means all namespaces.
	WatchNamespaces []string

	LeaderElection   bool
	LeaderElectionID string
	// LeaseDuration, RenewDeadline and RetryPeriod tune leader election;
	// zero keeps controller-runtime's defaults (15s, 10s, 2s).
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration

	// MetricsAddr serves Prometheus /metrics ("0" disables it).
	MetricsAddr string
	// HealthAddr serves /healthz and /readyz ("0" disables it).
	HealthAddr string

	// Logger receives every log line (controller-runtime's and client-go's
	// included).
	Logger *slog.Logger
}

// DefaultConfig returns the defaults, reading the namespace as the Bitnami
// controller does: $POD_NAMESPACE, then the service account's namespace
// file, then DefaultNamespace.
func DefaultConfig(getenv func(string) string) Config {
	return Config{
		QPS:              100,
		Burst:            200,
		Namespace:        OwnNamespace(getenv),
		LeaderElection:   InCluster(getenv),
		LeaderElectionID: DefaultLeaderElectionID,
		MetricsAddr:      DefaultMetricsAddr,
		HealthAddr:       DefaultHealthAddr,
	}
}

// OwnNamespace is the namespace the controller runs in (see DefaultConfig).
func OwnNamespace(getenv func(string) string) string {
	if ns := strings.TrimSpace(getenv("POD_NAMESPACE")); ns != "" {
		return ns
	}
	if b, err := os.ReadFile(serviceAccountNamespaceFile); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	return DefaultNamespace
}

// InCluster reports whether the process runs in a pod with a service
// account (the in-cluster configuration would work).
func InCluster(getenv func(string) string) bool {
	if getenv("KUBERNETES_SERVICE_HOST") == "" || getenv("KUBERNETES_SERVICE_PORT") == "" {
		return false
	}
	_, err := os.Stat("/var/run/secrets/kubernetes.io/serviceaccount/token")
	return err == nil
}

// RESTConfig loads the client configuration: an explicit kubeconfig (and
// context), else $KUBECONFIG or ~/.kube/config, else in-cluster.
func RESTConfig(kubeconfig, context string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err == nil {
		return cfg, nil
	}
	if kubeconfig == "" && context == "" && clientcmd.IsEmptyConfig(err) {
		if ic, icErr := rest.InClusterConfig(); icErr == nil {
			return ic, nil
		}
	}
	return nil, fmt.Errorf("kubernetes client configuration: %w", err)
}

// Scheme returns a scheme with the Kubernetes built-in types; reconcilers
// add their own types in their Setup (AddToScheme is idempotent).
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err) // static registration; cannot fail
	}
	return s
}

// NewLogger makes the slog logger for `coffer controller`: format "json"
// or "text", level "debug", "info", "warn" or "error".
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid log level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("invalid log format %q: use json or text", format)
	}
}

// NewManager builds the manager from cfg. Reconcilers are added to it with
// their Setup functions; then call Start.
func NewManager(cfg Config, scheme *runtime.Scheme) (manager.Manager, error) {
	if cfg.Namespace == "" {
		return nil, errors.New("controller namespace is empty")
	}
	restCfg, err := RESTConfig(cfg.Kubeconfig, cfg.Context)
	if err != nil {
		return nil, err
	}
	restCfg.QPS = cfg.QPS
	restCfg.Burst = cfg.Burst
	restCfg.UserAgent = "coffer-controller"

	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	lr := logr.FromSlogHandler(logger.Handler())
	// controller-runtime and client-go log through package-level loggers.
	ctrl.SetLogger(lr)
	klog.SetLogger(lr)

	// Managed fields are bookkeeping for server-side apply that no
	// reconciler reads: dropping them from cached objects saves much of the
	// cache's memory.
	cacheOpts := cache.Options{DefaultTransform: cache.TransformStripManagedFields()}
	if len(cfg.WatchNamespaces) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range cfg.WatchNamespaces {
			cacheOpts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	skip := true
	opts := manager.Options{
		Scheme: scheme,
		Logger: lr,
		Cache:  cacheOpts,
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
		Metrics: metricsserver.Options{
			BindAddress: cfg.MetricsAddr,
		},
		HealthProbeBindAddress:  cfg.HealthAddr,
		LeaderElection:          cfg.LeaderElection,
		LeaderElectionID:        cfg.LeaderElectionID,
		LeaderElectionNamespace: cfg.Namespace,
		// Release the lease on a clean shutdown so that a new replica
		// takes over at once instead of after LeaseDuration.
		LeaderElectionReleaseOnCancel: true,
		// Several managers may run in one process (tests, benchmarks).
		Controller: config.Controller{SkipNameValidation: &skip},
	}
	if cfg.LeaseDuration > 0 {
		opts.LeaseDuration = &cfg.LeaseDuration
	}
	if cfg.RenewDeadline > 0 {
		opts.RenewDeadline = &cfg.RenewDeadline
	}
	if cfg.RetryPeriod > 0 {
		opts.RetryPeriod = &cfg.RetryPeriod
	}
	mgr, err := manager.New(restCfg, opts)
	if err != nil {
		return nil, fmt.Errorf("controller manager: %w", err)
	}
	if cfg.HealthAddr != "0" && cfg.HealthAddr != "" {
		if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
			return nil, err
		}
		if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
			return nil, err
		}
	}
	return mgr, nil
}
