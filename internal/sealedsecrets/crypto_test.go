package sealedsecrets_test

import (
	"bytes"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/coffer-dev/coffer/internal/sealedsecrets"
	"github.com/coffer-dev/coffer/internal/sealedsecrets/sealedsecretstest"
)

func TestEncryptDecryptRoundTrip(t *testing.T) {
	k := sealedsecretstest.Key(t, "key")
	for _, pt := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte{0, 0xff}, 5000)} {
		label := []byte("team-a/db")
		blob, err := sealedsecrets.Encrypt(k.Public(), pt, label)
		if err != nil {
			t.Fatal(err)
		}
		// Layout: 2-byte length, 512-byte RSA ciphertext, value, 16-byte tag.
		if got, want := len(blob), 2+512+len(pt)+16; got != want {
			t.Errorf("len(blob) = %d, want %d", got, want)
		}
		if n := int(blob[0])<<8 | int(blob[1]); n != 512 {
			t.Errorf("RSA length prefix = %d, want 512", n)
		}
		got, err := sealedsecrets.Decrypt([]*sealedsecrets.Key{k}, blob, label)
		if err != nil {
			t.Fatalf("Decrypt: %v", err)
		}
		if !bytes.Equal(got, pt) {
			t.Errorf("Decrypt = %q, want %q", got, pt)
		}
	}
}

func TestEncryptIsRandomized(t *testing.T) {
	k := sealedsecretstest.Key(t, "key2")
	a, _ := sealedsecrets.Encrypt(k.Public(), []byte("same"), nil)
	b, _ := sealedsecrets.Encrypt(k.Public(), []byte("same"), nil)
	if bytes.Equal(a, b) {
		t.Fatal("two encryptions of one value are identical")
	}
}

// Every failure reads the same, whatever its cause.
func TestDecryptFailuresAreIdentical(t *testing.T) {
	k1 := sealedsecretstest.Key(t, "key")
	k2 := sealedsecretstest.Key(t, "key2")
	label := []byte("ns/name")
	good, err := sealedsecrets.Encrypt(k1.Public(), []byte("secret value"), label)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 1
		return b
	}
	cases := []struct {
		name  string
		keys  []*sealedsecrets.Key
		blob  []byte
		label []byte
	}{
		{"wrong label", []*sealedsecrets.Key{k1}, good, []byte("ns/other")},
		{"wider label", []*sealedsecrets.Key{k1}, good, []byte("ns")},
		{"empty label", []*sealedsecrets.Key{k1}, good, nil},
		{"wrong key", []*sealedsecrets.Key{k2}, good, label},
		{"no keys", nil, good, label},
		{"flipped RSA byte", []*sealedsecrets.Key{k1}, flip(10), label},
		{"flipped AES byte", []*sealedsecrets.Key{k1}, flip(len(good) - 20), label},
		{"flipped tag byte", []*sealedsecrets.Key{k1}, flip(len(good) - 1), label},
		{"truncated tag", []*sealedsecrets.Key{k1}, good[:len(good)-1], label},
		{"truncated RSA", []*sealedsecrets.Key{k1}, good[:300], label},
		{"length prefix only", []*sealedsecrets.Key{k1}, good[:2], label},
		{"one byte", []*sealedsecrets.Key{k1}, good[:1], label},
		{"empty", []*sealedsecrets.Key{k1}, nil, label},
		{"zero length prefix", []*sealedsecrets.Key{k1}, append([]byte{0, 0}, good[2:]...), label},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pt, err := sealedsecrets.Decrypt(tc.keys, tc.blob, tc.label)
			if err == nil {
				t.Fatalf("Decrypt = %q, want an error", pt)
			}
			if err.Error() != "no key could decrypt secret" {
				t.Errorf("Decrypt error = %q, want the generic message", err)
			}
			if !errors.Is(err, sealedsecrets.ErrDecrypt) {
				t.Errorf("errors.Is(%v, ErrDecrypt) = false", err)
			}
		})
	}
	if _, err := sealedsecrets.DecryptString([]*sealedsecrets.Key{k1}, "%%%not base64", label); err == nil || err.Error() != "no key could decrypt secret" {
		t.Errorf("DecryptString(bad base64) error = %v, want the generic message", err)
	}
}

// The per-key failures stay reachable for debugging.
func TestDecryptErrorKeepsCauses(t *testing.T) {
	k1 := sealedsecretstest.Key(t, "key")
	blob, _ := sealedsecrets.Encrypt(k1.Public(), []byte("v"), []byte("a"))
	_, err := sealedsecrets.Decrypt([]*sealedsecrets.Key{k1}, blob, []byte("b"))
	if !errors.Is(err, rsa.ErrDecryption) {
		t.Errorf("errors.Is(err, rsa.ErrDecryption) = false for a wrong label: %#v", err)
	}
	_, err = sealedsecrets.Decrypt([]*sealedsecrets.Key{k1}, []byte{1}, nil)
	var pe *sealedsecrets.ParseError
	if !errors.As(err, &pe) {
		t.Errorf("errors.As(err, *ParseError) = false for a 1-byte blob")
	}
}

