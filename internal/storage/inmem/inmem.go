// Package inmem is an in-memory storage.Backend for dev mode and tests.
// Nothing survives the process. Values are copied in and out, so callers
// can never alias stored bytes. It must not import the barrier or core.
package inmem

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/coffer-dev/coffer/internal/storage"
)

// Backend is the in-memory backend.
type Backend struct {
	mu sync.RWMutex
	m  map[string][]byte
}

var _ storage.Backend = (*Backend)(nil)

// New returns an empty backend.
func New() *Backend { return &Backend{m: map[string][]byte{}} }

func clone(b []byte) []byte { return append([]byte{}, b...) }

// Get implements storage.Backend.
func (b *Backend) Get(ctx context.Context, key string) (*storage.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.RLock()
	v, ok := b.m[key]
	b.mu.RUnlock()
	if !ok {
		return nil, storage.ErrNotFound
	}
	return &storage.Entry{Key: key, Value: clone(v)}, nil
}

// Put implements storage.Backend.
func (b *Backend) Put(ctx context.Context, e *storage.Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	b.m[e.Key] = clone(e.Value)
	b.mu.Unlock()
	return nil
}

// Delete implements storage.Backend.
func (b *Backend) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	delete(b.m, key)
	b.mu.Unlock()
	return nil
}

// List implements storage.Backend.
func (b *Backend) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.RLock()
	keys := make([]string, 0)
	for k := range b.m {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	b.mu.RUnlock()
	sort.Strings(keys)
	return storage.ChildNames(prefix, keys), nil
}

// Batch implements storage.Backend: all operations apply under one lock.
func (b *Backend) Batch(ctx context.Context, ops []storage.Op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, op := range ops {
		if op.Entry == nil || (op.Kind != storage.OpPut && op.Kind != storage.OpDelete) {
			return fmt.Errorf("batch: invalid operation %d", op.Kind)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, op := range ops {
		switch op.Kind {
		case storage.OpPut:
			b.m[op.Entry.Key] = clone(op.Entry.Value)
		case storage.OpDelete:
			delete(b.m, op.Entry.Key)
		}
	}
	return nil
}
