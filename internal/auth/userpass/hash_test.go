package userpass

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestHashRoundTrip(t *testing.T) {
	p := HashParams{Memory: minMemory, Time: 2, Threads: 1}
	enc, err := NewHash("s3cret", p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("NewHash() = %q, want the PHC argon2id prefix", enc)
	}
	h, err := DecodeHash(enc)
	if err != nil {
		t.Fatalf("DecodeHash(%q) = %v", enc, err)
	}
	if h.Params != p || len(h.Salt) != saltLen || len(h.Key) != keyLen {
		t.Fatalf("DecodeHash() = %+v", h)
	}
	if !h.Verify("s3cret") {
		t.Errorf("Verify(right) = false")
	}
	for _, wrong := range []string{"", "s3cre", "s3cret ", "S3cret"} {
		if h.Verify(wrong) {
			t.Errorf("Verify(%q) = true", wrong)
		}
	}
	if got := h.Encode(); got != enc {
		t.Errorf("Encode() = %q, want %q", got, enc)
	}
}

// TestHashKnownAnswer checks decoding, verification and encoding against
// hashes made by the argon2 reference implementation (testdata/vectors.json).
func TestHashKnownAnswer(t *testing.T) {
	raw, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Vectors []struct{ Password, Encoded string }
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range file.Vectors {
		h, err := DecodeHash(v.Encoded)
		if err != nil {
			t.Fatalf("DecodeHash(%q) = %v", v.Encoded, err)
		}
		if !h.Verify(v.Password) {
			t.Errorf("Verify(%q) against %q = false", v.Password, v.Encoded)
		}
		if h.Verify(v.Password + "x") {
			t.Errorf("a wrong password verifies against %q", v.Encoded)
		}
		if got := h.Encode(); got != v.Encoded {
			t.Errorf("Encode() = %q, want %q", got, v.Encoded)
		}
	}
}

func TestDecodeHashRefuses(t *testing.T) {
	good := "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo"
	tests := []struct {
		name, in, reason string
	}{
		{"argon2i", strings.Replace(good, "argon2id", "argon2i", 1), "not an argon2id version 19 hash"},
		{"version 16", strings.Replace(good, "v=19", "v=16", 1), "not an argon2id version 19 hash"},
		{"no version", strings.Replace(good, "v=19$", "", 1), "not an argon2id version 19 hash"},
		{"params out of order", strings.Replace(good, "m=65536,t=2", "t=2,m=65536", 1), "parameters must be m, t and p"},
		{"extra param", strings.Replace(good, "p=4", "p=4,k=1", 1), "parameters must be m, t and p"},
		{"leading zero", strings.Replace(good, "t=2", "t=02", 1), "parameter t is not a canonical number"},
		{"plus sign", strings.Replace(good, "t=2", "t=+2", 1), "parameter t is not a canonical number"},
		{"huge memory", strings.Replace(good, "m=65536", "m=4294967295", 1), "parameter m out of range"},
		{"memory below 8p", strings.Replace(good, "m=65536", "m=31", 1), "parameter m out of range"},
		{"zero time", strings.Replace(good, "t=2", "t=0", 1), "parameter t out of range"},
		{"huge time", strings.Replace(good, "t=2", "t=5000", 1), "parameter t out of range"},
		{"zero lanes", strings.Replace(good, "p=4", "p=0", 1), "parameter p out of range"},
		{"too many lanes", strings.Replace(good, "p=4", "p=256", 1), "parameter p out of range"},
		{"padded salt", strings.Replace(good, "c29tZXNhbHQ", "c29tZXNhbHQ=", 1), "invalid salt"},
		{"short salt", strings.Replace(good, "c29tZXNhbHQ", "c29tZQ", 1), "invalid salt"},
		{"non-canonical salt bits", strings.Replace(good, "c29tZXNhbHQ", "c29tZXNhbHR", 1), "invalid salt"},
		{"short key", strings.Replace(good, "GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo", "CTFhFdXPJO1a", 1), "invalid key"},
		{"missing key", good[:strings.LastIndex(good, "$")], "wrong number of fields"},
		{"too long", good + strings.Repeat("A", 300), "too long"},
		{"empty", "", "not an argon2id version 19 hash"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeHash(tc.in)
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Reason != tc.reason {
				t.Fatalf("DecodeHash(%q) = %v, want *ParseError %q", tc.in, err, tc.reason)
			}
		})
	}
}

func TestHashParamsValidate(t *testing.T) {
	if err := DefaultHashParams().Validate(); err != nil {
		t.Fatalf("DefaultHashParams().Validate() = %v", err)
	}
	for _, p := range []HashParams{
		{Memory: minMemory - 1, Time: 2, Threads: 1},
		{Memory: maxMemory + 1, Time: 2, Threads: 1},
		{Memory: minMemory, Time: 1, Threads: 1},
		{Memory: minMemory, Time: maxTime + 1, Threads: 1},
		{Memory: minMemory, Time: 2, Threads: 0},
		{Memory: minMemory, Time: 2, Threads: maxThreads + 1},
	} {
		if p.Validate() == nil {
			t.Errorf("%+v.Validate() = nil, want an error", p)
		}
	}
}
