package sealedsecret

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/coffer-dev/coffer/internal/sealedsecrets"
)

// Wrapped keys: instead of Bitnami's plain kubernetes.io/tls Secrets, the
// private key is kept encrypted by a key held elsewhere (a Coffer transit
// key), so that reading the controller's Secrets (a backup, an etcd dump,
// an over-broad RBAC grant) does not open every SealedSecret: opening one
// also takes the controller's Coffer identity. A wrapped key Secret:
//
//	metadata.labels:  coffer.dev/sealed-secrets-key: wrapped
//	type:             Opaque
//	data.tls.crt:     the certificate (PEM), as in a plain key Secret
//	data.tls.key.wrapped: the PKCS#1 private key PEM, encrypted by the
//	                  wrapping key (a transit ciphertext, vault:v<N>:...)
//	data.tls.key.key-id:  the wrapping key's version that encrypted it
//
// The Bitnami label is not set: Bitnami's controller cannot read these
// keys and must not try.
const (
	// WrappedKeyLabel marks wrapped key Secrets; its value is
	// WrappedKeyLabelValue.
	WrappedKeyLabel      = "coffer.dev/sealed-secrets-key"
	WrappedKeyLabelValue = "wrapped"
	// WrappedKeyData and WrappedKeyIDData are the data fields of a wrapped
	// key Secret holding the wrapped private key and the wrapping key id.
	WrappedKeyData   = "tls.key.wrapped"
	WrappedKeyIDData = "tls.key.key-id"
	// WrappingKeyAnnotation names the wrapping key (informational).
	WrappingKeyAnnotation = "coffer.dev/wrapping-key"
	// MigratedFromAnnotation names the plain key Secret a wrapped key
	// replaced.
	MigratedFromAnnotation = "coffer.dev/migrated-from"
)

// KeyWrapper encrypts and decrypts private keys with a key the controller
// can use but not read. *kmsplugin.Transit (a Coffer transit key over the
// API) is one.
type KeyWrapper interface {
	// Encrypt wraps plaintext and returns the ciphertext and the id of the
	// key version used.
	Encrypt(ctx context.Context, plaintext []byte) (ciphertext []byte, keyID string, err error)
	// Decrypt unwraps a ciphertext made by the key version keyID.
	Decrypt(ctx context.Context, keyID string, ciphertext []byte) ([]byte, error)
	// Describe names the wrapping key for logs and annotations.
	Describe() string
}

// ErrWrappedKeysUnreadable: some wrapped keys could not be opened now.
var ErrWrappedKeysUnreadable = errors.New("wrapped sealing keys cannot be opened")

// errCorruptWrappedKey: a wrapped key Secret is malformed or its key does
// not match its certificate (permanent; the Secret is skipped).
var errCorruptWrappedKey = errors.New("corrupt wrapped key secret")

type unwrapCacheKey struct {
	uid types.UID
	rv  string
}

// unwrap opens the wrapped key Secret s (cached by UID and
// resourceVersion).
func (r *KeyRegistry) unwrap(ctx context.Context, s *corev1.Secret) (*sealedsecrets.Key, error) {
	ck := unwrapCacheKey{s.UID, s.ResourceVersion}
	r.mu.RLock()
	w, cached := r.wrapper, r.unwrapped[ck]
	r.mu.RUnlock()
	if cached != nil {
		return cached, nil
	}
	ct, keyID, cert := s.Data[WrappedKeyData], string(s.Data[WrappedKeyIDData]), s.Data[corev1.TLSCertKey]
	if len(ct) == 0 || keyID == "" || len(cert) == 0 {
		return nil, fmt.Errorf("%w: want data fields %s, %s and %s", errCorruptWrappedKey, corev1.TLSCertKey, WrappedKeyData, WrappedKeyIDData)
	}
	if w == nil {
		return nil, fmt.Errorf("wrapped by %s, and no wrapping key is configured (--key-wrap-transit-key)", s.Annotations[WrappingKeyAnnotation])
	}
	pem, err := w.Decrypt(ctx, keyID, ct)
	if err != nil {
		return nil, fmt.Errorf("unwrap with %s: %w", w.Describe(), err)
	}
	k, err := sealedsecrets.ParseKeyPair(pem, cert)
	clear(pem)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errCorruptWrappedKey, err)
	}
	r.mu.Lock()
	if r.unwrapped == nil {
		r.unwrapped = map[unwrapCacheKey]*sealedsecrets.Key{}
	}
	if len(r.unwrapped) > 4096 {
		clear(r.unwrapped)
	}
	r.unwrapped[ck] = k
	r.mu.Unlock()
	return k, nil
}

