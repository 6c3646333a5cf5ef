package secretsync

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/coffer-dev/coffer/internal/controller/secretsync/v1alpha1"
)

// clusterReconciler keeps one SecretSync per selected namespace for each
// ClusterSecretSync. The SecretSyncs do the syncing, each logging in with
// its own namespace's service account.
type clusterReconciler struct {
	client client.Client
	scheme *runtime.Scheme
}

func setupCluster(mgr manager.Manager) error {
	r := &clusterReconciler{client: mgr.GetClient(), scheme: mgr.GetScheme()}
	return builder.ControllerManagedBy(mgr).
		Named("clustersecretsync").
		For(&v1alpha1.ClusterSecretSync{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&v1alpha1.SecretSync{}).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.allClusterSyncs), builder.OnlyMetadata).
		Complete(r)
}

func (r *clusterReconciler) allClusterSyncs(ctx context.Context, _ client.Object) []reconcile.Request {
	var list v1alpha1.ClusterSecretSyncList
	if err := r.client.List(ctx, &list); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: list.Items[i].Name}})
	}
	return out
}

// selected returns the names of the namespaces css selects, sorted.
func (r *clusterReconciler) selected(ctx context.Context, css *v1alpha1.ClusterSecretSync) ([]string, error) {
	var sel labels.Selector
	if css.Spec.NamespaceSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(css.Spec.NamespaceSelector)
		if err != nil {
			return nil, &specError{msg: fmt.Sprintf("namespaceSelector: %v", err)}
		}
		sel = s
	}
	var list metav1.PartialObjectMetadataList
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NamespaceList"))
	if err := r.client.List(ctx, &list); err != nil {
		return nil, err
	}
	var out []string
	for _, ns := range list.Items {
		if ns.DeletionTimestamp != nil {
			continue
		}
		if slices.Contains(css.Spec.Namespaces, ns.Name) || (sel != nil && !sel.Empty() && sel.Matches(labels.Set(ns.Labels))) {
			out = append(out, ns.Name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Reconcile creates, updates and deletes the SecretSyncs of one
// ClusterSecretSync and reports on them.
func (r *clusterReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var css v1alpha1.ClusterSecretSync
	if err := r.client.Get(ctx, req.NamespacedName, &css); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if css.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	name := css.Spec.SecretSyncName
	if name == "" {
		name = css.Name
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return reconcile.Result{}, r.status(ctx, &css, nil, nil, fmt.Sprintf("invalid spec: secretSyncName %q is not a valid name", name))
	}
	namespaces, err := r.selected(ctx, &css)
	if err != nil {
		if _, ok := err.(*specError); ok {
			return reconcile.Result{}, r.status(ctx, &css, nil, nil, err.Error())
		}
		return reconcile.Result{}, err
	}
	var provisioned []string
	var failed []v1alpha1.NamespaceFailure
	for _, ns := range namespaces {
		child, err := r.ensureChild(ctx, &css, ns, name)
		if err != nil {
			if _, ok := err.(*syncError); !ok {
				return reconcile.Result{}, err
			}
			failed = append(failed, v1alpha1.NamespaceFailure{Namespace: ns, Reason: err.Error()})
			continue
		}
		provisioned = append(provisioned, ns)
		if c := meta.FindStatusCondition(child.Status.Conditions, v1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionFalse {
			failed = append(failed, v1alpha1.NamespaceFailure{Namespace: ns, Reason: c.Message})
		}
	}
	// Remove the SecretSyncs of namespaces no longer selected.
	var mine v1alpha1.SecretSyncList
	if err := r.client.List(ctx, &mine, client.MatchingLabels{v1alpha1.ClusterSecretSyncLabel: css.Name}); err != nil {
		return reconcile.Result{}, err
	}
	for i := range mine.Items {
		ss := &mine.Items[i]
		if slices.Contains(provisioned, ss.Namespace) && ss.Name == name {
			continue
		}
		if metav1.IsControlledBy(ss, &css) {
			if err := r.client.Delete(ctx, ss); client.IgnoreNotFound(err) != nil {
				return reconcile.Result{}, err
			}
		}
	}
	msg := ""
	if len(failed) > 0 {
		parts := make([]string, 0, len(failed))
		for _, f := range failed {
			parts = append(parts, f.Namespace)
		}
		msg = fmt.Sprintf("%d of %d namespaces not in sync: %s", len(failed), len(namespaces), strings.Join(parts, ", "))
	}
	return reconcile.Result{}, r.status(ctx, &css, provisioned, failed, msg)
}

// ensureChild creates or updates the SecretSync of css in ns. A
// *syncError means the namespace cannot be served (a foreign SecretSync
// holds the name).
func (r *clusterReconciler) ensureChild(ctx context.Context, css *v1alpha1.ClusterSecretSync, ns, name string) (*v1alpha1.SecretSync, error) {
	var cur v1alpha1.SecretSync
	err := r.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &cur)
	force := css.Annotations[v1alpha1.ForceSyncAnnotation]
	if apierrors.IsNotFound(err) {
		child := &v1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns,
			Labels: map[string]string{v1alpha1.ClusterSecretSyncLabel: css.Name},
		}}
		css.Spec.SecretSyncSpec.DeepCopyInto(&child.Spec)
		if force != "" {
			child.Annotations = map[string]string{v1alpha1.ForceSyncAnnotation: force}
		}
		if err := controllerutil.SetControllerReference(css, child, r.scheme); err != nil {
			return nil, err
		}
		if err := r.client.Create(ctx, child); err != nil {
			return nil, err
		}
		return child, nil
	}
	if err != nil {
		return nil, err
	}
	if !metav1.IsControlledBy(&cur, css) {
		return nil, &syncError{msg: fmt.Sprintf("a SecretSync named %q exists in this namespace and is not owned by this ClusterSecretSync", name)}
	}
	want := cur.DeepCopy()
	css.Spec.SecretSyncSpec.DeepCopyInto(&want.Spec)
	if want.Labels == nil {
		want.Labels = map[string]string{}
	}
	want.Labels[v1alpha1.ClusterSecretSyncLabel] = css.Name
	if force != "" {
		if want.Annotations == nil {
			want.Annotations = map[string]string{}
		}
		want.Annotations[v1alpha1.ForceSyncAnnotation] = force
	}
	if equality.Semantic.DeepEqual(cur.Spec, want.Spec) && maps.Equal(cur.Labels, want.Labels) && maps.Equal(cur.Annotations, want.Annotations) {
		return &cur, nil
	}
	if err := r.client.Update(ctx, want); err != nil {
		return nil, err
	}
	return want, nil
}

func (r *clusterReconciler) status(ctx context.Context, css *v1alpha1.ClusterSecretSync, provisioned []string, failed []v1alpha1.NamespaceFailure, problem string) error {
	orig := css.DeepCopy()
	s := &css.Status
	s.ObservedGeneration = css.Generation
	s.ProvisionedNamespaces = provisioned
	s.FailedNamespaces = failed
	c := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonSynced,
		Message: fmt.Sprintf("SecretSyncs in %d namespaces", len(provisioned)), ObservedGeneration: css.Generation}
	if problem != "" {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, v1alpha1.ReasonSyncedError, problem
	}
	meta.SetStatusCondition(&s.Conditions, c)
	if equality.Semantic.DeepEqual(orig.Status, css.Status) {
		return nil
	}
	return client.IgnoreNotFound(r.client.Status().Patch(ctx, css, client.MergeFrom(orig)))
}
