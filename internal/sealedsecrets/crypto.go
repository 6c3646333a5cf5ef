package sealedsecrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
)

const (
	sessionKeySize = 32 // AES-256
	gcmNonceSize   = 12
	gcmTagSize     = 16
)

// Blob is a parsed sealed value: the RSA-OAEP-wrapped session key and the
// AES-GCM ciphertext with its tag. Both alias the parsed input.
type Blob struct {
	RSACiphertext []byte
	AESCiphertext []byte
}

// ParseBlob splits a raw (not base64) blob. It checks only the framing;
// whether a key opens it is Decrypt's business.
func ParseBlob(b []byte) (Blob, error) {
	if len(b) < 2 {
		return Blob{}, &ParseError{Err: errTooShort}
	}
	n := int(binary.BigEndian.Uint16(b))
	if n == 0 {
		return Blob{}, &ParseError{Err: errNoRSA}
	}
	if len(b)-2 < n {
		return Blob{}, &ParseError{Err: errTruncated}
	}
	rest := b[2+n:]
	if len(rest) < gcmTagSize {
		return Blob{}, &ParseError{Err: errShortAES}
	}
	return Blob{RSACiphertext: b[2 : 2+n], AESCiphertext: rest}, nil
}

// Encrypt seals plaintext for pub under label (see Label): a fresh session
// key encrypts the value with AES-256-GCM and is wrapped with RSA-OAEP
// SHA-256. The result is the raw blob; EncryptString returns its base64.
func Encrypt(pub *rsa.PublicKey, plaintext, label []byte) ([]byte, error) {
	if pub == nil {
		return nil, fmt.Errorf("sealedsecrets: encrypt: %w", ErrNotRSA)
	}
	sessionKey := make([]byte, sessionKeySize)
	defer clear(sessionKey)
	if _, err := rand.Read(sessionKey); err != nil {
		return nil, fmt.Errorf("sealedsecrets: session key: %w", err)
	}
	wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, sessionKey, label)
	if err != nil {
		return nil, fmt.Errorf("sealedsecrets: wrap session key: %w", err)
	}
	if len(wrapped) > math.MaxUint16 {
		return nil, fmt.Errorf("sealedsecrets: RSA key of %d bits is too large for the format", pub.N.BitLen())
	}
	aead, err := newGCM(sessionKey)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 2, 2+len(wrapped)+len(plaintext)+gcmTagSize)
	binary.BigEndian.PutUint16(out, uint16(len(wrapped)))
	out = append(out, wrapped...)
	// The session key encrypts this one value only, so the fixed nonce
	// never repeats under a key.
	var nonce [gcmNonceSize]byte
	return aead.Seal(out, nonce[:], plaintext, nil), nil
}

// EncryptString is Encrypt returning the standard padded base64 used in
// spec.encryptedData.
func EncryptString(pub *rsa.PublicKey, plaintext, label []byte) (string, error) {
	b, err := Encrypt(pub, plaintext, label)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// Decrypt opens a raw blob with the first of keys that can, trying them in
// order (callers pass the newest first). Every failure is a *DecryptError
// with the same message; see its doc.
func Decrypt(keys []*Key, blob, label []byte) ([]byte, error) {
	b, err := ParseBlob(blob)
	if err != nil {
		return nil, &DecryptError{Causes: []error{err}}
	}
	if len(keys) == 0 {
		return nil, &DecryptError{Causes: []error{ErrNoKeys}}
	}
	causes := make([]error, 0, len(keys))
	for _, k := range keys {
		pt, err := decryptOne(k, b, label)
		if err == nil {
			return pt, nil
		}
		causes = append(causes, err)
	}
	return nil, &DecryptError{Causes: causes}
}

// DecryptString is Decrypt for a base64 value of spec.encryptedData. A
// value that is not valid base64 fails like any other.
func DecryptString(keys []*Key, value string, label []byte) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		return nil, &DecryptError{Causes: []error{&ParseError{Err: fmt.Errorf("invalid base64")}}}
	}
	return Decrypt(keys, raw, label)
}

func decryptOne(k *Key, b Blob, label []byte) ([]byte, error) {
	if k == nil || k.priv == nil {
		return nil, ErrNoKeys
	}
	if len(b.RSACiphertext) != k.priv.Size() {
		return nil, errWrongKeyLen
	}
	sessionKey, err := rsa.DecryptOAEP(sha256.New(), nil, k.priv, b.RSACiphertext, label)
	if err != nil {
		return nil, err
	}
	defer clear(sessionKey)
	if len(sessionKey) != sessionKeySize {
		// Bitnami accepts any AES key size here; kubeseal always wraps 32
		// bytes, and so do we.
		return nil, fmt.Errorf("session key of %d bytes", len(sessionKey))
	}
	aead, err := newGCM(sessionKey)
	if err != nil {
		return nil, err
	}
	var nonce [gcmNonceSize]byte
	return aead.Open(nil, nonce[:], b.AESCiphertext, nil)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("sealedsecrets: aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("sealedsecrets: gcm: %w", err)
	}
	return aead, nil
}
