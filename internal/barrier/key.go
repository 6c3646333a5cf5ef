package barrier

import (
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"log/slog"
)

// KeySize is the size of every barrier key: AES-256.
const KeySize = 32

const redacted = "[REDACTED]"

// Key is an opaque 32-byte key (unseal key, root key, keyring term). It
// cannot be compared with ==, compares in constant time with Equal, and
// prints as [REDACTED] in every format.
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

// KeyFromBytes copies b into a Key; b must be 32 bytes.
func KeyFromBytes(b []byte) (Key, error) {
	if len(b) != KeySize {
		return Key{}, fmt.Errorf("%w: key must be %d bytes, got %d", ErrInvalidKey, KeySize, len(b))
	}
	return Key{b: append([]byte(nil), b...)}, nil
}

// Bytes returns a copy of the key bytes (to split into Shamir shares).
func (k Key) Bytes() []byte { return append([]byte(nil), k.b...) }

// Equal reports whether k and o are the same key, in constant time.
func (k Key) Equal(o Key) bool {
	return len(k.b) == KeySize && subtle.ConstantTimeCompare(k.b, o.b) == 1
}

// IsZero reports whether k holds no key.
func (k Key) IsZero() bool { return len(k.b) == 0 }

// Zero overwrites the key bytes.
func (k *Key) Zero() {
	clear(k.b)
	k.b = nil
}

func (Key) String() string               { return redacted }
func (Key) GoString() string             { return redacted }
func (Key) Format(f fmt.State, _ rune)   { _, _ = f.Write([]byte(redacted)) }
func (Key) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (Key) LogValue() slog.Value         { return slog.StringValue(redacted) }
