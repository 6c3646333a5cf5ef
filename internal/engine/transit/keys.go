package transit

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
)

// Bounds of auto_rotate_period (Vault's minimum; a maximum keeps time
// arithmetic far from overflow).
const (
	minAutoRotate = time.Hour
	maxAutoRotate = 100 * 365 * 24 * time.Hour
)

// listKeys serves LIST keys/.
func (b *Backend) listKeys(ctx context.Context) (*logical.Response, error) {
	names, err := b.store.List(ctx, policyPrefix)
	if err != nil {
		return nil, fmt.Errorf("transit: list keys: %w", err)
	}
	keys := make([]string, 0, len(names))
	for _, n := range names {
		if !strings.HasSuffix(n, "/") {
			keys = append(keys, n)
		}
	}
	if len(keys) == 0 {
		return nil, logical.ErrNotFound
	}
	return &logical.Response{Data: map[string]any{"keys": keys}}, nil
}

// readKey serves GET keys/:name. For a derived ed25519 key, a context
// (base64) selects the public keys to show.
func (b *Backend) readKey(ctx context.Context, req *logical.Request, name string) (*logical.Response, error) {
	if err := logical.CheckFields(req.Data, "context"); err != nil {
		return nil, err
	}
	keyCtx, _, err := b64Field(req.Data, "context")
	if err != nil {
		return nil, err
	}
	l := b.lockFor(name)
	l.RLock()
	defer l.RUnlock()
	p, err := b.load(ctx, name)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, logical.ErrNotFound
	}
	data, err := p.info(keyCtx)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: data}, nil
}

// info is the read-key response, in Vault's shape. keys maps each version
// to its creation time (Unix seconds), or for ed25519 to its public key.
func (p *policy) info(keyCtx []byte) (map[string]any, error) {
	keys := make(map[string]any, len(p.versions))
	for n, v := range p.versions {
		if !p.typ.signing() {
			keys[strconv.Itoa(n)] = v.created.Unix()
			continue
		}
		pub := ""
		switch {
		case !p.derived:
			pub = base64.StdEncoding.EncodeToString(v.public)
		case len(keyCtx) > 0:
			_, derived, done, err := p.signerFor(n, keyCtx)
			if err != nil {
				return nil, err
			}
			done()
			pub = base64.StdEncoding.EncodeToString(derived)
		}
		keys[strconv.Itoa(n)] = map[string]any{
			"name":              "ed25519",
			"public_key":        pub,
			"certificate_chain": "",
			"creation_time":     v.created.Format(time.RFC3339Nano),
		}
	}
	data := map[string]any{
		"name":                   p.name,
		"type":                   p.typ.String(),
		"keys":                   keys,
		"latest_version":         p.latest,
		"min_available_version":  p.minAvailable,
		"min_decryption_version": p.minDecrypt,
		"min_encryption_version": p.minEncrypt,
		"deletion_allowed":       p.deletionAllowed,
		"derived":                p.derived,
		"exportable":             p.exportable,
		"allow_plaintext_backup": false,
		"supports_encryption":    p.typ.encryption(),
		"supports_decryption":    p.typ.encryption(),
		"supports_derivation":    true,
		"supports_signing":       p.typ.signing(),
		"auto_rotate_period":     logical.FormatSeconds(p.autoRotate),
		"imported_key":           false,
	}
	if p.derived {
		data["kdf"] = kdfHKDF
		data["convergent_encryption"] = false
	}
	return data, nil
}

// parseAutoRotate reads auto_rotate_period: 0 turns it off, otherwise at
// least an hour.
func parseAutoRotate(v any) (time.Duration, error) {
	d, err := logical.ParseDuration("auto_rotate_period", v)
	if err != nil {
		return 0, err
	}
	if d != 0 && (d < minAutoRotate || d > maxAutoRotate) {
		return 0, logical.BadRequest("auto_rotate_period must be 0 to disable or at least an hour (and at most 100 years)")
	}
	return d, nil
}

// refusePlaintextBackup accepts allow_plaintext_backup only when false:
// Coffer has no backup endpoint that would export key material.
func refusePlaintextBackup(v any) error {
	on, err := logical.ParseBool("allow_plaintext_backup", v)
	if err != nil {
		return err
	}
	if on {
		return bad("allow_plaintext_backup is not supported by Coffer")
	}
	return nil
}

