package barrier

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
)

// Entry format (docs/barrier-format.md):
//
//	term (4, big-endian) || version (1) || nonce (12) || AES-256-GCM ciphertext and tag (16)
//
// with additional data header (the first 5 bytes) || path.
const (
	entryVersion = 1
	headerSize   = 5
	nonceSize    = 12
	tagSize      = 16
	// entryOverhead is what an entry adds to its plaintext.
	entryOverhead = headerSize + nonceSize + tagSize
)

// newAEAD returns AES-256-GCM with a 96-bit nonce and 128-bit tag.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w: a key is %d bytes, got %d", ErrInvalidKey, KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("barrier: aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("barrier: gcm: %w", err)
	}
	return aead, nil
}

// encryptEntry encrypts plaintext for path under term with a fresh random
// nonce.
func encryptEntry(aead cipher.AEAD, term uint32, path string, plaintext []byte) ([]byte, error) {
	out := make([]byte, headerSize+nonceSize, entryOverhead+len(plaintext))
	if _, err := rand.Read(out[headerSize:]); err != nil {
		return nil, fmt.Errorf("barrier: read nonce: %w", err)
	}
	return sealInto(aead, out, term, path, plaintext), nil
}

// sealInto completes an entry whose nonce is already in out[5:17]: it
// writes the header and appends the ciphertext and tag. Tests call it with
// a fixed nonce to reproduce the test vectors; production code only
// through encryptEntry.
func sealInto(aead cipher.AEAD, out []byte, term uint32, path string, plaintext []byte) []byte {
	binary.BigEndian.PutUint32(out, term)
	out[4] = entryVersion
	nonce := out[headerSize : headerSize+nonceSize]
	return aead.Seal(out[:headerSize+nonceSize], nonce, plaintext, additionalData(out[:headerSize], path))
}

// additionalData binds an entry to its header and path, so that an entry
// moved to another path, or with its term or version changed, fails to
// open. The header has a fixed size, so the concatenation is unambiguous.
func additionalData(header []byte, path string) []byte {
	ad := make([]byte, 0, headerSize+len(path))
	ad = append(ad, header...)
	return append(ad, path...)
}

// entryTerm checks an entry's length and version and returns its term. It
// reads untrusted bytes and must never panic.
func entryTerm(path string, raw []byte) (uint32, error) {
	if len(raw) < entryOverhead {
		return 0, &DecodeError{Path: path, Err: fmt.Errorf("%w: %d bytes, at least %d needed", ErrTruncated, len(raw), entryOverhead)}
	}
	if raw[4] != entryVersion {
		return 0, &DecodeError{Path: path, Err: fmt.Errorf("%w %d", ErrUnknownVersion, raw[4])}
	}
	return binary.BigEndian.Uint32(raw), nil
}

// openEntry authenticates and decrypts an entry whose length and version
// entryTerm has checked, with the key of its term. It decrypts in place:
// the plaintext it returns shares raw's memory, and raw is overwritten even
// on failure. Callers pass entries they own, such as a Value returned by
// storage.Backend.Get (a copy: the storagetest conformance suite checks
// that no backend returns memory it keeps), which saves allocating and
// zeroing a second buffer per read.
func openEntry(aead cipher.AEAD, path string, raw []byte) ([]byte, error) {
	nonce := raw[headerSize : headerSize+nonceSize]
	ct := raw[headerSize+nonceSize:]
	pt, err := aead.Open(ct[:0], nonce, ct, additionalData(raw[:headerSize], path))
	if err != nil {
		return nil, &DecodeError{Path: path, Err: ErrAuthentication}
	}
	return pt, nil
}
