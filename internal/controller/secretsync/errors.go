package secretsync

import "errors"

var (
	// errSourceNotFound: the KV secret (or the version asked for) does not
	// exist, or is deleted or destroyed.
	errSourceNotFound = errors.New("source secret not found")
)

// specError is an invalid SecretSync spec: retrying does not help until
// the spec changes.
type specError struct{ msg string }

func (e *specError) Error() string { return "invalid spec: " + e.msg }

// syncError is a failed sync whose message is safe for the status and
// events (it names paths and reasons, never values).
type syncError struct {
	msg string
	err error
}

func (e *syncError) Error() string { return e.msg }
func (e *syncError) Unwrap() error { return e.err }
