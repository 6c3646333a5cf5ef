package barrier_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/coffer-dev/coffer/internal/barrier"
	"github.com/coffer-dev/coffer/internal/storage"
	"github.com/coffer-dev/coffer/internal/storage/inmem"
)

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	s := inmem.New()
	b := barrier.New(s, barrier.Options{CheckpointInterval: 7})
	if !b.Sealed() {
		t.Fatal("new barrier: Sealed() = false")
	}
	if init, err := b.Initialized(ctx); err != nil || init {
		t.Fatalf("Initialized() = %t, %v, want false", init, err)
	}
	k := newKey(t)
	if err := b.Unseal(ctx, k); !errors.Is(err, barrier.ErrNotInitialized) {
		t.Fatalf("Unseal before Initialize = %v, want ErrNotInitialized", err)
	}
	if err := b.Initialize(ctx, barrier.Key{}); !errors.Is(err, barrier.ErrInvalidKey) {
		t.Fatalf("Initialize(zero key) = %v, want ErrInvalidKey", err)
	}
	if err := b.Initialize(ctx, k); err != nil {
		t.Fatalf("Initialize: %v", err)
	}
	if init, err := b.Initialized(ctx); err != nil || !init {
		t.Fatalf("Initialized() after Initialize = %t, %v, want true", init, err)
	}
	if !b.Sealed() {
		t.Fatal("Initialize unsealed the barrier")
	}
	if err := b.Initialize(ctx, newKey(t)); !errors.Is(err, barrier.ErrAlreadyInitialized) {
		t.Fatalf("second Initialize = %v, want ErrAlreadyInitialized", err)
	}
	raw, err := s.List(ctx, "")
	if diff := cmp.Diff([]string{"core/"}, raw); err != nil || diff != "" {
		t.Fatalf("raw keys after Initialize (-want +got):\n%s %v", diff, err)
	}
	raw, err = s.List(ctx, "core/")
	if diff := cmp.Diff([]string{"keyring", "root-key"}, raw); err != nil || diff != "" {
		t.Fatalf("raw core/ keys (-want +got):\n%s %v", diff, err)
	}

	wrong := newKey(t)
	err = b.Unseal(ctx, wrong)
	if !errors.Is(err, barrier.ErrInvalidKey) {
		t.Fatalf("Unseal(wrong key) = %v, want ErrInvalidKey", err)
	}
	if err.Error() != barrier.ErrInvalidKey.Error() {
		t.Errorf("Unseal(wrong key) = %q, want exactly %q (no detail on which step failed)", err, barrier.ErrInvalidKey)
	}
	if err := b.Unseal(ctx, barrier.Key{}); !errors.Is(err, barrier.ErrInvalidKey) {
		t.Fatalf("Unseal(zero key) = %v, want ErrInvalidKey", err)
	}
	if !b.Sealed() {
		t.Fatal("a wrong key unsealed the barrier")
	}
	if err := b.Unseal(ctx, k); err != nil {
		t.Fatalf("Unseal: %v", err)
	}
	if b.Sealed() {
		t.Fatal("Sealed() = true after Unseal")
	}
	if err := b.Unseal(ctx, wrong); err != nil {
		t.Errorf("Unseal when unsealed = %v, want nil", err)
	}
	info, err := b.KeyStatus()
	if err != nil || info.Term != 1 || info.Encryptions != 7 || info.InstallTime.IsZero() {
		t.Errorf("KeyStatus() = %+v, %v, want term 1 with 7 encryptions (the unseal margin)", info, err)
	}
	put(t, b, "a", []byte("1"))
	b.Seal()
	b.Seal() // idempotent
	if !b.Sealed() {
		t.Fatal("Sealed() = false after Seal")
	}
	if err := b.Unseal(ctx, k); err != nil {
		t.Fatalf("Unseal after Seal: %v", err)
	}
	if e, err := b.Get(ctx, "a"); err != nil || string(e.Value) != "1" {
		t.Fatalf("Get after Seal/Unseal = %v, %v", e, err)
	}
}

