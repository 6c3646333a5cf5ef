package audit_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/coffer-dev/coffer/internal/audit"
)

func mustSalt(t testing.TB, hexKey string) audit.Salt {
	t.Helper()
	b, err := hex.DecodeString(hexKey)
	if err != nil {
		t.Fatal(err)
	}
	s, err := audit.SaltFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newSalt(t testing.TB) audit.Salt {
	t.Helper()
	s, err := audit.NewSalt()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The vectors were computed with an independent implementation:
//
//	printf 'my-secret-vault' | openssl dgst -sha256 -mac HMAC \
//	    -macopt hexkey:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
func TestSaltHashVectors(t *testing.T) {
	s := mustSalt(t, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	tests := []struct {
		name, in, want string
	}{
		{"audit-hash doc input", "my-secret-vault", "hmac-sha256:7976b9845df8ea4afb9fc2d4541a10815b897790d824678d02916a6769210089"},
		{"empty", "", "hmac-sha256:d38b42096d80f45f826b44a9d5607de72496a415d3f4a1a8c88e3bb9da8dc1cb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Hash(tt.in); got != tt.want {
				t.Errorf("Hash(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSaltDiffersAcrossDevices(t *testing.T) {
	a, b := newSalt(t), newSalt(t)
	if a.Equal(b) {
		t.Fatal("two NewSalt calls returned the same key")
	}
	if ha, hb := a.Hash("v"), b.Hash("v"); ha == hb {
		t.Errorf("Hash(%q) = %q under two different salts", "v", ha)
	}
	if h1, h2 := a.Hash("v"), a.Hash("v"); h1 != h2 {
		t.Errorf("Hash(%q) = %q then %q under one salt", "v", h1, h2)
	}
}

func TestSaltBytesRoundTrip(t *testing.T) {
	s := newSalt(t)
	b := s.Bytes()
	if len(b) != audit.SaltSize {
		t.Fatalf("len(Bytes()) = %d, want %d", len(b), audit.SaltSize)
	}
	r, err := audit.SaltFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Equal(s) || r.Hash("x") != s.Hash("x") {
		t.Error("SaltFromBytes(s.Bytes()) is not s")
	}
	b[0] ^= 0xff // Bytes returns a copy
	if !bytes.Equal(s.Bytes(), r.Bytes()) {
		t.Error("modifying the result of Bytes changed the salt")
	}
}

func TestSaltFromBytesSize(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		_, err := audit.SaltFromBytes(make([]byte, n))
		if !errors.Is(err, audit.ErrInvalidSalt) {
			t.Errorf("SaltFromBytes(%d bytes) error = %v, want ErrInvalidSalt", n, err)
		}
	}
}

func TestSaltRedacted(t *testing.T) {
	s := mustSalt(t, strings.Repeat("ab", 32))
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "salt", s)
	js, err := json.Marshal(struct{ S audit.Salt }{s})
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", s),
		"%+v":  fmt.Sprintf("%+v", s),
		"%#v":  fmt.Sprintf("%#v", s),
		"%s":   fmt.Sprintf("%s", s),
		"%x":   fmt.Sprintf("%x", s),
		"%q":   fmt.Sprintf("%q", s),
		"ptr":  fmt.Sprintf("%v", &s),
		"json": string(js),
		"slog": logged.String(),
	}
	for name, out := range outputs {
		if !strings.Contains(out, "[REDACTED]") || strings.Contains(strings.ToLower(out), "abab") {
			t.Errorf("%s: formatted salt = %q, want [REDACTED] and no key bytes", name, out)
		}
	}
}

func TestZeroSaltPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Hash on the zero Salt did not panic")
		}
	}()
	var s audit.Salt
	if !s.IsZero() {
		t.Error("zero Salt: IsZero() = false")
	}
	s.Hash("x")
}
