package barrier

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/coffer-dev/coffer/internal/storage"
)

// checkKey refuses logical keys that could escape their namespace or be
// read differently by some backend: empty (allowed for a List prefix),
// starting with "/", containing "..", NUL or another control character.
func checkKey(key string, prefix bool) error {
	switch {
	case key == "" && !prefix:
		return fmt.Errorf("%w: empty key", ErrBadPath)
	case strings.HasPrefix(key, "/"):
		return fmt.Errorf("%w: %q starts with /", ErrBadPath, key)
	case strings.Contains(key, ".."):
		return fmt.Errorf("%w: %q contains ..", ErrBadPath, key)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: %q contains a control character", ErrBadPath, key)
		}
	}
	return nil
}

func (b *Barrier) checkUnsealed() error {
	if b.Sealed() {
		return ErrSealed
	}
	return nil
}

// Get returns the decrypted entry at the logical key, or
// storage.ErrNotFound. An entry that fails to decode or authenticate is a
// *DecodeError.
func (b *Barrier) Get(ctx context.Context, key string) (*storage.Entry, error) {
	if err := b.checkUnsealed(); err != nil {
		return nil, err
	}
	if err := checkKey(key, false); err != nil {
		return nil, err
	}
	raw, err := b.s.Get(ctx, logicalPrefix+key)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && raw == nil) {
		return nil, storage.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("barrier: get %q: %w", key, err)
	}
	pt, err := b.decrypt(key, raw.Value)
	if err != nil {
		return nil, err
	}
	// The backend's Entry is ours (its Value is now the plaintext).
	raw.Key, raw.Value = key, pt
	return raw, nil
}

// Put encrypts e.Value under the active term and stores it at the logical
// key e.Key.
func (b *Barrier) Put(ctx context.Context, e *storage.Entry) error {
	if err := b.checkUnsealed(); err != nil {
		return err
	}
	if e == nil {
		return fmt.Errorf("%w: put of a nil entry", ErrBadPath)
	}
	if err := checkKey(e.Key, false); err != nil {
		return err
	}
	ct, err := b.encrypt(ctx, e.Key, e.Value)
	if err != nil {
		return err
	}
	if err := b.s.Put(ctx, &storage.Entry{Key: logicalPrefix + e.Key, Value: ct}); err != nil {
		return fmt.Errorf("barrier: put %q: %w", e.Key, err)
	}
	return nil
}

// Delete removes the entry at the logical key; an absent key is not an
// error.
func (b *Barrier) Delete(ctx context.Context, key string) error {
	if err := b.checkUnsealed(); err != nil {
		return err
	}
	if err := checkKey(key, false); err != nil {
		return err
	}
	if err := b.s.Delete(ctx, logicalPrefix+key); err != nil {
		return fmt.Errorf("barrier: delete %q: %w", key, err)
	}
	return nil
}

// List returns the logical names directly below prefix, as
// storage.Backend.List describes. Keys are not encrypted, so List reads no
// entry.
func (b *Barrier) List(ctx context.Context, prefix string) ([]string, error) {
	if err := b.checkUnsealed(); err != nil {
		return nil, err
	}
	if err := checkKey(prefix, true); err != nil {
		return nil, err
	}
	names, err := b.s.List(ctx, logicalPrefix+prefix)
	if err != nil {
		return nil, fmt.Errorf("barrier: list %q: %w", prefix, err)
	}
	return names, nil
}

// Batch encrypts every put and applies all operations in one atomic
// storage batch. Nothing is written unless every operation is valid and
// every put is encrypted.
func (b *Barrier) Batch(ctx context.Context, ops []storage.Op) error {
	if err := b.checkUnsealed(); err != nil {
		return err
	}
	for i, op := range ops {
		if op.Entry == nil {
			return fmt.Errorf("%w: batch operation %d has no entry", ErrBadPath, i)
		}
		if op.Kind != storage.OpPut && op.Kind != storage.OpDelete {
			return fmt.Errorf("barrier: batch operation %d has unknown kind %d", i, op.Kind)
		}
		if err := checkKey(op.Entry.Key, false); err != nil {
			return err
		}
	}
	out := make([]storage.Op, len(ops))
	for i, op := range ops {
		e := &storage.Entry{Key: logicalPrefix + op.Entry.Key}
		if op.Kind == storage.OpPut {
			ct, err := b.encrypt(ctx, op.Entry.Key, op.Entry.Value)
			if err != nil {
				return err
			}
			e.Value = ct
		}
		out[i] = storage.Op{Kind: op.Kind, Entry: e}
	}
	if err := b.s.Batch(ctx, out); err != nil {
		return fmt.Errorf("barrier: batch: %w", err)
	}
	return nil
}
