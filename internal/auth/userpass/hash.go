package userpass

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// HashParams are argon2id cost parameters. A stored hash carries the ones
// it was made with, so they can be raised later without breaking old
// hashes (a hash with older parameters is replaced at its user's next
// successful login).
type HashParams struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over the memory
	Threads uint8  // lanes
}

// DefaultHashParams are RFC 9106's second recommended option (section 4):
// 64 MiB of memory, 3 passes, 4 lanes. About 0.19 s of CPU per hash (0.1 s
// of wall time on two idle cores).
func DefaultHashParams() HashParams { return HashParams{Memory: 64 * 1024, Time: 3, Threads: 4} }

// Bounds of the parameters a mount may be configured with: the floor is
// OWASP's minimum for argon2id (19 MiB, 2 passes, 1 lane).
const (
	minMemory  = 19 * 1024
	maxMemory  = 1024 * 1024 // 1 GiB
	minTime    = 2
	maxTime    = 64
	maxThreads = 64
)

// Bounds the decoder accepts for a stored hash: wider than the ones a mount
// may be configured with (old or hand-made hashes still verify), narrow
// enough that a corrupted entry cannot make a login allocate gigabytes or
// spin for minutes.
const (
	decodeMaxMemory = 4 * 1024 * 1024 // 4 GiB
	decodeMaxTime   = 1024
	minSaltLen      = 8
	maxSaltLen      = 64
	minKeyLen       = 16
	maxKeyLen       = 64
	saltLen         = 16
	keyLen          = 32
	maxEncodedLen   = 256
)

const hashPrefix = "$argon2id$v=19$"

// Validate checks p against the configurable bounds.
func (p HashParams) Validate() error {
	switch {
	case p.Memory < minMemory || p.Memory > maxMemory:
		return fmt.Errorf("argon2_memory must be between %d and %d KiB", minMemory, maxMemory)
	case p.Time < minTime || p.Time > maxTime:
		return fmt.Errorf("argon2_iterations must be between %d and %d", minTime, maxTime)
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("argon2_parallelism must be between 1 and %d", maxThreads)
	}
	return nil
}

// Hash is a decoded argon2id password hash.
type Hash struct {
	Params HashParams
	Salt   []byte
	Key    []byte
}

// NewHash hashes password with p and a fresh random salt, and returns the
// encoded form (see Encode).
func NewHash(password string, p HashParams) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("userpass: generate salt: %w", err)
	}
	h := &Hash{Params: p, Salt: salt, Key: argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen)}
	return h.Encode(), nil
}

// Encode renders h in the PHC string format of the argon2 reference
// implementation:
//
//	$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<key>
//
// with salt and key in unpadded standard base64.
func (h *Hash) Encode() string {
	return fmt.Sprintf("%sm=%d,t=%d,p=%d$%s$%s", hashPrefix, h.Params.Memory, h.Params.Time, h.Params.Threads,
		base64.RawStdEncoding.EncodeToString(h.Salt), base64.RawStdEncoding.EncodeToString(h.Key))
}

// DecodeHash parses the encoded form strictly: argon2id version 19 only,
// the three parameters in order m, t, p as canonical decimal numbers within
// the decoder's bounds, canonical unpadded base64. Errors are *ParseError
// and never quote the input.
func DecodeHash(s string) (*Hash, error) {
	if len(s) > maxEncodedLen {
		return nil, &ParseError{Reason: "too long"}
	}
	rest, ok := strings.CutPrefix(s, hashPrefix)
	if !ok {
		return nil, &ParseError{Reason: "not an argon2id version 19 hash"}
	}
	parts := strings.Split(rest, "$")
	if len(parts) != 3 {
		return nil, &ParseError{Reason: "wrong number of fields"}
	}
	kv := strings.Split(parts[0], ",")
	if len(kv) != 3 {
		return nil, &ParseError{Reason: "parameters must be m, t and p"}
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(kv[i], name+"=")
		if !ok {
			return nil, &ParseError{Reason: "parameters must be m, t and p"}
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || strconv.FormatUint(n, 10) != v {
			return nil, &ParseError{Reason: "parameter " + name + " is not a canonical number"}
		}
		vals[i] = n
	}
	h := &Hash{Params: HashParams{Memory: uint32(vals[0]), Time: uint32(vals[1]), Threads: uint8(vals[2])}}
	switch {
	case vals[2] < 1 || vals[2] > 255:
		return nil, &ParseError{Reason: "parameter p out of range"}
	case vals[1] < 1 || vals[1] > decodeMaxTime:
		return nil, &ParseError{Reason: "parameter t out of range"}
	case vals[0] < 8*vals[2] || vals[0] > decodeMaxMemory:
		return nil, &ParseError{Reason: "parameter m out of range"}
	}
	var ok1, ok2 bool
	if h.Salt, ok1 = decodeB64(parts[1]); !ok1 || len(h.Salt) < minSaltLen || len(h.Salt) > maxSaltLen {
		return nil, &ParseError{Reason: "invalid salt"}
	}
	if h.Key, ok2 = decodeB64(parts[2]); !ok2 || len(h.Key) < minKeyLen || len(h.Key) > maxKeyLen {
		return nil, &ParseError{Reason: "invalid key"}
	}
	return h, nil
}

// decodeB64 decodes canonical unpadded standard base64 only: the decoder
// alone would skip newlines and accept stray trailing bits, so the result
// must re-encode to the input.
func decodeB64(s string) ([]byte, bool) {
	b, err := base64.RawStdEncoding.Strict().DecodeString(s)
	if err != nil || base64.RawStdEncoding.EncodeToString(b) != s {
		return nil, false
	}
	return b, true
}

// Verify reports whether password hashes to h's key, comparing in
// constant time.
func (h *Hash) Verify(password string) bool {
	p := h.Params
	k := argon2.IDKey([]byte(password), h.Salt, p.Time, p.Memory, p.Threads, uint32(len(h.Key)))
	return subtle.ConstantTimeCompare(k, h.Key) == 1
}
