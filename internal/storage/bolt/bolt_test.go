package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/coffer-dev/coffer/internal/storage"
	"github.com/coffer-dev/coffer/internal/storage/storagetest"
)

func open(t testing.TB, path string) *DB {
	t.Helper()
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		return open(t, filepath.Join(t.TempDir(), "c.db"))
	})
}

func TestDurableAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "d.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Put(ctx, &storage.Entry{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Put(ctx, &storage.Entry{Key: "k2", Value: []byte("v")}); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("Put after Close = %v, want ErrClosed", err)
	}
	db = open(t, path)
	e, err := db.Get(ctx, "k")
	if err != nil || string(e.Value) != "v" {
		t.Fatalf("Get after reopen = %v, %v", e, err)
	}
}

func TestModesWhateverTheUmask(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "new", "dir")
	path := filepath.Join(dir, "m.db")
	open(t, path)
	for _, tc := range []struct {
		p    string
		want os.FileMode
	}{{path, 0o600}, {dir, 0o700}} {
		fi, err := os.Stat(tc.p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != tc.want {
			t.Errorf("mode of %s = %04o, want %04o", tc.p, got, tc.want)
		}
	}
	// An existing looser file is tightened.
	loose := filepath.Join(t.TempDir(), "loose.db")
	db := open(t, loose)
	db.Close()
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	open(t, loose)
	if fi, _ := os.Stat(loose); fi.Mode().Perm() != 0o600 {
		t.Errorf("existing file mode = %04o, want 0600", fi.Mode().Perm())
	}
}

func TestSecondOpenFailsClearly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock.db")
	open(t, path)
	_, err := Open(path, Options{Timeout: 50e6})
	if err == nil || !strings.Contains(err.Error(), "another coffer server") {
		t.Fatalf("second Open = %v, want a lock error naming another server", err)
	}
}

func TestNotABoltFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "junk.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a database ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, Options{})
	if err == nil || !strings.Contains(err.Error(), "not a valid coffer") {
		t.Fatalf("Open(junk) = %v, want a clear error", err)
	}
}

// BenchmarkPutDurable measures durable puts per second with 1, 8 and 64
// concurrent writers: each put is fsynced before it returns, and concurrent
// puts share commits.
func BenchmarkPutDurable(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			db := open(b, filepath.Join(b.TempDir(), "bench.db"))
			ctx := context.Background()
			val := make([]byte, 256)
			var n atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			per := b.N / writers
			if per == 0 {
				per = 1
			}
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := 0; i < per; i++ {
						k := fmt.Sprintf("w%d/%d", w, n.Add(1))
						if err := db.Put(ctx, &storage.Entry{Key: k, Value: val}); err != nil {
							b.Error(err)
							return
						}
					}
				}(w)
			}
			wg.Wait()
			b.ReportMetric(float64(per*writers)/b.Elapsed().Seconds(), "puts/s")
		})
	}
}

func BenchmarkGet(b *testing.B) {
	db := open(b, filepath.Join(b.TempDir(), "bench.db"))
	ctx := context.Background()
	for i := 0; i < 1000; i++ {
		if err := db.Put(ctx, &storage.Entry{Key: fmt.Sprintf("k%d", i), Value: make([]byte, 256)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := db.Get(ctx, fmt.Sprintf("k%d", i%1000)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
