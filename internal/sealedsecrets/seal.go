package sealedsecrets

import (
	"bytes"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Annotations written by kubectl and kubecfg that hold a full copy of the
// applied object; sealing must drop them or the plaintext would leak into
// the template.
var lastAppliedAnnotations = []string{
	"kubectl.kubernetes.io/last-applied-configuration",
	"kubecfg.ksonnet.io/last-applied-configuration",
}

// Seal encrypts every item of secret (data, then stringData, which wins on
// a clash) for pub and returns the SealedSecret kubeseal would make: the
// scope comes from secret's scope annotations, the Secret's metadata
// (without server-set fields, owner references and last-applied copies),
// type and immutability become the template. secret is not modified.
func Seal(pub *rsa.PublicKey, secret *corev1.Secret) (*SealedSecret, error) {
	scope := ScopeOf(secret.Annotations)
	if secret.Name == "" && scope == ScopeStrict {
		return nil, errors.New("sealedsecrets: missing metadata.name in input Secret")
	}
	if secret.Namespace == "" && scope != ScopeClusterWide {
		return nil, errors.New("sealedsecrets: secret must declare a namespace")
	}
	label := Label(secret.Namespace, secret.Name, scope)

	ss := &SealedSecret{
		TypeMeta:   metav1.TypeMeta{APIVersion: GroupVersion.String(), Kind: Kind},
		ObjectMeta: metav1.ObjectMeta{Name: secret.Name, Namespace: secret.Namespace},
		Spec: SealedSecretSpec{
			Template: SecretTemplateSpec{
				ObjectMeta: *cleanMeta(&secret.ObjectMeta),
				Type:       secret.Type,
			},
			EncryptedData: EncryptedData{},
		},
	}
	if secret.Immutable != nil {
		v := *secret.Immutable
		ss.Spec.Template.Immutable = &v
	}
	for _, k := range lastAppliedAnnotations {
		delete(ss.Spec.Template.Annotations, k)
	}
	ss.Annotations = SetScope(nil, scope)

	seal := func(k string, v []byte) error {
		b, err := EncryptString(pub, v, label)
		if err != nil {
			return err
		}
		ss.Spec.EncryptedData[k] = b
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(secret.Data)) {
		if err := seal(k, secret.Data[k]); err != nil {
			return nil, err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(secret.StringData)) {
		if err := seal(k, []byte(secret.StringData[k])); err != nil {
			return nil, err
		}
	}
	return ss, nil
}

// cleanMeta copies what a template keeps of m: name, namespace, labels,
// annotations and finalizers. Server-set fields, owner references and
// managed fields are dropped.
func cleanMeta(m *metav1.ObjectMeta) *metav1.ObjectMeta {
	out := &metav1.ObjectMeta{
		Name:        m.Name,
		Namespace:   m.Namespace,
		Labels:      maps.Clone(m.Labels),
		Annotations: maps.Clone(m.Annotations),
	}
	if len(m.Finalizers) > 0 {
		out.Finalizers = slices.Clone(m.Finalizers)
	}
	return out
}

// ItemsError reports the items of a SealedSecret that did not decrypt. Its
// message is ErrDecrypt's followed by the item names: it says which items
// failed, never why.
type ItemsError struct {
	Items []string
	// Causes has each item's *DecryptError, for errors.As.
	Causes []error
}

func (e *ItemsError) Error() string {
	return fmt.Sprintf("%s (%s)", ErrDecrypt, strings.Join(e.Items, ", "))
}

// Unwrap returns ErrDecrypt followed by the causes.
func (e *ItemsError) Unwrap() []error { return append([]error{ErrDecrypt}, e.Causes...) }

// DecryptItems opens every item of spec.encryptedData with keys under the
// SealedSecret's own label. It never looks at spec.template.data, so it is
// safe to expose as an oracle-free check (/v1/verify).
func DecryptItems(ss *SealedSecret, keys []*Key) (map[string][]byte, error) {
	label := ss.Label()
	out := make(map[string][]byte, len(ss.Spec.EncryptedData))
	var failed *ItemsError
	for _, k := range slices.Sorted(maps.Keys(ss.Spec.EncryptedData)) {
		pt, err := DecryptString(keys, ss.Spec.EncryptedData[k], label)
		if err != nil {
			if failed == nil {
				failed = &ItemsError{}
			}
			failed.Items = append(failed.Items, k)
			failed.Causes = append(failed.Causes, err)
			continue
		}
		out[k] = pt
	}
	if failed != nil {
		for _, v := range out {
			clear(v)
		}
		return nil, failed
	}
	return out, nil
}

// UnsealOptions changes how Unseal builds the Secret.
type UnsealOptions struct {
	// AcceptLegacyData opens the deprecated spec.data field (the Bitnami
	// controller's --accept-deprecated-v1-data, on by default there).
	AcceptLegacyData bool
}

// Verify reports whether keys open everything the SealedSecret seals,
// without rendering templates.
func Verify(ss *SealedSecret, keys []*Key, opts UnsealOptions) error {
	if ss.Spec.Data != nil {
		_, err := openLegacy(ss, keys, opts)
		return err
	}
	items, err := DecryptItems(ss, keys)
	for _, v := range items {
		clear(v)
	}
	return err
}

// Unseal decrypts ss into the Secret the controller writes: template
// metadata (labels, annotations, finalizers), type and immutability, the
// decrypted items, then each template data item rendered over the
// decrypted values (a template item replaces an item of the same name).
// The Secret takes the SealedSecret's name and namespace whatever the
// template says, and a controller owner reference unless the template is
// annotated skip-set-owner-references. A Secret of type
// kubernetes.io/service-account-token is refused (ErrForbiddenType): it
// would mint a token for any service account in the namespace.
func Unseal(ss *SealedSecret, keys []*Key, opts UnsealOptions) (*corev1.Secret, error) {
	var secret *corev1.Secret
	if ss.Spec.Data != nil {
		s, err := openLegacy(ss, keys, opts)
		if err != nil {
			return nil, err
		}
		secret = s
	} else {
		items, err := DecryptItems(ss, keys)
		if err != nil {
			return nil, err
		}
		secret = &corev1.Secret{
			ObjectMeta: *cleanMeta(&ss.Spec.Template.ObjectMeta),
			Type:       ss.Spec.Template.Type,
			Data:       items,
		}
		if ss.Spec.Template.Immutable != nil {
			v := *ss.Spec.Template.Immutable
			secret.Immutable = &v
		}
		if len(ss.Spec.Template.Data) > 0 {
			if err := renderTemplates(secret, ss.Spec.Template.Data, items); err != nil {
				return nil, err
			}
		}
	}
	if secret.Type == corev1.SecretTypeServiceAccountToken {
		return nil, fmt.Errorf("sealedsecrets: %w: %s", ErrForbiddenType, secret.Type)
	}
	secret.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}
	secret.Name = ss.Name
	secret.Namespace = ss.Namespace
	secret.OwnerReferences = nil
	if ss.Spec.Template.Annotations[AnnotationSkipSetOwnerReferences] != "true" {
		secret.OwnerReferences = []metav1.OwnerReference{OwnerReference(ss)}
	}
	return secret, nil
}

// OwnerReference is the controller reference a Secret gets to its
// SealedSecret (Bitnami's: no blockOwnerDeletion).
func OwnerReference(ss *SealedSecret) metav1.OwnerReference {
	t := true
	return metav1.OwnerReference{
		APIVersion: GroupVersion.String(),
		Kind:       Kind,
		Name:       ss.Name,
		UID:        ss.UID,
		Controller: &t,
	}
}

// openLegacy opens spec.data: one blob holding a whole v1 Secret as JSON.
func openLegacy(ss *SealedSecret, keys []*Key, opts UnsealOptions) (*corev1.Secret, error) {
	if len(ss.Spec.EncryptedData) > 0 {
		return nil, fmt.Errorf("sealedsecrets: %w: spec.data and spec.encryptedData are both set", ErrLegacyData)
	}
	if !opts.AcceptLegacyData {
		return nil, fmt.Errorf("sealedsecrets: %w: spec.data is disabled", ErrLegacyData)
	}
	pt, err := Decrypt(keys, ss.Spec.Data, ss.Label())
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	var s corev1.Secret
	dec := json.NewDecoder(bytes.NewReader(pt))
	if err := dec.Decode(&s); err != nil {
		// The plaintext authenticated, so this is the sealer's mistake;
		// the JSON error could quote plaintext, so it is not repeated.
		return nil, fmt.Errorf("sealedsecrets: %w: spec.data does not hold a Secret", ErrLegacyData)
	}
	if (s.Kind != "" && s.Kind != "Secret") || (s.APIVersion != "" && s.APIVersion != "v1") {
		return nil, fmt.Errorf("sealedsecrets: %w: spec.data holds a %s %s, not a v1 Secret", ErrLegacyData, s.APIVersion, s.Kind)
	}
	out := &corev1.Secret{
		ObjectMeta: *cleanMeta(&s.ObjectMeta),
		Type:       s.Type,
		Immutable:  s.Immutable,
		Data:       s.Data,
	}
	for k, v := range s.StringData {
		if out.Data == nil {
			out.Data = map[string][]byte{}
		}
		out.Data[k] = []byte(v)
	}
	return out, nil
}

// Reencrypt opens every sealed value of ss and seals it again for pub (the
// newest key) under the same label, returning a copy of ss without status
// or server-set metadata. Template data is carried over as it is, never
// rendered. A template whose scope annotations are wider than the scope
// ss is opened with is refused (ErrScopeWidened): re-sealing must never be
// a way to widen a scope.
func Reencrypt(ss *SealedSecret, keys []*Key, pub *rsa.PublicKey, opts UnsealOptions) (*SealedSecret, error) {
	if ScopeOf(ss.Spec.Template.Annotations) > ss.Scope() {
		return nil, fmt.Errorf("sealedsecrets: %w: template says %s, object is %s", ErrScopeWidened, ScopeOf(ss.Spec.Template.Annotations), ss.Scope())
	}
	label := ss.Label()
	out := &SealedSecret{
		TypeMeta: metav1.TypeMeta{APIVersion: GroupVersion.String(), Kind: Kind},
		ObjectMeta: metav1.ObjectMeta{
			Name:        ss.Name,
			Namespace:   ss.Namespace,
			Labels:      maps.Clone(ss.Labels),
			Annotations: maps.Clone(ss.Annotations),
		},
	}
	ss.Spec.DeepCopyInto(&out.Spec)
	if ss.Spec.Data != nil {
		if len(ss.Spec.EncryptedData) > 0 {
			return nil, fmt.Errorf("sealedsecrets: %w: spec.data and spec.encryptedData are both set", ErrLegacyData)
		}
		if !opts.AcceptLegacyData {
			return nil, fmt.Errorf("sealedsecrets: %w: spec.data is disabled", ErrLegacyData)
		}
		pt, err := Decrypt(keys, ss.Spec.Data, label)
		if err != nil {
			return nil, err
		}
		defer clear(pt)
		b, err := Encrypt(pub, pt, label)
		if err != nil {
			return nil, err
		}
		out.Spec.Data = b
		return out, nil
	}
	items, err := DecryptItems(ss, keys)
	if err != nil {
		return nil, err
	}
	for k, v := range items {
		b, err := Encrypt(pub, v, label)
		clear(v)
		if err != nil {
			return nil, err
		}
		out.Spec.EncryptedData[k] = base64.StdEncoding.EncodeToString(b)
	}
	return out, nil
}