func TestTamperedCoreEntries(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		path string
		want error
	}{
		// Whether the key is wrong or the wrapped root key was modified,
		// AES-GCM only says "no".
		{"core/root-key", barrier.ErrInvalidKey},
		{"core/keyring", barrier.ErrCorrupt},
	} {
		t.Run(tc.path, func(t *testing.T) {
			s := inmem.New()
			b, k := unsealed(t, s, barrier.Options{})
			b.Seal()
			v := rawGet(t, s, tc.path)
			v[len(v)-1] ^= 1
			if err := s.Put(ctx, &storage.Entry{Key: tc.path, Value: v}); err != nil {
				t.Fatal(err)
			}
			if err := b.Unseal(ctx, k); !errors.Is(err, tc.want) {
				t.Errorf("Unseal with modified %s = %v, want %v", tc.path, err, tc.want)
			}
			if !b.Sealed() {
				t.Error("barrier unsealed with a modified core entry")
			}
		})
	}
	t.Run("keyring missing", func(t *testing.T) {
		s := inmem.New()
		b, k := unsealed(t, s, barrier.Options{})
		b.Seal()
		if err := s.Delete(ctx, "core/keyring"); err != nil {
			t.Fatal(err)
		}
		if err := b.Unseal(ctx, k); !errors.Is(err, barrier.ErrCorrupt) {
			t.Errorf("Unseal without keyring = %v, want ErrCorrupt", err)
		}
	})
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	values := []struct {
		name, key string
		value     []byte
	}{
		{"empty", "empty", []byte{}},
		{"text", "secret/data/app", []byte(`{"password":"hunter2"}`)},
		{"binary", "bin/zeros\xff", make([]byte, 300)},
		{"large", "big/one", bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16)},
		{"utf-8 key", "kv/ключ/ünï", []byte("v")},
		{"dots", "a.b/.c./d.", []byte("single dots are fine")},
	}
	for name, newBackend := range backends() {
		t.Run(name, func(t *testing.T) {
			s := newBackend(t)
			b, k := unsealed(t, s, barrier.Options{})
			for _, v := range values {
				put(t, b, v.key, v.value)
			}
			check := func(b *barrier.Barrier) {
				t.Helper()
				for _, v := range values {
					e, err := b.Get(ctx, v.key)
					if err != nil {
						t.Fatalf("Get(%s) = %v", v.name, err)
					}
					if e.Key != v.key || !bytes.Equal(e.Value, v.value) {
						t.Errorf("Get(%s) = %q with %d bytes, want %q with %d", v.name, e.Key, len(e.Value), v.key, len(v.value))
					}
					if bytes.Contains(rawGet(t, s, "logical/"+v.key), v.value) && len(v.value) > 8 {
						t.Errorf("raw entry for %s contains its plaintext", v.name)
					}
				}
			}
			check(b)
			// A second barrier over the same storage reads the same data.
			b2 := barrier.New(s, barrier.Options{})
			if err := b2.Unseal(ctx, k); err != nil {
				t.Fatal(err)
			}
			check(b2)

			if _, err := b.Get(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Get(missing) = %v, want storage.ErrNotFound", err)
			}
			got, err := b.List(ctx, "")
			if diff := cmp.Diff([]string{"a.b/", "big/", "bin/", "empty", "kv/", "secret/"}, got); err != nil || diff != "" {
				t.Errorf("List(\"\") (-want +got):\n%s %v", diff, err)
			}
			got, err = b.List(ctx, "secret/")
			if diff := cmp.Diff([]string{"data/"}, got); err != nil || diff != "" {
				t.Errorf("List(secret/) (-want +got):\n%s %v", diff, err)
			}
			if err := b.Delete(ctx, "empty"); err != nil {
				t.Fatal(err)
			}
			if err := b.Delete(ctx, "empty"); err != nil {
				t.Errorf("Delete(absent) = %v, want nil", err)
			}
			if _, err := b.Get(ctx, "empty"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Get after Delete = %v, want storage.ErrNotFound", err)
			}
			err = b.Batch(ctx, []storage.Op{
				{Kind: storage.OpPut, Entry: &storage.Entry{Key: "batch/1", Value: []byte("one")}},
				{Kind: storage.OpPut, Entry: &storage.Entry{Key: "batch/2", Value: []byte("two")}},
				{Kind: storage.OpDelete, Entry: &storage.Entry{Key: "big/one"}},
			})
			if err != nil {
				t.Fatalf("Batch: %v", err)
			}
			for key, want := range map[string]string{"batch/1": "one", "batch/2": "two"} {
				if e, err := b.Get(ctx, key); err != nil || string(e.Value) != want {
					t.Errorf("Get(%s) after Batch = %v, %v, want %q", key, e, err, want)
				}
			}
			if _, err := b.Get(ctx, "big/one"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Get(big/one) after Batch delete = %v, want storage.ErrNotFound", err)
			}
			// Nothing is written when a batch is refused.
			err = b.Batch(ctx, []storage.Op{
				{Kind: storage.OpPut, Entry: &storage.Entry{Key: "batch/3", Value: []byte("three")}},
				{Kind: storage.OpPut, Entry: &storage.Entry{Key: "../escape", Value: []byte("x")}},
			})
			if !errors.Is(err, barrier.ErrBadPath) {
				t.Errorf("Batch with a bad key = %v, want ErrBadPath", err)
			}
			if _, err := b.Get(ctx, "batch/3"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("refused Batch wrote batch/3: Get = %v", err)
			}
		})
	}
}

