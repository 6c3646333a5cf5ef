package barrier

import (
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"log/slog"
)

// KeySize is the size in bytes of every barrier key (AES-256).
const KeySize = 32

const redacted = "[REDACTED]"

// Key is an opaque 32-byte key: an unseal key, the root key, or a keyring
// term. The zero Key holds no key.
//
// A Key cannot be compared with == (it holds a slice); use Equal, which
// runs in constant time. It prints as [REDACTED] with every fmt verb, in
// JSON and in slog, so it cannot leak into logs or error messages.
//
// Copies of a Key share their bytes: Zero on one clears them all.
type Key struct {
	b []byte
}

// NewKey returns a random key from crypto/rand.
func NewKey() (Key, error) {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		return Key{}, fmt.Errorf("barrier: generate key: %w", err)
	}
	return Key{b: b}, nil
}

// KeyFromBytes returns a Key holding a copy of b, which must be KeySize
// bytes long; the error wraps ErrInvalidKey.
func KeyFromBytes(b []byte) (Key, error) {
	if len(b) != KeySize {
		return Key{}, fmt.Errorf("%w: a key is %d bytes, got %d", ErrInvalidKey, KeySize, len(b))
	}
	return Key{b: append([]byte(nil), b...)}, nil
}

// Bytes returns a copy of the key bytes, for instance to split them into
// Shamir shares. The caller should clear the copy after use.
func (k Key) Bytes() []byte {
	if k.b == nil {
		return nil
	}
	return append([]byte(nil), k.b...)
}

// Equal reports, in constant time, whether k and o hold the same key. A
// zero (or zeroed) Key equals no key.
func (k Key) Equal(o Key) bool {
	return len(k.b) == KeySize && subtle.ConstantTimeCompare(k.b, o.b) == 1
}

// Zero overwrites the key bytes and leaves k holding no key.
func (k *Key) Zero() {
	clear(k.b)
	k.b = nil
}

// valid reports whether k holds a key of the right size.
func (k Key) valid() bool { return len(k.b) == KeySize }

// String returns [REDACTED].
func (Key) String() string { return redacted }

// GoString returns [REDACTED], for %#v.
func (Key) GoString() string { return redacted }

// Format prints [REDACTED] whatever the verb and flags (%x included).
func (Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalJSON returns the JSON string "[REDACTED]".
func (Key) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns [REDACTED], for encoders that prefer text (YAML,
// map keys, slog's text handler).
func (Key) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue implements slog.LogValuer.
func (Key) LogValue() slog.Value { return slog.StringValue(redacted) }
