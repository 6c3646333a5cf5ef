package kmsplugin

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Local ciphertext format (docs/kms.md):
//
//	0x01 || nonce (12 bytes) || AES-256-GCM(key, nonce, plaintext, aad = key_id)
//
// The key_id is the additional data, so a ciphertext presented under another
// local key's key_id fails authentication even before the key lookup would.
const (
	localFormatV1  = 0x01
	localNonceSize = 12
	localOverhead  = 1 + localNonceSize + 16
	// LocalKeySize is the size of a local key: 32 random bytes (AES-256).
	LocalKeySize = 32
)

// LocalKey is a KEK kept in local key files, for clusters that run the
// plugin without a Coffer server. The first key encrypts; every key
// (including older ones kept for decryption during a rotation) decrypts.
type LocalKey struct {
	primary *localKey
	byID    map[string]*localKey
}

type localKey struct {
	id   string
	aead cipher.AEAD
}

var _ KEK = (*LocalKey)(nil)

// LoadLocalKey reads the key that encrypts from primary and, from
// decryptOnly, older keys that still decrypt. Every file must hold exactly
// 32 bytes (raw, or encoded as base64 — what `coffer kms-plugin generate-key`
// writes) and must not be readable by group or others.
func LoadLocalKey(primary string, decryptOnly ...string) (*LocalKey, error) {
	l := &LocalKey{byID: map[string]*localKey{}}
	for i, path := range append([]string{primary}, decryptOnly...) {
		raw, err := ReadKeyFile(path)
		if err != nil {
			return nil, err
		}
		k, err := newLocalKey(raw)
		clear(raw)
		if err != nil {
			return nil, fmt.Errorf("local key %s: %w", path, err)
		}
		if _, dup := l.byID[k.id]; dup {
			return nil, fmt.Errorf("local key %s is given twice (key_id %s)", path, k.id)
		}
		l.byID[k.id] = k
		if i == 0 {
			l.primary = k
		}
	}
	return l, nil
}

func newLocalKey(raw []byte) (*localKey, error) {
	if len(raw) != LocalKeySize {
		return nil, fmt.Errorf("key must be %d bytes, got %d", LocalKeySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &localKey{id: localKeyID(raw), aead: aead}, nil
}

// ReadKeyFile reads a 32-byte local key file. A file readable by group or
// others is refused, as is anything but 32 raw bytes or their standard
// base64 encoding (one optional trailing newline).
func ReadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("local key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("local key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("local key file %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("local key file %s has mode %04o: it must not be accessible by group or others (chmod 600)", path, fi.Mode().Perm())
	}
	if fi.Size() > 128 {
		return nil, fmt.Errorf("local key file %s is %d bytes: not a 32-byte key", path, fi.Size())
	}
	raw, err := io.ReadAll(io.LimitReader(f, 129))
	defer clear(raw)
	if err != nil {
		return nil, fmt.Errorf("local key file: %w", err)
	}
	key, err := parseLocalKey(raw)
	if err != nil {
		return nil, fmt.Errorf("local key file %s: %w", path, err)
	}
	return key, nil
}

// parseLocalKey accepts 32 raw bytes or their base64 encoding.
func parseLocalKey(raw []byte) ([]byte, error) {
	text := strings.TrimSuffix(strings.TrimSuffix(string(raw), "\n"), "\r")
	if len(text) == base64.StdEncoding.EncodedLen(LocalKeySize) {
		if k, err := base64.StdEncoding.Strict().DecodeString(text); err == nil && len(k) == LocalKeySize {
			return k, nil
		}
	}
	if len(raw) == LocalKeySize {
		return append([]byte(nil), raw...), nil
	}
	return nil, errors.New("want 32 bytes, raw or base64-encoded")
}

// GenerateKeyFile writes a new random 32-byte key, base64-encoded, to path
// (mode 0600, never overwriting; a missing parent directory is created
// 0700).
func GenerateKeyFile(path string) error {
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create directory: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s already exists; refusing to overwrite a key", path)
	}
	if err != nil {
		return fmt.Errorf("create key file: %w", err)
	}
	key := make([]byte, LocalKeySize)
	defer clear(key)
	rand.Read(key)
	werr := f.Chmod(0o600)
	if werr == nil {
		_, werr = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return fmt.Errorf("write key file: %w", werr)
	}
	return nil
}

// KeyID returns the key_id of the key that encrypts.
func (l *LocalKey) KeyID() string { return l.primary.id }

// Describe names the backend for logs.
func (l *LocalKey) Describe() string { return "local key " + l.primary.id }

// Encrypt seals plaintext with the primary key.
func (l *LocalKey) Encrypt(_ context.Context, plaintext []byte) ([]byte, string, error) {
	k := l.primary
	out := make([]byte, 1+localNonceSize, localOverhead+len(plaintext))
	out[0] = localFormatV1
	rand.Read(out[1 : 1+localNonceSize])
	out = k.aead.Seal(out, out[1:1+localNonceSize], plaintext, []byte(k.id))
	return out, k.id, nil
}

// Decrypt opens a ciphertext made by Encrypt under keyID.
func (l *LocalKey) Decrypt(_ context.Context, keyID string, ciphertext []byte) ([]byte, error) {
	k, ok := l.byID[keyID]
	if !ok {
		return nil, fmt.Errorf("%w: not one of this plugin's local keys", ErrUnknownKeyID)
	}
	if len(ciphertext) < localOverhead {
		return nil, fmt.Errorf("%w: too short", ErrInvalidCiphertext)
	}
	if ciphertext[0] != localFormatV1 {
		return nil, fmt.Errorf("%w: unknown format byte 0x%02x", ErrInvalidCiphertext, ciphertext[0])
	}
	nonce := ciphertext[1 : 1+localNonceSize]
	pt, err := k.aead.Open(nil, nonce, ciphertext[1+localNonceSize:], []byte(k.id))
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed", ErrInvalidCiphertext)
	}
	return pt, nil
}