func TestSealedOperations(t *testing.T) {
	ctx := context.Background()
	never := barrier.New(inmem.New(), barrier.Options{})
	sealed, _ := unsealed(t, inmem.New(), barrier.Options{})
	put(t, sealed, "a", []byte("x"))
	sealed.Seal()
	ops := map[string]func(b *barrier.Barrier) error{
		"Get":    func(b *barrier.Barrier) error { _, err := b.Get(ctx, "a"); return err },
		"Put":    func(b *barrier.Barrier) error { return b.Put(ctx, &storage.Entry{Key: "a", Value: []byte("y")}) },
		"Delete": func(b *barrier.Barrier) error { return b.Delete(ctx, "a") },
		"List":   func(b *barrier.Barrier) error { _, err := b.List(ctx, ""); return err },
		"Batch": func(b *barrier.Barrier) error {
			return b.Batch(ctx, []storage.Op{{Kind: storage.OpDelete, Entry: &storage.Entry{Key: "a"}}})
		},
		"Rotate":    func(b *barrier.Barrier) error { _, err := b.Rotate(ctx); return err },
		"KeyStatus": func(b *barrier.Barrier) error { _, err := b.KeyStatus(); return err },
		// A bad key on a sealed barrier is still "sealed".
		"Get bad key": func(b *barrier.Barrier) error { _, err := b.Get(ctx, "/a"); return err },
	}
	for name, op := range ops {
		for bname, b := range map[string]*barrier.Barrier{"never unsealed": never, "sealed": sealed} {
			if err := op(b); !errors.Is(err, barrier.ErrSealed) {
				t.Errorf("%s on %s barrier = %v, want ErrSealed", name, bname, err)
			}
		}
	}
}

func TestBadKeys(t *testing.T) {
	ctx := context.Background()
	b, _ := unsealed(t, inmem.New(), barrier.Options{})
	bad := []string{"", "/a", "..", "a/../b", "a/..", "../a", "a..b", "a\x00b", "a\nb", "a\tb", "\x7f", "a\x1fb"}
	for _, key := range bad {
		t.Run(fmt.Sprintf("%q", key), func(t *testing.T) {
			if _, err := b.Get(ctx, key); !errors.Is(err, barrier.ErrBadPath) {
				t.Errorf("Get(%q) = %v, want ErrBadPath", key, err)
			}
			if err := b.Put(ctx, &storage.Entry{Key: key, Value: []byte("v")}); !errors.Is(err, barrier.ErrBadPath) {
				t.Errorf("Put(%q) = %v, want ErrBadPath", key, err)
			}
			if err := b.Delete(ctx, key); !errors.Is(err, barrier.ErrBadPath) {
				t.Errorf("Delete(%q) = %v, want ErrBadPath", key, err)
			}
			if err := b.Batch(ctx, []storage.Op{{Kind: storage.OpPut, Entry: &storage.Entry{Key: key}}}); !errors.Is(err, barrier.ErrBadPath) {
				t.Errorf("Batch(put %q) = %v, want ErrBadPath", key, err)
			}
			if _, err := b.List(ctx, key); key != "" && !errors.Is(err, barrier.ErrBadPath) {
				t.Errorf("List(%q) = %v, want ErrBadPath", key, err)
			}
		})
	}
	if err := b.Put(ctx, nil); !errors.Is(err, barrier.ErrBadPath) {
		t.Errorf("Put(nil) = %v, want ErrBadPath", err)
	}
	if err := b.Batch(ctx, []storage.Op{{Kind: storage.OpPut}}); !errors.Is(err, barrier.ErrBadPath) {
		t.Errorf("Batch(op without entry) = %v, want ErrBadPath", err)
	}
	if err := b.Batch(ctx, []storage.Op{{Kind: 99, Entry: &storage.Entry{Key: "a"}}}); err == nil {
		t.Error("Batch(unknown kind) = nil, want an error")
	}
}

