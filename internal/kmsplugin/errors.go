package kmsplugin

import "errors"

// Errors a KEK returns, wrapped with context. They become gRPC status codes
// in exactly one place (codeFor in service.go).
var (
	// ErrUnavailable: the key store cannot serve now (sealed, unreachable,
	// timing out, not yet logged in). The apiserver retries; the plugin
	// recovers on its own.
	ErrUnavailable = errors.New("key store unavailable")
	// ErrSealed is an ErrUnavailable: Coffer answered that it is sealed.
	ErrSealed = errors.New("coffer is sealed")
	// ErrPermissionDenied: Coffer refused the plugin's token.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrUnknownKeyID: the key_id of a Decrypt request is not one this
	// plugin issued for its key.
	ErrUnknownKeyID = errors.New("unknown key_id")
	// ErrInvalidCiphertext: the ciphertext is malformed, does not belong to
	// the key_id, or fails authentication (tampered).
	ErrInvalidCiphertext = errors.New("invalid ciphertext")
	// ErrKeyVersionDisabled: the key version is below the key's
	// min_decryption_version.
	ErrKeyVersionDisabled = errors.New("key version disallowed by policy")
	// ErrKeyNotFound: the transit key does not exist, or cannot encrypt
	// (a misconfiguration, not a transient fault).
	ErrKeyNotFound = errors.New("transit key not usable")
	// ErrInvalidRequest: a request field is out of bounds.
	ErrInvalidRequest = errors.New("invalid request")
)
