package transit

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"

	"github.com/coffer-dev/coffer/internal/logical"
)

// Fields of one encrypt, decrypt or rewrap item; the request itself is
// the item unless it has batch_input.
var (
	encryptFields = []string{"plaintext", "context", "key_version", "nonce", "associated_data", "reference"}
	decryptFields = []string{"ciphertext", "context", "nonce", "associated_data", "reference"}
	rewrapFields  = []string{"ciphertext", "context", "key_version", "nonce", "reference"}
)

// cryptInput is one parsed item. err is set when the item itself is
// invalid; the other items of a batch still run.
type cryptInput struct {
	plaintext  []byte // encrypt
	ciphertext string // decrypt, rewrap
	context    []byte
	aad        []byte
	version    int
	ref        string
	err        error
}

// parseCryptItem reads an item of the given endpoint.
func parseCryptItem(item map[string]any, endpoint string) cryptInput {
	in := cryptInput{ref: reference(item)}
	fail := func(err error) cryptInput { clear(in.plaintext); return cryptInput{ref: in.ref, err: err} }
	var err error
	if in.context, _, err = b64Field(item, "context"); err != nil {
		return fail(err)
	}
	if err := refuseNonce(item); err != nil {
		return fail(err)
	}
	if endpoint != "decrypt" {
		if in.version, err = intField(item, "key_version"); err != nil {
			return fail(err)
		}
	}
	if endpoint != "rewrap" {
		if in.aad, _, err = b64Field(item, "associated_data"); err != nil {
			return fail(err)
		}
	}
	if endpoint == "encrypt" {
		var present bool
		if in.plaintext, present, err = b64Field(item, "plaintext"); err != nil {
			return fail(err)
		}
		if !present {
			return fail(bad("missing plaintext to encrypt"))
		}
		return in
	}
	if in.ciphertext, err = stringField(item, "ciphertext"); err != nil {
		return fail(err)
	}
	if in.ciphertext == "" {
		return fail(logical.BadRequest("missing ciphertext to %s", endpoint))
	}
	return in
}

// parseCryptRequest checks a request's fields and parses its items.
func parseCryptRequest(data map[string]any, endpoint string, fields []string, extra ...string) ([]cryptInput, bool, int, error) {
	if err := logical.CheckFields(data, slices.Concat(fields, []string{"batch_input", "partial_failure_response_code"}, extra)...); err != nil {
		return nil, false, 0, err
	}
	code, err := partialCode(data)
	if err != nil {
		return nil, false, 0, err
	}
	list, isBatch, err := items(data, fields...)
	if err != nil {
		return nil, false, 0, err
	}
	in := make([]cryptInput, len(list))
	for i, item := range list {
		in[i] = parseCryptItem(item, endpoint)
	}
	return in, isBatch, code, nil
}

// encrypt serves encrypt/:name. A create (the key is absent and the token
// may create) makes the key first, of the requested type, derived when the
// (first) item has a context: Vault's upsert.
func (b *Backend) encrypt(ctx context.Context, req *logical.Request, name string) (*logical.Response, error) {
	in, isBatch, code, err := parseCryptRequest(req.Data, "encrypt", encryptFields, "type", "convergent_encryption")
	if err != nil {
		return nil, err
	}
	defer func() {
		for i := range in {
			clear(in[i].plaintext)
		}
	}()
	convergent, err := logical.ParseBool("convergent_encryption", req.Data["convergent_encryption"])
	if err != nil {
		return nil, err
	}
	if convergent {
		return nil, bad(msgConvergent)
	}
	typeName, err := stringField(req.Data, "type")
	if err != nil {
		return nil, err
	}
	t, err := parseKeyType(typeName)
	if err != nil {
		return nil, err
	}
	p, unlock, err := b.keyForEncrypt(ctx, req.Operation, name, t, len(in[0].context) > 0)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !p.typ.encryption() {
		return nil, logical.BadRequest("key type %v does not support encryption", p.typ)
	}
	bt := newBatch(len(in))
	for _, it := range in {
		if it.err != nil {
			bt.add(it.ref, nil, it.err)
			continue
		}
		ct, ver, err := p.seal(it.version, it.context, it.aad, it.plaintext)
		bt.add(it.ref, map[string]any{"ciphertext": ct, "key_version": ver}, err)
	}
	return b.respond(bt, isBatch, true, code)
}

