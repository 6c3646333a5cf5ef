package core

import "errors"

// Sentinel errors of the seal state machine.
var (
	ErrNotInitialized     = errors.New("Coffer is not initialized")     //nolint:staticcheck // user-facing wording
	ErrAlreadyInitialized = errors.New("Coffer is already initialized") //nolint:staticcheck // user-facing wording
)
