package kv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
)

// handleV1 serves a version 1 mount: one JSON object per path.
func (b *Backend) handleV1(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	path := req.MountPath
	if req.Operation == logical.ListOperation {
		if err := checkPath(path, true); err != nil {
			return nil, err
		}
		keys, err := b.store.List(ctx, v1Key(path))
		if err != nil {
			return nil, fmt.Errorf("kv: list %q: %w", path, err)
		}
		if len(keys) == 0 {
			return nil, logical.ErrNotFound
		}
		return &logical.Response{Data: map[string]any{"keys": keys}}, nil
	}
	if err := checkPath(path, false); err != nil {
		return nil, err
	}
	switch op := req.Operation; {
	case isRead(op):
		data, err := b.readV1(ctx, path)
		if err != nil {
			return nil, err
		}
		if data == nil {
			return nil, logical.ErrNotFound
		}
		return &logical.Response{Data: data}, nil
	case isWrite(op):
		if len(req.Data) == 0 {
			return nil, logical.BadRequest("missing data fields")
		}
		raw, err := json.Marshal(req.Data)
		if err != nil {
			return nil, logical.BadRequest("data: cannot be encoded as JSON")
		}
		if err := b.store.Put(ctx, &storage.Entry{Key: v1Key(path), Value: raw}); err != nil {
			return nil, fmt.Errorf("kv: write %q: %w", path, err)
		}
		return nil, nil
	case op == logical.DeleteOperation:
		if err := b.store.Delete(ctx, v1Key(path)); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("kv: delete %q: %w", path, err)
		}
		return nil, nil
	default:
		return nil, logical.ErrUnsupportedOperation
	}
}

// readV1 returns the value at path, or nil if there is none.
func (b *Backend) readV1(ctx context.Context, path string) (map[string]any, error) {
	e, err := b.store.Get(ctx, v1Key(path))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kv: read %q: %w", path, err)
	}
	data, err := decodeObject(e.Value)
	if err != nil {
		return nil, fmt.Errorf("kv: decode %q: %w", path, err)
	}
	return data, nil
}

func (b *Backend) existsV1(ctx context.Context, path string) (bool, error) {
	if checkPath(path, false) != nil {
		return false, nil
	}
	_, err := b.store.Get(ctx, v1Key(path))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("kv: read %q: %w", path, err)
	}
	return true, nil
}

// upgrade moves every version 1 value into the version 2 layout as a new
// version of its secret (version 1 for a secret that did not exist), one
// atomic batch per value: writing the version and deleting the old value
// happen together, so the upgrade can stop anywhere and resume. Every value
// is checked before the first one moves, so a corrupt value refuses the
// upgrade instead of leaving it half done.
func (b *Backend) upgrade(ctx context.Context) error {
	paths, err := b.walkV1(ctx, "")
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return nil
	}
	for _, p := range paths {
		if _, err := b.readV1(ctx, p); err != nil {
			return fmt.Errorf("kv: upgrade to version 2 refused: %w", err)
		}
	}
	b.log.Info("upgrading KV mount to version 2", "mount", b.mountPoint, "keys", len(paths))
	for i, p := range paths {
		err := ctx.Err()
		if err == nil {
			err = b.upgradeOne(ctx, p)
		}
		if err != nil {
			return fmt.Errorf("kv: upgrade to version 2 stopped after %d of %d values (tune again to finish): %w", i, len(paths), err)
		}
	}
	b.log.Info("upgraded KV mount to version 2", "mount", b.mountPoint, "keys", len(paths))
	return nil
}

func (b *Backend) upgradeOne(ctx context.Context, path string) error {
	l := b.lockFor(path)
	l.Lock()
	defer l.Unlock()
	data, err := b.readV1(ctx, path)
	if err != nil || data == nil {
		return err
	}
	m, err := b.loadMeta(ctx, path)
	if err != nil {
		return err
	}
	_, _, err = b.appendVersion(ctx, path, m, data, deleteOp(v1Key(path)))
	return err
}

// walkV1 lists every version 1 path under folder, depth first.
func (b *Backend) walkV1(ctx context.Context, folder string) ([]string, error) {
	names, err := b.store.List(ctx, v1Key(folder))
	if err != nil {
		return nil, fmt.Errorf("kv: list %q: %w", folder, err)
	}
	var out []string
	for _, name := range names {
		if strings.HasSuffix(name, folderSuffix) {
			sub, err := b.walkV1(ctx, folder+name)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
			continue
		}
		out = append(out, folder+name)
	}
	return out, nil
}
