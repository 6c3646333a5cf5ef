package secretsync

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/coffer-dev/coffer/internal/controller/secretsync/v1alpha1"
)

// Options configure the SecretSync controllers.
type Options struct {
	// CofferAddress is the Coffer server a SecretSync uses when it names
	// none, e.g. https://coffer.coffer.svc:8200.
	CofferAddress string
	// AllowedAddresses are the other addresses spec.coffer.address may
	// name. Any other address is refused: the controller sends
	// service-account tokens only to servers it was told to trust.
	AllowedAddresses []string
	// HTTPClient talks to Coffer (set its TLS roots); nil means a client
	// with a 30 s timeout and the system roots.
	HTTPClient *http.Client
	// Workers is the number of SecretSyncs reconciled at once (default 4).
	Workers int
	// MinRefreshInterval is the shortest refreshInterval honoured
	// (default 10 s); shorter ones are raised to it.
	MinRefreshInterval time.Duration
	// ClusterWide also runs the ClusterSecretSync controller, which needs
	// to list namespaces and write SecretSyncs in any namespace.
	ClusterWide bool
}

func (o *Options) normalise() error {
	o.CofferAddress = strings.TrimRight(strings.TrimSpace(o.CofferAddress), "/")
	for i, a := range o.AllowedAddresses {
		o.AllowedAddresses[i] = strings.TrimRight(strings.TrimSpace(a), "/")
	}
	if o.CofferAddress == "" && len(o.AllowedAddresses) == 0 {
		return errors.New("secretsync: no coffer address configured")
	}
	if o.HTTPClient == nil {
		hc, err := NewHTTPClient("")
		if err != nil {
			return err
		}
		o.HTTPClient = hc
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.MinRefreshInterval <= 0 {
		o.MinRefreshInterval = 10 * time.Second
	}
	return nil
}

// indexTarget indexes SecretSyncs by the name of their target Secret, so
// a Secret event finds its SecretSyncs without listing them all.
const indexTarget = "coffer.dev/secretsync-target"

func targetName(ss *v1alpha1.SecretSync) string {
	if ss.Spec.Target.Name != "" {
		return ss.Spec.Target.Name
	}
	return ss.Name
}

// Setup registers the SecretSync controller (and, with ClusterWide, the
// ClusterSecretSync controller) with mgr. The API types are added to the
// manager's scheme.
func Setup(mgr manager.Manager, opts Options) error {
	_, err := setup(mgr, opts)
	return err
}

func setup(mgr manager.Manager, opts Options) (*reconciler, error) {
	if err := opts.normalise(); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(mgr.GetScheme()); err != nil {
		return nil, err
	}
	registerMetrics()
	r := newReconciler(mgr, opts)
	ctx := context.Background()
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.SecretSync{}, indexTarget, func(o client.Object) []string {
		return []string{targetName(o.(*v1alpha1.SecretSync))}
	}); err != nil {
		return nil, err
	}
	err := builder.ControllerManagedBy(mgr).
		Named("secretsync").
		For(&v1alpha1.SecretSync{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		// Secrets are watched as metadata only: the controller never
		// keeps Secret data in its cache.
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.secretToSyncs), builder.OnlyMetadata).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: opts.Workers,
			RateLimiter:             workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Second, 5*time.Minute),
		}).
		Complete(r)
	if err != nil {
		return nil, err
	}
	if opts.ClusterWide {
		if err := setupCluster(mgr); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// secretToSyncs maps a Secret event to the SecretSyncs targeting it.
func (r *reconciler) secretToSyncs(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1alpha1.SecretSyncList
	if err := r.client.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexTarget: o.GetName()}); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return out
}