// createKey serves POST keys/:name. An existing key is left as it is and
// returned with a warning, as Vault does.
func (b *Backend) createKey(ctx context.Context, req *logical.Request, name string) (*logical.Response, error) {
	d := req.Data
	if err := logical.CheckFields(d, "type", "derived", "exportable", "allow_plaintext_backup",
		"auto_rotate_period", "convergent_encryption"); err != nil {
		return nil, err
	}
	typeName, err := stringField(d, "type")
	if err != nil {
		return nil, err
	}
	t, err := parseKeyType(typeName)
	if err != nil {
		return nil, err
	}
	derived, err := logical.ParseBool("derived", d["derived"])
	if err != nil {
		return nil, err
	}
	exportable, err := logical.ParseBool("exportable", d["exportable"])
	if err != nil {
		return nil, err
	}
	convergent, err := logical.ParseBool("convergent_encryption", d["convergent_encryption"])
	if err != nil {
		return nil, err
	}
	if convergent {
		return nil, bad(msgConvergent)
	}
	if err := refusePlaintextBackup(d["allow_plaintext_backup"]); err != nil {
		return nil, err
	}
	period, err := parseAutoRotate(d["auto_rotate_period"])
	if err != nil {
		return nil, err
	}

	l := b.lockFor(name)
	l.Lock()
	defer l.Unlock()
	p, err := b.load(ctx, name)
	if err != nil {
		return nil, err
	}
	if p != nil {
		data, err := p.info(nil)
		if err != nil {
			return nil, err
		}
		return &logical.Response{Data: data, Warnings: []string{fmt.Sprintf("key %s already existed", name)}}, nil
	}
	if p, err = newPolicy(name, t, derived, b.now()); err != nil {
		return nil, err
	}
	p.exportable, p.autoRotate = exportable, period
	if err := b.writePolicy(ctx, p); err != nil {
		return nil, err
	}
	data, err := p.info(nil)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: data}, nil
}

// deleteKey serves DELETE keys/:name, only once deletion_allowed is set.
func (b *Backend) deleteKey(ctx context.Context, name string) (*logical.Response, error) {
	l := b.lockFor(name)
	l.Lock()
	defer l.Unlock()
	p, err := b.load(ctx, name)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, logical.BadRequest("error deleting policy %s: could not delete key; not found", name)
	}
	if !p.deletionAllowed {
		return nil, logical.BadRequest("error deleting policy %s: deletion is not allowed for this key", name)
	}
	if err := b.store.Delete(ctx, policyKey(name)); err != nil {
		return nil, fmt.Errorf("transit: delete key %q: %w", name, err)
	}
	b.cacheDrop(name)
	b.unschedule(name)
	return nil, nil
}

// change applies fn to a fresh copy of key name under its exclusive lock
// and stores the result; the response is the key's new info. notFound is
// the 400 for a missing key.
func (b *Backend) change(ctx context.Context, name, notFound string, fn func(p *policy) ([]string, error)) (*logical.Response, error) {
	l := b.lockFor(name)
	l.Lock()
	defer l.Unlock()
	// A fresh copy: the cached one may not be modified, and stays in
	// place if this change fails.
	p, err := b.readPolicy(ctx, name)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, bad(notFound)
	}
	warnings, err := fn(p)
	if err != nil {
		p.zero()
		return nil, err
	}
	if err := b.writePolicy(ctx, p); err != nil {
		return nil, err
	}
	data, err := p.info(nil)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: data, Warnings: warnings}, nil
}

// rotateKey serves POST keys/:name/rotate.
func (b *Backend) rotateKey(ctx context.Context, req *logical.Request, name string) (*logical.Response, error) {
	if err := logical.CheckFields(req.Data); err != nil {
		return nil, err
	}
	return b.change(ctx, name, "key not found", func(p *policy) ([]string, error) {
		return nil, p.rotate(b.now())
	})
}

