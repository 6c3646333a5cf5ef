// Package bolt is the default storage.Backend: one bbolt file, fsynced on
// every commit, with concurrent writers coalesced into shared commits (one
// fsync for many writes) so durable throughput grows with the number of
// clients.
//
// The file is created 0600 in a directory created 0700, whatever the umask;
// an existing file is tightened to 0600. A second process opening the same
// file fails after Options.Timeout instead of waiting forever.
//
// Values are ciphertext from the barrier; this package never sees
// plaintext and must not import the barrier or core.
package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/coffer-dev/coffer/internal/storage"
)

var bucket = []byte("coffer")

// Options tune the backend. The zero value uses the defaults.
type Options struct {
	// Timeout bounds waiting for the file lock held by another process
	// (default 1s).
	Timeout time.Duration
	// MaxBatchDelay is how long a commit waits for more writers to join it
	// (default 2ms); MaxBatchSize caps the writers per commit (default 1000).
	MaxBatchDelay time.Duration
	MaxBatchSize  int
}

// DB is a bbolt-backed storage.Backend.
type DB struct {
	db     *bbolt.DB
	path   string
	closed atomic.Bool
}

var _ storage.Backend = (*DB)(nil)

// Open opens or creates the database file at path.
func Open(path string, opts Options) (*DB, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if opts.MaxBatchDelay <= 0 {
		opts.MaxBatchDelay = 2 * time.Millisecond
	}
	if opts.MaxBatchSize <= 0 {
		opts.MaxBatchSize = 1000
	}
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("storage: create directory %s: %w", dir, err)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("storage: chmod directory %s: %w", dir, err)
		}
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opts.Timeout, NoFreelistSync: false})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("storage: %s is locked: another coffer server may be using it", path)
		}
		if errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrVersionMismatch) || errors.Is(err, bolterrors.ErrChecksum) {
			return nil, fmt.Errorf("storage: %s is not a valid coffer (bbolt) database: %w", path, err)
		}
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: chmod %s: %w", path, err)
	}
	db.MaxBatchDelay = opts.MaxBatchDelay
	db.MaxBatchSize = opts.MaxBatchSize
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: initialize %s: %w", path, err)
	}
	return &DB{db: db, path: path}, nil
}

// Close closes the file.
func (d *DB) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	return d.db.Close()
}

func (d *DB) check(ctx context.Context) error {
	if d.closed.Load() {
		return storage.ErrClosed
	}
	return ctx.Err()
}

// Get implements storage.Backend.
func (d *DB) Get(ctx context.Context, key string) (*storage.Entry, error) {
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	var val []byte
	err := d.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucket).Get([]byte(key))
		if v == nil {
			return storage.ErrNotFound
		}
		val = append([]byte{}, v...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &storage.Entry{Key: key, Value: val}, nil
}

// Put implements storage.Backend. Concurrent calls share a commit.
func (d *DB) Put(ctx context.Context, e *storage.Entry) error {
	return d.Batch(ctx, []storage.Op{{Kind: storage.OpPut, Entry: e}})
}

// Delete implements storage.Backend.
func (d *DB) Delete(ctx context.Context, key string) error {
	return d.Batch(ctx, []storage.Op{{Kind: storage.OpDelete, Entry: &storage.Entry{Key: key}}})
}

// List implements storage.Backend.
func (d *DB) List(ctx context.Context, prefix string) ([]string, error) {
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	var keys []string
	p := []byte(prefix)
	err := d.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			keys = append(keys, string(k))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return storage.ChildNames(prefix, keys), nil
}

// Batch applies ops atomically in one transaction. Concurrent batches are
// coalesced by bbolt into one commit and one fsync; the function may run
// again if another batch in the same commit fails, which is safe because
// puts and deletes are idempotent.
func (d *DB) Batch(ctx context.Context, ops []storage.Op) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	for _, op := range ops {
		if op.Entry == nil || op.Entry.Key == "" || (op.Kind != storage.OpPut && op.Kind != storage.OpDelete) {
			return errors.New("storage: invalid batch operation")
		}
	}
	err := d.db.Batch(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		for _, op := range ops {
			var err error
			if op.Kind == storage.OpPut {
				err = b.Put([]byte(op.Entry.Key), op.Entry.Value)
			} else {
				err = b.Delete([]byte(op.Entry.Key))
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return storage.ErrClosed
	}
	return err
}
