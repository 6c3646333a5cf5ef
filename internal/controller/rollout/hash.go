package rollout

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// hashLen is the number of digest bytes kept.
const hashLen = 16

// secretHash digests the data of the named Secrets. secrets maps each
// name to its Secret, or to nil when it does not exist (so its creation
// also changes the digest). Every field is length-prefixed, so distinct
// inputs cannot collide by concatenation.
func secretHash(names []string, secrets map[string]*corev1.Secret) string {
	h := sha256.New()
	write := func(h hash.Hash, s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	write(h, "coffer.dev/secret-hash v1")
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	for _, name := range sorted {
		write(h, name)
		s := secrets[name]
		if s == nil {
			write(h, "absent")
			continue
		}
		keys := make([]string, 0, len(s.Data))
		for k := range s.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		write(h, "present")
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(keys)))
		h.Write(n[:])
		for _, k := range keys {
			write(h, k)
			write(h, string(s.Data[k]))
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:hashLen])
}
