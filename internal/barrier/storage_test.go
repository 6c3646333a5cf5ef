package barrier_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/coffer-dev/coffer/internal/barrier"
	"github.com/coffer-dev/coffer/internal/storage"
	"github.com/coffer-dev/coffer/internal/storage/fault"
	"github.com/coffer-dev/coffer/internal/storage/inmem"
	"github.com/coffer-dev/coffer/internal/storage/storagetest"
)

// TestConformance: the barrier is a storage.Backend to the code above it,
// so it passes the same suite as the real backends, over each of them.
func TestConformance(t *testing.T) {
	for name, newBackend := range backends() {
		t.Run(name, func(t *testing.T) {
			storagetest.Run(t, func(t *testing.T) storage.Backend {
				b, _ := unsealed(t, newBackend(t), barrier.Options{RotationThreshold: 100, CheckpointInterval: 10})
				return b
			})
		})
	}
}

// TestStorageFaults: with a third of storage calls failing, every error is
// the storage's (never corruption), every acknowledged write survives, and
// a fresh barrier (as after a crash) resumes on the same term with a count
// at least as high.
func TestStorageFaults(t *testing.T) {
	ctx := context.Background()
	fs := fault.New(inmem.New(), fault.Options{})
	b, k := unsealed(t, fs, barrier.Options{RotationThreshold: 30, CheckpointInterval: 4})
	fs.SetFailPercent(33)
	acked := map[string]string{}
	failed := 0
	for i := range 600 {
		key, val := fmt.Sprintf("k/%d", i%25), fmt.Sprint(i)
		var err error
		switch {
		case i%50 == 49:
			_, err = b.Rotate(ctx)
			val = ""
		case i%3 == 0:
			err = b.Batch(ctx, []storage.Op{{Kind: storage.OpPut, Entry: &storage.Entry{Key: key, Value: []byte(val)}}})
		case i%7 == 0:
			var e *storage.Entry
			e, err = b.Get(ctx, key)
			if err == nil && string(e.Value) != acked[key] {
				t.Fatalf("Get(%s) = %q, want %q", key, e.Value, acked[key])
			}
			if errors.Is(err, storage.ErrNotFound) && acked[key] == "" {
				err = nil
			}
			val = ""
		default:
			err = b.Put(ctx, &storage.Entry{Key: key, Value: []byte(val)})
		}
		switch {
		case err != nil && !errors.Is(err, fault.ErrInjected):
			t.Fatalf("op %d: %v, want nil or an injected storage failure", i, err)
		case err != nil:
			failed++
		case val != "":
			acked[key] = val
		}
	}
	if failed == 0 || fs.Injected() == 0 {
		t.Fatal("no failure was injected")
	}
	fs.SetFailPercent(0)
	before, err := b.KeyStatus()
	if err != nil {
		t.Fatal(err)
	}
	if before.Term < 3 {
		t.Errorf("only %d terms after 600 operations with threshold 30", before.Term)
	}
	crashed := barrier.New(fs, barrier.Options{RotationThreshold: 30, CheckpointInterval: 4})
	if err := crashed.Unseal(ctx, k); err != nil {
		t.Fatal(err)
	}
	after, err := crashed.KeyStatus()
	if err != nil {
		t.Fatal(err)
	}
	if after.Term != before.Term || after.Encryptions < before.Encryptions {
		t.Errorf("after a crash: term %d with %d encryptions, want term %d with at least %d", after.Term, after.Encryptions, before.Term, before.Encryptions)
	}
	for key, want := range acked {
		if e, err := crashed.Get(ctx, key); err != nil || string(e.Value) != want {
			t.Errorf("Get(%s) = %v, %v, want %q", key, e, err, want)
		}
	}
}

// TestUnsealStorageFailure: a storage error during Unseal is reported as
// such, not as a wrong key, and leaves the barrier sealed.
func TestUnsealStorageFailure(t *testing.T) {
	ctx := context.Background()
	fs := fault.New(inmem.New(), fault.Options{})
	b, k := unsealed(t, fs, barrier.Options{})
	b.Seal()
	fs.SetFailPercent(100)
	err := b.Unseal(ctx, k)
	if !errors.Is(err, fault.ErrInjected) || errors.Is(err, barrier.ErrInvalidKey) {
		t.Errorf("Unseal with failing storage = %v, want the storage error", err)
	}
	if _, err := b.Initialized(ctx); !errors.Is(err, fault.ErrInjected) {
		t.Errorf("Initialized with failing storage = %v, want the storage error", err)
	}
	if !b.Sealed() {
		t.Error("barrier unsealed while storage failed")
	}
	fs.SetFailPercent(0)
	if err := b.Unseal(ctx, k); err != nil {
		t.Errorf("Unseal after storage recovered = %v", err)
	}
}