// wrappedSecret wraps k with w and returns the Secret to store, after
// checking that the ciphertext opens again to the same key: a key that
// could not be read back is never stored.
func (r *KeyRegistry) wrappedSecret(ctx context.Context, w KeyWrapper, k *sealedsecrets.Key, extraLabels, annotations map[string]string) (*corev1.Secret, string, error) {
	ct, keyID, err := r.wrapChecked(ctx, w, k)
	if err != nil {
		return nil, "", err
	}
	labels := maps.Clone(extraLabels)
	if labels == nil {
		labels = map[string]string{}
	}
	delete(labels, KeyLabel)
	labels[WrappedKeyLabel] = WrappedKeyLabelValue
	annots := maps.Clone(annotations)
	if annots == nil {
		annots = map[string]string{}
	}
	annots[WrappingKeyAnnotation] = w.Describe()
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:    r.namespace,
			GenerateName: r.prefix,
			Labels:       labels,
			Annotations:  annots,
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			corev1.TLSCertKey: k.CertPEM(),
			WrappedKeyData:    ct,
			WrappedKeyIDData:  []byte(keyID),
		},
	}, keyID, nil
}

// wrapChecked wraps k's private key and unwraps it again to check.
func (r *KeyRegistry) wrapChecked(ctx context.Context, w KeyWrapper, k *sealedsecrets.Key) ([]byte, string, error) {
	pem := k.PrivateKeyPEM()
	defer clear(pem)
	ct, keyID, err := w.Encrypt(ctx, pem)
	if err != nil {
		return nil, "", fmt.Errorf("wrap key with %s: %w", w.Describe(), err)
	}
	back, err := w.Decrypt(ctx, keyID, ct)
	if err != nil {
		return nil, "", fmt.Errorf("unwrap the newly wrapped key with %s: %w", w.Describe(), err)
	}
	same := bytes.Equal(back, pem)
	clear(back)
	if !same {
		return nil, "", fmt.Errorf("wrap key with %s: unwrapping does not give the key back", w.Describe())
	}
	return ct, keyID, nil
}

// maintainWrapped runs on the leader after each load when a wrapper is
// configured: it re-wraps keys wrapped by an older version of the wrapping
// key (after a transit key rotation, so that old versions can be retired
// with min_decryption_version), and with migrate, moves plain key Secrets
// to wrapped ones: the wrapped Secret is created and checked first, then
// the plain Secret deleted.
func (r *KeyRegistry) maintainWrapped(ctx context.Context, migrate bool) error {
	r.mu.RLock()
	w := r.wrapper
	entries := slices.Clone(r.entries)
	r.mu.RUnlock()
	if w == nil {
		return nil
	}
	var errs []error
	changed := false
	for _, e := range entries {
		if e.secret == "" {
			continue // in memory only
		}
		if e.wrapped {
			ok, err := r.rewrap(ctx, w, e)
			changed = changed || ok
			errs = append(errs, err)
			continue
		}
		if migrate {
			errs = append(errs, r.migrate(ctx, w, e))
			changed = true
		}
	}
	if changed {
		errs = append(errs, r.Load(ctx))
	}
	return errors.Join(errs...)
}

