package barrier_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"

	"github.com/coffer-dev/coffer/internal/barrier"
	"github.com/coffer-dev/coffer/internal/storage"
	"github.com/coffer-dev/coffer/internal/storage/inmem"
)

// The barrier benchmarks go through Put and Get on the in-memory backend;
// BenchmarkRawAESGCM is AES-256-GCM alone on the same sizes, so one run
// shows the barrier's overhead (docs/benchmarks.md).
var benchSizes = []int{1 << 10, 64 << 10}

func sizeName(n int) string { return fmt.Sprintf("%dKiB", n>>10) }

func BenchmarkBarrierEncrypt(b *testing.B) {
	ctx := context.Background()
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			bar, _ := unsealed(b, inmem.New(), barrier.Options{})
			e := &storage.Entry{Key: "secret/data/bench", Value: make([]byte, size)}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := bar.Put(ctx, e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// discardWrites drops logical writes, so BenchmarkBarrierEncryptDiscard
// measures the barrier without the in-memory backend's copy of each value.
type discardWrites struct{ storage.Backend }

func (d discardWrites) Put(ctx context.Context, e *storage.Entry) error {
	if strings.HasPrefix(e.Key, "logical/") {
		return nil
	}
	return d.Backend.Put(ctx, e)
}

func BenchmarkBarrierEncryptDiscard(b *testing.B) {
	ctx := context.Background()
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			bar, _ := unsealed(b, discardWrites{inmem.New()}, barrier.Options{})
			e := &storage.Entry{Key: "secret/data/bench", Value: make([]byte, size)}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := bar.Put(ctx, e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkBarrierDecrypt(b *testing.B) {
	ctx := context.Background()
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			bar, _ := unsealed(b, inmem.New(), barrier.Options{})
			put(b, bar, "secret/data/bench", make([]byte, size))
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bar.Get(ctx, "secret/data/bench"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRawAESGCM(b *testing.B) {
	key := make([]byte, 32)
	nonce := make([]byte, 12)
	if _, err := rand.Read(key); err != nil {
		b.Fatal(err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		b.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range benchSizes {
		plaintext := make([]byte, size)
		buf := make([]byte, 0, size+aead.Overhead())
		b.Run("Seal/"+sizeName(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				buf = aead.Seal(buf[:0], nonce, plaintext, nil)
			}
		})
		ciphertext := aead.Seal(nil, nonce, plaintext, nil)
		b.Run("Open/"+sizeName(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := aead.Open(buf[:0], nonce, ciphertext, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		// The same, with a fresh output buffer each time, as a store must
		// have: storage keeps what it is given.
		b.Run("SealAlloc/"+sizeName(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				buf = aead.Seal(nil, nonce, plaintext, nil)
			}
		})
		b.Run("OpenAlloc/"+sizeName(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := aead.Open(nil, nonce, ciphertext, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
