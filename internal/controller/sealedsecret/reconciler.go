package sealedsecret

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/coffer-dev/coffer/internal/sealedsecrets"
)

// Event reasons (Bitnami's).
const (
	EventUnsealed      = "Unsealed"
	EventUnsealFailed  = "ErrUnsealFailed"
	EventUpdateFailed  = "ErrUpdateFailed"
	successfulUnsealed = "SealedSecret unsealed successfully"
)

// Reasons of the Synced condition.
const (
	// ReasonUnsealed: the Secret matches the SealedSecret.
	ReasonUnsealed = "Unsealed"
	// ReasonUnsealFailed: decryption failed. One reason and one message
	// for every cause, so the status is no oracle.
	ReasonUnsealFailed = "ErrUnsealFailed"
	// ReasonTemplateFailed: spec.template.data did not render.
	ReasonTemplateFailed = "ErrTemplateFailed"
	// ReasonNotManaged: a Secret of that name exists and is neither owned
	// by this SealedSecret nor annotated managed or patch.
	ReasonNotManaged = "ErrSecretNotManaged"
	// ReasonForbiddenType: the Secret would be a service-account token.
	ReasonForbiddenType = "ErrForbiddenSecretType"
	// ReasonImmutable: the existing Secret is immutable and differs.
	ReasonImmutable = "ErrSecretImmutable"
	// ReasonUpdateFailed: the API server refused the write.
	ReasonUpdateFailed = "ErrUpdateFailed"
)

// Reconciler turns SealedSecrets into Secrets.
type Reconciler struct {
	client   client.Client // SealedSecrets from the cache; Secrets uncached
	recorder record.EventRecorder
	keys     *KeyRegistry
	log      *slog.Logger

	acceptLegacy bool
	updateStatus bool
	resync       time.Duration
}

