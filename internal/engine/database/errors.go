package database

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/coffer-dev/coffer/internal/logical"
)

// Sentinel errors.
var (
	// errCorrupt reports a stored entry that does not decode. Decoder
	// errors are not wrapped: their text could quote stored secrets.
	errCorrupt = errors.New("database: stored entry is corrupt")
	// errClosed reports a connection pool closed by a config change, a
	// reset or the engine's cleanup.
	errClosed = errors.New("database: connection pool is closed")
)

// ParseError reports malformed untrusted input: SQL statements that do not
// split (an unterminated quote or comment), a username template, a
// rotation schedule or a connection URL. Its message never quotes a
// secret, so it is safe to send to the client.
type ParseError struct {
	Field string // the request field, e.g. "creation_statements"
	Msg   string // what is wrong
}

func (e *ParseError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// asClient turns a *ParseError into a 400; other errors pass through.
func asClient(err error) error {
	var pe *ParseError
	if errors.As(err, &pe) {
		return &logical.InvalidRequestError{Msg: pe.Error()}
	}
	return err
}

// dbError turns an error from PostgreSQL or the driver into the error a
// client sees, with every secret in its text replaced: an error that
// PostgreSQL itself reported (bad SQL, a missing privilege) is the
// client's fault and becomes a 400 prefixed with what; anything else (the
// server unreachable, a broken connection) is a 502.
func dbError(what string, err error, secrets ...string) error {
	msg := redact(err.Error(), secrets...)
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return logical.BadRequest("%s: %s", what, msg)
	}
	return fmt.Errorf("%w: %s: %s", logical.ErrUpstream, what, msg)
}

// isServerError reports whether err was reported by PostgreSQL (so the
// connection that carried it is still usable).
func isServerError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe)
}
