package kv

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
)

// readData serves GET data/:path[?version=N]. A missing secret or version
// is a plain 404; a deleted or destroyed one is a 404 that still carries the
// version's metadata, which the Vault client uses to report the deletion.
func (b *Backend) readData(ctx context.Context, req *logical.Request, path string) (*logical.Response, error) {
	version, err := parseVersionParam(req.Data["version"])
	if err != nil {
		return nil, err
	}
	l := b.lockFor(path)
	l.RLock()
	defer l.RUnlock()
	m, n, vm, err := b.resolveVersion(ctx, path, version, true)
	if err != nil {
		return nil, err
	}
	if !vm.live(b.now()) {
		return &logical.Response{Status: 404, Data: map[string]any{
			"data":     nil,
			"metadata": versionResponse(m, n, vm),
		}}, nil
	}
	data, err := b.loadVersion(ctx, path, n)
	if err != nil {
		return nil, err
	}
	if data == nil {
		return nil, fmt.Errorf("kv: version %d of %q is in the metadata but has no data: %w", n, path, logical.ErrInternal)
	}
	return &logical.Response{Data: map[string]any{
		"data":     data,
		"metadata": versionResponse(m, n, vm),
	}}, nil
}

// resolveVersion finds version (0 for the current one) of path, or
// logical.ErrNotFound. shared: the caller holds the read lock and will not
// modify the metadata (see loadMetaShared).
func (b *Backend) resolveVersion(ctx context.Context, path string, version uint64, shared bool) (*keyMeta, uint64, *versionMeta, error) {
	load := b.loadMeta
	if shared {
		load = b.loadMetaShared
	}
	m, err := load(ctx, path)
	if err != nil {
		return nil, 0, nil, err
	}
	if m == nil {
		return nil, 0, nil, logical.ErrNotFound
	}
	n := version
	if n == 0 {
		n = m.CurrentVersion
	}
	vm := m.Versions[n]
	if vm == nil {
		return nil, 0, nil, logical.ErrNotFound
	}
	return m, n, vm, nil
}

// parseVersionParam reads the version query parameter: absent or 0 means
// the current version.
func parseVersionParam(v any) (uint64, error) {
	n, err := logical.ParseInt("version", v)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, logical.BadRequest("version: must not be negative")
	}
	return uint64(n), nil
}

// writeBody is a parsed data write or patch: {"data":{...},
// "options":{"cas":N}}.
type writeBody struct {
	data   map[string]any
	cas    uint64
	hasCAS bool
}

// parseWriteBody parses a data write strictly: unknown fields are refused
// rather than silently dropped, since a typo there would lose data.
func parseWriteBody(d map[string]any) (writeBody, error) {
	var w writeBody
	if err := logical.CheckFields(d, "data", "options"); err != nil {
		return w, err
	}
	switch x := d["data"].(type) {
	case nil:
		return w, logical.BadRequest("no data provided")
	case map[string]any:
		w.data = x
	default:
		return w, logical.BadRequest("data: must be a JSON object")
	}
	switch opts := d["options"].(type) {
	case nil:
	case map[string]any:
		if err := logical.CheckFields(opts, "cas"); err != nil {
			return w, logical.BadRequest("options: %v", err)
		}
		if v, ok := opts["cas"]; ok && v != nil {
			n, err := logical.ParseInt("cas", v)
			if err != nil {
				return w, err
			}
			if n < 0 {
				return w, logical.BadRequest("cas: must not be negative")
			}
			w.cas, w.hasCAS = uint64(n), true
		}
	default:
		return w, logical.BadRequest("options: must be a JSON object")
	}
	return w, nil
}

// checkCAS applies the check-and-set rules: cas must equal the current
// version (0 for a secret without versions), and is mandatory when the
// key or the mount requires it.
func checkCAS(m *keyMeta, c mountConfig, w writeBody) error {
	if !w.hasCAS {
		if casRequired(m, c) {
			return logical.BadRequest("check-and-set parameter required for this call")
		}
		return nil
	}
	var cur uint64
	if m != nil {
		cur = m.CurrentVersion
	}
	if w.cas != cur {
		return logical.BadRequest("check-and-set parameter did not match the current version (current version is %d)", cur)
	}
	return nil
}

