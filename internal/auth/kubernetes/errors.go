package kubernetes

import (
	"errors"
	"fmt"
)

// Errors of the claims parser. They never contain the token.
var (
	errNotJWT       = errors.New("not a compact JWS (header.payload.signature)")
	errTooLong      = errors.New("token too long")
	errBadEncoding  = errors.New("invalid base64url encoding")
	errBadJSON      = errors.New("invalid JSON")
	errBadSignature = errors.New("signature does not verify with any of pem_keys")
)

// ParseError reports a token that could not be parsed. Part names the
// piece that failed ("header", "payload", "signature"); it never quotes the
// token.
type ParseError struct {
	Part string
	Err  error
}

func (e *ParseError) Error() string {
	if e.Part == "" {
		return "invalid jwt: " + e.Err.Error()
	}
	return fmt.Sprintf("invalid jwt %s: %v", e.Part, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }
