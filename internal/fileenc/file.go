package fileenc

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// EncryptOptions configure the encryption of a new file.
type EncryptOptions struct {
	// Groups are the key groups; with one group every key can decrypt.
	Groups []KeyGroupSpec
	// ShamirThreshold is how many groups are needed when there are
	// several (0: all).
	ShamirThreshold int
	Selectors       Selectors
}

// Encrypt encrypts a plaintext document in place with a new data key and
// gives it metadata.
func (k *Keys) Encrypt(ctx context.Context, doc *Document, opts EncryptOptions) error {
	if doc.Metadata != nil {
		return ErrAlreadyEncrypted
	}
	if _, err := opts.Selectors.compile(); err != nil {
		return err
	}
	dk, err := newDataKey()
	if err != nil {
		return err
	}
	defer clear(dk)
	groups, threshold, err := k.encryptGroups(ctx, opts.Groups, opts.ShamirThreshold, dk)
	if err != nil {
		return err
	}
	md := &Metadata{Selectors: opts.Selectors.withDefault(), KeyGroups: groups, ShamirThreshold: threshold}
	return sealTrees(doc, dk, md, nil)
}

// Opened is a decrypted file that can be encrypted again with the same
// data key and master keys.
type Opened struct {
	// Doc holds the plaintext trees; Doc.Metadata is the file's metadata.
	Doc     *Document
	dataKey []byte
	reuse   *reuseCache
}

// Open decrypts an encrypted document in place: it recovers the data key
// with the available master keys, decrypts every value and comment and
// checks the MAC. Any failure leaves no partial result to use.
func (k *Keys) Open(ctx context.Context, doc *Document) (*Opened, error) {
	if doc.Metadata == nil {
		return nil, ErrNotEncrypted
	}
	dk, err := k.decryptDataKey(ctx, doc.Metadata)
	if err != nil {
		return nil, err
	}
	reuse, err := openTrees(doc, dk)
	if err != nil {
		clear(dk)
		return nil, err
	}
	return &Opened{Doc: doc, dataKey: dk, reuse: reuse}, nil
}

// OpenWithDataKey is Open with a known data key (tests, merge driver).
func OpenWithDataKey(doc *Document, dk []byte) (*Opened, error) {
	if doc.Metadata == nil {
		return nil, ErrNotEncrypted
	}
	reuse, err := openTrees(doc, dk)
	if err != nil {
		return nil, err
	}
	return &Opened{Doc: doc, dataKey: append([]byte(nil), dk...), reuse: reuse}, nil
}

// DataKey returns a copy of the data key.
func (o *Opened) DataKey() []byte { return append([]byte(nil), o.dataKey...) }

// Close zeroes the data key.
func (o *Opened) Close() { clear(o.dataKey) }

// Seal encrypts plain (o.Doc or an edited version of it) with the file's
// data key, metadata and selectors, reusing the old ciphertext of every
// unchanged value. plain is changed in place and returned with new
// metadata (lastmodified, MAC).
func (o *Opened) Seal(plain *Document) (*Document, error) {
	md := *o.Doc.Metadata
	if err := sealTrees(plain, o.dataKey, &md, o.reuse.session()); err != nil {
		return nil, err
	}
	return plain, nil
}

// Rotate encrypts plain with a new data key for the given key groups (nil:
// the file's current master keys, which must all be usable), without
// reusing any ciphertext.
func (k *Keys) Rotate(ctx context.Context, o *Opened, plain *Document, groups []KeyGroupSpec, threshold int) (*Document, error) {
	md := *o.Doc.Metadata
	if groups == nil {
		var err error
		groups, err = md.Specs()
		if err != nil {
			return nil, err
		}
		threshold = md.ShamirThreshold
	}
	dk, err := newDataKey()
	if err != nil {
		return nil, err
	}
	defer clear(dk)
	kg, th, err := k.encryptGroups(ctx, groups, threshold, dk)
	if err != nil {
		return nil, err
	}
	md.KeyGroups, md.ShamirThreshold = kg, th
	if err := sealTrees(plain, dk, &md, nil); err != nil {
		return nil, err
	}
	return plain, nil
}

// UpdateKeys encrypts the file's data key to new key groups, keeping the
// values' ciphertext. It returns the new metadata.
func (k *Keys) UpdateKeys(ctx context.Context, o *Opened, groups []KeyGroupSpec, threshold int) (*Metadata, error) {
	kg, th, err := k.encryptGroups(ctx, groups, threshold, o.dataKey)
	if err != nil {
		return nil, err
	}
	md := *o.Doc.Metadata
	md.KeyGroups, md.ShamirThreshold = kg, th
	return &md, nil
}

