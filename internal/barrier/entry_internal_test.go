package barrier

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/coffer-dev/coffer/internal/storage"
	"github.com/coffer-dev/coffer/internal/storage/inmem"
)

type vector struct {
	Name      string `json:"name"`
	Key       string `json:"key"`
	Term      uint32 `json:"term"`
	Path      string `json:"path"`
	Plaintext string `json:"plaintext"`
	Nonce     string `json:"nonce"`
	Entry     string `json:"entry"`
}

func (v vector) bytes(tb testing.TB, field string) []byte {
	tb.Helper()
	s := map[string]string{"key": v.Key, "plaintext": v.Plaintext, "nonce": v.Nonce, "entry": v.Entry}[field]
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatalf("vector %q: %s: %v", v.Name, field, err)
	}
	return b
}

func loadVectors(tb testing.TB) []vector {
	tb.Helper()
	raw, err := os.ReadFile("testdata/entry-vectors.json")
	if err != nil {
		tb.Fatal(err)
	}
	var doc struct{ Vectors []vector }
	if err := json.Unmarshal(raw, &doc); err != nil {
		tb.Fatal(err)
	}
	if len(doc.Vectors) == 0 {
		tb.Fatal("no vectors in testdata/entry-vectors.json")
	}
	return doc.Vectors
}

// withKeyring returns an unsealed barrier over s whose keyring holds the
// given term keys (a test hook: production code installs keys only through
// Unseal).
func withKeyring(tb testing.TB, s storage.Backend, keys map[uint32][]byte, active uint32) *Barrier {
	tb.Helper()
	b := New(s, Options{})
	b.terms = map[uint32]*term{}
	for id, k := range keys {
		aead, err := newAEAD(k)
		if err != nil {
			tb.Fatal(err)
		}
		b.terms[id] = &term{id: id, key: bytes.Clone(k), aead: aead}
	}
	b.active = b.terms[active]
	b.root = make([]byte, KeySize)
	b.rootAEAD, _ = newAEAD(b.root)
	b.limit = b.opts.CheckpointInterval
	b.sealed = false
	return b
}

func TestEntryVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			aead, err := newAEAD(v.bytes(t, "key"))
			if err != nil {
				t.Fatal(err)
			}
			want := v.bytes(t, "entry")
			// The test hook: the vector's nonce where encryptEntry puts
			// a random one.
			out := append(make([]byte, headerSize), v.bytes(t, "nonce")...)
			got := sealInto(aead, out, v.Term, v.Path, v.bytes(t, "plaintext"))
			if !bytes.Equal(got, want) {
				t.Errorf("sealInto(%q) = %x, want %x", v.Path, got, want)
			}
			id, err := entryTerm(v.Path, want)
			if err != nil || id != v.Term {
				t.Fatalf("entryTerm(%q) = %d, %v, want %d", v.Path, id, err, v.Term)
			}
			pt, err := openEntry(aead, v.Path, bytes.Clone(want)) // decrypts in place
			if err != nil || !bytes.Equal(pt, v.bytes(t, "plaintext")) {
				t.Errorf("openEntry(%q) = %x, %v, want %x", v.Path, pt, err, v.bytes(t, "plaintext"))
			}
			if v.Term == coreTerm {
				return
			}
			// The whole read path: raw storage -> Get.
			s := inmem.New()
			ctx := context.Background()
			if err := s.Put(ctx, &storage.Entry{Key: "logical/" + v.Path, Value: want}); err != nil {
				t.Fatal(err)
			}
			b := withKeyring(t, s, map[uint32][]byte{v.Term: v.bytes(t, "key")}, v.Term)
			e, err := b.Get(ctx, v.Path)
			if err != nil || !bytes.Equal(e.Value, v.bytes(t, "plaintext")) {
				t.Errorf("Get(%q) = %v, want plaintext %x", v.Path, err, v.bytes(t, "plaintext"))
			}
		})
	}
}

