package userpass

import "github.com/coffer-dev/coffer/internal/logical"

// errInvalidCredentials is the one answer to every failed login: wrong
// password, unknown user, locked user and malformed user name alike, so
// the body never tells them apart.
var errInvalidCredentials = logical.BadRequest("invalid username or password")

// ParseError reports a stored password hash that cannot be decoded. It
// never quotes the hash.
type ParseError struct {
	Reason string
}

func (e *ParseError) Error() string { return "invalid password hash: " + e.Reason }
