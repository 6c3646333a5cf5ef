package barrier

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/coffer-dev/coffer/internal/storage"
	"github.com/coffer-dev/coffer/internal/storage/bolt"
)

// encodings returns the forms in which secret could show up in a file if
// something stored it unencrypted: raw, hex, and standard and URL base64 at
// each of the three alignments it can take inside a longer encoded string.
func encodings(secret []byte) [][]byte {
	out := [][]byte{secret, []byte(hex.EncodeToString(secret)), bytes.ToUpper([]byte(hex.EncodeToString(secret)))}
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		for shift := range 3 {
			s := secret[shift:]
			// Only whole 3-byte groups encode the same whatever follows.
			full := enc.EncodeToString(s[:len(s)/3*3])
			out = append(out, []byte(full))
		}
	}
	return out
}

// TestCanariesNotInBoltFile writes 1,000 entries holding unique canaries
// through the barrier onto a bbolt file, closes it, and searches the file's
// bytes for every canary and every key in every encoding.
func TestCanariesNotInBoltFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "coffer.db")
	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := New(db, Options{})
	unseal, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Initialize(ctx, unseal); err != nil {
		t.Fatal(err)
	}
	if err := b.Unseal(ctx, unseal); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	canaries := make([][]byte, n)
	for i := range canaries {
		r := make([]byte, 12)
		if _, err := rand.Read(r); err != nil {
			t.Fatal(err)
		}
		canaries[i] = fmt.Appendf(nil, "CANARY-%04d-%x", i, r)
	}
	var wg sync.WaitGroup
	for w := range 10 {
		wg.Go(func() {
			// Half of each writer's entries by Put, half in one Batch.
			var ops []storage.Op
			for i := w * 100; i < (w+1)*100; i++ {
				e := &storage.Entry{Key: fmt.Sprintf("secret/data/app%d", i), Value: fmt.Appendf(nil, `{"password":%q}`, canaries[i])}
				if i%2 == 0 {
					ops = append(ops, storage.Op{Kind: storage.OpPut, Entry: e})
					continue
				}
				if err := b.Put(ctx, e); err != nil {
					t.Errorf("Put: %v", err)
					return
				}
			}
			if err := b.Batch(ctx, ops); err != nil {
				t.Errorf("Batch: %v", err)
			}
		})
		if w == 5 {
			wg.Wait()
			if _, err := b.Rotate(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
	keys := map[string][]byte{"unseal key": unseal.Bytes(), "root key": bytes.Clone(b.root)}
	for id, tm := range b.terms {
		keys[fmt.Sprintf("term %d key", id)] = bytes.Clone(tm.key)
	}
	if len(keys) != 4 {
		t.Fatalf("%d keys to look for, want 4", len(keys))
	}
	// Everything must have been readable before it is looked for.
	for i, c := range canaries {
		e, err := b.Get(ctx, fmt.Sprintf("secret/data/app%d", i))
		if err != nil || !bytes.Contains(e.Value, c) {
			t.Fatalf("Get(app%d) = %v", i, err)
		}
	}
	// Positive control: a plaintext written around the barrier, base64
	// encoded at an odd offset, must be found.
	control := []byte("CONTROL-written-around-the-barrier")
	raw := "x" + base64.StdEncoding.EncodeToString(append([]byte("ab"), control...))
	if err := db.Put(ctx, &storage.Entry{Key: "control", Value: []byte(raw)}); err != nil {
		t.Fatal(err)
	}
	b.Seal()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(file, []byte("logical/secret/data/app999")) {
		t.Fatal("the file does not hold the entries (keys are stored in the clear, so this one should be found)")
	}
	found := false
	for _, enc := range encodings(control) {
		found = found || bytes.Contains(file, enc)
	}
	if !found {
		t.Fatal("the search missed the control plaintext")
	}
	hits := 0
	for i, c := range canaries {
		for _, enc := range encodings(c) {
			if bytes.Contains(file, enc) {
				hits++
				t.Errorf("canary %d found in the file as %q", i, enc)
			}
		}
	}
	for name, k := range keys {
		for _, enc := range encodings(k) {
			if bytes.Contains(file, enc) {
				hits++
				t.Errorf("%s found in the file", name)
			}
		}
	}
	t.Logf("searched %d bytes for %d canaries and %d keys in %d encodings each: %d hits", len(file), n, len(keys), len(encodings(canaries[0])), hits)
}
