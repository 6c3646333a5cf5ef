package transit

import (
	"crypto/rand"
	"fmt"
	"log/slog"
)

const redacted = "[REDACTED]"

// secret holds key bytes: an encryption key, a signing key or an HMAC key.
//
// A secret cannot be compared with == (it holds a slice); compare key
// bytes with crypto/subtle if ever needed. It prints as [REDACTED] with
// every fmt verb, in JSON and in slog, so it cannot leak into logs or
// error messages. Copies share their bytes: zero on one clears them all.
type secret struct {
	b []byte
}

// randomSecret returns n bytes from crypto/rand.
func randomSecret(n int) (secret, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return secret{}, fmt.Errorf("transit: generate key: %w", err)
	}
	return secret{b: b}, nil
}

// zero overwrites the bytes and leaves s empty.
func (s *secret) zero() {
	clear(s.b)
	s.b = nil
}

// String returns [REDACTED].
func (secret) String() string { return redacted }

// GoString returns [REDACTED], for %#v.
func (secret) GoString() string { return redacted }

// Format prints [REDACTED] whatever the verb and flags (%x included).
func (secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalJSON returns the JSON string "[REDACTED]": key bytes reach
// storage only through storedVersion, explicitly.
func (secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns [REDACTED].
func (secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue implements slog.LogValuer.
func (secret) LogValue() slog.Value { return slog.StringValue(redacted) }
