package transit

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// versionPrefix starts every ciphertext, HMAC and signature.
const versionPrefix = "vault:v"

// maxVersionDigits bounds the version field: key versions are ints well
// below a billion, and a bound keeps the parser's work proportional.
const maxVersionDigits = 9

// formatVersioned renders raw as "vault:v<version>:<base64(raw)>".
func formatVersioned(version int, raw []byte) string {
	var sb strings.Builder
	sb.Grow(len(versionPrefix) + maxVersionDigits + 1 + base64.StdEncoding.EncodedLen(len(raw)))
	sb.WriteString(versionPrefix)
	sb.WriteString(strconv.Itoa(version))
	sb.WriteByte(':')
	sb.WriteString(base64.StdEncoding.EncodeToString(raw))
	return sb.String()
}

// DecodeCiphertext parses a ciphertext "vault:v<N>:<base64>" into its key
// version and raw bytes (nonce || ciphertext || tag). It checks the syntax
// only: whether the version exists and the bytes authenticate is up to the
// key. Errors are *ParseError.
func DecodeCiphertext(s string) (version int, raw []byte, err error) {
	return decodeVersioned("ciphertext", s)
}

// decodeVersioned parses "vault:v<N>:<base64>" for a value of the given
// kind. N is 1 to 9 decimal digits without a sign or leading zero; the
// payload is standard padded base64 and may be empty.
func decodeVersioned(kind, s string) (int, []byte, error) {
	rest, ok := strings.CutPrefix(s, versionPrefix)
	if !ok {
		return 0, nil, &ParseError{Kind: kind, Msg: "no prefix"}
	}
	digits, payload, ok := strings.Cut(rest, ":")
	if !ok {
		return 0, nil, &ParseError{Kind: kind, Msg: "wrong number of fields"}
	}
	version, ok := parseVersionDigits(digits)
	if !ok {
		return 0, nil, &ParseError{Kind: kind, Msg: "version number could not be decoded"}
	}
	raw, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return 0, nil, &ParseError{Kind: kind, Msg: "could not decode base64"}
	}
	return version, raw, nil
}

// parseVersionDigits accepts exactly what formatVersioned writes: a
// positive decimal number without sign or leading zeros.
func parseVersionDigits(s string) (int, bool) {
	if s == "" || len(s) > maxVersionDigits || s[0] == '0' {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