// TestTamper flips bits at every position of a stored entry, truncates it
// to every shorter length and extends it: each read must fail with
// ErrCorrupt and never return a plaintext.
func TestTamper(t *testing.T) {
	ctx := context.Background()
	s := inmem.New()
	b, _ := unsealed(t, s, barrier.Options{})
	plaintext := []byte("tamper canary: the quick brown fox")
	put(t, b, "victim", plaintext)
	orig := rawGet(t, s, "logical/victim")
	read := func(raw []byte) error {
		t.Helper()
		if err := s.Put(ctx, &storage.Entry{Key: "logical/victim", Value: raw}); err != nil {
			t.Fatal(err)
		}
		e, err := b.Get(ctx, "victim")
		if e != nil {
			t.Fatalf("Get returned plaintext %q from a modified entry", e.Value)
		}
		var de *barrier.DecodeError
		if !errors.Is(err, barrier.ErrCorrupt) || !errors.As(err, &de) || de.Path != "victim" {
			t.Fatalf("Get(modified entry) = %v, want a *DecodeError for victim", err)
		}
		if strings.Contains(err.Error(), "quick brown") || strings.Contains(err.Error(), hex.EncodeToString(orig[17:25])) {
			t.Fatalf("error %q contains entry data", err)
		}
		return err
	}
	for i := range orig {
		for _, mask := range []byte{0x01, 0x80, 0xFF} {
			raw := bytes.Clone(orig)
			raw[i] ^= mask
			err := read(raw)
			var want error
			switch {
			case i < 4:
				want = barrier.ErrUnknownTerm // only term 1 exists
			case i == 4:
				want = barrier.ErrUnknownVersion
			default:
				want = barrier.ErrAuthentication
			}
			if !errors.Is(err, want) {
				t.Errorf("byte %d ^ %#02x: Get = %v, want %v", i, mask, err, want)
			}
		}
	}
	for n := range len(orig) {
		err := read(bytes.Clone(orig[:n]))
		if n < 33 && !errors.Is(err, barrier.ErrTruncated) {
			t.Errorf("truncated to %d bytes: Get = %v, want ErrTruncated", n, err)
		}
	}
	read(append(bytes.Clone(orig), 0))
	// The original still reads.
	if err := s.Put(ctx, &storage.Entry{Key: "logical/victim", Value: orig}); err != nil {
		t.Fatal(err)
	}
	if e, err := b.Get(ctx, "victim"); err != nil || !bytes.Equal(e.Value, plaintext) {
		t.Fatalf("Get(original) = %v, %v", e, err)
	}
}

// TestMove copies raw entries to other raw paths: none may decrypt there.
func TestMove(t *testing.T) {
	ctx := context.Background()
	s := inmem.New()
	b, _ := unsealed(t, s, barrier.Options{})
	put(t, b, "users/alice", []byte("alice's secret"))
	put(t, b, "users/bob", []byte("bob's secret"))
	tests := []struct {
		name     string
		from, to string
		want     error
	}{
		{"to a new path", "logical/users/alice", "logical/users/mallory", barrier.ErrAuthentication},
		{"over another entry", "logical/users/alice", "logical/users/bob", barrier.ErrAuthentication},
		{"to a longer path", "logical/users/alice", "logical/users/alice2", barrier.ErrAuthentication},
		{"to a parent", "logical/users/alice", "logical/users", barrier.ErrAuthentication},
		{"keyring into the logical namespace", "core/keyring", "logical/core/keyring", barrier.ErrUnknownTerm},
		{"root key into the logical namespace", "core/root-key", "logical/core/root-key", barrier.ErrUnknownTerm},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Put(ctx, &storage.Entry{Key: tc.to, Value: rawGet(t, s, tc.from)}); err != nil {
				t.Fatal(err)
			}
			key := strings.TrimPrefix(tc.to, "logical/")
			e, err := b.Get(ctx, key)
			if e != nil || !errors.Is(err, tc.want) || !errors.Is(err, barrier.ErrCorrupt) {
				t.Errorf("Get(%q) after copying %s there = %v, %v, want %v", key, tc.from, e, err, tc.want)
			}
		})
	}
	if e, err := b.Get(ctx, "users/alice"); err != nil || string(e.Value) != "alice's secret" {
		t.Errorf("Get(users/alice) = %v, %v", e, err)
	}
}

