package audit

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// This file is the one place that decides what a log line holds and which
// values are hashed: devices write its output, and HashRequest and
// HashResponse decode it.

// maxDepth bounds the nesting followed in data; it matches the limit of
// encoding/json's decoder, so any decoded request body fits, and a cyclic
// map fails instead of recursing forever.
const maxDepth = 10000

var errTooDeep = errors.New("data nested too deeply to hash")

// encoder appends one line body (a JSON object without the chain fields)
// to b, hashing sensitive strings with salt as it goes. It never modifies
// the record and allocates little: it is the hot path of every request.
type encoder struct {
	b       []byte
	salt    Salt
	mac     hash.Hash // taken from salt's pool for one record
	sum     [32]byte
	scratch []byte
	keys    []string // a stack of sorted map keys, one region per open map
}

var encoders = sync.Pool{New: func() any { return new(encoder) }}

func getEncoder(s Salt) *encoder {
	s.mustBeSet()
	e := encoders.Get().(*encoder)
	e.b, e.salt = e.b[:0], s
	e.mac = s.k.macs.Get().(hash.Hash)
	return e
}

func (e *encoder) release() {
	e.salt.k.macs.Put(e.mac)
	e.mac, e.salt = nil, Salt{}
	e.keys = e.keys[:0] // already cleared by popKeys
	// scratch held plaintext values: wipe it before it is pooled.
	clear(e.scratch[:cap(e.scratch)])
	// Do not pin the buffers of an outsized record.
	if cap(e.b) > 64<<10 {
		e.b = nil
	}
	if cap(e.scratch) > 64<<10 {
		e.scratch = nil
	}
	encoders.Put(e)
}

func (e *encoder) request(r *Request, now time.Time) error {
	e.head(typeRequest, r.Time, now)
	if r.Auth != nil {
		e.b = append(e.b, `,"auth":`...)
		e.auth(r.Auth)
	}
	if r.Request != nil {
		e.b = append(e.b, `,"request":`...)
		if err := e.requestInfo(r.Request); err != nil {
			return fmt.Errorf("audit: hash request data: %w", err)
		}
	}
	e.tail(r.Error)
	return nil
}

func (e *encoder) response(r *Response, now time.Time) error {
	e.head(typeResponse, r.Time, now)
	if r.Auth != nil {
		e.b = append(e.b, `,"auth":`...)
		e.auth(r.Auth)
	}
	if r.Request != nil {
		e.b = append(e.b, `,"request":`...)
		if err := e.requestInfo(r.Request); err != nil {
			return fmt.Errorf("audit: hash request data: %w", err)
		}
	}
	if r.Response != nil {
		e.b = append(e.b, `,"response":`...)
		if err := e.responseInfo(r.Response); err != nil {
			return fmt.Errorf("audit: hash response data: %w", err)
		}
	}
	e.tail(r.Error)
	return nil
}

func (e *encoder) genesis(now time.Time) {
	e.head(typeGenesis, now, now)
	e.b = append(e.b, `,"format":"`+FormatVersion+`"}`...)
}

func (e *encoder) head(typ string, t, now time.Time) {
	if t.IsZero() {
		t = now
	}
	e.b = append(e.b, `{"time":"`...)
	e.b = t.UTC().AppendFormat(e.b, time.RFC3339Nano)
	e.b = append(e.b, `","type":"`...)
	e.b = append(e.b, typ...)
	e.b = append(e.b, '"')
}

// tail writes the error, logged in the clear, and closes the object.
func (e *encoder) tail(errStr string) {
	if errStr != "" {
		e.b = append(e.b, `,"error":`...)
		e.quote(errStr)
	}
	e.b = append(e.b, '}')
}

// obj writes the members of one JSON object; members with empty values are
// left out, as omitempty would.
type obj struct {
	e     *encoder
	empty bool
}

func (e *encoder) open() obj {
	e.b = append(e.b, '{')
	return obj{e: e, empty: true}
}

func (o *obj) close() { o.e.b = append(o.e.b, '}') }

func (o *obj) key(k string) {
	if !o.empty {
		o.e.b = append(o.e.b, ',')
	}
	o.empty = false
	o.e.quote(k)
	o.e.b = append(o.e.b, ':')
}

// clear writes a string member as is.
func (o *obj) clear(k, v string) {
	if v != "" {
		o.key(k)
		o.e.quote(v)
	}
}

// hashed writes a string member hashed; an empty one is left out.
func (o *obj) hashed(k, v string) {
	if v != "" {
		o.key(k)
		o.e.hash(v)
	}
}

