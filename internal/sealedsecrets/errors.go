package sealedsecrets

import (
	"errors"
	"fmt"
)

// Sentinel errors.
var (
	// ErrDecrypt is the only error a failed decryption reports, whatever
	// the cause: see DecryptError.
	ErrDecrypt = errors.New("no key could decrypt secret")
	// ErrNoKeys: decryption was attempted with no private key at all.
	ErrNoKeys = errors.New("no private keys")
	// ErrScopeWidened: a template's scope annotations claim a wider scope
	// than the SealedSecret was sealed for.
	ErrScopeWidened = errors.New("template annotations widen the sealing scope")
	// ErrForbiddenType: the Secret type may not be created from a
	// SealedSecret (kubernetes.io/service-account-token).
	ErrForbiddenType = errors.New("secret type is not allowed")
	// ErrExpiredCert: the sealing certificate is no longer valid.
	ErrExpiredCert = errors.New("certificate has expired")
	// ErrNotRSA: a key or certificate does not hold an RSA key.
	ErrNotRSA = errors.New("not an RSA key")
	// ErrLegacyData: the legacy spec.data field is used together with
	// spec.encryptedData, or is disabled.
	ErrLegacyData = errors.New("invalid use of the deprecated spec.data field")
)

// Reasons a blob is refused before any key is tried (ParseError.Err).
var (
	errTooShort    = errors.New("blob is too short")
	errNoRSA       = errors.New("blob has an empty RSA ciphertext")
	errTruncated   = errors.New("blob is shorter than its RSA ciphertext length")
	errShortAES    = errors.New("blob has no room for the AES-GCM tag")
	errWrongKeyLen = errors.New("RSA ciphertext length does not match the key size")
)

// ParseError reports a blob that is not well formed. Decrypt folds it into
// a DecryptError; ParseBlob returns it as is.
type ParseError struct {
	Err error
}

func (e *ParseError) Error() string { return "sealedsecrets: parse blob: " + e.Err.Error() }
func (e *ParseError) Unwrap() error { return e.Err }

// DecryptError is what Decrypt returns for every failure. Its message is
// always ErrDecrypt's, so nothing reading it (a status condition, an HTTP
// status, a log line) can tell a wrong key from a wrong label or a
// modified ciphertext. Causes holds the failure of each key tried (or the
// parse failure), in order, for debugging with errors.Is/As.
type DecryptError struct {
	Causes []error
}

func (e *DecryptError) Error() string { return ErrDecrypt.Error() }

// Unwrap returns ErrDecrypt followed by the causes.
func (e *DecryptError) Unwrap() []error { return append([]error{ErrDecrypt}, e.Causes...) }

// ItemError names the encryptedData or template item that failed. Item
// names are not secret; values never appear.
type ItemError struct {
	Item string
	Err  error
}

func (e *ItemError) Error() string { return fmt.Sprintf("%s (%s)", e.Err, e.Item) }
func (e *ItemError) Unwrap() error { return e.Err }