var _ reconcile.Reconciler = (*Reconciler)(nil)

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var ss sealedsecrets.SealedSecret
	if err := r.client.Get(ctx, req.NamespacedName, &ss); err != nil {
		if apierrors.IsNotFound(err) {
			// The Secret goes with its owner (garbage collector).
			conditionInfo.DeletePartialMatch(map[string]string{"namespace": req.Namespace, "name": req.Name})
			return reconcile.Result{}, nil
		}
		unsealErrors.WithLabelValues(errReasonFetch, req.Namespace).Inc()
		return reconcile.Result{}, err
	}
	if !ss.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil
	}
	keys := r.keys.Keys()
	if len(keys) == 0 {
		// The first key is being made; try again shortly.
		return reconcile.Result{RequeueAfter: 2 * time.Second}, nil
	}

	// A resync of an object already in sync costs one GET: nothing to
	// decrypt when the spec has not changed and our Secret is there.
	var existing *corev1.Secret
	fetched := false
	if r.statusSynced(&ss) {
		s, err := r.getSecret(ctx, req)
		if err != nil {
			return reconcile.Result{}, err
		}
		if s != nil && metav1.IsControlledBy(s, &ss) {
			return r.requeue(), nil
		}
		existing, fetched = s, true
	}

	unsealRequests.Inc()
	desired, err := sealedsecrets.Unseal(&ss, keys, sealedsecrets.UnsealOptions{AcceptLegacyData: r.acceptLegacy})
	if err != nil {
		unsealErrors.WithLabelValues(errReasonUnseal, ss.Namespace).Inc()
		reason := ReasonUnsealFailed
		var te *sealedsecrets.TemplateError
		switch {
		case errors.As(err, &te):
			reason = ReasonTemplateFailed
		case errors.Is(err, sealedsecrets.ErrForbiddenType):
			reason = ReasonForbiddenType
		}
		msg := failureMessage(err)
		r.recorder.Event(&ss, corev1.EventTypeWarning, EventUnsealFailed, "Failed to unseal: "+msg)
		r.log.Info("unseal failed", "namespace", ss.Namespace, "name", ss.Name, "reason", reason, "error", msg)
		// Retried when a key is added (KeyRegistry.OnChange) or the object
		// changes; retrying now would fail the same way.
		return reconcile.Result{}, r.setStatus(ctx, &ss, corev1.ConditionFalse, reason, msg)
	}
	defer func() {
		for _, v := range desired.Data {
			clear(v)
		}
	}()

	// A new SealedSecret usually has no Secret yet: try to create it first
	// (one request), and read the existing one only if there is one.
	if existing == nil {
		err := r.client.Create(ctx, desired)
		switch {
		case err == nil:
			r.recorder.Event(&ss, corev1.EventTypeNormal, EventUnsealed, successfulUnsealed)
			r.log.Info("created secret", "namespace", ss.Namespace, "name", ss.Name)
			return r.synced(ctx, &ss)
		case apierrors.IsAlreadyExists(err) && !fetched:
			s, gerr := r.getSecret(ctx, req)
			if gerr != nil {
				return reconcile.Result{}, gerr
			}
			if s == nil { // deleted in between
				return reconcile.Result{RequeueAfter: 200 * time.Millisecond}, nil
			}
			existing = s
		case apierrors.IsAlreadyExists(err):
			return reconcile.Result{RequeueAfter: 200 * time.Millisecond}, nil
		default:
			return r.writeFailed(ctx, &ss, err)
		}
	}

	if existing.Type == corev1.SecretTypeServiceAccountToken {
		msg := fmt.Sprintf("Resource %q is a %s Secret, which a SealedSecret may not manage", existing.Name, existing.Type)
		r.recorder.Event(&ss, corev1.EventTypeWarning, EventUpdateFailed, msg)
		return reconcile.Result{}, r.setStatus(ctx, &ss, corev1.ConditionFalse, ReasonForbiddenType, msg)
	}
	controlled := metav1.IsControlledBy(existing, &ss)
	managed := existing.Annotations[sealedsecrets.AnnotationManaged] == "true"
	patch := existing.Annotations[sealedsecrets.AnnotationPatch] == "true"
	if !controlled && !managed && !patch {
		unsealErrors.WithLabelValues(errReasonUnmanaged, ss.Namespace).Inc()
		msg := fmt.Sprintf("Resource %q already exists and is not managed by SealedSecret", existing.Name)
		r.recorder.Event(&ss, corev1.EventTypeWarning, EventUpdateFailed, msg)
		r.log.Info("not overwriting unmanaged secret", "namespace", ss.Namespace, "name", ss.Name)
		// Checked again at the next resync, in case it gets annotated.
		return r.requeue(), r.setStatus(ctx, &ss, corev1.ConditionFalse, ReasonNotManaged, msg)
	}

	updated := existing.DeepCopy()
	if patch {
		if updated.Data == nil {
			updated.Data = map[string][]byte{}
		}
		maps.Copy(updated.Data, desired.Data)
		if updated.Labels == nil && len(desired.Labels) > 0 {
			updated.Labels = map[string]string{}
		}
		maps.Copy(updated.Labels, desired.Labels)
		if updated.Annotations == nil && len(desired.Annotations) > 0 {
			updated.Annotations = map[string]string{}
		}
		maps.Copy(updated.Annotations, desired.Annotations)
		if managed {
			updated.OwnerReferences = desired.OwnerReferences
		}
	} else {
		updated.Data = desired.Data
		updated.Labels = desired.Labels
		updated.Annotations = desired.Annotations
		updated.OwnerReferences = desired.OwnerReferences
	}
	updated.Type = desired.Type
	if updated.Type == "" {
		updated.Type = corev1.SecretTypeOpaque
	}
	if apiequality.Semantic.DeepEqual(existing, updated) {
		return r.synced(ctx, &ss)
	}
	if existing.Immutable != nil && *existing.Immutable && !apiequality.Semantic.DeepEqual(existing.Data, updated.Data) {
		msg := fmt.Sprintf("the target Secret %q is immutable: its data cannot change; delete it to have it recreated", existing.Name)
		r.recorder.Event(&ss, corev1.EventTypeWarning, EventUpdateFailed, msg)
		return reconcile.Result{}, r.setStatus(ctx, &ss, corev1.ConditionFalse, ReasonImmutable, msg)
	}
	if err := r.client.Update(ctx, updated); err != nil {
		if apierrors.IsConflict(err) {
			return reconcile.Result{RequeueAfter: 200 * time.Millisecond}, nil
		}
		return r.writeFailed(ctx, &ss, err)
	}
	r.recorder.Event(&ss, corev1.EventTypeNormal, EventUnsealed, successfulUnsealed)
	r.log.Info("updated secret", "namespace", ss.Namespace, "name", ss.Name, "patch", patch)
	return r.synced(ctx, &ss)
}

