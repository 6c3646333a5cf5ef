package sealedsecret

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/coffer-dev/coffer/internal/sealedsecrets"
)

// Key Secrets, exactly as the Bitnami controller stores them, so that an
// existing cluster's keys are picked up and Bitnami's tools (backups with
// kubectl, kubeseal --recovery-unseal) read Coffer's keys.
const (
	// KeyLabel marks the key Secrets; its value is "active".
	KeyLabel = "sealedsecrets.bitnami.com/sealed-secrets-key"
	// KeyLabelActive is the value of KeyLabel on usable keys.
	KeyLabelActive = "active"
	// DefaultKeyPrefix names key Secrets (generateName), and a Secret named
	// exactly the prefix is read too (the oldest controllers' single key).
	DefaultKeyPrefix = "sealed-secrets-key"
	// DefaultKeyRenewPeriod is how often a new key is made.
	DefaultKeyRenewPeriod = 30 * 24 * time.Hour
)

// keyEntry is one loaded key pair and the Secret holding it.
type keyEntry struct {
	secret string
	key    *sealedsecrets.Key
	// wrapped: the Secret holds the private key wrapped by the registry's
	// KeyWrapper (keyID names the wrapping key's version).
	wrapped bool
	keyID   string
}

// KeyRegistry holds the controller's key pairs, read from (and written
// to) Secrets in the controller's namespace. Keys are ordered newest
// first by their certificate's NotBefore, as Bitnami orders them: the
// newest seals, all of them unseal.
type KeyRegistry struct {
	reader    client.Reader // uncached: key Secrets are read from the API server
	writer    client.Client
	namespace string
	prefix    string
	log       *slog.Logger

	// wrapper, when set, wraps the private keys of new key Secrets; keys
	// it wrapped are unwrapped when loaded (see wrap.go).
	wrapper KeyWrapper

	mu       sync.RWMutex
	entries  []keyEntry // newest first
	loaded   bool
	onChange []func()
	// unwrapped caches wrapped keys already opened, by Secret UID and
	// resourceVersion, so that the periodic refresh does not call the
	// wrapping key for every key every minute.
	unwrapped map[unwrapCacheKey]*sealedsecrets.Key
}

// NewKeyRegistry makes an empty registry for keys in namespace.
func NewKeyRegistry(reader client.Reader, writer client.Client, namespace, prefix string, log *slog.Logger) *KeyRegistry {
	return &KeyRegistry{reader: reader, writer: writer, namespace: namespace, prefix: prefix, log: log}
}

// SetWrapper makes the registry wrap the private keys of new key Secrets
// with w and open wrapped keys with it. Call it before the first Load.
func (r *KeyRegistry) SetWrapper(w KeyWrapper) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.wrapper = w
}

// Keys returns every key, newest first. The slice is shared: do not
// modify it.
func (r *KeyRegistry) Keys() []*sealedsecrets.Key {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*sealedsecrets.Key, len(r.entries))
	for i, e := range r.entries {
		out[i] = e.key
	}
	return out
}

// Newest returns the sealing key, or nil before any key exists.
func (r *KeyRegistry) Newest() *sealedsecrets.Key {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.entries) == 0 {
		return nil
	}
	return r.entries[0].key
}

// Loaded reports whether the keys have been read at least once.
func (r *KeyRegistry) Loaded() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.loaded
}

// OnChange registers f to run (in its own goroutine) whenever a key is
// added.
func (r *KeyRegistry) OnChange(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onChange = append(r.onChange, f)
}