// TestHeaderChange rewrites the header of an entry to point at another
// existing term, or another version.
func TestHeaderChange(t *testing.T) {
	ctx := context.Background()
	s := inmem.New()
	b, _ := unsealed(t, s, barrier.Options{})
	put(t, b, "old", []byte("written under term 1"))
	if _, err := b.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	put(t, b, "new", []byte("written under term 2"))
	for _, tc := range []struct {
		name  string
		key   string
		index int
		value byte
		want  error
	}{
		{"term 2 -> 1", "new", 3, 1, barrier.ErrAuthentication},
		{"term 1 -> 2", "old", 3, 2, barrier.ErrAuthentication},
		{"term 2 -> 3", "new", 3, 3, barrier.ErrUnknownTerm},
		{"term 1 -> 0", "old", 3, 0, barrier.ErrUnknownTerm},
		{"version 1 -> 0", "new", 4, 0, barrier.ErrUnknownVersion},
		{"version 1 -> 2", "new", 4, 2, barrier.ErrUnknownVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := rawGet(t, s, "logical/"+tc.key)
			raw[tc.index] = tc.value
			if err := s.Put(ctx, &storage.Entry{Key: "logical/" + tc.key + "-changed", Value: raw}); err != nil {
				t.Fatal(err)
			}
			// Also at its own path: the header is authenticated too.
			raw2 := rawGet(t, s, "logical/"+tc.key)
			defer func() { _ = s.Put(ctx, &storage.Entry{Key: "logical/" + tc.key, Value: raw2}) }()
			raw2[tc.index] = tc.value
			if err := s.Put(ctx, &storage.Entry{Key: "logical/" + tc.key, Value: raw2}); err != nil {
				t.Fatal(err)
			}
			if e, err := b.Get(ctx, tc.key); e != nil || !errors.Is(err, tc.want) {
				t.Errorf("Get(%s with %s) = %v, %v, want %v", tc.key, tc.name, e, err, tc.want)
			}
		})
	}
}

func TestRotate(t *testing.T) {
	ctx := context.Background()
	s := inmem.New()
	b, k := unsealed(t, s, barrier.Options{CheckpointInterval: 10})
	put(t, b, "a", []byte("A"))
	before, err := b.KeyStatus()
	if err != nil {
		t.Fatal(err)
	}
	info, err := b.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Term != 2 || info.Encryptions != 0 || info.InstallTime.Before(before.InstallTime) {
		t.Errorf("Rotate() = %+v, want term 2, 0 encryptions, installed after term 1 (%v)", info, before.InstallTime)
	}
	put(t, b, "b", []byte("B"))
	if got := rawTerm(t, s, "logical/a"); got != 1 {
		t.Errorf("term of a = %d, want 1", got)
	}
	if got := rawTerm(t, s, "logical/b"); got != 2 {
		t.Errorf("term of b = %d, want 2", got)
	}
	status, err := b.KeyStatus()
	if err != nil || status.Term != 2 || status.Encryptions != 1 || !status.InstallTime.Equal(info.InstallTime) {
		t.Errorf("KeyStatus() = %+v, %v, want term 2 with 1 encryption", status, err)
	}
	// Rewriting an old entry moves it to the new term.
	put(t, b, "a", []byte("A2"))
	if got := rawTerm(t, s, "logical/a"); got != 2 {
		t.Errorf("term of rewritten a = %d, want 2", got)
	}
	put(t, b, "c", []byte("C"))
	if _, err := b.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	b.Seal()
	if err := b.Unseal(ctx, k); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"a": "A2", "b": "B", "c": "C"} {
		if e, err := b.Get(ctx, key); err != nil || string(e.Value) != want {
			t.Errorf("Get(%s) after rotations and Seal/Unseal = %v, %v, want %q", key, e, err, want)
		}
	}
	status, err = b.KeyStatus()
	if err != nil || status.Term != 3 || status.Encryptions != 10 {
		t.Errorf("KeyStatus() after Unseal = %+v, %v, want term 3 with 10 encryptions", status, err)
	}
}

