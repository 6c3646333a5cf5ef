package logical

import (
	"errors"
	"fmt"
)

// Sentinel errors. The server maps each to one HTTP status.
var (
	// ErrNotFound: the path or the object does not exist (404).
	ErrNotFound = errors.New("not found")
	// ErrPermissionDenied: missing, invalid or insufficient token (403).
	// Its message never says which of these it was.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrUnsupportedOperation: the path exists but not for this verb (405).
	ErrUnsupportedOperation = errors.New("unsupported operation")
	// ErrUnsupportedPath: no handler serves this path (404).
	ErrUnsupportedPath = errors.New("unsupported path")
	// ErrSealed: the server is sealed (503).
	ErrSealed = errors.New("Coffer is sealed") //nolint:staticcheck // exact Vault-compatible wording
	// ErrRateLimited: too many requests (429).
	ErrRateLimited = errors.New("rate limit exceeded")
	// ErrInternal: something failed inside; details go to the log only (500).
	ErrInternal = errors.New("internal error")
	// ErrUpstream: a system Coffer depends on failed (502).
	ErrUpstream = errors.New("upstream error")
	// ErrTooLarge: the request body is over the limit (413).
	ErrTooLarge = errors.New("request body too large")
)

// InvalidRequestError is a client error (400) whose message is safe to show.
type InvalidRequestError struct{ Msg string }

func (e *InvalidRequestError) Error() string { return e.Msg }

// BadRequest returns an *InvalidRequestError with a formatted message. The
// message is sent to the client: never put secret values in it.
func BadRequest(format string, args ...any) error {
	return &InvalidRequestError{Msg: fmt.Sprintf(format, args...)}
}

// CodedError carries an explicit HTTP status with a client-safe message.
type CodedError struct {
	Status int
	Msg    string
}

func (e *CodedError) Error() string { return e.Msg }
