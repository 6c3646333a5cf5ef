package audit

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"hash"
	"log/slog"
	"sync"
)

// SaltSize is the size of a Salt key in bytes.
const SaltSize = 32

// hashPrefix marks a hashed value, as in Vault's audit logs.
const hashPrefix = "hmac-sha256:"

// Salt is the HMAC-SHA256 key an audit device hashes values with. Each
// device has its own, so the same secret hashes differently in two devices'
// logs. The zero Salt is not usable.
//
// A Salt cannot be compared with == (use Equal) and prints as [REDACTED].
type Salt struct {
	_ [0]func() // not comparable
	k *saltKey
}

type saltKey struct {
	key  [SaltSize]byte
	macs sync.Pool // of hash.Hash keyed with key; hmac.New is the slow part
}

// NewSalt returns a Salt with a fresh random key.
func NewSalt() (Salt, error) {
	var b [SaltSize]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Salt{}, fmt.Errorf("audit: generate salt: %w", err)
	}
	return newSalt(b), nil
}

// SaltFromBytes returns the Salt with the given 32-byte key, as returned by
// Bytes. b is copied.
func SaltFromBytes(b []byte) (Salt, error) {
	if len(b) != SaltSize {
		return Salt{}, fmt.Errorf("%w, got %d", ErrInvalidSalt, len(b))
	}
	return newSalt([SaltSize]byte(b)), nil
}

func newSalt(b [SaltSize]byte) Salt {
	k := &saltKey{key: b}
	k.macs.New = func() any { return hmac.New(sha256.New, k.key[:]) }
	return Salt{k: k}
}

// Bytes returns a copy of the key, for the caller to persist.
func (s Salt) Bytes() []byte {
	s.mustBeSet()
	b := s.k.key
	return b[:]
}

// IsZero reports whether s is the zero Salt.
func (s Salt) IsZero() bool { return s.k == nil }

// Equal reports whether s and t hold the same key, in constant time.
func (s Salt) Equal(t Salt) bool {
	if s.k == nil || t.k == nil {
		return s.k == t.k
	}
	return subtle.ConstantTimeCompare(s.k.key[:], t.k.key[:]) == 1
}

// Hash returns "hmac-sha256:" followed by the hex HMAC-SHA256 of v under s,
// exactly as v would appear in this device's log. It backs sys/audit-hash.
// Hash panics on the zero Salt.
func (s Salt) Hash(v string) string {
	b := make([]byte, 0, len(hashPrefix)+2*sha256.Size)
	return string(s.appendHash(b, v))
}

func (s Salt) appendHash(dst []byte, v string) []byte {
	s.mustBeSet()
	m := s.k.macs.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(v))
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	s.k.macs.Put(m)
	dst = append(dst, hashPrefix...)
	return hex.AppendEncode(dst, sum[:])
}

func (s Salt) mustBeSet() {
	if s.k == nil {
		panic("audit: use of zero Salt")
	}
}

const redacted = "[REDACTED]"

// String returns "[REDACTED]".
func (Salt) String() string { return redacted }

// GoString returns "[REDACTED]".
func (Salt) GoString() string { return redacted }

// Format prints "[REDACTED]" for every verb.
func (Salt) Format(f fmt.State, _ rune) { f.Write([]byte(redacted)) }

// MarshalJSON returns "[REDACTED]" as a JSON string: a Salt is persisted
// with Bytes, never by accident.
func (Salt) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// LogValue returns "[REDACTED]".
func (Salt) LogValue() slog.Value { return slog.StringValue(redacted) }