// Load reads every key Secret of the namespace: those labelled
// sealed-secrets-key=active, the legacy Secret named exactly the prefix,
// and the wrapped keys (labelled coffer.dev/sealed-secrets-key=wrapped).
// A Secret that does not parse is logged (by name) and skipped. A wrapped
// key that cannot be opened now (no wrapper configured, Coffer sealed or
// unreachable, permission denied) makes Load return an error wrapping
// ErrWrappedKeysUnreadable after installing the keys it could read: the
// renewer then makes no new key, so an unreadable key is never silently
// replaced.
func (r *KeyRegistry) Load(ctx context.Context) error {
	var list corev1.SecretList
	if err := r.reader.List(ctx, &list, client.InNamespace(r.namespace), client.MatchingLabels{KeyLabel: KeyLabelActive}); err != nil {
		return fmt.Errorf("list key secrets in %s: %w", r.namespace, err)
	}
	items := list.Items
	var legacy corev1.Secret
	err := r.reader.Get(ctx, client.ObjectKey{Namespace: r.namespace, Name: r.prefix}, &legacy)
	switch {
	case err == nil:
		if legacy.Labels[KeyLabel] != KeyLabelActive && legacy.Labels[WrappedKeyLabel] == "" {
			items = append(items, legacy)
		}
	case apierrors.IsNotFound(err) || apierrors.IsForbidden(err):
		// No legacy key; and RBAC may rightly not grant get on it.
	default:
		return fmt.Errorf("read legacy key secret %s/%s: %w", r.namespace, r.prefix, err)
	}
	var wrappedList corev1.SecretList
	if err := r.reader.List(ctx, &wrappedList, client.InNamespace(r.namespace), client.MatchingLabels{WrappedKeyLabel: WrappedKeyLabelValue}); err != nil {
		return fmt.Errorf("list wrapped key secrets in %s: %w", r.namespace, err)
	}

	byFingerprint := map[string]keyEntry{}
	add := func(e keyEntry) {
		fp := e.key.Fingerprint()
		// A key both plain and wrapped (a migration cut short) counts
		// once, as the wrapped one.
		if old, dup := byFingerprint[fp]; !dup || (e.wrapped && !old.wrapped) {
			byFingerprint[fp] = e
		}
	}
	for i := range items {
		s := &items[i]
		k, err := sealedsecrets.ParseKeyPair(s.Data[corev1.TLSPrivateKeyKey], s.Data[corev1.TLSCertKey])
		if err != nil {
			r.log.Error("skipping unreadable key secret", "namespace", s.Namespace, "secret", s.Name, "error", err)
			continue
		}
		add(keyEntry{secret: s.Name, key: k})
	}
	var unreadable []string
	for i := range wrappedList.Items {
		s := &wrappedList.Items[i]
		k, err := r.unwrap(ctx, s)
		switch {
		case errors.Is(err, errCorruptWrappedKey):
			r.log.Error("skipping unreadable key secret", "namespace", s.Namespace, "secret", s.Name, "error", err)
		case err != nil:
			unreadable = append(unreadable, fmt.Sprintf("%s (%v)", s.Name, err))
		default:
			add(keyEntry{secret: s.Name, key: k, wrapped: true, keyID: string(s.Data[WrappedKeyIDData])})
		}
	}
	entries := slices.Collect(maps.Values(byFingerprint))
	slices.SortFunc(entries, func(a, b keyEntry) int {
		if c := b.key.NotBefore().Compare(a.key.NotBefore()); c != 0 {
			return c
		}
		return cmp.Compare(a.secret, b.secret)
	})
	r.set(entries)
	if len(unreadable) > 0 {
		return fmt.Errorf("%w in %s: %s", ErrWrappedKeysUnreadable, r.namespace, strings.Join(unreadable, "; "))
	}
	return nil
}

// set installs entries, keeping keys already loaded that disappeared from
// the API (a deleted key Secret should not make sealed data unreadable
// until restart, as with Bitnami, whose registry only grows).
func (r *KeyRegistry) set(entries []keyEntry) {
	r.mu.Lock()
	known := map[string]bool{}
	for _, e := range r.entries {
		known[e.key.Fingerprint()] = true
	}
	added := 0
	seen := map[string]bool{}
	for _, e := range entries {
		fp := e.key.Fingerprint()
		seen[fp] = true
		if !known[fp] {
			added++
			r.log.Info("registered key", "namespace", r.namespace, "secret", e.secret, "fingerprint", fp, "notBefore", e.key.NotBefore())
		}
	}
	for _, e := range r.entries {
		if !seen[e.key.Fingerprint()] {
			// Kept in memory only: its Secret is gone (or unreadable now).
			e.secret = ""
			entries = append(entries, e)
		}
	}
	slices.SortStableFunc(entries, func(a, b keyEntry) int { return b.key.NotBefore().Compare(a.key.NotBefore()) })
	r.entries = entries
	r.loaded = true
	fns := slices.Clone(r.onChange)
	r.mu.Unlock()
	keysLoaded.Set(float64(len(entries)))
	if added > 0 {
		for _, f := range fns {
			go f()
		}
	}
}

// KeyGen says how new keys are made (Bitnami's flags of the same names).
type KeyGen struct {
	Size     int
	ValidFor time.Duration
	CN       string
	// Labels and Annotations are added to new key Secrets.
	Labels      map[string]string
	Annotations map[string]string
}

