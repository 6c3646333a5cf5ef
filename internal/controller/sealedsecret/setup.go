package sealedsecret

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/coffer-dev/coffer/internal/sealedsecrets"
)

// Options configures the SealedSecrets part of `coffer controller`. Flag
// names in the CLI are the Bitnami controller's where it has one.
type Options struct {
	// Namespace holds the key Secrets (the controller's namespace).
	Namespace string
	// KeyPrefix names key Secrets (--key-prefix).
	KeyPrefix string
	// KeyGen says how new keys are made (--key-size, --key-ttl, --my-cn,
	// --privatekey-labels, --privatekey-annotations).
	KeyGen KeyGen
	// KeyRenewPeriod: a new key when the newest is this old; 0 disables
	// renewal (--key-renew-period).
	KeyRenewPeriod time.Duration
	// KeyCutoffTime: a new key at start if the newest is older
	// (--key-cutoff-time).
	KeyCutoffTime time.Time
	// KeyRefreshInterval: how often every replica re-reads the keys.
	KeyRefreshInterval time.Duration
	// AcceptLegacyData opens spec.data (--accept-deprecated-v1-data).
	AcceptLegacyData bool
	// UpdateStatus writes status.observedGeneration and the Synced
	// condition (--update-status).
	UpdateStatus bool
	// ResyncPeriod: each SealedSecret is checked again after this long, so
	// that a deleted Secret comes back (0 disables).
	ResyncPeriod time.Duration
	// MaxConcurrentReconciles bounds parallel reconciles.
	MaxConcurrentReconciles int
	// ListenAddr serves the HTTP API ("" or "0" disables it).
	ListenAddr string
	// RateLimit and RateLimitBurst limit /v1/verify and /v1/rotate per
	// client (--rate-limit, --rate-limit-burst).
	RateLimit      float64
	RateLimitBurst int
	// KeyWrapper, when set, keeps new private keys wrapped by it (see
	// wrap.go) and opens wrapped keys; MigratePlainKeys also wraps the
	// existing plain key Secrets and deletes them.
	KeyWrapper       KeyWrapper
	MigratePlainKeys bool
	Logger           *slog.Logger
}

// DefaultOptions are Bitnami's defaults.
func DefaultOptions(namespace string) Options {
	return Options{
		Namespace:               namespace,
		KeyPrefix:               DefaultKeyPrefix,
		KeyGen:                  KeyGen{Size: sealedsecrets.DefaultKeySize, ValidFor: sealedsecrets.DefaultValidFor},
		KeyRenewPeriod:          DefaultKeyRenewPeriod,
		KeyRefreshInterval:      time.Minute,
		AcceptLegacyData:        true,
		UpdateStatus:            true,
		ResyncPeriod:            10 * time.Minute,
		MaxConcurrentReconciles: 4,
		ListenAddr:              DefaultListenAddr,
		RateLimit:               2,
		RateLimitBurst:          2,
	}
}

// Controller is what Setup wired: the registry and the API server, for
// callers that need them (tests, benchmarks).
type Controller struct {
	Keys   *KeyRegistry
	Server *Server
}

// Setup registers the SealedSecret reconciler, key renewal, key refresh,
// the HTTP API and a readiness check ("sealed-secrets-keys": ready once a
// key is loaded) with mgr.
func Setup(mgr manager.Manager, opts Options) (*Controller, error) {
	if opts.Namespace == "" {
		return nil, errors.New("sealed secrets: controller namespace is empty")
	}
	if opts.KeyPrefix == "" || len(opts.KeyPrefix) > 245 || len(validation.IsDNS1123Subdomain(opts.KeyPrefix+"x")) > 0 {
		return nil, fmt.Errorf("sealed secrets: invalid key prefix %q", opts.KeyPrefix)
	}
	if opts.KeyGen.Size < 2048 {
		return nil, fmt.Errorf("sealed secrets: key size %d is below 2048 bits", opts.KeyGen.Size)
	}
	if opts.KeyGen.ValidFor <= 0 {
		return nil, errors.New("sealed secrets: key validity must be positive")
	}
	if opts.MigratePlainKeys && opts.KeyWrapper == nil {
		return nil, errors.New("sealed secrets: migrating plain keys needs a wrapping key")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("controller", "sealedsecret")
	registerMetrics()
	if err := sealedsecrets.AddToScheme(mgr.GetScheme()); err != nil {
		return nil, err
	}

	keys := NewKeyRegistry(mgr.GetAPIReader(), mgr.GetClient(), opts.Namespace, opts.KeyPrefix, log)
	if opts.KeyWrapper != nil {
		keys.SetWrapper(opts.KeyWrapper)
	}
	if err := mgr.Add(&keyRefresher{reg: keys, interval: max(opts.KeyRefreshInterval, time.Second), log: log}); err != nil {
		return nil, err
	}
	if err := mgr.Add(&keyRenewer{reg: keys, gen: opts.KeyGen, period: opts.KeyRenewPeriod, cutoff: opts.KeyCutoffTime, migrate: opts.MigratePlainKeys, log: log}); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("sealed-secrets-keys", func(*http.Request) error {
		if keys.Newest() == nil {
			return errNoKeys
		}
		return nil
	}); err != nil {
		return nil, err
	}

	r := &Reconciler{
		client:       mgr.GetClient(),
		recorder:     mgr.GetEventRecorderFor("sealed-secrets"),
		keys:         keys,
		log:          log,
		acceptLegacy: opts.AcceptLegacyData,
		updateStatus: opts.UpdateStatus,
		resync:       opts.ResyncPeriod,
	}
	// When a key is added (first key, a restored backup, a key made by
	// another replica), retry every SealedSecret that is not in sync.
	retry := make(chan event.GenericEvent, 1024)
	keys.OnChange(func() { r.retryUnsynced(retry) })
	err := ctrl.NewControllerManagedBy(mgr).
		Named("sealedsecret").
		// Reconcile on create, delete and spec changes, not on our own
		// status updates (Bitnami compares specs too).
		For(&sealedsecrets.SealedSecret{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesRawSource(source.Channel(retry, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(opts.MaxConcurrentReconciles, 1)}).
		Complete(r)
	if err != nil {
		return nil, fmt.Errorf("sealed secrets controller: %w", err)
	}

	c := &Controller{Keys: keys}
	if opts.ListenAddr != "" && opts.ListenAddr != "0" {
		srv := NewServer(opts.ListenAddr, keys, opts.AcceptLegacyData, opts.RateLimit, opts.RateLimitBurst, log)
		if err := srv.Listen(); err != nil {
			return nil, err
		}
		if err := mgr.Add(srv); err != nil {
			return nil, err
		}
		c.Server = srv
	}
	return c, nil
}

// retryUnsynced queues every SealedSecret whose Synced condition is not
// True.
func (r *Reconciler) retryUnsynced(ch chan<- event.GenericEvent) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var list sealedsecrets.SealedSecretList
	if err := r.client.List(ctx, &list); err != nil {
		r.log.Error("listing sealed secrets to retry", "error", err)
		return
	}
	for i := range list.Items {
		ss := &list.Items[i]
		if c := ss.Status.Condition(sealedsecrets.ConditionSynced); c != nil && c.Status == "True" {
			continue
		}
		select {
		case ch <- event.GenericEvent{Object: ss}:
		case <-ctx.Done():
			return
		}
	}
}

var _ client.Object = (*sealedsecrets.SealedSecret)(nil)
