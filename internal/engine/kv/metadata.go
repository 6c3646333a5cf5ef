package kv

import (
	"context"
	"fmt"
	"unicode"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
)

// Vault's limits on custom_metadata.
const (
	maxCustomMetadataKeys   = 64
	maxCustomMetadataKeyLen = 128
	maxCustomMetadataValLen = 512
)

var metadataFields = []string{"max_versions", "cas_required", "delete_version_after", "custom_metadata"}

// listMetadata serves LIST metadata/:folder. An empty listing is a 404.
func (b *Backend) listMetadata(ctx context.Context, folder string) (*logical.Response, error) {
	if err := checkPath(folder, true); err != nil {
		return nil, err
	}
	keys, err := b.store.List(ctx, v2MetaPrefix+folder)
	if err != nil {
		return nil, fmt.Errorf("kv: list %q: %w", folder, err)
	}
	if len(keys) == 0 {
		return nil, logical.ErrNotFound
	}
	return &logical.Response{Data: map[string]any{"keys": keys}}, nil
}

// readMetadata serves GET metadata/:path.
func (b *Backend) readMetadata(ctx context.Context, _ *logical.Request, path string) (*logical.Response, error) {
	l := b.lockFor(path)
	l.RLock()
	defer l.RUnlock()
	m, err := b.loadMetaShared(ctx, path)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, logical.ErrNotFound
	}
	return &logical.Response{Data: metadataResponse(m)}, nil
}

// writeMetadata serves POST/PUT metadata/:path: it creates the metadata if
// needed and sets the fields given; custom_metadata is replaced whole.
// Lowering max_versions takes effect on the next data write, as in Vault.
func (b *Backend) writeMetadata(ctx context.Context, req *logical.Request, path string) (*logical.Response, error) {
	if err := logical.CheckFields(req.Data, metadataFields...); err != nil {
		return nil, err
	}
	l := b.lockFor(path)
	l.Lock()
	defer l.Unlock()
	m, err := b.loadMeta(ctx, path)
	if err != nil {
		return nil, err
	}
	now := b.now()
	if m == nil {
		m = &keyMeta{CreatedTime: now, Versions: map[uint64]*versionMeta{}}
	}
	if err := applyMetadata(m, req.Data, false); err != nil {
		return nil, err
	}
	m.UpdatedTime = now
	return nil, b.saveMeta(ctx, path, m)
}

// patchMetadata serves PATCH metadata/:path: a JSON merge patch of the
// settable fields of existing metadata. A null field returns to its
// default; custom_metadata is merged key by key.
func (b *Backend) patchMetadata(ctx context.Context, req *logical.Request, path string) (*logical.Response, error) {
	if err := checkMergePatch(req); err != nil {
		return nil, err
	}
	if err := logical.CheckFields(req.Data, metadataFields...); err != nil {
		return nil, err
	}
	l := b.lockFor(path)
	l.Lock()
	defer l.Unlock()
	m, err := b.loadMeta(ctx, path)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, logical.ErrNotFound
	}
	if err := applyMetadata(m, req.Data, true); err != nil {
		return nil, err
	}
	m.UpdatedTime = b.now()
	return nil, b.saveMeta(ctx, path, m)
}

// applyMetadata sets the metadata fields present in d on m. With patch, a
// null field resets it and custom_metadata merges.
func applyMetadata(m *keyMeta, d map[string]any, patch bool) error {
	next := *m
	if v, ok := d["max_versions"]; ok {
		n, err := parseMaxVersions(v)
		if err != nil {
			return err
		}
		next.MaxVersions = n
	}
	if v, ok := d["cas_required"]; ok {
		x, err := logical.ParseBool("cas_required", v)
		if err != nil {
			return err
		}
		next.CASRequired = x
	}
	if v, ok := d["delete_version_after"]; ok {
		dur, err := logical.ParseDuration("delete_version_after", v)
		if err != nil {
			return err
		}
		next.DeleteVersionAfter = dur
	}
	if v, ok := d["custom_metadata"]; ok {
		var base map[string]string
		if patch {
			base = m.CustomMetadata
		}
		cm, err := mergeCustomMetadata(base, v)
		if err != nil {
			return err
		}
		next.CustomMetadata = cm
	}
	*m = next
	return nil
}

// mergeCustomMetadata applies v, a JSON object of strings, to a copy of
// base; a null value removes its key. The result is validated against
// Vault's limits.
func mergeCustomMetadata(base map[string]string, v any) (map[string]string, error) {
	out := make(map[string]string, len(base))
	for k, s := range base {
		out[k] = s
	}
	switch x := v.(type) {
	case nil:
		clear(out)
	case map[string]any:
		for k, e := range x {
			if e == nil {
				delete(out, k)
				continue
			}
			s, ok := e.(string)
			if !ok {
				return nil, logical.BadRequest("custom_metadata: every value must be a string")
			}
			out[k] = s
		}
	case map[string]string:
		for k, s := range x {
			out[k] = s
		}
	default:
		return nil, logical.BadRequest("custom_metadata: must be a JSON object of strings")
	}
	if err := validateCustomMetadata(out); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// validateCustomMetadata enforces Vault's limits. Messages name no keys or
// values: they are the caller's data.
func validateCustomMetadata(cm map[string]string) error {
	if len(cm) > maxCustomMetadataKeys {
		return logical.BadRequest("custom_metadata validation failed: %d keys, the maximum is %d", len(cm), maxCustomMetadataKeys)
	}
	for k, v := range cm {
		switch {
		case k == "":
			return logical.BadRequest("custom_metadata validation failed: a key is empty")
		case len(k) > maxCustomMetadataKeyLen:
			return logical.BadRequest("custom_metadata validation failed: a key is longer than %d bytes", maxCustomMetadataKeyLen)
		case len(v) > maxCustomMetadataValLen:
			return logical.BadRequest("custom_metadata validation failed: a value is longer than %d bytes", maxCustomMetadataValLen)
		case !printable(k):
			return logical.BadRequest("custom_metadata validation failed: a key contains unprintable characters")
		case !printable(v):
			return logical.BadRequest("custom_metadata validation failed: a value contains unprintable characters")
		}
	}
	return nil
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// deleteMetadata serves DELETE metadata/:path: the metadata and the data
// of every version go, in one batch.
func (b *Backend) deleteMetadata(ctx context.Context, _ *logical.Request, path string) (*logical.Response, error) {
	l := b.lockFor(path)
	l.Lock()
	defer l.Unlock()
	m, err := b.loadMeta(ctx, path)
	if err != nil || m == nil {
		return nil, err
	}
	ops := make([]storage.Op, 0, len(m.Versions)+1)
	for n, vm := range m.Versions {
		if !vm.Destroyed {
			ops = append(ops, deleteOp(dataKey(path, n)))
		}
	}
	ops = append(ops, deleteOp(metaKey(path)))
	if err := b.store.Batch(ctx, ops); err != nil {
		return nil, fmt.Errorf("kv: delete %q: %w", path, err)
	}
	return nil, nil
}
