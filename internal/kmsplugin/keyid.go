package kmsplugin

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Key IDs (docs/kms.md). The apiserver stores the key_id next to every
// encrypted DEK seed, in plaintext, and compares it with Status' key_id to
// decide whether stored data is stale; so a key_id must be stable for one
// key version, never reused for another, and free of secrets.
//
//	coffer:transit:<mount>/<name>:v<version>:<created>
//	coffer:local:<fingerprint>
//
// <created> is the Unix time at which the transit key version was created:
// a key deleted and re-created under the same name starts again at v1, and
// the creation time keeps its key_ids distinct from the old key's.
// <fingerprint> is the first 16 bytes of SHA-256("coffer kms local key
// id v1" || 0x00 || key), in hex: one-way, so it tells nothing about the key.
const (
	transitKeyIDPrefix = "coffer:transit:"
	localKeyIDPrefix   = "coffer:local:"

	// maxKeyIDLen is the KMS v2 limit on key_id (less than 1 kB).
	maxKeyIDLen = 1023
)

// TransitKeyID is the key_id of version version (created at Unix time
// created) of the transit key name mounted at mount.
func TransitKeyID(mount, name string, version int, created int64) string {
	return transitKeyIDPrefix + strings.Trim(mount, "/") + "/" + name + ":v" + strconv.Itoa(version) + ":" + strconv.FormatInt(created, 10)
}

// ParseTransitKeyID parses a key_id of the transit key name mounted at
// mount and returns its version and creation time. A key_id of any other
// key, or one not in canonical form, is ErrUnknownKeyID.
func ParseTransitKeyID(id, mount, name string) (version int, created int64, err error) {
	prefix := transitKeyIDPrefix + strings.Trim(mount, "/") + "/" + name + ":v"
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok || len(id) > maxKeyIDLen {
		return 0, 0, fmt.Errorf("%w: not a key_id of transit key %s/%s", ErrUnknownKeyID, strings.Trim(mount, "/"), name)
	}
	vs, cs, ok := strings.Cut(rest, ":")
	if !ok {
		return 0, 0, fmt.Errorf("%w: malformed key_id", ErrUnknownKeyID)
	}
	v, err := parseCanonicalUint(vs, 9)
	if err != nil || v < 1 {
		return 0, 0, fmt.Errorf("%w: malformed key_id version", ErrUnknownKeyID)
	}
	c, err := parseCanonicalUint(cs, 19)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: malformed key_id creation time", ErrUnknownKeyID)
	}
	return int(v), c, nil
}

// parseCanonicalUint parses a non-negative decimal integer of at most
// maxDigits digits, without sign or leading zeros, so that every number has
// exactly one spelling (a key_id is compared as a string by the apiserver).
func parseCanonicalUint(s string, maxDigits int) (int64, error) {
	if s == "" || len(s) > maxDigits || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("not a canonical number")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("not a canonical number")
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// localKeyID is the key_id of a local key: a one-way fingerprint.
func localKeyID(key []byte) string {
	h := sha256.New()
	h.Write([]byte("coffer kms local key id v1\x00"))
	h.Write(key)
	return localKeyIDPrefix + hex.EncodeToString(h.Sum(nil)[:16])
}
