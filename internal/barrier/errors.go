package barrier

import (
	"errors"
	"fmt"
)

// Sentinel errors.
var (
	// ErrSealed: the barrier is sealed; no key is in memory.
	ErrSealed = errors.New("barrier is sealed")
	// ErrNotInitialized: no keyring in storage.
	ErrNotInitialized = errors.New("barrier is not initialized")
	// ErrAlreadyInitialized: Initialize found a keyring.
	ErrAlreadyInitialized = errors.New("barrier is already initialized")
	// ErrInvalidKey: the key cannot open the root key (wrong unseal key),
	// or is malformed. It never says which step failed.
	ErrInvalidKey = errors.New("invalid key")
	// ErrBadPath: a logical key that cannot be stored.
	ErrBadPath = errors.New("invalid storage path")
	// ErrCorrupt is wrapped by every *DecodeError.
	ErrCorrupt = errors.New("entry failed to decrypt or authenticate")
)

// DecodeError reports an entry that is malformed or fails authentication
// (tampered, moved to another path, or encrypted under an unknown term).
// It names the path and the reason, never key material or plaintext.
type DecodeError struct {
	Path   string
	Reason string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("barrier: entry %q: %s", e.Path, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorrupt) hold.
func (e *DecodeError) Unwrap() error { return ErrCorrupt }
