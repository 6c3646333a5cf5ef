// Package transit is the transit secrets engine ("encryption as a
// service") with the HTTP API of Vault's "transit" engine: named keys with
// versions, encrypt/decrypt/rewrap, data keys, HMAC, Ed25519 signatures,
// hashing and random bytes. Key material never leaves the engine except
// as data keys the caller asked for; docs/transit.md is the user-facing
// reference.
//
// # Keys
//
// A named key has a type (aes256-gcm96, the default; chacha20-poly1305;
// ed25519) and versions 1..latest_version. Each version holds its own
// random key (32 bytes; for ed25519 the 64-byte private key, seed ||
// public key) and its own random 32-byte HMAC key, so that HMACs never use
// the encryption or signing key. Rotation adds a version; trim removes
// versions below min_available_version for good.
//
// # Ciphertexts
//
// Ciphertexts, HMACs and signatures are "vault:v<N>:" followed by the
// standard, padded base64 of the raw bytes, where N is the decimal key
// version (no sign, no leading zeros). For both AEADs the raw bytes are
// nonce (12 bytes, from crypto/rand) || ciphertext || tag (16 bytes),
// sealed with the caller's associated_data, if any, as additional data.
// This is Vault's format: a Vault ciphertext decrypts here given the same
// key material, and the reverse.
//
// # Derived keys
//
// A key created with derived=true never encrypts with its version key
// directly: every operation needs a context, and uses
//
//	HKDF-SHA256(secret = version key, salt = none, info = context)
//
// read to the cipher's key size (32 bytes; for ed25519 the 32-byte seed of
// the signing key). Different contexts give unrelated keys, so one context's
// ciphertext does not decrypt under another. Vault's current default KDF is
// documented as the same construction, but Coffer has not been checked
// against a real Vault here, and keys made by old Vault versions use a
// counter-mode KDF instead: treat derived ciphertexts as Coffer-only.
// Convergent encryption is refused.
//
// # Storage layout
//
// Keys are relative to the mount's storage view, which the barrier
// encrypts; this package sees and writes plaintext JSON:
//
//	policy/<name>    the whole key: config, every version's key material,
//	                 HMAC key and creation time (see storedKey)
//
// Every change to a key (creation, rotation, config, trim) is one Put of
// that one entry, so it is atomic: a crash leaves the old or the new key.
//
// # Concurrency and caching
//
// Requests on one key are serialised by a striped lock keyed by a hash of
// the name: operations that only use the key share it, operations that
// change it hold it exclusively, so a rotation never runs under an
// encryption. Parsed keys are kept in a small cache (maxCached keys). A
// change replaces the cached key under the exclusive lock and zeroes the
// old key material; eviction zeroes too, and only takes keys whose lock it
// can get without waiting. Key bytes are zeroed where Go allows it (the
// expanded AES key schedule inside crypto/aes cannot be reached).
//
// # Automatic rotation
//
// Backend implements logical.Rotator: the core calls RotateDue about every
// core.RotationInterval while unsealed, and RotateDue rotates each key whose
// auto_rotate_period has elapsed since its latest version was created. An
// index of due times, built on the first call and kept up to date by every
// change, makes a call that finds nothing due cost no storage reads.
//
// # Imports
//
// This package depends on logical and storage only (plus the standard
// library and golang.org/x/crypto for ChaCha20-Poly1305); it must not
// import core, server, barrier or any storage implementation.
package transit
