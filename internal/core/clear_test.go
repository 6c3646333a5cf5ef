package core

import (
	"context"
	"fmt"
	"testing"

	"github.com/coffer-dev/coffer/internal/storage"
	"github.com/coffer-dev/coffer/internal/storage/inmem"
)

// countingBackend counts the writes clearPrefix makes.
type countingBackend struct {
	storage.Backend
	batches, deletes int
}

func (b *countingBackend) Batch(ctx context.Context, ops []storage.Op) error {
	b.batches++
	return b.Backend.Batch(ctx, ops)
}

func (b *countingBackend) Delete(ctx context.Context, key string) error {
	b.deletes++
	return b.Backend.Delete(ctx, key)
}

// TestClearPrefix: every key under the prefix, nested folders included, is
// deleted in batches of clearBatch (one commit each, not one per key), and
// nothing outside the prefix is touched.
func TestClearPrefix(t *testing.T) {
	ctx := context.Background()
	mem := inmem.New()
	const n = 2*clearBatch + 100
	for i := range n {
		key := fmt.Sprintf("logical/m1/data/k%d", i)
		if i%3 == 0 {
			key = fmt.Sprintf("logical/m1/meta/a/b/k%d", i)
		}
		if err := mem.Put(ctx, &storage.Entry{Key: key, Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"logical/m10/x", "logical/m1", "core/keyring"} {
		if err := mem.Put(ctx, &storage.Entry{Key: k, Value: []byte("keep")}); err != nil {
			t.Fatal(err)
		}
	}
	cb := &countingBackend{Backend: mem}
	if err := clearPrefix(ctx, cb, "logical/m1/"); err != nil {
		t.Fatal(err)
	}
	if names, err := mem.List(ctx, "logical/m1/"); err != nil || len(names) != 0 {
		t.Fatalf("List(logical/m1/) after clearPrefix = %v, %v; want nothing", names, err)
	}
	if cb.batches != 3 || cb.deletes != 0 {
		t.Errorf("clearPrefix of %d keys made %d batches and %d single deletes, want 3 and 0", n, cb.batches, cb.deletes)
	}
	for _, k := range []string{"logical/m10/x", "logical/m1", "core/keyring"} {
		if _, err := mem.Get(ctx, k); err != nil {
			t.Errorf("Get(%q) after clearing logical/m1/ = %v, want it kept", k, err)
		}
	}
	// An empty prefix needs no write at all.
	cb.batches = 0
	if err := clearPrefix(ctx, cb, "logical/none/"); err != nil || cb.batches != 0 {
		t.Fatalf("clearPrefix(empty) = %v with %d batches", err, cb.batches)
	}
}