// Decryption tries every key: the one that sealed may be anywhere.
func TestDecryptTriesEveryKey(t *testing.T) {
	k1 := sealedsecretstest.Key(t, "key")
	k2 := sealedsecretstest.Key(t, "key2")
	for _, sealer := range []*sealedsecrets.Key{k1, k2} {
		blob, _ := sealedsecrets.Encrypt(sealer.Public(), []byte("v"), nil)
		for _, order := range [][]*sealedsecrets.Key{{k1, k2}, {k2, k1}} {
			if pt, err := sealedsecrets.Decrypt(order, blob, nil); err != nil || string(pt) != "v" {
				t.Errorf("Decrypt = %q, %v; want \"v\"", pt, err)
			}
		}
	}
}

type rawVector struct {
	Scope        string `json:"scope"`
	Namespace    string `json:"namespace"`
	Name         string `json:"name"`
	PlaintextB64 string `json:"plaintext_b64"`
	Blob         string `json:"blob"`
}

// Vectors made by the real kubeseal v0.27.1 with --raw and testdata's
// cert.pem (see testdata/README.md) open here, under their label only.
func TestKubesealRawVectors(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "kubeseal-raw-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vs []rawVector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 5 {
		t.Fatalf("only %d vectors", len(vs))
	}
	keys := []*sealedsecrets.Key{sealedsecretstest.Key(t, "key2"), sealedsecretstest.Key(t, "key")}
	for i, v := range vs {
		scope, err := sealedsecrets.ParseScope(v.Scope)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := base64.StdEncoding.DecodeString(v.PlaintextB64)
		label := sealedsecrets.Label(v.Namespace, v.Name, scope)
		got, err := sealedsecrets.DecryptString(keys, v.Blob, label)
		if err != nil {
			t.Errorf("vector %d (%s %s/%s): %v", i, v.Scope, v.Namespace, v.Name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("vector %d = %q, want %q", i, got, want)
		}
		if scope != sealedsecrets.ScopeClusterWide {
			if _, err := sealedsecrets.DecryptString(keys, v.Blob, sealedsecrets.Label(v.Namespace+"x", v.Name, scope)); err == nil {
				t.Errorf("vector %d opened in another namespace", i)
			}
		}
	}
}

func TestLabelsAndScopes(t *testing.T) {
	cases := []struct {
		ann   map[string]string
		scope sealedsecrets.Scope
		label string
	}{
		{nil, sealedsecrets.ScopeStrict, "ns/n"},
		{map[string]string{sealedsecrets.AnnotationNamespaceWide: "true"}, sealedsecrets.ScopeNamespaceWide, "ns"},
		{map[string]string{sealedsecrets.AnnotationClusterWide: "true"}, sealedsecrets.ScopeClusterWide, ""},
		{map[string]string{sealedsecrets.AnnotationClusterWide: "true", sealedsecrets.AnnotationNamespaceWide: "true"}, sealedsecrets.ScopeClusterWide, ""},
		{map[string]string{sealedsecrets.AnnotationClusterWide: "True"}, sealedsecrets.ScopeStrict, "ns/n"},
		{map[string]string{sealedsecrets.AnnotationNamespaceWide: "false", sealedsecrets.AnnotationClusterWide: "yes"}, sealedsecrets.ScopeStrict, "ns/n"},
	}
	for _, tc := range cases {
		s := sealedsecrets.ScopeOf(tc.ann)
		if s != tc.scope {
			t.Errorf("ScopeOf(%v) = %v, want %v", tc.ann, s, tc.scope)
		}
		if got := string(sealedsecrets.Label("ns", "n", s)); got != tc.label {
			t.Errorf("Label(ns, n, %v) = %q, want %q", s, got, tc.label)
		}
		p, err := sealedsecrets.ParseScope(s.String())
		if err != nil || p != s {
			t.Errorf("ParseScope(%q) = %v, %v", s.String(), p, err)
		}
	}
	if _, err := sealedsecrets.ParseScope("global"); err == nil {
		t.Error("ParseScope(global) succeeded")
	}
}

func BenchmarkDecrypt4096(b *testing.B) {
	k := sealedsecretstest.Key(b, "key")
	blob, _ := sealedsecrets.Encrypt(k.Public(), []byte("password"), []byte("ns/n"))
	keys := []*sealedsecrets.Key{k}
	b.ResetTimer()
	for b.Loop() {
		if _, err := sealedsecrets.Decrypt(keys, blob, []byte("ns/n")); err != nil {
			b.Fatal(err)
		}
	}
}