// keyForEncrypt returns key name locked for use, creating it when the
// operation is a create and it is absent. unlock releases the lock.
func (b *Backend) keyForEncrypt(ctx context.Context, op logical.Operation, name string, t keyType, derived bool) (p *policy, unlock func(), err error) {
	l := b.lockFor(name)
	l.RLock()
	p, err = b.load(ctx, name)
	if err != nil || p != nil {
		if err != nil {
			l.RUnlock()
			return nil, nil, err
		}
		return p, l.RUnlock, nil
	}
	l.RUnlock()
	if op != logical.CreateOperation {
		return nil, nil, bad(msgKeyNotFound)
	}
	if !t.encryption() {
		return nil, nil, logical.BadRequest("key type %v does not support encryption", t)
	}
	l.Lock()
	// Another request may have created it in between.
	if p, err = b.load(ctx, name); err != nil || p != nil {
		if err != nil {
			l.Unlock()
			return nil, nil, err
		}
		return p, l.Unlock, nil
	}
	if p, err = newPolicy(name, t, derived, b.now()); err != nil {
		l.Unlock()
		return nil, nil, err
	}
	if err = b.writePolicy(ctx, p); err != nil {
		l.Unlock()
		return nil, nil, err
	}
	b.log.Info("transit: key created by encrypt", "key", name, "type", t.String(), "derived", derived)
	return p, l.Unlock, nil
}

// useKey returns key name under its shared lock, or notFound as a 400.
func (b *Backend) useKey(ctx context.Context, name, notFound string) (*policy, func(), error) {
	l := b.lockFor(name)
	l.RLock()
	p, err := b.load(ctx, name)
	if err == nil && p == nil {
		err = bad(notFound)
	}
	if err != nil {
		l.RUnlock()
		return nil, nil, err
	}
	return p, l.RUnlock, nil
}

// decrypt serves decrypt/:name.
func (b *Backend) decrypt(ctx context.Context, req *logical.Request, name string) (*logical.Response, error) {
	in, isBatch, code, err := parseCryptRequest(req.Data, "decrypt", decryptFields)
	if err != nil {
		return nil, err
	}
	p, unlock, err := b.useKey(ctx, name, msgKeyNotFound)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !p.typ.encryption() {
		return nil, logical.BadRequest("key type %v does not support decryption", p.typ)
	}
	bt := newBatch(len(in))
	for _, it := range in {
		if it.err != nil {
			bt.add(it.ref, nil, it.err)
			continue
		}
		pt, _, err := p.open(it.ciphertext, it.context, it.aad)
		if err != nil {
			bt.add(it.ref, nil, err)
			continue
		}
		bt.add(it.ref, map[string]any{"plaintext": base64.StdEncoding.EncodeToString(pt)}, nil)
		clear(pt)
	}
	return b.respond(bt, isBatch, true, code)
}

// rewrap serves rewrap/:name: decrypt, then encrypt with key_version (the
// latest by default) and the same context, without showing the plaintext.
func (b *Backend) rewrap(ctx context.Context, req *logical.Request, name string) (*logical.Response, error) {
	in, isBatch, code, err := parseCryptRequest(req.Data, "rewrap", rewrapFields)
	if err != nil {
		return nil, err
	}
	p, unlock, err := b.useKey(ctx, name, msgKeyNotFound)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !p.typ.encryption() {
		return nil, logical.BadRequest("key type %v does not support encryption", p.typ)
	}
	bt := newBatch(len(in))
	for _, it := range in {
		if it.err != nil {
			bt.add(it.ref, nil, it.err)
			continue
		}
		pt, _, err := p.open(it.ciphertext, it.context, nil)
		if err != nil {
			bt.add(it.ref, nil, err)
			continue
		}
		ct, ver, err := p.seal(it.version, it.context, nil, pt)
		clear(pt)
		bt.add(it.ref, map[string]any{"ciphertext": ct, "key_version": ver}, err)
	}
	return b.respond(bt, isBatch, true, code)
}

// seal encrypts plaintext with version ver (0: latest) into a ciphertext
// string: "vault:v<N>:" + base64(nonce || ciphertext || tag).
func (p *policy) seal(ver int, context, aad, plaintext []byte) (string, int, error) {
	ver, err := p.useVersion(ver, "encryption")
	if err != nil {
		return "", 0, err
	}
	a, err := p.aeadFor(ver, context)
	if err != nil {
		return "", 0, err
	}
	ns := a.NonceSize()
	buf := make([]byte, ns, ns+len(plaintext)+a.Overhead())
	if _, err := rand.Read(buf); err != nil {
		return "", 0, fmt.Errorf("transit: nonce: %w", err)
	}
	return formatVersioned(ver, a.Seal(buf, buf, plaintext, aad)), ver, nil
}

// open decrypts a ciphertext string. Every failure after parsing is the
// same message, so that errors tell nothing about the plaintext or the
// key.
func (p *policy) open(text string, context, aad []byte) ([]byte, int, error) {
	ver, raw, err := DecodeCiphertext(text)
	if err != nil {
		return nil, 0, err
	}
	if _, err := p.openVersion(ver, "ciphertext"); err != nil {
		return nil, 0, err
	}
	a, err := p.aeadFor(ver, context)
	if err != nil {
		return nil, 0, err
	}
	ns := a.NonceSize()
	if len(raw) < ns+a.Overhead() {
		return nil, 0, bad(msgUnableToDecrypt)
	}
	pt, err := a.Open(nil, raw[:ns], raw[ns:], aad)
	if err != nil {
		return nil, 0, bad(msgUnableToDecrypt)
	}
	return pt, ver, nil
}