// TestRootKeyVector opens the term-0 vector the way Unseal opens
// core/root-key.
func TestRootKeyVector(t *testing.T) {
	for _, v := range loadVectors(t) {
		if v.Path != rootKeyPath {
			continue
		}
		aead, err := newAEAD(v.bytes(t, "key"))
		if err != nil {
			t.Fatal(err)
		}
		root, err := unwrapRootKey(aead, v.bytes(t, "entry"))
		if err != nil || !bytes.Equal(root, v.bytes(t, "plaintext")) {
			t.Errorf("unwrapRootKey = %x, %v, want %x", root, err, v.bytes(t, "plaintext"))
		}
		other, _ := newAEAD(make([]byte, KeySize))
		if _, err := unwrapRootKey(other, v.bytes(t, "entry")); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("unwrapRootKey(wrong key) = %v, want ErrInvalidKey", err)
		}
		return
	}
	t.Fatal("no core/root-key vector")
}

// FuzzDecodeEntry feeds arbitrary entries and paths to the decoders. They
// must never panic, must fail with a *DecodeError, and may only succeed on
// an unmodified vector at its own path.
func FuzzDecodeEntry(f *testing.F) {
	vectors := loadVectors(f)
	keys := map[uint32][]byte{}
	valid := map[string]vector{}
	var coreKey []byte
	for _, v := range vectors {
		valid[v.Path+"\x00"+v.Entry] = v
		if v.Term == coreTerm {
			coreKey = v.bytes(f, "key")
			continue
		}
		keys[v.Term] = v.bytes(f, "key")
	}
	for _, v := range vectors {
		e := v.bytes(f, "entry")
		f.Add(e, v.Path)
		f.Add(e[:len(e)-1], v.Path)
		f.Add(e[:entryOverhead], v.Path)
		f.Add(e, v.Path+"x")
	}
	f.Add([]byte{}, "")
	f.Add(make([]byte, entryOverhead), "a")
	var active uint32
	for id := range keys {
		active = id
	}
	b := withKeyring(f, inmem.New(), keys, active)
	coreAEAD, err := newAEAD(coreKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte, path string) {
		check := func(what string, pt []byte, err error) {
			v, ok := valid[path+"\x00"+hex.EncodeToString(raw)]
			if err == nil {
				if !ok || !bytes.Equal(pt, v.bytes(t, "plaintext")) {
					t.Fatalf("%s(%q, %x) accepted a forged entry", what, path, raw)
				}
				return
			}
			var de *DecodeError
			if !errors.As(err, &de) || !errors.Is(err, ErrCorrupt) || de.Path != path {
				t.Fatalf("%s(%q, %x) = %v, want a *DecodeError for the path", what, path, raw, err)
			}
		}
		// The decoders work in place; the fuzzer's input must not change.
		pt, err := b.decrypt(path, bytes.Clone(raw))
		check("decrypt", pt, err)
		pt, err = openCoreEntry(coreAEAD, path, bytes.Clone(raw))
		check("openCoreEntry", pt, err)
	})
}

// TestSealZeroesKeys looks at the key bytes the barrier held after Seal.
func TestSealZeroesKeys(t *testing.T) {
	ctx := context.Background()
	b := New(inmem.New(), Options{})
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
	for range 2 {
		if _, err := b.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	held := [][]byte{b.root}
	for _, tm := range b.terms {
		held = append(held, tm.key)
	}
	if len(held) != 4 {
		t.Fatalf("holding %d keys, want root + 3 terms", len(held))
	}
	for i, k := range held {
		if len(k) != KeySize || bytes.Equal(k, make([]byte, KeySize)) {
			t.Fatalf("key %d before Seal: %d bytes, all zero = %t", i, len(k), bytes.Equal(k, make([]byte, KeySize)))
		}
	}
	b.Seal()
	for i, k := range held {
		if !bytes.Equal(k, make([]byte, KeySize)) {
			t.Errorf("key %d not zeroed by Seal", i)
		}
	}
	if b.root != nil || b.rootAEAD != nil || b.terms != nil || b.active != nil {
		t.Error("Seal left references to keys or ciphers")
	}
}