func (o *obj) clearList(k string, vs []string) {
	if len(vs) == 0 {
		return
	}
	o.key(k)
	o.e.b = append(o.e.b, '[')
	for i, v := range vs {
		if i > 0 {
			o.e.b = append(o.e.b, ',')
		}
		o.e.quote(v)
	}
	o.e.b = append(o.e.b, ']')
}

func (o *obj) hashedMap(k string, m map[string]string) {
	if len(m) > 0 {
		o.key(k)
		o.e.stringMap(m)
	}
}

func (o *obj) hashedHeaders(k string, h map[string][]string) {
	if len(h) > 0 {
		o.key(k)
		o.e.headers(h)
	}
}

func (o *obj) data(k string, m map[string]any) error {
	if len(m) == 0 {
		return nil
	}
	o.key(k)
	return o.e.mapAny(m, 1)
}

// auth writes an Auth. Tokens, accessors and metadata values are hashed;
// names, policies, entity id, type and TTL are not, as in Vault.
func (e *encoder) auth(a *Auth) {
	o := e.open()
	o.hashed("client_token", a.ClientToken)
	o.hashed("accessor", a.Accessor)
	o.clear("display_name", a.DisplayName)
	o.clearList("policies", a.Policies)
	o.clearList("token_policies", a.TokenPolicies)
	o.hashedMap("metadata", a.Metadata)
	o.clear("entity_id", a.EntityID)
	o.clear("token_type", a.TokenType)
	if a.TokenTTL != 0 {
		o.key("token_ttl")
		e.b = strconv.AppendInt(e.b, a.TokenTTL, 10)
	}
	o.close()
}

func (e *encoder) requestInfo(r *RequestInfo) error {
	o := e.open()
	o.clear("id", r.ID)
	o.clear("operation", r.Operation)
	o.clear("mount_type", r.MountType)
	o.clear("mount_accessor", r.MountAccessor)
	o.hashed("client_token", r.ClientToken)
	o.hashed("client_token_accessor", r.ClientTokenAccessor)
	o.key("namespace")
	ns := e.open()
	ns.key("id")
	if r.Namespace.ID == "" {
		e.quote("root")
	} else {
		e.quote(r.Namespace.ID)
	}
	ns.clear("path", r.Namespace.Path)
	ns.close()
	o.clear("path", r.Path)
	if err := o.data("data", r.Data); err != nil {
		return err
	}
	o.clear("remote_address", r.RemoteAddress)
	o.hashedHeaders("headers", r.Headers)
	o.close()
	return nil
}

func (e *encoder) responseInfo(r *ResponseInfo) error {
	o := e.open()
	o.clear("mount_type", r.MountType)
	if err := o.data("data", r.Data); err != nil {
		return err
	}
	if r.Secret != nil {
		o.key("secret")
		s := e.open()
		s.key("lease_id")
		e.hash(r.Secret.LeaseID)
		s.close()
	}
	if r.Auth != nil {
		o.key("auth")
		e.auth(r.Auth)
	}
	o.clearList("warnings", r.Warnings)
	o.hashedHeaders("headers", r.Headers)
	o.close()
	return nil
}

// hash writes v as the JSON string "hmac-sha256:<hex>".
func (e *encoder) hash(v string) {
	e.scratch = append(e.scratch[:0], v...) // Write([]byte(v)) would allocate
	e.mac.Reset()
	e.mac.Write(e.scratch)
	e.b = append(e.b, '"')
	e.b = appendHex(append(e.b, hashPrefix...), e.mac.Sum(e.sum[:0]))
	e.b = append(e.b, '"')
}

func (e *encoder) stringMap(m map[string]string) {
	o := e.open()
	start, end := pushSortedKeys(e, m)
	for i := start; i < end; i++ {
		o.key(e.keys[i])
		e.hash(m[e.keys[i]])
	}
	e.popKeys(start)
	o.close()
}

func (e *encoder) headers(h map[string][]string) {
	o := e.open()
	start, end := pushSortedKeys(e, h)
	for i := start; i < end; i++ {
		o.key(e.keys[i])
		e.hashedList(h[e.keys[i]])
	}
	e.popKeys(start)
	o.close()
}

func (e *encoder) hashedList(vs []string) {
	if vs == nil {
		e.b = append(e.b, "null"...)
		return
	}
	e.b = append(e.b, '[')
	for i, v := range vs {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.hash(v)
	}
	e.b = append(e.b, ']')
}

func (e *encoder) mapAny(m map[string]any, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	if m == nil {
		e.b = append(e.b, "null"...)
		return nil
	}
	o := e.open()
	start, end := pushSortedKeys(e, m)
	defer e.popKeys(start)
	for i := start; i < end; i++ {
		o.key(e.keys[i]) // keys stay readable, as in Vault
		if err := e.value(m[e.keys[i]], depth+1); err != nil {
			return err
		}
	}
	o.close()
	return nil
}

