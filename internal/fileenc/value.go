package fileenc

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Value types of the ENC[...] "type:" field.
const (
	typeStr     = "str"
	typeInt     = "int"
	typeFloat   = "float"
	typeBool    = "bool"
	typeBytes   = "bytes"
	typeTime    = "time"
	typeComment = "comment"
)

const (
	encPrefix = "ENC[AES256_GCM,"
	ivSize    = 32 // sops uses a 256-bit nonce with AES-GCM
	tagSize   = 16
	keySize   = 32
)

// dataCipher is AES-256-GCM under a file's data key with sops' 32-byte
// nonce. The AEAD is built once per file, not once per value.
type dataCipher struct {
	aead cipher.AEAD
}

func newDataCipher(key []byte) (*dataCipher, error) {
	if len(key) != keySize {
		return nil, fmt.Errorf("%w: data key is %d bytes, want %d", ErrBadDataKey, len(key), keySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDataKey, err)
	}
	aead, err := cipher.NewGCMWithNonceSize(block, ivSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDataKey, err)
	}
	return &dataCipher{aead: aead}, nil
}

// encValue is a parsed ENC[AES256_GCM,data:…,iv:…,tag:…,type:…] string.
type encValue struct {
	data, iv, tag []byte
	typ           string
}

// IsEncrypted reports whether s looks like a sops-encrypted value.
func IsEncrypted(s string) bool { return strings.HasPrefix(s, encPrefix) }

