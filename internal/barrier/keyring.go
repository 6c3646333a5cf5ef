package barrier

import (
	"cmp"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Raw storage keys the barrier owns (docs/barrier-format.md).
const (
	rootKeyPath   = "core/root-key"
	keyringPath   = "core/keyring"
	logicalPrefix = "logical/"

	// coreTerm is the term number in the header of the barrier's own
	// entries; keyring terms start at 1, so a core entry copied into the
	// logical namespace fails with ErrUnknownTerm.
	coreTerm = 0

	keyringVersion = 1
)

// term is one generation of the keyring.
type term struct {
	id          uint32
	key         []byte
	aead        cipher.AEAD
	installTime time.Time
	// encryptions is the final count of a retired term; the active term's
	// live count is Barrier.encs.
	encryptions uint64
}

// keyringJSON is the plaintext of core/keyring.
type keyringJSON struct {
	Version    int        `json:"version"`
	ActiveTerm uint32     `json:"active_term"`
	Terms      []termJSON `json:"terms"`
}

type termJSON struct {
	Term        uint32    `json:"term"`
	Key         []byte    `json:"key"`
	InstallTime time.Time `json:"install_time"`
	Encryptions uint64    `json:"encryptions"`
}

// encodeKeyring encrypts the keyring made of terms, with active the active
// term and activeCount its encryption count, under the root key.
func encodeKeyring(rootAEAD cipher.AEAD, terms []*term, active *term, activeCount uint64) ([]byte, error) {
	doc := keyringJSON{Version: keyringVersion, ActiveTerm: active.id}
	for _, t := range terms {
		n := t.encryptions
		if t == active {
			n = activeCount
		}
		doc.Terms = append(doc.Terms, termJSON{Term: t.id, Key: t.key, InstallTime: t.installTime, Encryptions: n})
	}
	slices.SortFunc(doc.Terms, func(a, b termJSON) int { return cmp.Compare(a.Term, b.Term) })
	// Sized so that appending never reallocates and leaves a partial copy
	// behind (a term takes at most 161 bytes).
	pt, err := appendKeyringJSON(make([]byte, 0, 128+256*len(doc.Terms)), &doc)
	defer clear(pt)
	if err != nil {
		return nil, err
	}
	return encryptEntry(rootAEAD, coreTerm, keyringPath, pt)
}

// appendKeyringJSON encodes doc as json.Marshal would, but into a buffer
// the caller owns and clears: encoding/json builds its output in pooled
// buffers that would keep the base64 keys in memory after Seal.
func appendKeyringJSON(b []byte, doc *keyringJSON) ([]byte, error) {
	b = append(b, `{"version":`...)
	b = strconv.AppendInt(b, int64(doc.Version), 10)
	b = append(b, `,"active_term":`...)
	b = strconv.AppendUint(b, uint64(doc.ActiveTerm), 10)
	b = append(b, `,"terms":[`...)
	for i, t := range doc.Terms {
		if i > 0 {
			b = append(b, ',')
		}
		// RFC 3339 output is plain ASCII, so it needs no escaping, as long
		// as the year has four digits (json.Marshal refuses others too).
		if y := t.InstallTime.Year(); y < 0 || y > 9999 {
			return b, fmt.Errorf("barrier: encode keyring: install time of term %d is out of range", t.Term)
		}
		b = append(b, `{"term":`...)
		b = strconv.AppendUint(b, uint64(t.Term), 10)
		b = append(b, `,"key":"`...)
		b = base64.StdEncoding.AppendEncode(b, t.Key)
		b = append(b, `","install_time":"`...)
		b = t.InstallTime.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","encryptions":`...)
		b = strconv.AppendUint(b, t.Encryptions, 10)
		b = append(b, '}')
	}
	return append(b, "]}"...), nil
}

// decodeKeyring authenticates core/keyring with the root key and returns its
// terms, the active one and the active term's stored count.
func decodeKeyring(rootAEAD cipher.AEAD, raw []byte) (map[uint32]*term, *term, uint64, error) {
	pt, err := openCoreEntry(rootAEAD, keyringPath, raw)
	if err != nil {
		return nil, nil, 0, err
	}
	defer clear(pt)
	var doc keyringJSON
	fail := func(reason string) (map[uint32]*term, *term, uint64, error) {
		for _, tj := range doc.Terms {
			clear(tj.Key)
		}
		return nil, nil, 0, &DecodeError{Path: keyringPath, Err: errors.New(reason)}
	}
	// The JSON error is not returned: its text can quote plaintext bytes.
	if err := json.Unmarshal(pt, &doc); err != nil {
		return fail("keyring is not valid JSON")
	}
	terms := make(map[uint32]*term, len(doc.Terms))
	if doc.Version != keyringVersion {
		return fail(fmt.Sprintf("unsupported keyring version %d", doc.Version))
	}
	for _, tj := range doc.Terms {
		if tj.Term == coreTerm || terms[tj.Term] != nil {
			return fail(fmt.Sprintf("keyring term %d is reserved or repeated", tj.Term))
		}
		aead, err := newAEAD(tj.Key)
		if err != nil {
			return fail(fmt.Sprintf("keyring term %d has a malformed key", tj.Term))
		}
		terms[tj.Term] = &term{id: tj.Term, key: tj.Key, aead: aead, installTime: tj.InstallTime, encryptions: tj.Encryptions}
	}
	active := terms[doc.ActiveTerm]
	if active == nil {
		return fail(fmt.Sprintf("keyring has no active term %d", doc.ActiveTerm))
	}
	return terms, active, active.encryptions, nil
}

// openCoreEntry opens one of the barrier's own entries (term 0).
func openCoreEntry(aead cipher.AEAD, path string, raw []byte) ([]byte, error) {
	id, err := entryTerm(path, raw)
	if err != nil {
		return nil, err
	}
	if id != coreTerm {
		return nil, &DecodeError{Path: path, Err: fmt.Errorf("%w %d", ErrUnknownTerm, id)}
	}
	return openEntry(aead, path, raw)
}

// unwrapRootKey opens core/root-key with the unseal key. Authentication
// failure is ErrInvalidKey, whichever of wrong key or modified entry caused
// it: AES-GCM cannot tell them apart, and neither should callers.
func unwrapRootKey(unsealAEAD cipher.AEAD, raw []byte) ([]byte, error) {
	root, err := openCoreEntry(unsealAEAD, rootKeyPath, raw)
	if errors.Is(err, ErrAuthentication) {
		return nil, ErrInvalidKey
	}
	if err != nil {
		return nil, err
	}
	if len(root) != KeySize {
		clear(root)
		return nil, &DecodeError{Path: rootKeyPath, Err: errors.New("root key has the wrong size")}
	}
	return root, nil
}

// sortedTerms returns the terms in term order.
func sortedTerms(m map[uint32]*term) []*term {
	out := make([]*term, 0, len(m))
	for _, t := range m {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *term) int { return cmp.Compare(a.id, b.id) })
	return out
}
