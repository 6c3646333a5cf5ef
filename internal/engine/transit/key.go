package transit

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/coffer-dev/coffer/internal/logical"
)

// keyType is the algorithm of a named key.
type keyType int

const (
	typeAES256GCM keyType = iota + 1
	typeChaCha20
	typeEd25519
)

// hmacKeySize is the size of every version's HMAC key, as in Vault.
const hmacKeySize = 32

// kdfHKDF names the only derivation Coffer does (see the package doc).
const kdfHKDF = "hkdf_sha256"

// vaultOnlyTypes are Vault key types Coffer knows but does not offer: one
// crypto suite, no negotiation (docs/transit.md).
var vaultOnlyTypes = map[string]bool{
	"aes128-gcm96": true, "ecdsa-p256": true, "ecdsa-p384": true, "ecdsa-p521": true,
	"rsa-2048": true, "rsa-3072": true, "rsa-4096": true, "hmac": true, "managed_key": true,
	"aes128-cmac": true, "aes256-cmac": true, "ml-dsa": true, "hybrid": true,
}

// parseKeyType reads a key type name; "" is the default, aes256-gcm96.
func parseKeyType(s string) (keyType, error) {
	switch s {
	case "", "aes256-gcm96":
		return typeAES256GCM, nil
	case "chacha20-poly1305":
		return typeChaCha20, nil
	case "ed25519":
		return typeEd25519, nil
	}
	if vaultOnlyTypes[s] {
		return 0, logical.BadRequest("key type %q is not supported by Coffer (use aes256-gcm96, chacha20-poly1305 or ed25519)", s)
	}
	return 0, logical.BadRequest("unknown key type %q", clip(s))
}

func (t keyType) String() string {
	switch t {
	case typeAES256GCM:
		return "aes256-gcm96"
	case typeChaCha20:
		return "chacha20-poly1305"
	case typeEd25519:
		return "ed25519"
	default:
		return fmt.Sprintf("keyType(%d)", int(t))
	}
}

// encryption reports whether keys of type t encrypt and decrypt.
func (t keyType) encryption() bool { return t == typeAES256GCM || t == typeChaCha20 }

// signing reports whether keys of type t sign and verify.
func (t keyType) signing() bool { return t == typeEd25519 }

// keySize is the size of a version key: the AEAD key, or the ed25519
// private key (seed || public key).
func (t keyType) keySize() int {
	if t == typeEd25519 {
		return ed25519.PrivateKeySize
	}
	return 32
}

// keyVersion is one version of a named key.
type keyVersion struct {
	key     secret
	hmacKey secret
	created time.Time
	// aead is ready for non-derived encryption keys, public for
	// non-derived ed25519 keys; derived keys compute theirs per context.
	aead   cipher.AEAD
	public ed25519.PublicKey
}

// newVersion generates the material of a new version.
func newVersion(t keyType, derived bool, now time.Time) (*keyVersion, error) {
	var key secret
	if t == typeEd25519 {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("transit: generate ed25519 key: %w", err)
		}
		key = secret{b: priv}
	} else {
		var err error
		if key, err = randomSecret(t.keySize()); err != nil {
			return nil, err
		}
	}
	hmacKey, err := randomSecret(hmacKeySize)
	if err != nil {
		key.zero()
		return nil, err
	}
	v := &keyVersion{key: key, hmacKey: hmacKey, created: now.UTC()}
	if err := v.prepare(t, derived); err != nil {
		v.zero()
		return nil, fmt.Errorf("transit: new key version: %w", err)
	}
	return v, nil
}

// prepare checks the key bytes and readies what non-derived keys reuse on
// every request. Its errors never quote key bytes.
func (v *keyVersion) prepare(t keyType, derived bool) error {
	if len(v.key.b) != t.keySize() || len(v.hmacKey.b) != hmacKeySize {
		return errors.New("wrong key size")
	}
	switch {
	case t == typeEd25519:
		// The stored public half must match the seed.
		want := ed25519.NewKeyFromSeed(v.key.b[:ed25519.SeedSize])
		ok := string(want[ed25519.SeedSize:]) == string(v.key.b[ed25519.SeedSize:])
		clear(want)
		if !ok {
			return errors.New("ed25519 public key does not match its seed")
		}
		if !derived {
			v.public = ed25519.PublicKey(append([]byte(nil), v.key.b[ed25519.SeedSize:]...))
		}
	case !derived:
		a, err := newAEAD(t, v.key.b)
		if err != nil {
			return err
		}
		v.aead = a
	}
	return nil
}

func (v *keyVersion) zero() {
	v.key.zero()
	v.hmacKey.zero()
	v.aead = nil
}

// newAEAD returns the AEAD of an encryption key type.
func newAEAD(t keyType, key []byte) (cipher.AEAD, error) {
	switch t {
	case typeAES256GCM:
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("transit: aes: %w", err)
		}
		return cipher.NewGCM(block)
	case typeChaCha20:
		return chacha20poly1305.New(key)
	default:
		return nil, fmt.Errorf("transit: key type %v does not encrypt", t)
	}
}

