package transit

import (
	"errors"

	"github.com/coffer-dev/coffer/internal/logical"
)

// Client-facing messages. Where Vault has a wording that clients match on,
// it is Vault's.
const (
	msgKeyNotFound     = "encryption key not found"
	msgSigningNotFound = "signing key not found"
	msgTooOld          = "ciphertext or signature version is disallowed by policy (too old)"
	msgUnableToDecrypt = "invalid ciphertext: unable to decrypt"
	msgMissingContext  = "missing 'context' for key derivation; the key was created using a derived key, " +
		"which means additional, per-request information must be included in order to perform operations with the key"
	msgConvergent = "convergent encryption is not supported by Coffer"
	msgNonce      = "nonce is only used by convergent encryption, which Coffer does not support"
)

// errCorrupt reports a stored key that does not decode or is inconsistent.
// Decoder errors are not wrapped: their text could quote key bytes.
var errCorrupt = errors.New("transit: stored key is corrupt")

// ParseError reports a malformed versioned value: a ciphertext, an HMAC or
// a signature ("vault:v<N>:<base64>"). Its message never quotes the input,
// so it is safe to send to the client.
type ParseError struct {
	Kind string // "ciphertext", "HMAC" or "signature"
	Msg  string // what is wrong, e.g. "no prefix"
}

func (e *ParseError) Error() string { return "invalid " + e.Kind + ": " + e.Msg }

// clientMessage returns err's client-safe message and true when err is the
// client's fault (a bad request or a malformed value); anything else is an
// internal error whose details belong in the log only.
func clientMessage(err error) (string, bool) {
	var ire *logical.InvalidRequestError
	if errors.As(err, &ire) {
		return ire.Msg, true
	}
	var pe *ParseError
	if errors.As(err, &pe) {
		return pe.Error(), true
	}
	return "", false
}

// asClientError turns a *ParseError into a 400 for the server; other errors
// pass through unchanged.
func asClientError(err error) error {
	var pe *ParseError
	if errors.As(err, &pe) {
		return &logical.InvalidRequestError{Msg: pe.Error()}
	}
	return err
}