// rewrap wraps e's key again and, when the wrapping key's version moved,
// updates its Secret (only if it did not change since it was read).
func (r *KeyRegistry) rewrap(ctx context.Context, w KeyWrapper, e keyEntry) (bool, error) {
	ct, keyID, err := r.wrapChecked(ctx, w, e.key)
	if err != nil {
		return false, err
	}
	if keyID == e.keyID {
		return false, nil
	}
	var s corev1.Secret
	if err := r.reader.Get(ctx, client.ObjectKey{Namespace: r.namespace, Name: e.secret}, &s); err != nil {
		return false, fmt.Errorf("re-wrap key %s: %w", e.secret, err)
	}
	if string(s.Data[WrappedKeyIDData]) == keyID {
		return false, nil
	}
	if !bytes.Equal(s.Data[corev1.TLSCertKey], e.key.CertPEM()) {
		return false, fmt.Errorf("re-wrap key %s: the Secret no longer holds this key", e.secret)
	}
	s.Data[WrappedKeyData] = ct
	s.Data[WrappedKeyIDData] = []byte(keyID)
	if err := r.writer.Update(ctx, &s); err != nil {
		return false, fmt.Errorf("re-wrap key %s: %w", e.secret, err)
	}
	r.log.Info("re-wrapped sealing key", "namespace", r.namespace, "secret", e.secret, "fingerprint", e.key.Fingerprint(), "keyID", keyID)
	return true, nil
}

// migrate replaces the plain key Secret of e with a wrapped one.
func (r *KeyRegistry) migrate(ctx context.Context, w KeyWrapper, e keyEntry) error {
	var plain corev1.Secret
	if err := r.reader.Get(ctx, client.ObjectKey{Namespace: r.namespace, Name: e.secret}, &plain); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("migrate key %s: %w", e.secret, err)
	}
	if !bytes.Equal(plain.Data[corev1.TLSCertKey], e.key.CertPEM()) {
		return fmt.Errorf("migrate key %s: the Secret no longer holds this key", e.secret)
	}
	// A wrapped copy may exist already (a migration cut short).
	var wrapped corev1.SecretList
	if err := r.reader.List(ctx, &wrapped, client.InNamespace(r.namespace), client.MatchingLabels{WrappedKeyLabel: WrappedKeyLabelValue}); err != nil {
		return fmt.Errorf("migrate key %s: %w", e.secret, err)
	}
	have := false
	for i := range wrapped.Items {
		if bytes.Equal(wrapped.Items[i].Data[corev1.TLSCertKey], e.key.CertPEM()) {
			if _, err := r.unwrap(ctx, &wrapped.Items[i]); err == nil {
				have = true
				break
			}
		}
	}
	if !have {
		labels := maps.Clone(plain.Labels)
		annots := maps.Clone(plain.Annotations)
		if annots == nil {
			annots = map[string]string{}
		}
		annots[MigratedFromAnnotation] = plain.Name
		s, _, err := r.wrappedSecret(ctx, w, e.key, labels, annots)
		if err != nil {
			return fmt.Errorf("migrate key %s: %w", e.secret, err)
		}
		if err := r.writer.Create(ctx, s); err != nil {
			return fmt.Errorf("migrate key %s: store wrapped key: %w", e.secret, err)
		}
		r.log.Info("wrapped sealing key", "namespace", r.namespace, "secret", s.Name, "from", plain.Name, "fingerprint", e.key.Fingerprint())
	}
	uid := plain.UID
	if err := r.writer.Delete(ctx, &plain, client.Preconditions{UID: &uid, ResourceVersion: &plain.ResourceVersion}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("migrate key %s: delete the plain key Secret: %w", e.secret, err)
	}
	r.log.Info("deleted plain key secret after wrapping it", "namespace", r.namespace, "secret", plain.Name, "fingerprint", e.key.Fingerprint())
	return nil
}
