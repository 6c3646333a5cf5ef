package transit

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/coffer-dev/coffer/internal/logical"
)

// datakey serves datakey/plaintext/:name and datakey/wrapped/:name: a new
// random key of bits bits (128, 256 by default, or 512), encrypted with the
// named key exactly as encrypt would (so decrypt returns it), and for
// "plaintext" also returned in base64. Which of the two a token may call
// is up to its policy.
func (b *Backend) datakey(ctx context.Context, req *logical.Request, name, kind string) (*logical.Response, error) {
	if kind != "plaintext" && kind != "wrapped" {
		return nil, logical.BadRequest("invalid data key type %q: must be \"plaintext\" or \"wrapped\"", clip(kind))
	}
	d := req.Data
	if err := logical.CheckFields(d, "context", "nonce", "bits", "key_version"); err != nil {
		return nil, err
	}
	keyCtx, _, err := b64Field(d, "context")
	if err != nil {
		return nil, err
	}
	if err := refuseNonce(d); err != nil {
		return nil, err
	}
	ver, err := intField(d, "key_version")
	if err != nil {
		return nil, err
	}
	bits, err := intField(d, "bits")
	if err != nil {
		return nil, err
	}
	switch bits {
	case 0:
		bits = 256
	case 128, 256, 512:
	default:
		return nil, logical.BadRequest("bits must be 128, 256 or 512")
	}
	p, unlock, err := b.useKey(ctx, name, msgKeyNotFound)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !p.typ.encryption() {
		return nil, logical.BadRequest("key type %v does not support encryption", p.typ)
	}
	dk := make([]byte, bits/8)
	defer clear(dk)
	if _, err := rand.Read(dk); err != nil {
		return nil, fmt.Errorf("transit: data key: %w", err)
	}
	ct, ver, err := p.seal(ver, keyCtx, nil, dk)
	if err != nil {
		return nil, asClientError(err)
	}
	out := map[string]any{"ciphertext": ct, "key_version": ver}
	if kind == "plaintext" {
		out["plaintext"] = base64.StdEncoding.EncodeToString(dk)
	}
	return &logical.Response{Data: out}, nil
}
