package shamir

import "errors"

// Errors returned by Split and Combine. They are wrapped with details, so
// test for them with errors.Is.
var (
	// ErrEmptySecret: Split was given no secret bytes.
	ErrEmptySecret = errors.New("shamir: secret is empty")
	// ErrInvalidParts: parts is outside 2..255.
	ErrInvalidParts = errors.New("shamir: invalid number of parts")
	// ErrInvalidThreshold: threshold is outside 2..parts.
	ErrInvalidThreshold = errors.New("shamir: invalid threshold")
	// ErrTooFewShares: Combine needs at least two shares.
	ErrTooFewShares = errors.New("shamir: too few shares")
	// ErrShareLength: shares shorter than two bytes, or of different lengths.
	ErrShareLength = errors.New("shamir: invalid share length")
	// ErrDuplicateShare: two shares have the same x-coordinate.
	ErrDuplicateShare = errors.New("shamir: duplicate share")
	// ErrZeroCoordinate: a share has x-coordinate 0, which Split never
	// produces (the value at 0 is the secret itself).
	ErrZeroCoordinate = errors.New("shamir: share has x-coordinate 0")
)
