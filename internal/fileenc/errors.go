package fileenc

import (
	"errors"
	"strings"
)

// Sentinel errors; they are wrapped with details, so test with errors.Is.
var (
	// ErrAuth: a value or the MAC failed authentication (tampered, moved
	// to another path, or encrypted under another data key).
	ErrAuth = errors.New("authentication failed")
	// ErrMACMismatch: the values decrypt but their MAC does not match the
	// one stored in the metadata (values added, removed or reordered, or
	// unencrypted values changed).
	ErrMACMismatch = errors.New("MAC mismatch: the file was modified")
	// ErrNoKey: no master key could give the data key.
	ErrNoKey = errors.New("no key could decrypt the data key")
	// ErrBadDataKey: the data key has the wrong size.
	ErrBadDataKey = errors.New("invalid data key")
	// ErrNotEncrypted: the document has no sops metadata.
	ErrNotEncrypted = errors.New("file is not encrypted with sops (no sops metadata)")
	// ErrAlreadyEncrypted: the document already has sops metadata.
	ErrAlreadyEncrypted = errors.New("file is already encrypted")
	// ErrUnsupported: a construct Coffer cannot handle (a value type, a
	// key source it cannot reach).
	ErrUnsupported = errors.New("unsupported")
	// ErrNoRecipients: encryption was asked for without any master key.
	ErrNoRecipients = errors.New("no master keys given (use --age, --hc-vault-transit or a .sops.yaml creation rule)")
)

// ParseError reports input that is not valid for its format: a malformed
// document, ENC[...] value or metadata block.
type ParseError struct {
	Format string // "yaml", "json", "dotenv", "ini", "" for values
	Line   int    // 1-based, 0 when unknown
	Msg    string
}

func (e *ParseError) Error() string {
	var b strings.Builder
	if e.Format != "" {
		b.WriteString("invalid ")
		b.WriteString(e.Format)
		if e.Line > 0 {
			b.WriteString(" at line ")
			b.WriteString(itoa(e.Line))
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// PathError names the key path of a value that failed to decrypt or
// encrypt. The value itself is never included.
type PathError struct {
	Path []string
	Err  error
}

func (e *PathError) Error() string {
	return "value at " + FormatPath(e.Path) + ": " + e.Err.Error()
}

func (e *PathError) Unwrap() error { return e.Err }

// FormatPath renders a key path the way --extract takes it:
// ["a"]["b"][0].
func FormatPath(path []string) string {
	if len(path) == 0 {
		return "(document root)"
	}
	var b strings.Builder
	for _, p := range path {
		b.WriteString(p)
	}
	return b.String()
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var buf [20]byte
	n := len(buf)
	neg := i < 0
	if neg {
		i = -i
	}
	for i > 0 {
		n--
		buf[n] = byte('0' + i%10)
		i /= 10
	}
	if neg {
		n--
		buf[n] = '-'
	}
	return string(buf[n:])
}

// ErrInvalidSelectors: more than one selector, or a regex that does not
// compile.
var ErrInvalidSelectors = errors.New("invalid selectors")

// ErrNotEncryptedValue: the selectors say a value is encrypted, but it
// is in clear text (a value added or replaced without the data key).
var ErrNotEncryptedValue = errors.New("value should be encrypted but is in clear text")

// ErrInvalidKeyGroups: an empty key group or a Shamir threshold outside
// 2..groups.
var ErrInvalidKeyGroups = errors.New("invalid key groups")

// ErrPathNotFound: a --extract, set or unset path that is not in the
// tree.
var ErrPathNotFound = errors.New("path not found")
