package transit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/coffer-dev/coffer/internal/storage"
)

// policyPrefix holds one entry per named key.
const policyPrefix = "policy/"

// storedFormat is the version of storedKey's layout.
const storedFormat = 1

// storedKey is the JSON of a policy/<name> entry. Key bytes are base64 in
// JSON (encoding/json's []byte); the barrier encrypts the whole entry.
type storedKey struct {
	Format               int                       `json:"format"`
	Name                 string                    `json:"name"`
	Type                 string                    `json:"type"`
	Derived              bool                      `json:"derived"`
	KDF                  string                    `json:"kdf,omitempty"`
	Exportable           bool                      `json:"exportable"`
	DeletionAllowed      bool                      `json:"deletion_allowed"`
	MinDecryptionVersion int                       `json:"min_decryption_version"`
	MinEncryptionVersion int                       `json:"min_encryption_version"`
	MinAvailableVersion  int                       `json:"min_available_version"`
	LatestVersion        int                       `json:"latest_version"`
	AutoRotateSeconds    int64                     `json:"auto_rotate_period_seconds"`
	Versions             map[string]*storedVersion `json:"versions"`
}

type storedVersion struct {
	Key          []byte    `json:"key"`
	HMACKey      []byte    `json:"hmac_key"`
	CreationTime time.Time `json:"creation_time"`
}

func policyKey(name string) string { return policyPrefix + name }

// encodePolicy renders p as its storage entry. The caller clears the
// result once written: it holds key bytes.
func encodePolicy(p *policy) ([]byte, error) {
	s := storedKey{
		Format:               storedFormat,
		Name:                 p.name,
		Type:                 p.typ.String(),
		Derived:              p.derived,
		Exportable:           p.exportable,
		DeletionAllowed:      p.deletionAllowed,
		MinDecryptionVersion: p.minDecrypt,
		MinEncryptionVersion: p.minEncrypt,
		MinAvailableVersion:  p.minAvailable,
		LatestVersion:        p.latest,
		AutoRotateSeconds:    int64(p.autoRotate / time.Second),
		Versions:             make(map[string]*storedVersion, len(p.versions)),
	}
	if p.derived {
		s.KDF = kdfHKDF
	}
	for n, v := range p.versions {
		s.Versions[strconv.Itoa(n)] = &storedVersion{Key: v.key.b, HMACKey: v.hmacKey.b, CreationTime: v.created}
	}
	return json.Marshal(&s)
}

// decodePolicy parses and checks the entry of key name. Every error wraps
// errCorrupt and never quotes the entry.
func decodePolicy(name string, raw []byte) (*policy, error) {
	var s storedKey
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("%w: key %q does not decode", errCorrupt, name)
	}
	p, err := s.policy(name)
	if err != nil {
		for _, v := range s.Versions {
			if v != nil {
				clear(v.Key)
				clear(v.HMACKey)
			}
		}
		return nil, err
	}
	return p, nil
}

func (s *storedKey) policy(name string) (*policy, error) {
	corrupt := func(what string) error { return fmt.Errorf("%w: key %q: %s", errCorrupt, name, what) }
	if s.Format != storedFormat {
		return nil, corrupt(fmt.Sprintf("unknown format %d", s.Format))
	}
	if s.Name != name {
		return nil, corrupt("stored under another name")
	}
	t, err := parseKeyType(s.Type)
	if err != nil || s.Type == "" {
		return nil, corrupt("unknown type")
	}
	if (s.Derived && s.KDF != kdfHKDF) || (!s.Derived && s.KDF != "") {
		return nil, corrupt("unknown key derivation")
	}
	first := max(1, s.MinAvailableVersion)
	switch {
	case s.LatestVersion < 1 || s.MinAvailableVersion < 0 || s.MinAvailableVersion > s.LatestVersion:
		return nil, corrupt("bad version bounds")
	case s.MinDecryptionVersion < first || s.MinDecryptionVersion > s.LatestVersion:
		return nil, corrupt("bad min_decryption_version")
	case s.MinEncryptionVersion != 0 && (s.MinEncryptionVersion < first || s.MinEncryptionVersion > s.LatestVersion):
		return nil, corrupt("bad min_encryption_version")
	case s.AutoRotateSeconds < 0 || s.AutoRotateSeconds > int64(maxAutoRotate/time.Second):
		return nil, corrupt("bad auto_rotate_period")
	case len(s.Versions) != s.LatestVersion-first+1:
		return nil, corrupt("wrong number of versions")
	}
	p := &policy{
		name: name, typ: t, derived: s.Derived, exportable: s.Exportable, deletionAllowed: s.DeletionAllowed,
		minDecrypt: s.MinDecryptionVersion, minEncrypt: s.MinEncryptionVersion, minAvailable: s.MinAvailableVersion,
		latest: s.LatestVersion, autoRotate: time.Duration(s.AutoRotateSeconds) * time.Second,
		versions: make(map[int]*keyVersion, len(s.Versions)),
	}
	for n := first; n <= s.LatestVersion; n++ {
		sv := s.Versions[strconv.Itoa(n)]
		if sv == nil {
			return nil, corrupt(fmt.Sprintf("version %d is missing", n))
		}
		v := &keyVersion{key: secret{b: sv.Key}, hmacKey: secret{b: sv.HMACKey}, created: sv.CreationTime.UTC()}
		if err := v.prepare(t, s.Derived); err != nil {
			return nil, corrupt(fmt.Sprintf("version %d: %v", n, err))
		}
		p.versions[n] = v
	}
	return p, nil
}

// readPolicy loads key name from storage, bypassing the cache; nil when
// absent. The caller holds the key's lock.
func (b *Backend) readPolicy(ctx context.Context, name string) (*policy, error) {
	e, err := b.store.Get(ctx, policyKey(name))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("transit: read key %q: %w", name, err)
	}
	defer clear(e.Value)
	return decodePolicy(name, e.Value)
}

// writePolicy stores p and makes it the cached version of its key. The
// caller holds the key's lock exclusively and owns p; on error p is
// zeroed and the cache is left as it was.
func (b *Backend) writePolicy(ctx context.Context, p *policy) error {
	raw, err := encodePolicy(p)
	if err != nil {
		p.zero()
		return fmt.Errorf("transit: encode key %q: %w", p.name, err)
	}
	err = b.store.Put(ctx, &storage.Entry{Key: policyKey(p.name), Value: raw})
	clear(raw)
	if err != nil {
		p.zero()
		return fmt.Errorf("transit: write key %q: %w", p.name, err)
	}
	b.cacheReplace(p)
	b.schedule(p)
	return nil
}
