package transit

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/coffer-dev/coffer/internal/logical"
)

// maxRandomBytes is the most random/ returns at once (Vault's bound).
const maxRandomBytes = 128 * 1024

// random serves random[/:source][/:bytes]: bytes from crypto/rand. A URL
// segment that is a number is the byte count (it overrides the body);
// otherwise it is the source: "platform" and "all" both mean crypto/rand,
// "seal" (Vault Enterprise's entropy augmentation) is refused.
func (b *Backend) random(req *logical.Request, seg1, seg2 string) (*logical.Response, error) {
	d := req.Data
	if err := logical.CheckFields(d, "bytes", "format", "source"); err != nil {
		return nil, err
	}
	source, urlBytes := seg1, seg2
	if seg2 == "" && seg1 != "" && isDigits(seg1) {
		source, urlBytes = "", seg1
	}
	if source == "" {
		s, err := stringField(d, "source")
		if err != nil {
			return nil, err
		}
		source = s
	}
	switch source {
	case "", "platform", "all":
	case "seal":
		return nil, bad("source \"seal\" (entropy augmentation) is not supported by Coffer")
	default:
		return nil, logical.BadRequest("unsupported entropy source %q", clip(source))
	}
	n, err := intField(d, "bytes")
	if err != nil {
		return nil, err
	}
	if urlBytes != "" {
		v, err := strconv.Atoi(urlBytes)
		if err != nil || !isDigits(urlBytes) {
			return nil, logical.BadRequest("bytes: %q is not a number", clip(urlBytes))
		}
		n = v
	} else if !set(d, "bytes") {
		n = 32
	}
	if n < 1 || n > maxRandomBytes {
		return nil, logical.BadRequest("bytes must be between 1 and %d", maxRandomBytes)
	}
	format, err := encodingFormat(d, "base64")
	if err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		return nil, fmt.Errorf("transit: random: %w", err)
	}
	return &logical.Response{Data: map[string]any{"random_bytes": format(buf)}}, nil
}

// hash serves hash[/:algorithm]: the digest of input, hex by default.
func (b *Backend) hash(req *logical.Request, urlAlg string) (*logical.Response, error) {
	d := req.Data
	if err := logical.CheckFields(d, "input", "algorithm", "format"); err != nil {
		return nil, err
	}
	h, err := pickHash(urlAlg, d, "algorithm")
	if err != nil {
		return nil, err
	}
	input, present, err := b64Field(d, "input")
	if err != nil {
		return nil, err
	}
	if !present {
		return nil, bad("missing input to hash")
	}
	format, err := encodingFormat(d, "hex")
	if err != nil {
		return nil, err
	}
	sum := h()
	sum.Write(input)
	return &logical.Response{Data: map[string]any{"sum": format(sum.Sum(nil))}}, nil
}

// encodingFormat reads the format field: "hex" or "base64".
func encodingFormat(d map[string]any, def string) (func([]byte) string, error) {
	f, err := stringField(d, "format")
	if err != nil {
		return nil, err
	}
	if f == "" {
		f = def
	}
	switch f {
	case "hex":
		return hex.EncodeToString, nil
	case "base64":
		return base64.StdEncoding.EncodeToString, nil
	}
	return nil, logical.BadRequest("unsupported encoding format %q; must be \"hex\" or \"base64\"", clip(f))
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
