package core

import (
	"context"

	"github.com/coffer-dev/coffer/internal/storage"
)

// view confines a backend to the keys under prefix: it prepends prefix on
// the way in and strips it on the way out, so a backend can neither name nor
// list anything outside its own mount.
type view struct {
	inner  storage.Backend
	prefix string
}

var _ storage.Backend = (*view)(nil)

func newView(inner storage.Backend, prefix string) *view {
	return &view{inner: inner, prefix: prefix}
}

func (v *view) Get(ctx context.Context, key string) (*storage.Entry, error) {
	e, err := v.inner.Get(ctx, v.prefix+key)
	if err != nil {
		return nil, err
	}
	return &storage.Entry{Key: key, Value: e.Value}, nil
}

func (v *view) Put(ctx context.Context, e *storage.Entry) error {
	return v.inner.Put(ctx, &storage.Entry{Key: v.prefix + e.Key, Value: e.Value})
}

func (v *view) Delete(ctx context.Context, key string) error {
	return v.inner.Delete(ctx, v.prefix+key)
}

func (v *view) List(ctx context.Context, prefix string) ([]string, error) {
	return v.inner.List(ctx, v.prefix+prefix)
}

func (v *view) Batch(ctx context.Context, ops []storage.Op) error {
	out := make([]storage.Op, len(ops))
	for i, op := range ops {
		out[i] = storage.Op{Kind: op.Kind, Entry: &storage.Entry{Key: v.prefix + op.Entry.Key, Value: op.Entry.Value}}
	}
	return v.inner.Batch(ctx, out)
}
