package transit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"hash"
	"strconv"

	"github.com/coffer-dev/coffer/internal/logical"
)

// hashes are the algorithms of hmac, verify (for HMACs) and hash, by
// Vault's names.
var hashes = map[string]func() hash.Hash{
	"sha2-224": sha256.New224,
	"sha2-256": sha256.New,
	"sha2-384": sha512.New384,
	"sha2-512": sha512.New,
	"sha3-224": func() hash.Hash { return sha3.New224() },
	"sha3-256": func() hash.Hash { return sha3.New256() },
	"sha3-384": func() hash.Hash { return sha3.New384() },
	"sha3-512": func() hash.Hash { return sha3.New512() },
}

// pickHash returns the hash named in the URL, else in the first of fields
// that is set, else sha2-256.
func pickHash(urlAlg string, data map[string]any, fields ...string) (func() hash.Hash, error) {
	name := urlAlg
	for _, f := range fields {
		if name != "" {
			break
		}
		s, err := stringField(data, f)
		if err != nil {
			return nil, err
		}
		name = s
	}
	if name == "" {
		name = "sha2-256"
	}
	h, ok := hashes[name]
	if !ok {
		return nil, logical.BadRequest("unsupported algorithm %q", clip(name))
	}
	return h, nil
}

// hmac serves hmac/:name[/:algorithm]: "vault:v<N>:" + base64 of the HMAC
// of input under version N's HMAC key (never its encryption key).
func (b *Backend) hmac(ctx context.Context, req *logical.Request, name, urlAlg string) (*logical.Response, error) {
	d := req.Data
	if err := logical.CheckFields(d, "input", "key_version", "algorithm", "batch_input", "reference"); err != nil {
		return nil, err
	}
	h, err := pickHash(urlAlg, d, "algorithm")
	if err != nil {
		return nil, err
	}
	ver, err := intField(d, "key_version")
	if err != nil {
		return nil, err
	}
	list, isBatch, err := items(d, "input", "reference")
	if err != nil {
		return nil, err
	}
	p, unlock, err := b.useKey(ctx, name, msgKeyNotFound)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if ver, err = p.hmacVersion(ver); err != nil {
		return nil, err
	}
	key := p.versions[ver].hmacKey.b
	bt := newBatch(len(list))
	for _, item := range list {
		input, present, err := b64Field(item, "input")
		if err == nil && !present {
			err = bad("missing input for HMAC")
		}
		if err != nil {
			bt.add(reference(item), nil, err)
			continue
		}
		bt.add(reference(item), map[string]any{"hmac": formatVersioned(ver, macOf(h, key, input))}, nil)
	}
	return b.respond(bt, isBatch, false, 0)
}

// hmacVersion picks the version to HMAC with; 0 means the latest.
func (p *policy) hmacVersion(ver int) (int, error) {
	switch {
	case ver == 0:
		return p.latest, nil
	case ver < 0:
		return 0, bad("key version does not exist (cannot be negative)")
	case ver > p.latest:
		return 0, logical.BadRequest("key version does not exist; latest key version is %d", p.latest)
	case ver < p.minEncrypt || p.versions[ver] == nil:
		return 0, bad("cannot generate HMAC: version is too old (disallowed by policy)")
	}
	return ver, nil
}

func macOf(h func() hash.Hash, key, input []byte) []byte {
	m := hmac.New(h, key)
	m.Write(input)
	return m.Sum(nil)
}

// verify serves verify/:name[/:algorithm] for HMACs and signatures. Every
// item of a batch must carry the same kind.
func (b *Backend) verify(ctx context.Context, req *logical.Request, name, urlAlg string) (*logical.Response, error) {
	d := req.Data
	if err := logical.CheckFields(d, "input", "hmac", "signature", "context", "algorithm", "hash_algorithm",
		"prehashed", "signature_algorithm", "marshaling_algorithm", "batch_input", "reference"); err != nil {
		return nil, err
	}
	list, isBatch, err := items(d, "input", "hmac", "signature", "context", "reference")
	if err != nil {
		return nil, err
	}
	kind := ""
	for i, item := range list {
		_, hasMAC := item["hmac"]
		_, hasSig := item["signature"]
		k := ""
		switch {
		case hasMAC && hasSig:
			return nil, logical.BadRequest("%sprovide one of \"hmac\" or \"signature\", not both", itemPrefix(isBatch, i))
		case hasMAC:
			k = "hmac"
		case hasSig:
			k = "signature"
		default:
			continue
		}
		if kind != "" && kind != k {
			return nil, logical.BadRequest("batch_input: every item must have an \"hmac\", or every item a \"signature\"")
		}
		kind = k
	}
	if kind == "" && !isBatch {
		return nil, bad("missing hmac or signature to verify")
	}
	if kind == "signature" {
		return b.verifySignatures(ctx, req, name, urlAlg, list, isBatch)
	}
	h, err := pickHash(urlAlg, d, "hash_algorithm", "algorithm")
	if err != nil {
		return nil, err
	}
	p, unlock, err := b.useKey(ctx, name, msgKeyNotFound)
	if err != nil {
		return nil, err
	}
	defer unlock()
	bt := newBatch(len(list))
	for _, item := range list {
		ok, err := p.verifyHMAC(h, item)
		bt.add(reference(item), map[string]any{"valid": ok}, err)
	}
	return b.respond(bt, isBatch, false, 0)
}

func itemPrefix(isBatch bool, i int) string {
	if !isBatch {
		return ""
	}
	return "batch_input[" + strconv.Itoa(i) + "]: "
}

// verifyHMAC checks one item's hmac against its input, in constant time.
func (p *policy) verifyHMAC(h func() hash.Hash, item map[string]any) (bool, error) {
	input, present, err := b64Field(item, "input")
	if err != nil {
		return false, err
	}
	if !present {
		return false, bad("missing input to verify")
	}
	s, err := stringField(item, "hmac")
	if err != nil {
		return false, err
	}
	if s == "" {
		return false, bad("missing hmac or signature to verify")
	}
	ver, mac, err := decodeVersioned("HMAC", s)
	if err != nil {
		return false, err
	}
	v, err := p.openVersion(ver, "HMAC")
	if err != nil {
		return false, err
	}
	return hmac.Equal(mac, macOf(h, v.hmacKey.b, input)), nil
}
