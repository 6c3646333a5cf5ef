package v1alpha1

import (
	"maps"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Deep copies, written by hand. TestDeepCopy checks by reflection that a
// copy shares no memory with the original, so a field added to a type
// without a line here fails the test.

// DeepCopyInto copies s into out.
func (s *SecretSync) DeepCopyInto(out *SecretSync) {
	*out = *s
	out.TypeMeta = s.TypeMeta
	s.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	s.Spec.DeepCopyInto(&out.Spec)
	s.Status.DeepCopyInto(&out.Status)
}

// DeepCopy returns a copy of s.
func (s *SecretSync) DeepCopy() *SecretSync {
	if s == nil {
		return nil
	}
	out := new(SecretSync)
	s.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (s *SecretSync) DeepCopyObject() runtime.Object { return s.DeepCopy() }

// DeepCopyInto copies l into out.
func (l *SecretSyncList) DeepCopyInto(out *SecretSyncList) {
	*out = *l
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	if l.Items != nil {
		out.Items = make([]SecretSync, len(l.Items))
		for i := range l.Items {
			l.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

// DeepCopy returns a copy of l.
func (l *SecretSyncList) DeepCopy() *SecretSyncList {
	if l == nil {
		return nil
	}
	out := new(SecretSyncList)
	l.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (l *SecretSyncList) DeepCopyObject() runtime.Object { return l.DeepCopy() }

// DeepCopyInto copies s into out.
func (s *SecretSyncSpec) DeepCopyInto(out *SecretSyncSpec) {
	*out = *s
	s.Coffer.DeepCopyInto(&out.Coffer)
	s.Source.DeepCopyInto(&out.Source)
	if s.RefreshInterval != nil {
		d := *s.RefreshInterval
		out.RefreshInterval = &d
	}
	s.Target.DeepCopyInto(&out.Target)
}

// DeepCopyInto copies c into out.
func (c *CofferRef) DeepCopyInto(out *CofferRef) {
	*out = *c
	if c.Auth.Kubernetes != nil {
		k := *c.Auth.Kubernetes
		if k.Audiences != nil {
			k.Audiences = append([]string(nil), k.Audiences...)
		}
		out.Auth.Kubernetes = &k
	}
}

// DeepCopyInto copies s into out.
func (s *Source) DeepCopyInto(out *Source) {
	*out = *s
	if s.KV != nil {
		kv := *s.KV
		if kv.Keys != nil {
			kv.Keys = append([]KeySelector(nil), kv.Keys...)
		}
		out.KV = &kv
	}
	if s.Database != nil {
		db := *s.Database
		out.Database = &db
	}
}

// DeepCopyInto copies t into out.
func (t *Target) DeepCopyInto(out *Target) {
	*out = *t
	out.Labels = maps.Clone(t.Labels)
	out.Annotations = maps.Clone(t.Annotations)
	if t.Template != nil {
		tp := *t.Template
		tp.Data = maps.Clone(t.Template.Data)
		out.Template = &tp
	}
}

// DeepCopyInto copies s into out.
func (s *SecretSyncStatus) DeepCopyInto(out *SecretSyncStatus) {
	*out = *s
	out.Conditions = copyConditions(s.Conditions)
	if s.RefreshTime != nil {
		out.RefreshTime = s.RefreshTime.DeepCopy()
	}
	out.Lease = s.Lease.DeepCopy()
}

func copyConditions(in []metav1.Condition) []metav1.Condition {
	if in == nil {
		return nil
	}
	out := make([]metav1.Condition, len(in))
	for i := range in {
		in[i].DeepCopyInto(&out[i])
	}
	return out
}

// DeepCopyInto copies c into out.
func (c *ClusterSecretSync) DeepCopyInto(out *ClusterSecretSync) {
	*out = *c
	c.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	c.Spec.DeepCopyInto(&out.Spec)
	c.Status.DeepCopyInto(&out.Status)
}

// DeepCopy returns a copy of c.
func (c *ClusterSecretSync) DeepCopy() *ClusterSecretSync {
	if c == nil {
		return nil
	}
	out := new(ClusterSecretSync)
	c.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (c *ClusterSecretSync) DeepCopyObject() runtime.Object { return c.DeepCopy() }

// DeepCopyInto copies l into out.
func (l *ClusterSecretSyncList) DeepCopyInto(out *ClusterSecretSyncList) {
	*out = *l
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	if l.Items != nil {
		out.Items = make([]ClusterSecretSync, len(l.Items))
		for i := range l.Items {
			l.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

// DeepCopy returns a copy of l.
func (l *ClusterSecretSyncList) DeepCopy() *ClusterSecretSyncList {
	if l == nil {
		return nil
	}
	out := new(ClusterSecretSyncList)
	l.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (l *ClusterSecretSyncList) DeepCopyObject() runtime.Object { return l.DeepCopy() }

// DeepCopyInto copies s into out.
func (s *ClusterSecretSyncSpec) DeepCopyInto(out *ClusterSecretSyncSpec) {
	*out = *s
	if s.Namespaces != nil {
		out.Namespaces = append([]string(nil), s.Namespaces...)
	}
	if s.NamespaceSelector != nil {
		out.NamespaceSelector = s.NamespaceSelector.DeepCopy()
	}
	s.SecretSyncSpec.DeepCopyInto(&out.SecretSyncSpec)
}

// DeepCopyInto copies s into out.
func (s *ClusterSecretSyncStatus) DeepCopyInto(out *ClusterSecretSyncStatus) {
	*out = *s
	out.Conditions = copyConditions(s.Conditions)
	if s.ProvisionedNamespaces != nil {
		out.ProvisionedNamespaces = append([]string(nil), s.ProvisionedNamespaces...)
	}
	if s.FailedNamespaces != nil {
		out.FailedNamespaces = append([]NamespaceFailure(nil), s.FailedNamespaces...)
	}
}

// DeepCopy returns a copy of s.
func (s *SecretSyncStatus) DeepCopy() *SecretSyncStatus {
	if s == nil {
		return nil
	}
	out := new(SecretSyncStatus)
	s.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies l into out.
func (l *LeaseStatus) DeepCopyInto(out *LeaseStatus) {
	*out = *l
	l.IssueTime.DeepCopyInto(&out.IssueTime)
	l.ExpireTime.DeepCopyInto(&out.ExpireTime)
	l.RenewTime.DeepCopyInto(&out.RenewTime)
	if l.TokenExpireTime != nil {
		out.TokenExpireTime = l.TokenExpireTime.DeepCopy()
	}
}

// DeepCopy returns a copy of l.
func (l *LeaseStatus) DeepCopy() *LeaseStatus {
	if l == nil {
		return nil
	}
	out := new(LeaseStatus)
	l.DeepCopyInto(out)
	return out
}