// parseEncValue parses the ENC[...] format strictly: the four fields in
// sops' order, standard padded base64, a 32-byte IV, a 16-byte tag and a
// known type.
func parseEncValue(s string) (*encValue, error) {
	if !strings.HasPrefix(s, encPrefix) || !strings.HasSuffix(s, "]") {
		return nil, &ParseError{Msg: "not an ENC[AES256_GCM,...] value"}
	}
	body := s[len(encPrefix) : len(s)-1]
	var fields [4]string
	names := [4]string{"data:", "iv:", "tag:", "type:"}
	for i, name := range names {
		if !strings.HasPrefix(body, name) {
			return nil, &ParseError{Msg: fmt.Sprintf("ENC value: expected field %q", strings.TrimSuffix(name, ":"))}
		}
		body = body[len(name):]
		if i == len(names)-1 {
			fields[i] = body
			break
		}
		v, rest, ok := strings.Cut(body, ",")
		if !ok {
			return nil, &ParseError{Msg: fmt.Sprintf("ENC value: field %q is not terminated", strings.TrimSuffix(name, ":"))}
		}
		fields[i] = v
		body = rest
	}
	ev := &encValue{typ: fields[3]}
	switch ev.typ {
	case typeStr, typeInt, typeFloat, typeBool, typeBytes, typeTime, typeComment:
	default:
		return nil, &ParseError{Msg: fmt.Sprintf("ENC value: unknown type %q", truncate(ev.typ, 20))}
	}
	var err error
	if ev.data, err = base64.StdEncoding.Strict().DecodeString(fields[0]); err != nil {
		return nil, &ParseError{Msg: "ENC value: data is not valid base64"}
	}
	if ev.iv, err = base64.StdEncoding.Strict().DecodeString(fields[1]); err != nil || len(ev.iv) != ivSize {
		return nil, &ParseError{Msg: fmt.Sprintf("ENC value: iv must be %d bytes of base64", ivSize)}
	}
	if ev.tag, err = base64.StdEncoding.Strict().DecodeString(fields[2]); err != nil || len(ev.tag) != tagSize {
		return nil, &ParseError{Msg: fmt.Sprintf("ENC value: tag must be %d bytes of base64", tagSize)}
	}
	return ev, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (ev *encValue) String() string {
	var b strings.Builder
	enc := base64.StdEncoding
	b.Grow(len(encPrefix) + 30 + enc.EncodedLen(len(ev.data)) + enc.EncodedLen(ivSize) + enc.EncodedLen(tagSize) + len(ev.typ))
	b.WriteString(encPrefix)
	b.WriteString("data:")
	b.WriteString(enc.EncodeToString(ev.data))
	b.WriteString(",iv:")
	b.WriteString(enc.EncodeToString(ev.iv))
	b.WriteString(",tag:")
	b.WriteString(enc.EncodeToString(ev.tag))
	b.WriteString(",type:")
	b.WriteString(ev.typ)
	b.WriteString("]")
	return b.String()
}

// plainBytes is the byte form of a leaf value, as it is encrypted and as
// it enters the MAC, with its ENC type.
func plainBytes(v any) ([]byte, string, error) {
	switch x := v.(type) {
	case string:
		return []byte(x), typeStr, nil
	case int64:
		return strconv.AppendInt(nil, x, 10), typeInt, nil
	case uint64:
		return strconv.AppendUint(nil, x, 10), typeInt, nil
	case float64:
		return []byte(formatFloat(x)), typeFloat, nil
	case bool:
		if x {
			return []byte("True"), typeBool, nil
		}
		return []byte("False"), typeBool, nil
	case []byte:
		return x, typeBytes, nil
	case time.Time:
		return []byte(x.Format(time.RFC3339)), typeTime, nil
	case Comment:
		return []byte(x.Value), typeComment, nil
	}
	return nil, "", fmt.Errorf("%w: cannot encrypt a value of type %T", ErrUnsupported, v)
}

func formatFloat(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// encrypt seals v under aad ("a:b:" for the path a.b) with a fresh IV.
// Empty strings are left as they are, as sops does.
func (c *dataCipher) encrypt(v any, aad string) (any, error) {
	if s, ok := v.(string); ok && s == "" {
		return "", nil
	}
	plain, typ, err := plainBytes(v)
	if err != nil {
		return nil, err
	}
	return c.encryptBytes(plain, typ, aad)
}

func (c *dataCipher) encryptBytes(plain []byte, typ, aad string) (string, error) {
	ev := &encValue{typ: typ, iv: make([]byte, ivSize)}
	if _, err := rand.Read(ev.iv); err != nil {
		return "", fmt.Errorf("read random iv: %w", err)
	}
	sealed := c.aead.Seal(nil, ev.iv, plain, []byte(aad))
	ev.data = sealed[:len(sealed)-tagSize]
	ev.tag = sealed[len(sealed)-tagSize:]
	return ev.String(), nil
}

// decryptBytes opens an ENC[...] string and returns the plaintext bytes
// and the type.
func (c *dataCipher) decryptBytes(s, aad string) ([]byte, string, error) {
	ev, err := parseEncValue(s)
	if err != nil {
		return nil, "", err
	}
	sealed := make([]byte, 0, len(ev.data)+tagSize)
	sealed = append(sealed, ev.data...)
	sealed = append(sealed, ev.tag...)
	plain, err := c.aead.Open(sealed[:0], ev.iv, sealed, []byte(aad))
	if err != nil {
		return nil, "", ErrAuth
	}
	return plain, ev.typ, nil
}

// decrypt opens an ENC[...] string and converts the plaintext back to the
// value of its type. A string that is not ENC[...] is returned as is only
// when it is empty (sops never encrypts empty strings).
func (c *dataCipher) decrypt(s, aad string) (any, error) {
	if s == "" {
		return "", nil
	}
	plain, typ, err := c.decryptBytes(s, aad)
	if err != nil {
		return nil, err
	}
	return typedValue(plain, typ)
}

func typedValue(plain []byte, typ string) (any, error) {
	switch typ {
	case typeStr:
		return string(plain), nil
	case typeBytes:
		return plain, nil
	case typeComment:
		return Comment{Value: string(plain)}, nil
	case typeInt:
		if i, err := strconv.ParseInt(string(plain), 10, 64); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(string(plain), 10, 64); err == nil {
			return u, nil
		}
		return nil, &ParseError{Msg: "decrypted int value is not an integer"}
	case typeFloat:
		f, err := strconv.ParseFloat(string(plain), 64)
		if err != nil && !math.IsInf(f, 0) {
			return nil, &ParseError{Msg: "decrypted float value is not a number"}
		}
		return f, nil
	case typeBool:
		switch string(plain) {
		case "True", "true":
			return true, nil
		case "False", "false":
			return false, nil
		}
		return nil, &ParseError{Msg: "decrypted bool value is not True or False"}
	case typeTime:
		t, err := time.Parse(time.RFC3339, string(plain))
		if err != nil {
			return nil, &ParseError{Msg: "decrypted time value is not RFC 3339"}
		}
		return t, nil
	}
	return nil, &ParseError{Msg: fmt.Sprintf("unknown value type %q", typ)}
}

// Comment is a comment's text as a value (type "comment").
type Comment struct{ Value string }