// configKey serves POST keys/:name/config. Fields left out keep their
// value.
func (b *Backend) configKey(ctx context.Context, req *logical.Request, name string) (*logical.Response, error) {
	d := req.Data
	if err := logical.CheckFields(d, "min_decryption_version", "min_encryption_version", "deletion_allowed",
		"exportable", "allow_plaintext_backup", "auto_rotate_period"); err != nil {
		return nil, err
	}
	if err := refusePlaintextBackup(d["allow_plaintext_backup"]); err != nil {
		return nil, err
	}
	return b.change(ctx, name, fmt.Sprintf("no existing key named %s could be found", name), func(p *policy) ([]string, error) {
		return p.configure(d)
	})
}

func (p *policy) configure(d map[string]any) ([]string, error) {
	var warnings []string
	if set(d, "min_decryption_version") {
		n, err := intField(d, "min_decryption_version")
		if err != nil {
			return nil, err
		}
		switch {
		case n < 0:
			return nil, bad("min decryption version cannot be negative")
		case n == 0:
			n = 1
			warnings = append(warnings, "since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1")
		case n > p.latest:
			return nil, logical.BadRequest("cannot set min decryption version of %d, latest key version is %d", n, p.latest)
		case n < p.minAvailable:
			return nil, logical.BadRequest("cannot set min decryption version of %d, versions below %d have been trimmed", n, p.minAvailable)
		}
		p.minDecrypt = n
	}
	if set(d, "min_encryption_version") {
		n, err := intField(d, "min_encryption_version")
		if err != nil {
			return nil, err
		}
		switch {
		case n < 0:
			return nil, bad("min encryption version cannot be negative")
		case n > p.latest:
			return nil, logical.BadRequest("cannot set min encryption version of %d, latest key version is %d", n, p.latest)
		case n != 0 && n < p.minAvailable:
			return nil, logical.BadRequest("cannot set min encryption version of %d, versions below %d have been trimmed", n, p.minAvailable)
		}
		p.minEncrypt = n
	}
	if p.minEncrypt != 0 && p.minEncrypt < p.minDecrypt {
		return nil, logical.BadRequest("cannot set min encryption/decryption values; min encryption version of %d must be greater than or equal to min decryption version of %d", p.minEncrypt, p.minDecrypt)
	}
	if set(d, "deletion_allowed") {
		v, err := logical.ParseBool("deletion_allowed", d["deletion_allowed"])
		if err != nil {
			return nil, err
		}
		p.deletionAllowed = v
	}
	if set(d, "exportable") {
		v, err := logical.ParseBool("exportable", d["exportable"])
		if err != nil {
			return nil, err
		}
		if p.exportable && !v {
			return nil, bad("exportable cannot be disabled once enabled")
		}
		p.exportable = v
	}
	if set(d, "auto_rotate_period") {
		period, err := parseAutoRotate(d["auto_rotate_period"])
		if err != nil {
			return nil, err
		}
		p.autoRotate = period
	}
	return warnings, nil
}

// trimKey serves POST keys/:name/trim: versions below
// min_available_version are deleted for good.
func (b *Backend) trimKey(ctx context.Context, req *logical.Request, name string) (*logical.Response, error) {
	d := req.Data
	if err := logical.CheckFields(d, "min_available_version"); err != nil {
		return nil, err
	}
	n, err := intField(d, "min_available_version")
	if err != nil {
		return nil, err
	}
	return b.change(ctx, name, "key not found", func(p *policy) ([]string, error) {
		switch {
		case n <= 0:
			return nil, bad("minimum available version should be positive")
		case p.minEncrypt == 0:
			return nil, bad("minimum available version cannot be set while min_encryption_version is 0 (the latest)")
		case n > p.minDecrypt || n > p.minEncrypt:
			return nil, bad("minimum available version should not be greater than the minimum decryption or encryption version")
		case n < p.minAvailable:
			return nil, bad("minimum available version should not be less than the current minimum available version")
		}
		for v := max(1, p.minAvailable); v < n; v++ {
			if kv := p.versions[v]; kv != nil {
				kv.zero()
				delete(p.versions, v)
			}
		}
		p.minAvailable = n
		return nil, nil
	})
}

// set reports whether a field was sent with a value: absent, null and ""
// leave a setting unchanged.
func set(d map[string]any, field string) bool {
	v, ok := d[field]
	return ok && v != nil && v != ""
}
