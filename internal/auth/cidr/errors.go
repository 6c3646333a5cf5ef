package cidr

import "fmt"

// ParseError reports an entry that is not a CIDR block or address.
type ParseError struct {
	Entry  string // the offending entry, cut to a short length
	Reason string
}

func (e *ParseError) Error() string {
	if e.Entry == "" {
		return "invalid CIDR list: " + e.Reason
	}
	return fmt.Sprintf("invalid CIDR block %q: %s", e.Entry, e.Reason)
}
