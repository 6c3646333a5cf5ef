package sealedsecrets

import (
	"encoding/json"
	"maps"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// API group and version of the SealedSecret custom resource.
const (
	Group   = "bitnami.com"
	Version = "v1alpha1"
	Kind    = "SealedSecret"
	// Resource is the plural resource name.
	Resource = "sealedsecrets"
)

// GroupVersion is bitnami.com/v1alpha1.
var GroupVersion = schema.GroupVersion{Group: Group, Version: Version}

// AddToScheme registers SealedSecret and SealedSecretList.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &SealedSecret{}, &SealedSecretList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// SealedSecret is a Secret whose values are sealed to the controller's
// keys. The field names and JSON are Bitnami's.
type SealedSecret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SealedSecretSpec    `json:"spec"`
	Status *SealedSecretStatus `json:"status,omitempty"`
}

// SealedSecretSpec holds the sealed values and the shape of the Secret.
type SealedSecretSpec struct {
	// Template is the Secret's metadata, type, immutability and templated
	// data items.
	Template SecretTemplateSpec `json:"template,omitempty"`
	// Data is the deprecated v1 format: one blob sealing a whole Secret
	// serialised as JSON.
	Data []byte `json:"data,omitempty"`
	// EncryptedData maps item names to base64 blobs.
	EncryptedData EncryptedData `json:"encryptedData"`
}

// SecretTemplateSpec describes the Secret to create.
type SecretTemplateSpec struct {
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Type      corev1.SecretType `json:"type,omitempty"`
	Immutable *bool             `json:"immutable,omitempty"`
	// Data items are Go templates executed over the decrypted values
	// (item name -> value as a string).
	Data map[string]string `json:"data,omitempty"`
}

// EncryptedData maps item names to base64 blobs. Decoding is lenient as
// in Bitnami's controller: a value that is not a JSON string becomes "",
// which then fails to decrypt like any bad blob, instead of making the
// whole object (and every list containing it) unreadable.
type EncryptedData map[string]string

// UnmarshalJSON implements the lenient decoding described on the type.
func (d *EncryptedData) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		*d = EncryptedData{}
		return nil
	}
	out := make(EncryptedData, len(raw))
	for k, v := range raw {
		var s string
		if json.Unmarshal(v, &s) != nil {
			s = ""
		}
		out[k] = s
	}
	*d = out
	return nil
}

// ConditionSynced is the condition type the controller maintains.
const ConditionSynced = "Synced"

// SealedSecretStatus is what the controller last observed.
type SealedSecretStatus struct {
	ObservedGeneration int64                   `json:"observedGeneration,omitempty"`
	Conditions         []SealedSecretCondition `json:"conditions,omitempty"`
}

// SealedSecretCondition is one condition (Bitnami's shape: it also has
// lastUpdateTime).
type SealedSecretCondition struct {
	Type               string                 `json:"type"`
	Status             corev1.ConditionStatus `json:"status"`
	LastUpdateTime     metav1.Time            `json:"lastUpdateTime,omitempty"`
	LastTransitionTime metav1.Time            `json:"lastTransitionTime,omitempty"`
	Reason             string                 `json:"reason,omitempty"`
	Message            string                 `json:"message,omitempty"`
}

// SealedSecretList is a list of SealedSecrets.
type SealedSecretList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata"`

	Items []SealedSecret `json:"items"`
}

// Scope is the scope the SealedSecret is opened with: its own metadata
// annotations decide, never the template's.
func (s *SealedSecret) Scope() Scope { return ScopeOf(s.Annotations) }

// Label is the OAEP label for s's name, namespace and Scope.
func (s *SealedSecret) Label() []byte { return Label(s.Namespace, s.Name, s.Scope()) }

// Condition returns the condition of type t, or nil.
func (st *SealedSecretStatus) Condition(t string) *SealedSecretCondition {
	if st == nil {
		return nil
	}
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

// DeepCopyInto copies s into out.
func (s *SealedSecret) DeepCopyInto(out *SealedSecret) {
	*out = *s
	out.TypeMeta = s.TypeMeta
	s.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	s.Spec.DeepCopyInto(&out.Spec)
	if s.Status != nil {
		out.Status = s.Status.DeepCopy()
	}
}

// DeepCopy returns a copy of s.
func (s *SealedSecret) DeepCopy() *SealedSecret {
	if s == nil {
		return nil
	}
	out := new(SealedSecret)
	s.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (s *SealedSecret) DeepCopyObject() runtime.Object { return s.DeepCopy() }

// DeepCopyInto copies s into out.
func (s *SealedSecretSpec) DeepCopyInto(out *SealedSecretSpec) {
	*out = *s
	s.Template.DeepCopyInto(&out.Template)
	if s.Data != nil {
		out.Data = append([]byte(nil), s.Data...)
	}
	if s.EncryptedData != nil {
		out.EncryptedData = maps.Clone(s.EncryptedData)
	}
}

// DeepCopyInto copies t into out.
func (t *SecretTemplateSpec) DeepCopyInto(out *SecretTemplateSpec) {
	*out = *t
	t.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if t.Immutable != nil {
		v := *t.Immutable
		out.Immutable = &v
	}
	if t.Data != nil {
		out.Data = maps.Clone(t.Data)
	}
}

// DeepCopy returns a copy of st.
func (st *SealedSecretStatus) DeepCopy() *SealedSecretStatus {
	if st == nil {
		return nil
	}
	out := &SealedSecretStatus{ObservedGeneration: st.ObservedGeneration}
	if st.Conditions != nil {
		out.Conditions = make([]SealedSecretCondition, len(st.Conditions))
		for i, c := range st.Conditions {
			c.LastUpdateTime = *c.LastUpdateTime.DeepCopy()
			c.LastTransitionTime = *c.LastTransitionTime.DeepCopy()
			out.Conditions[i] = c
		}
	}
	return out
}

// DeepCopyInto copies l into out.
func (l *SealedSecretList) DeepCopyInto(out *SealedSecretList) {
	*out = *l
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	if l.Items != nil {
		out.Items = make([]SealedSecret, len(l.Items))
		for i := range l.Items {
			l.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

// DeepCopyObject implements runtime.Object.
func (l *SealedSecretList) DeepCopyObject() runtime.Object {
	if l == nil {
		return nil
	}
	out := new(SealedSecretList)
	l.DeepCopyInto(out)
	return out
}
