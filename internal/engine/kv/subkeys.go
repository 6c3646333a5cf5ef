package kv

import (
	"context"
	"fmt"

	"github.com/coffer-dev/coffer/internal/logical"
)

// readSubkeys serves GET subkeys/:path[?version=N&depth=D]: the structure
// of a version's data with every leaf (a non-object, or an empty object)
// replaced by null. depth 0 means no limit; keys at depth D are leaves.
func (b *Backend) readSubkeys(ctx context.Context, req *logical.Request, path string) (*logical.Response, error) {
	version, err := parseVersionParam(req.Data["version"])
	if err != nil {
		return nil, err
	}
	depth, err := logical.ParseInt("depth", req.Data["depth"])
	if err != nil {
		return nil, err
	}
	if depth < 0 {
		return nil, logical.BadRequest("depth: must not be negative")
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
			"subkeys":  nil,
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
		"subkeys":  subkeys(data, 1, depth),
		"metadata": versionResponse(m, n, vm),
	}}, nil
}

// subkeys strips obj, whose keys sit at level, down to its structure.
func subkeys(obj map[string]any, level, depth int64) map[string]any {
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		child, ok := v.(map[string]any)
		if !ok || len(child) == 0 || (depth > 0 && level >= depth) {
			out[k] = nil
			continue
		}
		out[k] = subkeys(child, level+1, depth)
	}
	return out
}