// Generate makes a new key pair, stores it as a kubernetes.io/tls Secret
// named <prefix><random suffix> (or, with a KeyWrapper, as a wrapped key
// Secret) and registers it: it becomes the sealing key. A key that cannot
// be wrapped is not stored in the clear instead: Generate fails.
func (r *KeyRegistry) Generate(ctx context.Context, g KeyGen) (string, error) {
	k, err := sealedsecrets.GenerateKey(g.Size, g.ValidFor, g.CN)
	if err != nil {
		return "", err
	}
	r.mu.RLock()
	w := r.wrapper
	r.mu.RUnlock()
	var s *corev1.Secret
	var keyID string
	if w != nil {
		if s, keyID, err = r.wrappedSecret(ctx, w, k, g.Labels, g.Annotations); err != nil {
			return "", err
		}
	} else {
		s = plainKeySecret(r.namespace, r.prefix, k, g.Labels, g.Annotations)
	}
	if err := r.writer.Create(ctx, s); err != nil {
		return "", fmt.Errorf("store new key in %s: %w", r.namespace, err)
	}
	r.mu.RLock()
	entries := slices.Clone(r.entries)
	r.mu.RUnlock()
	r.set(append([]keyEntry{{secret: s.Name, key: k, wrapped: w != nil, keyID: keyID}}, entries...))
	r.log.Info("new sealing key", "namespace", r.namespace, "secret", s.Name, "fingerprint", k.Fingerprint(), "wrapped", w != nil)
	return s.Name, nil
}

// plainKeySecret is k as the Bitnami controller stores a key.
func plainKeySecret(namespace, prefix string, k *sealedsecrets.Key, extraLabels, annotations map[string]string) *corev1.Secret {
	labels := maps.Clone(extraLabels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[KeyLabel] = KeyLabelActive
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:    namespace,
			GenerateName: prefix,
			Labels:       labels,
			Annotations:  maps.Clone(annotations),
		},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSPrivateKeyKey: k.PrivateKeyPEM(),
			corev1.TLSCertKey:       k.CertPEM(),
		},
	}
}

// keyRenewer makes the first key and a new one every period, on the
// leader only.
type keyRenewer struct {
	reg    *KeyRegistry
	gen    KeyGen
	period time.Duration
	cutoff time.Time
	// migrate wraps plain key Secrets (with the registry's wrapper) and
	// deletes the plain ones.
	migrate bool
	log     *slog.Logger
}

// NeedLeaderElection: only the leader writes keys.
func (k *keyRenewer) NeedLeaderElection() bool { return true }

// Start implements manager.Runnable.
func (k *keyRenewer) Start(ctx context.Context) error {
	for {
		if err := k.reg.Load(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			k.log.Error("loading keys", "error", err)
			if !sleep(ctx, 10*time.Second) {
				return nil
			}
			continue
		}
		if err := k.reg.maintainWrapped(ctx, k.migrate); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			k.log.Error("maintaining wrapped keys", "error", err)
		}
		newest := k.reg.Newest()
		due := newest == nil || newest.NotBefore().Before(k.cutoff) ||
			(k.period > 0 && !time.Now().Before(newest.NotBefore().Add(k.period)))
		if due {
			if _, err := k.reg.Generate(ctx, k.gen); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				k.log.Error("generating key", "error", err)
				if !sleep(ctx, 30*time.Second) {
					return nil
				}
			}
			continue
		}
		if k.period <= 0 {
			<-ctx.Done()
			return nil
		}
		// Sleep until the newest key is period old; re-read keys at least
		// hourly so that a key made elsewhere moves the deadline.
		wait := min(time.Until(newest.NotBefore().Add(k.period)), time.Hour)
		if !sleep(ctx, max(wait, time.Second)) {
			return nil
		}
	}
}

// keyRefresher re-reads the keys periodically on every replica, so that
// standbys serve the leader's newest certificate and a key restored by an
// operator is picked up without a restart.
type keyRefresher struct {
	reg      *KeyRegistry
	interval time.Duration
	log      *slog.Logger
}

// NeedLeaderElection: every replica serves /v1/cert.pem.
func (k *keyRefresher) NeedLeaderElection() bool { return false }

// Start implements manager.Runnable.
func (k *keyRefresher) Start(ctx context.Context) error {
	for {
		err := k.reg.Load(ctx)
		if err != nil && ctx.Err() == nil {
			k.log.Error("refreshing keys", "error", err)
		}
		wait := k.interval
		switch {
		case !k.reg.Loaded():
			wait = 2 * time.Second
		case err != nil:
			wait = min(wait, 10*time.Second)
		}
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

var errNoKeys = errors.New("no sealing key yet")