// TestAutoRotation: with a threshold of 20 and checkpoints every 5, the
// first term (which starts at 5, Unseal's margin) takes 15 writes and every
// later one exactly 20.
func TestAutoRotation(t *testing.T) {
	s := inmem.New()
	b, _ := unsealed(t, s, barrier.Options{RotationThreshold: 20, CheckpointInterval: 5})
	var perTerm []int
	for i := range 100 {
		key := fmt.Sprintf("k/%03d", i)
		put(t, b, key, []byte(key))
		term := int(rawTerm(t, s, "logical/"+key))
		for len(perTerm) < term {
			perTerm = append(perTerm, 0)
		}
		if term != len(perTerm) {
			t.Fatalf("write %d used term %d after term %d", i, term, len(perTerm))
		}
		perTerm[term-1]++
	}
	if diff := cmp.Diff([]int{15, 20, 20, 20, 20, 5}, perTerm); diff != "" {
		t.Errorf("writes per term (-want +got):\n%s", diff)
	}
	info, err := b.KeyStatus()
	if err != nil || info.Term != 6 || info.Encryptions != 5 {
		t.Errorf("KeyStatus() = %+v, %v, want term 6 with 5 encryptions", info, err)
	}
	for i := range 100 {
		key := fmt.Sprintf("k/%03d", i)
		if e, err := b.Get(context.Background(), key); err != nil || string(e.Value) != key {
			t.Fatalf("Get(%s) = %v, %v", key, e, err)
		}
	}
}