// statusSynced: the status says this generation was synced.
func (r *Reconciler) statusSynced(ss *sealedsecrets.SealedSecret) bool {
	if !r.updateStatus || ss.Status == nil || ss.Status.ObservedGeneration != ss.Generation {
		return false
	}
	c := ss.Status.Condition(sealedsecrets.ConditionSynced)
	return c != nil && c.Status == corev1.ConditionTrue
}

// getSecret reads the Secret from the API server (never a cache); nil if
// there is none.
func (r *Reconciler) getSecret(ctx context.Context, req reconcile.Request) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	err := r.client.Get(ctx, req.NamespacedName, s)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		unsealErrors.WithLabelValues(errReasonFetch, req.Namespace).Inc()
		return nil, fmt.Errorf("read secret: %w", err)
	}
	return s, nil
}

func (r *Reconciler) requeue() reconcile.Result {
	if r.resync <= 0 {
		return reconcile.Result{}
	}
	// Spread the resyncs of objects created together.
	jitter := time.Duration(rand.Int64N(int64(r.resync)/10 + 1))
	return reconcile.Result{RequeueAfter: r.resync + jitter}
}

func (r *Reconciler) synced(ctx context.Context, ss *sealedsecrets.SealedSecret) (reconcile.Result, error) {
	if err := r.setStatus(ctx, ss, corev1.ConditionTrue, ReasonUnsealed, ""); err != nil {
		return reconcile.Result{}, err
	}
	return r.requeue(), nil
}

// writeFailed records an API error writing the Secret and retries with
// backoff. API errors name fields and objects, never Secret values.
func (r *Reconciler) writeFailed(ctx context.Context, ss *sealedsecrets.SealedSecret, err error) (reconcile.Result, error) {
	unsealErrors.WithLabelValues(errReasonUpdate, ss.Namespace).Inc()
	msg := err.Error()
	r.recorder.Event(ss, corev1.EventTypeWarning, EventUpdateFailed, msg)
	if serr := r.setStatus(ctx, ss, corev1.ConditionFalse, ReasonUpdateFailed, msg); serr != nil {
		r.log.Error("updating status", "namespace", ss.Namespace, "name", ss.Name, "error", serr)
	}
	return reconcile.Result{}, fmt.Errorf("write secret %s/%s: %w", ss.Namespace, ss.Name, err)
}

// failureMessage is what status and events say about an Unseal error:
// decryption failures all read "no key could decrypt secret (items)".
func failureMessage(err error) string {
	var ie *sealedsecrets.ItemsError
	if errors.As(err, &ie) {
		return ie.Error()
	}
	var de *sealedsecrets.DecryptError
	if errors.As(err, &de) {
		return sealedsecrets.ErrDecrypt.Error()
	}
	return err.Error()
}

// setStatus records the Synced condition and observedGeneration, writing
// only when something changed.
func (r *Reconciler) setStatus(ctx context.Context, ss *sealedsecrets.SealedSecret, status corev1.ConditionStatus, reason, msg string) error {
	v := -1.0
	if status == corev1.ConditionTrue {
		v = 1
	}
	conditionInfo.WithLabelValues(ss.Namespace, ss.Name, sealedsecrets.ConditionSynced).Set(v)
	if !r.updateStatus {
		return nil
	}
	cur := ss.Status.Condition(sealedsecrets.ConditionSynced)
	if cur != nil && cur.Status == status && cur.Reason == reason && cur.Message == msg && ss.Status.ObservedGeneration == ss.Generation {
		return nil
	}
	base := ss.DeepCopy()
	now := metav1.Now()
	if ss.Status == nil {
		ss.Status = &sealedsecrets.SealedSecretStatus{}
	}
	ss.Status.ObservedGeneration = ss.Generation
	c := ss.Status.Condition(sealedsecrets.ConditionSynced)
	if c == nil {
		ss.Status.Conditions = append(ss.Status.Conditions, sealedsecrets.SealedSecretCondition{Type: sealedsecrets.ConditionSynced})
		c = &ss.Status.Conditions[len(ss.Status.Conditions)-1]
	}
	if c.Status != status {
		c.LastTransitionTime = now
	}
	c.Status, c.Reason, c.Message, c.LastUpdateTime = status, reason, msg, now
	if err := r.client.Status().Patch(ctx, ss, client.MergeFrom(base)); err != nil {
		unsealErrors.WithLabelValues(errReasonStatus, ss.Namespace).Inc()
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("update status of %s/%s: %w", ss.Namespace, ss.Name, err)
	}
	return nil
}
