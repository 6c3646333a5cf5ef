package kv

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
)

// maxVersionsPerRequest bounds the versions list of delete, undelete and
// destroy; a key never holds more than max_versions anyway.
const maxVersionsPerRequest = 1 << 16

// changeVersions serves delete/, undelete/ and destroy/ with a body
// {"versions":[...]}. Versions that do not exist are skipped, as in Vault;
// a destroyed version stays destroyed.
func (b *Backend) changeVersions(ctx context.Context, req *logical.Request, action, path string) (*logical.Response, error) {
	if err := logical.CheckFields(req.Data, "versions"); err != nil {
		return nil, err
	}
	versions, err := parseVersions(req.Data["versions"])
	if err != nil {
		return nil, err
	}
	l := b.lockFor(path)
	l.Lock()
	defer l.Unlock()
	m, err := b.loadMeta(ctx, path)
	if err != nil || m == nil {
		return nil, err
	}
	now := b.now()
	var ops []storage.Op
	changed := false
	for _, n := range versions {
		vm := m.Versions[n]
		if vm == nil || vm.Destroyed {
			continue
		}
		switch action {
		case "delete":
			if !vm.deleted(now) {
				vm.DeletionTime = now
				changed = true
			}
		case "undelete":
			if !vm.DeletionTime.IsZero() {
				vm.DeletionTime = time.Time{}
				changed = true
			}
		case "destroy":
			vm.Destroyed = true
			ops = append(ops, deleteOp(dataKey(path, n)))
			changed = true
		}
	}
	if !changed {
		return nil, nil
	}
	metaOp, err := putMetaOp(path, m)
	if err != nil {
		return nil, err
	}
	if err := b.store.Batch(ctx, append(ops, metaOp)); err != nil {
		return nil, fmt.Errorf("kv: %s versions of %q: %w", action, path, err)
	}
	return nil, nil
}

// parseVersions reads the versions field: a JSON array of positive
// integers, or a comma-separated string of them (Vault accepts both).
func parseVersions(v any) ([]uint64, error) {
	var items []any
	switch x := v.(type) {
	case nil:
		return nil, logical.BadRequest("no version number provided")
	case []any:
		items = x
	case string:
		for _, s := range strings.Split(x, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
	default:
		// A single number is a list of one, as Vault's comma int slice.
		items = []any{x}
	}
	if len(items) == 0 {
		return nil, logical.BadRequest("no version number provided")
	}
	if len(items) > maxVersionsPerRequest {
		return nil, logical.BadRequest("versions: more than %d versions", maxVersionsPerRequest)
	}
	out := make([]uint64, 0, len(items))
	for _, it := range items {
		if it == nil {
			return nil, logical.BadRequest("versions: every element must be a positive integer")
		}
		n, err := logical.ParseInt("versions", it)
		if err != nil || n <= 0 {
			return nil, logical.BadRequest("versions: every element must be a positive integer")
		}
		out = append(out, uint64(n))
	}
	return out, nil
}
