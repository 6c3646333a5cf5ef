// Package barrier is Coffer's encryption barrier: everything core and the
// engines store passes through it, and storage beneath it (package storage)
// only ever sees ciphertext. Storage is untrusted: the barrier detects any
// change to what it wrote, including an entry copied to another path.
//
// # Keys
//
// Three levels, all AES-256 keys from crypto/rand:
//
//   - the unseal key, which the barrier never stores: core splits it into
//     Shamir shares (package shamir) or takes it from an auto-unseal seal;
//   - the root key, stored at core/root-key encrypted with the unseal key;
//   - the keyring, stored at core/keyring encrypted with the root key: one
//     key per term (1, 2, ...), its install time and how many encryptions
//     it performed, and which term is active.
//
// Every logical entry is encrypted with the active term's key; older terms
// stay in the keyring so their entries remain readable. Rotate adds a term.
//
// # Entries
//
// Every entry the barrier writes (docs/barrier-format.md has the details
// and a test vector) is
//
//	term (4 bytes, big-endian) || version (1 byte, = 1) || nonce (12) || ciphertext || tag (16)
//
// sealed with AES-256-GCM under a fresh random 96-bit nonce, with the 5-byte
// header followed by the path as additional data. Changing the term or
// version byte, any ciphertext bit, or moving the entry to another path
// makes decryption fail with a *DecodeError (errors.Is ErrCorrupt). The
// barrier's own entries use term 0 and their raw path; logical entries use
// their logical key: logical key "a/b" is stored at raw key "logical/a/b".
// Keys are not encrypted: they are visible to whoever reads storage.
//
// # Rotation and nonce limits
//
// With random 96-bit nonces, NIST SP 800-38D allows a key at most 2^32
// encryptions. The barrier counts encryptions per term and rotates by
// itself at Options.RotationThreshold (DefaultRotationThreshold, 10% below
// the limit). The count is written to storage every
// Options.CheckpointInterval encryptions, before more are allowed, and on
// Seal; Unseal adds one interval to the stored count, so a crash can only
// make the count too high, never too low. Concurrent writers that reach
// the threshold together cause one rotation.
//
// # Sealing
//
// A new Barrier is sealed. Unseal loads the keys into memory; Seal zeroes
// them, and every operation then returns ErrSealed. Errors never contain
// key material or plaintext; Key prints as [REDACTED].
//
// # Imports
//
// The barrier depends only on the standard library and package storage. It
// must not import core, any engine, or any storage implementation: it
// works on whatever storage.Backend it is given.
package barrier
