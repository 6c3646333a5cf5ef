package userpass

import (
	"errors"
	"strings"
	"testing"
)

// FuzzDecodeHash feeds arbitrary strings to the stored-hash decoder
// (seeded from testdata/fuzz): no panics, only *ParseError failures whose
// message never quotes the input, and what it accepts re-encodes to the
// same string and stays within the decoder's cost bounds.
func FuzzDecodeHash(f *testing.F) {
	for _, s := range []string{
		"$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo",
		"$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA",
		"$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo",
		"$argon2id$v=19$m=1,t=1,p=1$$", "$argon2id$v=19$", "$2a$10$abcdefghijklmnopqrstuv", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := DecodeHash(s)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("DecodeHash(%q) error %T %v, want *ParseError", s, err, err)
			}
			if len(s) > 3 && strings.Contains(err.Error(), s) {
				t.Fatalf("DecodeHash(%q) error quotes the input: %v", s, err)
			}
			return
		}
		p := h.Params
		if p.Memory > decodeMaxMemory || p.Time < 1 || p.Time > decodeMaxTime || p.Threads < 1 || uint64(p.Memory) < 8*uint64(p.Threads) {
			t.Fatalf("DecodeHash(%q) accepted out-of-bounds parameters %+v", s, p)
		}
		if len(h.Salt) < minSaltLen || len(h.Salt) > maxSaltLen || len(h.Key) < minKeyLen || len(h.Key) > maxKeyLen {
			t.Fatalf("DecodeHash(%q) accepted salt %d / key %d bytes", s, len(h.Salt), len(h.Key))
		}
		if got := h.Encode(); got != s {
			t.Fatalf("DecodeHash(%q).Encode() = %q: the format is not canonical", s, got)
		}
	})
}
