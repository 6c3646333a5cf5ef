package transit

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"

	"github.com/coffer-dev/coffer/internal/logical"
)

const msgVerifyNotFound = "signature verification key not found"

// signOptions are the signing fields that do not apply to ed25519. They
// are checked, so that a typo is an error, then ignored, except prehashed
// (Ed25519ph is not offered) and hash algorithms other than Vault's.
func signOptions(data map[string]any, urlAlg string) error {
	alg := urlAlg
	if alg == "" {
		s, err := stringField(data, "hash_algorithm")
		if err != nil {
			return err
		}
		if alg = s; alg == "" {
			if alg, err = stringField(data, "algorithm"); err != nil {
				return err
			}
		}
	}
	if _, ok := hashes[alg]; !ok && alg != "" && alg != "sha1" && alg != "none" {
		return logical.BadRequest("unsupported hash algorithm %q", clip(alg))
	}
	prehashed, err := logical.ParseBool("prehashed", data["prehashed"])
	if err != nil {
		return err
	}
	if prehashed {
		return bad("prehashed input is not supported for ed25519 keys")
	}
	for _, f := range []string{"signature_algorithm", "marshaling_algorithm"} {
		if _, err := stringField(data, f); err != nil {
			return err
		}
	}
	return nil
}

// sign serves sign/:name[/:hash_algorithm] for ed25519 keys: the signature
// of the input itself (pure Ed25519; the hash algorithm does not apply),
// as "vault:v<N>:" + base64. A derived key signs with the key of the
// item's context and also returns that key's public key.
func (b *Backend) sign(ctx context.Context, req *logical.Request, name, urlAlg string) (*logical.Response, error) {
	d := req.Data
	if err := logical.CheckFields(d, "input", "key_version", "context", "hash_algorithm", "algorithm", "prehashed",
		"signature_algorithm", "marshaling_algorithm", "batch_input", "reference"); err != nil {
		return nil, err
	}
	if err := signOptions(d, urlAlg); err != nil {
		return nil, err
	}
	ver, err := intField(d, "key_version")
	if err != nil {
		return nil, err
	}
	list, isBatch, err := items(d, "input", "context", "reference")
	if err != nil {
		return nil, err
	}
	p, unlock, err := b.useKey(ctx, name, msgSigningNotFound)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !p.typ.signing() {
		return nil, logical.BadRequest("message signing not supported for key type %v", p.typ)
	}
	if ver, err = p.useVersion(ver, "signing"); err != nil {
		return nil, err
	}
	// Vault names the public key "public_key" alone, "publickey" in a batch.
	pubField := "public_key"
	if isBatch {
		pubField = "publickey"
	}
	bt := newBatch(len(list))
	for _, item := range list {
		out, err := p.signItem(ver, item, pubField)
		bt.add(reference(item), out, err)
	}
	return b.respond(bt, isBatch, false, 0)
}

func (p *policy) signItem(ver int, item map[string]any, pubField string) (map[string]any, error) {
	input, present, err := b64Field(item, "input")
	if err != nil {
		return nil, err
	}
	if !present {
		return nil, bad("missing input")
	}
	keyCtx, _, err := b64Field(item, "context")
	if err != nil {
		return nil, err
	}
	priv, pub, done, err := p.signerFor(ver, keyCtx)
	if err != nil {
		return nil, err
	}
	defer done()
	out := map[string]any{
		"signature":   formatVersioned(ver, ed25519.Sign(priv, input)),
		"key_version": ver,
	}
	if p.derived {
		out[pubField] = base64.StdEncoding.EncodeToString(pub)
	}
	return out, nil
}

// verifySignatures serves verify/:name for signatures.
func (b *Backend) verifySignatures(ctx context.Context, req *logical.Request, name, urlAlg string, list []map[string]any, isBatch bool) (*logical.Response, error) {
	if err := signOptions(req.Data, urlAlg); err != nil {
		return nil, err
	}
	p, unlock, err := b.useKey(ctx, name, msgVerifyNotFound)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !p.typ.signing() {
		return nil, logical.BadRequest("message verification not supported for key type %v", p.typ)
	}
	bt := newBatch(len(list))
	for _, item := range list {
		ok, err := p.verifyItem(item)
		bt.add(reference(item), map[string]any{"valid": ok}, err)
	}
	return b.respond(bt, isBatch, false, 0)
}

func (p *policy) verifyItem(item map[string]any) (bool, error) {
	input, present, err := b64Field(item, "input")
	if err != nil {
		return false, err
	}
	if !present {
		return false, bad("missing input to verify")
	}
	keyCtx, _, err := b64Field(item, "context")
	if err != nil {
		return false, err
	}
	s, err := stringField(item, "signature")
	if err != nil {
		return false, err
	}
	if s == "" {
		return false, bad("missing hmac or signature to verify")
	}
	ver, sig, err := decodeVersioned("signature", s)
	if err != nil {
		return false, err
	}
	if _, err := p.openVersion(ver, "signature"); err != nil {
		return false, err
	}
	_, pub, done, err := p.signerFor(ver, keyCtx)
	if err != nil {
		return false, err
	}
	defer done()
	return ed25519.Verify(pub, input, sig), nil
}