// deriveKey is the per-context key of a derived key's version:
// HKDF-SHA256 with the version key as secret, no salt and the context as
// info, n bytes long. The caller clears the result.
func deriveKey(v *keyVersion, context []byte, n int) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, v.key.b, nil, string(context), n)
	if err != nil {
		return nil, fmt.Errorf("transit: derive key: %w", err)
	}
	return k, nil
}

// policy is a parsed named key. Once cached it is shared by concurrent
// readers and never modified: a change builds a new one (see Backend).
type policy struct {
	name            string
	typ             keyType
	derived         bool
	exportable      bool
	deletionAllowed bool
	minDecrypt      int // 1..latest
	minEncrypt      int // 0 (latest) or minAvailable..latest
	minAvailable    int // versions below it are trimmed (0: none)
	latest          int
	autoRotate      time.Duration
	versions        map[int]*keyVersion
}

// newPolicy returns a key with its first version.
func newPolicy(name string, t keyType, derived bool, now time.Time) (*policy, error) {
	v, err := newVersion(t, derived, now)
	if err != nil {
		return nil, err
	}
	return &policy{
		name: name, typ: t, derived: derived,
		minDecrypt: 1, latest: 1,
		versions: map[int]*keyVersion{1: v},
	}, nil
}

// rotate adds a version created at now.
func (p *policy) rotate(now time.Time) error {
	v, err := newVersion(p.typ, p.derived, now)
	if err != nil {
		return err
	}
	p.latest++
	p.versions[p.latest] = v
	return nil
}

// nextRotation is when auto-rotation is due, and false when it is off.
func (p *policy) nextRotation() (time.Time, bool) {
	if p.autoRotate <= 0 {
		return time.Time{}, false
	}
	return p.versions[p.latest].created.Add(p.autoRotate), true
}

// zero clears every version's key material.
func (p *policy) zero() {
	for _, v := range p.versions {
		v.zero()
	}
}

// useVersion picks the version to encrypt, sign or HMAC with; 0 means the
// latest. what names the operation in errors, as Vault does.
func (p *policy) useVersion(ver int, what string) (int, error) {
	switch {
	case ver == 0:
		return p.latest, nil
	case ver < 0:
		return 0, logical.BadRequest("requested version for %s is negative", what)
	case ver > p.latest:
		return 0, logical.BadRequest("requested version for %s is higher than the latest key version", what)
	case ver < p.minEncrypt:
		return 0, logical.BadRequest("requested version for %s is less than the minimum encryption key version", what)
	case p.versions[ver] == nil:
		return 0, logical.BadRequest("requested version for %s has been trimmed", what)
	}
	return ver, nil
}

// openVersion checks that a value made with version ver (a ciphertext, an
// HMAC or a signature) may still be opened or verified.
func (p *policy) openVersion(ver int, kind string) (*keyVersion, error) {
	if ver > p.latest {
		return nil, logical.BadRequest("invalid %s: version is too new", kind)
	}
	v := p.versions[ver]
	if ver < p.minDecrypt || v == nil {
		return nil, bad(msgTooOld)
	}
	return v, nil
}

// aeadFor returns the AEAD of version ver for context.
func (p *policy) aeadFor(ver int, context []byte) (cipher.AEAD, error) {
	v := p.versions[ver]
	if v == nil {
		return nil, fmt.Errorf("%w: key %q has no version %d", errCorrupt, p.name, ver)
	}
	if !p.derived {
		return v.aead, nil
	}
	if len(context) == 0 {
		return nil, bad(msgMissingContext)
	}
	k, err := deriveKey(v, context, p.typ.keySize())
	if err != nil {
		return nil, err
	}
	defer clear(k)
	return newAEAD(p.typ, k)
}

// signerFor returns the ed25519 key pair of version ver for context, and a
// function that clears a derived private key after use.
func (p *policy) signerFor(ver int, context []byte) (ed25519.PrivateKey, ed25519.PublicKey, func(), error) {
	v := p.versions[ver]
	if v == nil {
		return nil, nil, nil, fmt.Errorf("%w: key %q has no version %d", errCorrupt, p.name, ver)
	}
	if !p.derived {
		return ed25519.PrivateKey(v.key.b), v.public, func() {}, nil
	}
	if len(context) == 0 {
		return nil, nil, nil, bad(msgMissingContext)
	}
	seed, err := deriveKey(v, context, ed25519.SeedSize)
	if err != nil {
		return nil, nil, nil, err
	}
	priv := ed25519.NewKeyFromSeed(seed)
	clear(seed)
	pub := ed25519.PublicKey(append([]byte(nil), priv[ed25519.SeedSize:]...))
	return priv, pub, func() { clear(priv) }, nil
}

// bad is a 400 with a fixed message.
func bad(msg string) error { return &logical.InvalidRequestError{Msg: msg} }

// clip shortens client input quoted in an error message.
func clip(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
