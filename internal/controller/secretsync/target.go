package secretsync

import (
	"bytes"
	"context"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/coffer-dev/coffer/internal/controller/secretsync/v1alpha1"
)

// manages reports whether ss may overwrite or delete s: s is controlled by
// ss, or carries ss's name in the managed-by annotation and no other
// controller.
func manages(ss *v1alpha1.SecretSync, s *corev1.Secret) bool {
	if ref := metav1.GetControllerOf(s); ref != nil {
		return ref.UID == ss.UID
	}
	return s.Annotations[v1alpha1.ManagedByAnnotation] == ss.Name
}

// writeTarget writes data to the target Secret as the creation policy
// says. It returns the Secret's resource version and whether anything
// was written.
func (r *reconciler) writeTarget(ctx context.Context, ss *v1alpha1.SecretSync, p *plan, cur *corev1.Secret, data map[string][]byte) (string, bool, error) {
	fail := func(format string, args ...any) (string, bool, error) {
		return "", false, &syncError{msg: fmt.Sprintf(format, args...)}
	}
	if cur != nil && cur.Type == corev1.SecretTypeServiceAccountToken {
		return fail("target Secret %q is a service account token; the controller never writes those", p.targetName)
	}
	switch p.creation {
	case v1alpha1.CreationNone:
		return "", false, nil
	case v1alpha1.CreationMerge:
		if cur == nil {
			return fail("target Secret %q does not exist (creationPolicy Merge only writes into an existing Secret)", p.targetName)
		}
		if cur.Annotations[v1alpha1.AllowMergeAnnotation] != "true" {
			return fail("target Secret %q does not allow merging: annotate it %s=true", p.targetName, v1alpha1.AllowMergeAnnotation)
		}
		want := cur.DeepCopy()
		if want.Data == nil {
			want.Data = map[string][]byte{}
		}
		maps.Copy(want.Data, data)
		applyMeta(want, p, nil)
		return r.update(ctx, cur, want, p)
	}
	if cur == nil {
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: p.targetName, Namespace: ss.Namespace},
			Type:       p.targetType,
			Data:       data,
		}
		applyMeta(s, p, ss)
		if p.creation == v1alpha1.CreationOwner {
			if err := controllerutil.SetControllerReference(ss, s, r.scheme); err != nil {
				return "", false, err
			}
		}
		if err := r.client.Create(ctx, s); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return "", false, fmt.Errorf("create Secret %q: it appeared meanwhile; retrying", p.targetName)
			}
			return "", false, &syncError{msg: fmt.Sprintf("create Secret %q: %v", p.targetName, err), err: err}
		}
		return s.ResourceVersion, true, nil
	}
	if !manages(ss, cur) {
		return fail("target Secret %q exists and is not managed by this SecretSync; choose another target.name or creationPolicy Merge", p.targetName)
	}
	if cur.Type != p.targetType {
		return fail("target Secret %q has type %s, not %s; a Secret's type cannot change, delete it first", p.targetName, cur.Type, p.targetType)
	}
	want := cur.DeepCopy()
	want.Data = data
	applyMeta(want, p, ss)
	switch p.creation {
	case v1alpha1.CreationOwner:
		if err := controllerutil.SetControllerReference(ss, want, r.scheme); err != nil {
			return "", false, err
		}
	case v1alpha1.CreationOrphan:
		refs := want.OwnerReferences[:0]
		for _, ref := range want.OwnerReferences {
			if ref.UID != ss.UID {
				refs = append(refs, ref)
			}
		}
		want.OwnerReferences = refs
	}
	return r.update(ctx, cur, want, p)
}

// applyMeta sets the target's labels and annotations, and the managed-by
// annotation when ss is given.
func applyMeta(s *corev1.Secret, p *plan, ss *v1alpha1.SecretSync) {
	if len(p.labels) > 0 && s.Labels == nil {
		s.Labels = map[string]string{}
	}
	maps.Copy(s.Labels, p.labels)
	if s.Annotations == nil && (len(p.annots) > 0 || ss != nil) {
		s.Annotations = map[string]string{}
	}
	maps.Copy(s.Annotations, p.annots)
	if ss != nil {
		s.Annotations[v1alpha1.ManagedByAnnotation] = ss.Name
	}
}

// update writes want over cur if they differ, with cur's resource version
// as precondition.
func (r *reconciler) update(ctx context.Context, cur, want *corev1.Secret, p *plan) (string, bool, error) {
	if sameSecret(cur, want) {
		return cur.ResourceVersion, false, nil
	}
	if err := r.client.Update(ctx, want); err != nil {
		if apierrors.IsConflict(err) {
			return "", false, fmt.Errorf("update Secret %q: changed meanwhile; retrying", p.targetName)
		}
		return "", false, &syncError{msg: fmt.Sprintf("update Secret %q: %v", p.targetName, err), err: err}
	}
	return want.ResourceVersion, true, nil
}

func sameSecret(a, b *corev1.Secret) bool {
	if len(a.Data) != len(b.Data) || !maps.Equal(a.Labels, b.Labels) || !maps.Equal(a.Annotations, b.Annotations) {
		return false
	}
	for k, v := range a.Data {
		w, ok := b.Data[k]
		if !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	if len(a.OwnerReferences) != len(b.OwnerReferences) {
		return false
	}
	for i := range a.OwnerReferences {
		x, y := a.OwnerReferences[i], b.OwnerReferences[i]
		if x.UID != y.UID || !ptrEq(x.Controller, y.Controller) || !ptrEq(x.BlockOwnerDeletion, y.BlockOwnerDeletion) {
			return false
		}
	}
	return len(a.StringData) == 0
}

func ptrEq(a, b *bool) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}
