package rollout

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Options configure the rollout controllers.
type Options struct {
	// Workers is the number of workloads of each kind handled at once
	// (default 2).
	Workers int
}

// indexSecrets indexes opted-in workloads by the Secrets they watch.
const indexSecrets = "coffer.dev/rollout-secrets"

// kind describes one workload type.
type kind struct {
	name     string
	newObj   func() client.Object
	newList  func() client.ObjectList
	template func(client.Object) *corev1.PodTemplateSpec
}

var kinds = []kind{
	{
		name:     "deployment",
		newObj:   func() client.Object { return &appsv1.Deployment{} },
		newList:  func() client.ObjectList { return &appsv1.DeploymentList{} },
		template: func(o client.Object) *corev1.PodTemplateSpec { return &o.(*appsv1.Deployment).Spec.Template },
	},
	{
		name:     "statefulset",
		newObj:   func() client.Object { return &appsv1.StatefulSet{} },
		newList:  func() client.ObjectList { return &appsv1.StatefulSetList{} },
		template: func(o client.Object) *corev1.PodTemplateSpec { return &o.(*appsv1.StatefulSet).Spec.Template },
	},
	{
		name:     "daemonset",
		newObj:   func() client.Object { return &appsv1.DaemonSet{} },
		newList:  func() client.ObjectList { return &appsv1.DaemonSetList{} },
		template: func(o client.Object) *corev1.PodTemplateSpec { return &o.(*appsv1.DaemonSet).Spec.Template },
	},
}

func (k kind) watched(o client.Object) []string {
	return watchedSecrets(o.GetAnnotations(), &k.template(o).Spec)
}

// Setup registers one controller per workload kind with mgr.
func Setup(mgr manager.Manager, opts Options) error {
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	for _, k := range kinds {
		if err := mgr.GetFieldIndexer().IndexField(context.Background(), k.newObj(), indexSecrets, func(o client.Object) []string {
			return k.watched(o)
		}); err != nil {
			return fmt.Errorf("rollout: index %s: %w", k.name, err)
		}
		r := &reconciler{kind: k, client: mgr.GetClient(), api: mgr.GetAPIReader(), recorder: mgr.GetEventRecorderFor("coffer-rollout")}
		optedIn := predicate.NewPredicateFuncs(func(o client.Object) bool { return k.watched(o) != nil })
		err := builder.ControllerManagedBy(mgr).
			Named("rollout-"+k.name).
			For(k.newObj(), builder.WithPredicates(optedIn)).
			Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.dependants), builder.OnlyMetadata,
				builder.WithPredicates(secretChanged{})).
			WithOptions(controller.Options{MaxConcurrentReconciles: opts.Workers}).
			Complete(r)
		if err != nil {
			return fmt.Errorf("rollout: %s controller: %w", k.name, err)
		}
	}
	return nil
}

// secretChanged passes Secret creations, deletions and updates that
// changed the object (not the informer's periodic resyncs).
type secretChanged struct{ predicate.Funcs }

func (secretChanged) Create(event.CreateEvent) bool   { return true }
func (secretChanged) Delete(event.DeleteEvent) bool   { return true }
func (secretChanged) Generic(event.GenericEvent) bool { return false }
func (secretChanged) Update(e event.UpdateEvent) bool {
	return e.ObjectOld == nil || e.ObjectNew == nil || e.ObjectOld.GetResourceVersion() != e.ObjectNew.GetResourceVersion()
}

type reconciler struct {
	kind     kind
	client   client.Client
	api      client.Reader
	recorder record.EventRecorder
}

// dependants maps a Secret to the opted-in workloads of r's kind that
// watch it, through the index.
func (r *reconciler) dependants(ctx context.Context, s client.Object) []reconcile.Request {
	list := r.kind.newList()
	if err := r.client.List(ctx, list, client.InNamespace(s.GetNamespace()), client.MatchingFields{indexSecrets: s.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "list workloads by secret", "kind", r.kind.name)
		return nil
	}
	var out []reconcile.Request
	_ = eachItem(list, func(o client.Object) {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)})
	})
	return out
}

func eachItem(list client.ObjectList, fn func(client.Object)) error {
	switch l := list.(type) {
	case *appsv1.DeploymentList:
		for i := range l.Items {
			fn(&l.Items[i])
		}
	case *appsv1.StatefulSetList:
		for i := range l.Items {
			fn(&l.Items[i])
		}
	case *appsv1.DaemonSetList:
		for i := range l.Items {
			fn(&l.Items[i])
		}
	default:
		return fmt.Errorf("unexpected list %T", list)
	}
	return nil
}

// Reconcile sets the workload's pod-template digest annotation.
func (r *reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	obj := r.kind.newObj()
	if err := r.client.Get(ctx, req.NamespacedName, obj); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	names := r.kind.watched(obj)
	if names == nil || obj.GetDeletionTimestamp() != nil {
		return reconcile.Result{}, nil
	}
	secrets := make(map[string]*corev1.Secret, len(names))
	for _, n := range names {
		var s corev1.Secret
		err := r.api.Get(ctx, types.NamespacedName{Namespace: req.Namespace, Name: n}, &s)
		switch {
		case apierrors.IsNotFound(err):
			secrets[n] = nil
		case err != nil:
			return reconcile.Result{}, fmt.Errorf("read Secret %q: %w", n, err)
		default:
			secrets[n] = &s
		}
	}
	sum := secretHash(names, secrets)
	tmpl := r.kind.template(obj)
	old := tmpl.Annotations[HashAnnotation]
	if old == sum {
		return reconcile.Result{}, nil
	}
	orig := obj.DeepCopyObject().(client.Object)
	if tmpl.Annotations == nil {
		tmpl.Annotations = map[string]string{}
	}
	tmpl.Annotations[HashAnnotation] = sum
	if err := r.client.Patch(ctx, obj, client.MergeFrom(orig)); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if old != "" {
		r.recorder.Eventf(obj, corev1.EventTypeNormal, "SecretsChanged", "Secrets used by the pods changed; rolling out (%s=%s)", HashAnnotation, sum)
	}
	log.FromContext(ctx).V(1).Info("secret digest updated", "kind", r.kind.name, "hash", sum)
	return reconcile.Result{}, nil
}
