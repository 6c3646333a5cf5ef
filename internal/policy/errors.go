package policy

import (
	"errors"
	"fmt"
)

// ErrRootPolicy is wrapped by the *ParseError returned when a caller tries to
// write the built-in root policy.
var ErrRootPolicy = errors.New(`cannot update the built-in "root" policy`)

// ParseError reports invalid policy text or an invalid policy name. Line and
// Column are 1-based and zero when the error is not tied to a position.
type ParseError struct {
	Policy string
	Line   int
	Column int
	Msg    string

	err error // optional sentinel, for errors.Is
}

func (e *ParseError) Error() string {
	var prefix string
	if e.Policy != "" {
		prefix = fmt.Sprintf("policy %q: ", e.Policy)
	}
	if e.Line > 0 {
		return fmt.Sprintf("%sline %d: %s", prefix, e.Line, e.Msg)
	}
	return prefix + e.Msg
}

// Unwrap returns the sentinel error behind e, if any.
func (e *ParseError) Unwrap() error { return e.err }
