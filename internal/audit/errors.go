package audit

import (
	"errors"
	"fmt"
)

var (
	// ErrNoDeviceRecorded is returned by Broker when auditing is enabled and
	// no device recorded the event; the request must then be refused. The
	// returned error also wraps each device's failure.
	ErrNoDeviceRecorded = errors.New("audit: no audit device recorded the event")

	// ErrDeviceExists is returned by Broker.Add for a name already in use.
	ErrDeviceExists = errors.New("audit: device already enabled at this path")

	// ErrDeviceNotFound is returned by Broker.Hash for an unknown device.
	ErrDeviceNotFound = errors.New("audit: no device enabled at this path")

	// ErrNoSalt is returned by Broker.Hash for a device that does not hash
	// with a salt.
	ErrNoSalt = errors.New("audit: device has no salt")

	// ErrClosed is returned by a FileDevice used after Close.
	ErrClosed = errors.New("audit: device closed")

	// ErrLineTooLong is returned when a record would encode to a line longer
	// than MaxLineSize. Nothing is written and the device stays healthy.
	ErrLineTooLong = errors.New("audit: record too large for one log line")

	// ErrCorruptTail is returned when opening a log whose last line cannot
	// be continued (partial or invalid line). Coffer refuses to start a new
	// chain on top of it: inspect the file, then move it away or truncate
	// it to the last complete line.
	ErrCorruptTail = errors.New("audit: log file ends in a corrupt line")

	// ErrInvalidSalt is returned by SaltFromBytes for a key of the wrong size.
	ErrInvalidSalt = errors.New("audit: salt must be 32 bytes")
)

// ChainError reports the first line of a log that breaks the format or the
// hash chain. It never quotes the line's contents.
type ChainError struct {
	// Line is the 1-based number of the offending line.
	Line int
	// Reason says what is wrong with it.
	Reason string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit: log line %d: %s", e.Line, e.Reason)
}