// writeData serves POST/PUT data/:path: a new version with the body's data.
func (b *Backend) writeData(ctx context.Context, req *logical.Request, path string) (*logical.Response, error) {
	w, err := parseWriteBody(req.Data)
	if err != nil {
		return nil, err
	}
	l := b.lockFor(path)
	l.Lock()
	defer l.Unlock()
	m, err := b.loadMeta(ctx, path)
	if err != nil {
		return nil, err
	}
	if err := checkCAS(m, b.config(), w); err != nil {
		return nil, err
	}
	m, n, err := b.appendVersion(ctx, path, m, w.data)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: versionResponse(m, n, m.Versions[n])}, nil
}

// patchData serves PATCH data/:path: a JSON merge patch of the current
// version's data, stored as a new version. The current version must be
// live.
func (b *Backend) patchData(ctx context.Context, req *logical.Request, path string) (*logical.Response, error) {
	if err := checkMergePatch(req); err != nil {
		return nil, err
	}
	w, err := parseWriteBody(req.Data)
	if err != nil {
		return nil, err
	}
	l := b.lockFor(path)
	l.Lock()
	defer l.Unlock()
	m, n, vm, err := b.resolveVersion(ctx, path, 0, false)
	if err != nil {
		return nil, err
	}
	if !vm.live(b.now()) {
		return nil, logical.ErrNotFound
	}
	if err := checkCAS(m, b.config(), w); err != nil {
		return nil, err
	}
	cur, err := b.loadVersion(ctx, path, n)
	if err != nil {
		return nil, err
	}
	if cur == nil {
		return nil, fmt.Errorf("kv: version %d of %q is in the metadata but has no data: %w", n, path, logical.ErrInternal)
	}
	m, n, err = b.appendVersion(ctx, path, m, mergeObject(cur, w.data))
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: versionResponse(m, n, m.Versions[n])}, nil
}

// appendVersion stores data as the next version of path (m is nil for a
// new secret) and trims the versions beyond max_versions, all in one
// batch with extra. The caller holds the path's lock.
func (b *Backend) appendVersion(ctx context.Context, path string, m *keyMeta, data map[string]any, extra ...storage.Op) (*keyMeta, uint64, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, 0, logical.BadRequest("data: cannot be encoded as JSON")
	}
	now := b.now()
	cfg := b.config()
	if m == nil {
		m = &keyMeta{CreatedTime: now, Versions: map[uint64]*versionMeta{}}
	}
	n := m.CurrentVersion + 1
	vm := &versionMeta{CreatedTime: now}
	if d := effectiveDeleteAfter(m, cfg); d > 0 {
		vm.DeletionTime = now.Add(d)
	}
	m.Versions[n] = vm
	m.CurrentVersion = n
	m.UpdatedTime = now

	ops := make([]storage.Op, 0, 3+len(extra))
	ops = append(ops, storage.Op{Kind: storage.OpPut, Entry: &storage.Entry{Key: dataKey(path, n), Value: raw}})
	if keep := effectiveMaxVersions(m, cfg); len(m.Versions) > keep {
		vs := m.sortedVersions()
		for _, old := range vs[:len(vs)-keep] {
			delete(m.Versions, old)
			ops = append(ops, deleteOp(dataKey(path, old)))
		}
		m.OldestVersion = vs[len(vs)-keep]
	}
	metaOp, err := putMetaOp(path, m)
	if err != nil {
		return nil, 0, err
	}
	ops = append(ops, metaOp)
	ops = append(ops, extra...)
	if err := b.store.Batch(ctx, ops); err != nil {
		return nil, 0, fmt.Errorf("kv: write version %d of %q: %w", n, path, err)
	}
	return m, n, nil
}

// deleteLatest serves DELETE data/:path: a soft delete of the current
// version. Deleting what is missing or already deleted succeeds.
func (b *Backend) deleteLatest(ctx context.Context, _ *logical.Request, path string) (*logical.Response, error) {
	l := b.lockFor(path)
	l.Lock()
	defer l.Unlock()
	m, err := b.loadMeta(ctx, path)
	if err != nil || m == nil {
		return nil, err
	}
	now := b.now()
	vm := m.Versions[m.CurrentVersion]
	if vm == nil || !vm.live(now) {
		return nil, nil
	}
	vm.DeletionTime = now
	return nil, b.saveMeta(ctx, path, m)
}