// TestAutoRotationConcurrent: writers racing past the threshold rotate
// once per threshold, never twice in a row, and no term exceeds it.
func TestAutoRotationConcurrent(t *testing.T) {
	const (
		threshold = 50
		interval  = 10
		writers   = 8
		each      = 100
	)
	s := inmem.New()
	b, _ := unsealed(t, s, barrier.Options{RotationThreshold: threshold, CheckpointInterval: interval})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := b.Put(context.Background(), &storage.Entry{Key: fmt.Sprintf("w%d/%d", w, i), Value: []byte("v")}); err != nil {
					t.Errorf("Put: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	perTerm := map[uint32]int{}
	for w := range writers {
		for i := range each {
			perTerm[rawTerm(t, s, fmt.Sprintf("logical/w%d/%d", w, i))]++
		}
	}
	info, err := b.KeyStatus()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for term := uint32(1); term <= info.Term; term++ {
		n := perTerm[term]
		total += n
		switch {
		case n > threshold:
			t.Errorf("term %d encrypted %d entries, above the threshold %d", term, n, threshold)
		case term == 1 && n != threshold-interval:
			t.Errorf("term 1 encrypted %d entries, want %d", n, threshold-interval)
		case term > 1 && term < info.Term && n != threshold:
			t.Errorf("term %d encrypted %d entries, want %d (a rotation storm retires terms early)", term, n, threshold)
		}
	}
	if total != writers*each {
		t.Errorf("found %d entries in terms 1..%d, want %d", total, info.Term, writers*each)
	}
	if want := uint32((writers*each+interval)/threshold + 1); info.Term != want {
		t.Errorf("active term = %d, want %d", info.Term, want)
	}
}

// TestCounterSurvivesSealAndCrash: the count is exact across Seal/Unseal
// plus Unseal's margin, and after a crash (no Seal) it is never below the
// encryptions really performed.
func TestCounterSurvivesSealAndCrash(t *testing.T) {
	ctx := context.Background()
	s := inmem.New()
	opts := barrier.Options{CheckpointInterval: 10}
	b, k := unsealed(t, s, opts)
	status := func(b *barrier.Barrier) uint64 {
		t.Helper()
		info, err := b.KeyStatus()
		if err != nil {
			t.Fatal(err)
		}
		return info.Encryptions
	}
	if got := status(b); got != 10 {
		t.Fatalf("count after first Unseal = %d, want 10 (margin)", got)
	}
	for i := range 25 {
		put(t, b, fmt.Sprint(i), nil)
	}
	if got := status(b); got != 35 {
		t.Fatalf("count after 25 writes = %d, want 35", got)
	}
	b.Seal()
	if err := b.Unseal(ctx, k); err != nil {
		t.Fatal(err)
	}
	if got := status(b); got != 45 {
		t.Fatalf("count after Seal/Unseal = %d, want 35 + 10", got)
	}
	for i := range 7 {
		put(t, b, fmt.Sprint(i), nil)
	}
	performed := status(b) // 52
	// Crash: b is abandoned without Seal; a new process unseals.
	b2 := barrier.New(s, opts)
	if err := b2.Unseal(ctx, k); err != nil {
		t.Fatal(err)
	}
	if got := status(b2); got < performed || got != 55 {
		t.Errorf("count after crash = %d, want 55 (last checkpoint 45 + 10), at least %d", got, performed)
	}
	// Crash again immediately, many times: the count only goes up.
	prev := status(b2)
	for range 5 {
		put(t, b2, "x", nil)
		b3 := barrier.New(s, opts)
		if err := b3.Unseal(ctx, k); err != nil {
			t.Fatal(err)
		}
		if got := status(b3); got <= prev {
			t.Fatalf("count after crash = %d, not above %d", got, prev)
		}
		prev, b2 = status(b3), b3
	}
}

// TestCheckpointFailure: when the count cannot be written, writes past the
// interval fail instead of outrunning the stored count.
func TestCheckpointFailure(t *testing.T) {
	ctx := context.Background()
	s := &failingBackend{Backend: inmem.New()}
	b, _ := unsealed(t, s, barrier.Options{CheckpointInterval: 3})
	// Unseal leaves the count at 3 (margin); this write stores 3, allowing
	// encryptions up to 6.
	put(t, b, "a", nil)
	s.failKeyring.Store(true)
	for i := range 2 {
		put(t, b, fmt.Sprint("b", i), nil)
	}
	if err := b.Put(ctx, &storage.Entry{Key: "c", Value: nil}); err == nil {
		t.Fatal("Put succeeded although the count could not be written")
	}
	if _, err := b.Rotate(ctx); err == nil {
		t.Fatal("Rotate succeeded although the keyring could not be written")
	}
	if info, err := b.KeyStatus(); err != nil || info.Term != 1 {
		t.Errorf("KeyStatus() after a failed Rotate = %+v, %v, want term 1", info, err)
	}
	s.failKeyring.Store(false)
	put(t, b, "c", nil)
}

func TestConcurrentSealAndWrites(t *testing.T) {
	ctx := context.Background()
	s := inmem.New()
	b, k := unsealed(t, s, barrier.Options{RotationThreshold: 40, CheckpointInterval: 7})
	var (
		wg            sync.WaitGroup
		mu            sync.Mutex
		written       = map[string]string{}
		ops, refusals atomic.Int64
	)
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key, val := fmt.Sprintf("w%d/%d", w, i%20), fmt.Sprintf("%d-%d", w, i)
				var err error
				switch i % 4 {
				case 0, 1:
					err = b.Put(ctx, &storage.Entry{Key: key, Value: []byte(val)})
				case 2:
					err = b.Batch(ctx, []storage.Op{{Kind: storage.OpPut, Entry: &storage.Entry{Key: key, Value: []byte(val)}}})
				case 3:
					_, err = b.Get(ctx, key)
					if errors.Is(err, storage.ErrNotFound) {
						err = nil
					}
				}
				ops.Add(1)
				if errors.Is(err, barrier.ErrSealed) {
					refusals.Add(1)
					runtime.Gosched()
				} else if err != nil {
					t.Errorf("op %d: %v", i%4, err)
					return
				}
				if err == nil && i%4 < 3 {
					mu.Lock()
					written[key] = val
					mu.Unlock()
				}
			}
		})
	}
	// Seal, unseal and rotate until the writers have done plenty of work
	// around them.
	for i := 0; i < 30 || ops.Load()-refusals.Load() < 2000; i++ {
		b.Seal()
		runtime.Gosched()
		if err := b.Unseal(ctx, k); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			if _, err := b.Rotate(ctx); err != nil {
				t.Fatal(err)
			}
		}
		runtime.Gosched()
	}
	close(stop)
	wg.Wait()
	t.Logf("%d operations, %d refused as sealed, %d keys written", ops.Load(), refusals.Load(), len(written))
	if len(written) == 0 {
		t.Fatal("no write succeeded")
	}
	for key, want := range written {
		if e, err := b.Get(ctx, key); err != nil || string(e.Value) != want {
			t.Errorf("Get(%s) = %v, %v, want %q", key, e, err, want)
		}
	}
}