// Specs lists the file's master keys as key group specs. Keys of kinds
// Coffer cannot use make it fail, since they could not be carried over.
func (md *Metadata) Specs() ([]KeyGroupSpec, error) {
	var specs []KeyGroupSpec
	for i, g := range md.KeyGroups {
		if len(g.Other) > 0 {
			return nil, fmt.Errorf("%w: key group %d has %s keys, which Coffer cannot encrypt to", ErrUnsupported, i+1, g.Other[0].key)
		}
		var s KeyGroupSpec
		for _, a := range g.Age {
			s.Age = append(s.Age, a.Recipient)
		}
		for _, v := range g.Vault {
			s.Vault = append(s.Vault, VaultURI{Address: v.VaultAddress, EnginePath: v.EnginePath, KeyName: v.KeyName})
		}
		specs = append(specs, s)
	}
	return specs, nil
}

func (d *Document) walker(sel *selector, v visitor) *walker {
	return &walker{sel: sel, v: v, wholeComments: d.Format == FormatINI}
}

// sealTrees encrypts doc's trees under dk and fills md's lastmodified, MAC
// and version.
func sealTrees(doc *Document, dk []byte, md *Metadata, reuse *reuseCache) error {
	sel, err := md.Selectors.compile()
	if err != nil {
		return err
	}
	c, err := newDataCipher(dk)
	if err != nil {
		return err
	}
	v := &encryptVisitor{c: c, mac: newMACHash(md.MACOnlyEncrypted), macOnly: md.MACOnlyEncrypted, reuse: reuse}
	w := doc.walker(sel, v)
	for i, b := range doc.Branches {
		if i < len(doc.docs) {
			err = w.walkDocument(doc.docs[i], b)
		} else {
			err = w.walkDocument(nil, b)
		}
		if err != nil {
			return err
		}
	}
	md.LastModified = time.Now().UTC().Format(time.RFC3339)
	md.MAC, err = c.encryptBytes([]byte(macHex(v.mac)), typeStr, md.LastModified)
	if err != nil {
		return err
	}
	md.Version = SopsVersion
	doc.Metadata = md
	return nil
}

// openTrees decrypts doc's trees under dk and checks the MAC.
func openTrees(doc *Document, dk []byte) (*reuseCache, error) {
	md := doc.Metadata
	sel, err := md.Selectors.compile()
	if err != nil {
		return nil, err
	}
	c, err := newDataCipher(dk)
	if err != nil {
		return nil, err
	}
	stored, err := c.decryptMAC(md)
	if err != nil {
		return nil, err
	}
	rec := newReuseCache()
	v := &decryptVisitor{c: c, mac: newMACHash(md.MACOnlyEncrypted), macOnly: md.MACOnlyEncrypted, record: rec}
	w := doc.walker(sel, v)
	for i, b := range doc.Branches {
		if i < len(doc.docs) {
			err = w.walkDocument(doc.docs[i], b)
		} else {
			err = w.walkDocument(nil, b)
		}
		if err != nil {
			return nil, err
		}
	}
	if !macEqual(macHex(v.mac), stored) {
		return nil, ErrMACMismatch
	}
	return rec, nil
}

// decryptMAC opens the stored MAC. Its additional data is lastmodified as
// stored, or as sops normalises it (RFC 3339 in UTC).
func (c *dataCipher) decryptMAC(md *Metadata) (string, error) {
	aads := []string{md.LastModified}
	if t, err := time.Parse(time.RFC3339, md.LastModified); err == nil {
		if n := t.UTC().Format(time.RFC3339); n != md.LastModified {
			aads = append(aads, n)
		}
	}
	var lastErr error
	for _, aad := range aads {
		plain, typ, err := c.decryptBytes(md.MAC, aad)
		if err == nil {
			if typ != typeStr {
				return "", fmt.Errorf("sops metadata: mac: %w", &ParseError{Msg: "the MAC is not a string"})
			}
			return string(plain), nil
		}
		lastErr = err
	}
	if errors.Is(lastErr, ErrAuth) {
		return "", fmt.Errorf("sops metadata: the MAC does not authenticate (lastmodified or mac was changed, or the data key is wrong): %w", ErrAuth)
	}
	return "", fmt.Errorf("sops metadata: mac: %w", lastErr)
}
