package barrier_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/coffer-dev/coffer/internal/barrier"
	"github.com/coffer-dev/coffer/internal/storage"
	"github.com/coffer-dev/coffer/internal/storage/bolt"
	"github.com/coffer-dev/coffer/internal/storage/inmem"
)

// backends returns a constructor for each real storage backend.
func backends() map[string]func(t *testing.T) storage.Backend {
	return map[string]func(t *testing.T) storage.Backend{
		"inmem": func(t *testing.T) storage.Backend { return inmem.New() },
		"bolt":  func(t *testing.T) storage.Backend { return openBolt(t, filepath.Join(t.TempDir(), "coffer.db")) },
	}
}

func openBolt(t *testing.T, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("bolt.Open(%s): %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newKey(t testing.TB) barrier.Key {
	t.Helper()
	k, err := barrier.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// unsealed returns an initialized, unsealed barrier over s and its unseal
// key.
func unsealed(t testing.TB, s storage.Backend, opts barrier.Options) (*barrier.Barrier, barrier.Key) {
	t.Helper()
	ctx := context.Background()
	b := barrier.New(s, opts)
	k := newKey(t)
	if err := b.Initialize(ctx, k); err != nil {
		t.Fatalf("Initialize: %v", err)
	}
	if err := b.Unseal(ctx, k); err != nil {
		t.Fatalf("Unseal: %v", err)
	}
	return b, k
}

func put(t testing.TB, b storage.Backend, key string, value []byte) {
	t.Helper()
	if err := b.Put(context.Background(), &storage.Entry{Key: key, Value: value}); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func rawGet(t testing.TB, s storage.Backend, key string) []byte {
	t.Helper()
	e, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("raw Get(%q): %v", key, err)
	}
	return e.Value
}

func rawTerm(t testing.TB, s storage.Backend, key string) uint32 {
	t.Helper()
	v := rawGet(t, s, key)
	return uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])
}

// failingBackend refuses writes of core/keyring while failKeyring is set.
type failingBackend struct {
	storage.Backend
	failKeyring atomic.Bool
}

func (f *failingBackend) Put(ctx context.Context, e *storage.Entry) error {
	if f.failKeyring.Load() && e.Key == "core/keyring" {
		return errors.New("injected failure")
	}
	return f.Backend.Put(ctx, e)
}
