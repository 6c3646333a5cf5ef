package barrier

import (
	"errors"
	"fmt"
)

// Sentinel errors. None of them, nor any error this package returns, ever
// contains key material or plaintext.
var (
	// ErrSealed: the barrier is sealed; no key is in memory.
	ErrSealed = errors.New("barrier: sealed")
	// ErrNotInitialized: storage holds no root key or keyring.
	ErrNotInitialized = errors.New("barrier: not initialized")
	// ErrAlreadyInitialized: Initialize found a root key or keyring.
	ErrAlreadyInitialized = errors.New("barrier: already initialized")
	// ErrInvalidKey: a key is malformed, or the unseal key cannot open the
	// root key. It never says which check failed.
	ErrInvalidKey = errors.New("barrier: invalid key")
	// ErrBadPath: a logical key or operation the barrier refuses to store.
	ErrBadPath = errors.New("barrier: invalid storage path")
	// ErrCorrupt is matched by every *DecodeError: a stored entry is
	// malformed or fails authentication.
	ErrCorrupt = errors.New("barrier: corrupt entry")
)

// Reasons a *DecodeError gives; match them with errors.Is.
var (
	// ErrTruncated: the entry is shorter than header, nonce and tag.
	ErrTruncated = errors.New("entry is truncated")
	// ErrUnknownVersion: the version byte is not one this build reads.
	ErrUnknownVersion = errors.New("unknown entry version")
	// ErrUnknownTerm: no keyring term with the entry's term number.
	ErrUnknownTerm = errors.New("unknown key term")
	// ErrAuthentication: AES-GCM refused the entry: it was modified, moved
	// to another path, or encrypted under another key.
	ErrAuthentication = errors.New("message authentication failed")
)

// DecodeError reports a stored entry that cannot be decoded or
// authenticated. Storage is untrusted, so this is what tampering looks like.
type DecodeError struct {
	// Path is the logical key, or the raw key for the barrier's own
	// entries (core/root-key, core/keyring).
	Path string
	// Err is the reason: ErrTruncated, ErrUnknownVersion, ErrUnknownTerm,
	// ErrAuthentication, or another fixed description. It never contains
	// stored bytes.
	Err error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("barrier: decode entry %q: %v", e.Path, e.Err)
}

// Unwrap makes errors.Is match both ErrCorrupt and the reason.
func (e *DecodeError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }
