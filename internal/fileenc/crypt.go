package fileenc

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"strings"

	"go.yaml.in/yaml/v3"
)

// newMACHash starts the MAC: SHA-512 over the values' plaintext bytes in
// tree order. With mac_only_encrypted sops first writes SHA-256("sops"),
// so that the two kinds of MAC never collide.
func newMACHash(macOnlyEncrypted bool) hash.Hash {
	h := sha512.New()
	if macOnlyEncrypted {
		seed := sha256.Sum256([]byte("sops"))
		h.Write(seed[:])
	}
	return h
}

func macHex(h hash.Hash) string {
	return strings.ToUpper(hex.EncodeToString(h.Sum(nil)))
}

// reuseCache remembers the ciphertext of every value and comment of a
// decrypted file, so that re-encrypting an unchanged value (same path, type
// and plaintext) gives back its old ciphertext and a diff shows only what
// changed. Within one encryption each ciphertext is handed out once, so two
// equal values never share one.
type reuseCache struct {
	// recorded while decrypting; indexed into m on first use
	entries []reuseEntry
	m       map[string][]string
	used    map[string]int
}

type reuseEntry struct {
	aad, typ string
	plain    []byte
	enc      string
}

func newReuseCache() *reuseCache { return &reuseCache{} }

func reuseKey(aad, typ string, plain []byte) string {
	var b strings.Builder
	b.Grow(len(aad) + len(typ) + len(plain) + 2)
	b.WriteString(aad)
	b.WriteByte(0)
	b.WriteString(typ)
	b.WriteByte(0)
	b.Write(plain)
	return b.String()
}

func (r *reuseCache) put(aad, typ string, plain []byte, enc string) {
	if r == nil {
		return
	}
	r.entries = append(r.entries, reuseEntry{aad, typ, plain, enc})
}

// session returns a view of the cache for one encryption.
func (r *reuseCache) session() *reuseCache {
	if r == nil {
		return nil
	}
	if r.m == nil {
		r.m = make(map[string][]string, len(r.entries))
		for _, e := range r.entries {
			k := reuseKey(e.aad, e.typ, e.plain)
			r.m[k] = append(r.m[k], e.enc)
		}
		r.entries = nil
	}
	return &reuseCache{m: r.m, used: make(map[string]int)}
}

func (r *reuseCache) take(aad, typ string, plain []byte) (string, bool) {
	if r == nil || r.used == nil {
		return "", false
	}
	k := reuseKey(aad, typ, plain)
	l := r.m[k]
	i := r.used[k]
	if i >= len(l) {
		return "", false
	}
	r.used[k] = i + 1
	return l[i], true
}

// encryptVisitor encrypts the selected values and comments and hashes
// the MAC.
type encryptVisitor struct {
	c       *dataCipher
	mac     hash.Hash
	macOnly bool
	reuse   *reuseCache
}

func (e *encryptVisitor) decrypting() bool { return false }

func (e *encryptVisitor) leaf(n *yaml.Node, st *walkState, encrypt bool) error {
	v, err := scalarValue(n)
	if err != nil {
		return &PathError{Path: st.path(), Err: err}
	}
	if v == nil {
		return nil
	}
	plain, typ, err := plainBytes(v)
	if err != nil {
		return &PathError{Path: st.path(), Err: err}
	}
	if !e.macOnly || encrypt {
		e.mac.Write(plain)
	}
	if !encrypt {
		return nil
	}
	if s, ok := v.(string); ok && s == "" {
		return nil
	}
	enc, ok := e.reuse.take(st.aad(), typ, plain)
	if !ok {
		if enc, err = e.c.encryptBytes(plain, typ, st.aad()); err != nil {
			return &PathError{Path: st.path(), Err: err}
		}
	}
	n.Kind, n.Tag, n.Style, n.Value = yaml.ScalarNode, tagStr, 0, enc
	return nil
}

func (e *encryptVisitor) comment(text, aad string, decide func(string) bool) (string, string, error) {
	if !decide(text) || text == "" {
		return text, text, nil
	}
	if enc, ok := e.reuse.take(aad, typeComment, []byte(text)); ok {
		return enc, text, nil
	}
	enc, err := e.c.encryptBytes([]byte(text), typeComment, aad)
	return enc, text, err
}

// decryptVisitor decrypts the selected values and every encrypted
// comment, and hashes the MAC.
type decryptVisitor struct {
	c       *dataCipher
	mac     hash.Hash
	macOnly bool
	record  *reuseCache
}

func (d *decryptVisitor) decrypting() bool { return true }

func (d *decryptVisitor) leaf(n *yaml.Node, st *walkState, encrypt bool) error {
	if !encrypt {
		if d.macOnly {
			return nil
		}
		v, err := scalarValue(n)
		if err != nil {
			return &PathError{Path: st.path(), Err: err}
		}
		if v == nil {
			return nil
		}
		plain, _, err := plainBytes(v)
		if err != nil {
			return &PathError{Path: st.path(), Err: err}
		}
		d.mac.Write(plain)
		return nil
	}
	tag := n.ShortTag()
	if tag == tagNull || (tag == tagStr && n.Value == "") {
		return nil
	}
	if tag != tagStr || !IsEncrypted(n.Value) {
		return &PathError{Path: st.path(), Err: ErrNotEncryptedValue}
	}
	enc := n.Value
	plain, typ, err := d.c.decryptBytes(enc, st.aad())
	if err != nil {
		return &PathError{Path: st.path(), Err: err}
	}
	if typ == typeComment {
		return &PathError{Path: st.path(), Err: &ParseError{Msg: "a comment where a value was expected"}}
	}
	v, err := typedValue(plain, typ)
	if err != nil {
		return &PathError{Path: st.path(), Err: err}
	}
	canon, _, err := plainBytes(v)
	if err != nil {
		return &PathError{Path: st.path(), Err: err}
	}
	d.mac.Write(canon)
	d.record.put(st.aad(), typ, canon, enc)
	setScalar(n, v)
	return nil
}

func (d *decryptVisitor) comment(text, aad string, _ func(string) bool) (string, string, error) {
	if !IsEncrypted(text) {
		return text, text, nil
	}
	// sops and Coffer agree on the container of a comment in the usual
	// layouts; for others, also try the enclosing containers. Comments are
	// not part of the MAC in sops, so this does not weaken the file's
	// integrity check.
	var firstErr error
	for a := aad; ; {
		plain, typ, err := d.c.decryptBytes(text, a)
		if err == nil {
			if typ != typeComment {
				return "", "", &ParseError{Msg: "a value where a comment was expected"}
			}
			d.record.put(a, typeComment, plain, text)
			return string(plain), string(plain), nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if a == ":" {
			return "", "", firstErr
		}
		a = parentAAD(a)
	}
}

// parentAAD strips the last "key:" of a comment's additional data.
func parentAAD(a string) string {
	t := strings.TrimSuffix(a, ":")
	i := strings.LastIndexByte(t, ':')
	if i < 0 {
		return ":"
	}
	return t[:i+1]
}

// macEqual compares two hex MACs in constant time, ignoring case.
func macEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(strings.ToUpper(a)), []byte(strings.ToUpper(b))) == 1
}