// value writes any value found under data: every string in it is hashed;
// numbers, booleans and null are written as they are, and json.Number is a
// number, not a string.
func (e *encoder) value(v any, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	switch v := v.(type) {
	case nil:
		e.b = append(e.b, "null"...)
	case string:
		e.hash(v)
	case bool:
		e.b = strconv.AppendBool(e.b, v)
	case json.Number:
		if !isJSONNumber(string(v)) {
			return errors.New("invalid json.Number")
		}
		e.b = append(e.b, v...)
	case int:
		e.b = strconv.AppendInt(e.b, int64(v), 10)
	case int64:
		e.b = strconv.AppendInt(e.b, v, 10)
	case float64:
		return e.float(v, 64)
	case map[string]any:
		return e.mapAny(v, depth)
	case []any:
		if v == nil {
			e.b = append(e.b, "null"...)
			return nil
		}
		e.b = append(e.b, '[')
		for i, x := range v {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			if err := e.value(x, depth+1); err != nil {
				return err
			}
		}
		e.b = append(e.b, ']')
	case []string:
		e.hashedList(v)
	case map[string]string:
		if v == nil {
			e.b = append(e.b, "null"...)
			return nil
		}
		e.stringMap(v)
	case map[string][]string:
		if v == nil {
			e.b = append(e.b, "null"...)
			return nil
		}
		e.headers(v)
	default:
		return e.other(v, depth)
	}
	return nil
}

var (
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// other writes a value of a type value has no case for. Strings, numbers
// and booleans of any named type are handled by kind, unless the type has
// its own JSON or text encoding, which could print anything. Everything else
// (structs, pointers, []byte, other maps and slices) goes through
// encoding/json and back, then is written like decoded JSON, so a string
// inside it cannot escape hashing.
func (e *encoder) other(v any, depth int) error {
	rv := reflect.ValueOf(v)
	t := rv.Type()
	if !t.Implements(jsonMarshalerType) && !t.Implements(textMarshalerType) {
		switch t.Kind() {
		case reflect.String:
			e.hash(rv.String())
			return nil
		case reflect.Bool:
			e.b = strconv.AppendBool(e.b, rv.Bool())
			return nil
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			e.b = strconv.AppendInt(e.b, rv.Int(), 10)
			return nil
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			e.b = strconv.AppendUint(e.b, rv.Uint(), 10)
			return nil
		case reflect.Float32:
			return e.float(rv.Float(), 32)
		case reflect.Float64:
			return e.float(rv.Float(), 64)
		}
	}
	// The encoder's error could quote the value: report only its type.
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cannot encode value of type %s for hashing", t)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return fmt.Errorf("cannot decode value of type %s for hashing", t)
	}
	return e.value(generic, depth)
}

// float writes f as encoding/json does.
func (e *encoder) float(f float64, bits int) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return errors.New("data holds a NaN or infinite number")
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) ||
			bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	e.b = strconv.AppendFloat(e.b, f, format, -1, bits)
	if format == 'e' { // 1e-07 -> 1e-7, as encoding/json writes it
		if n := len(e.b); n >= 4 && e.b[n-4] == 'e' && e.b[n-3] == '-' && e.b[n-2] == '0' {
			e.b[n-2] = e.b[n-1]
			e.b = e.b[:n-1]
		}
	}
	return nil
}

// quote writes s as a JSON string. Invalid UTF-8 becomes U+FFFD, as with
// encoding/json; HTML characters are not escaped, lines are not HTML.
func (e *encoder) quote(s string) {
	const hexDigits = "0123456789abcdef"
	b := append(e.b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' { // valid JSON, but break JavaScript
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	e.b = append(b, '"')
}

func appendHex(dst, src []byte) []byte {
	const hexDigits = "0123456789abcdef"
	for _, c := range src {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return dst
}

// pushSortedKeys pushes the keys of m, sorted, on e's key stack and returns
// their region; nested maps push above it, so read keys by index.
func pushSortedKeys[V any](e *encoder, m map[string]V) (start, end int) {
	start = len(e.keys)
	for k := range m {
		e.keys = append(e.keys, k)
	}
	slices.Sort(e.keys[start:])
	return start, len(e.keys)
}

// popKeys drops the keys pushed from start on, not keeping them alive.
func (e *encoder) popKeys(start int) {
	clear(e.keys[start:])
	e.keys = e.keys[:start]
}

// isJSONNumber reports whether s is a JSON number literal.
func isJSONNumber(s string) bool {
	i := 0
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i < len(s) && s[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}
