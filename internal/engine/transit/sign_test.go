package transit

import (
	"crypto/ed25519"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/coffer-dev/coffer/internal/logical"
)

// publicKey reads the public key of version v from keys/:name.
func (h *harness) publicKey(name, v, query string) ed25519.PublicKey {
	h.t.Helper()
	keys := h.must(logical.ReadOperation, "keys/"+name, query).Data["keys"].(map[string]any)
	pub := unb64(h.t, keys[v].(map[string]any)["public_key"].(string))
	if len(pub) != ed25519.PublicKeySize {
		h.t.Fatalf("keys/%s version %s: public key is %d bytes", name, v, len(pub))
	}
	return pub
}

func TestEd25519SignVerify(t *testing.T) {
	h := newHarness(t)
	h.write("keys/ed", `{"type":"ed25519"}`)
	msg := "message to sign"
	in := `"input":"` + b64(msg) + `"`
	got := h.write("sign/ed", `{`+in+`}`)
	sig := got["signature"].(string)
	if got["key_version"] != 1 || !strings.HasPrefix(sig, "vault:v1:") {
		t.Fatalf("sign = %v", got)
	}
	raw := unb64(t, strings.TrimPrefix(sig, "vault:v1:"))
	if !ed25519.Verify(h.publicKey("ed", "1", ""), []byte(msg), raw) {
		t.Fatalf("signature does not verify with the public key of keys/ed")
	}
	// The hash algorithm does not apply to ed25519; pure Ed25519 signs the
	// input, so the signature is the same whatever it says.
	if got := h.write("sign/ed/sha2-512", `{`+in+`}`)["signature"]; got != sig {
		t.Errorf("sign/ed/sha2-512 = %v, want the same signature %v", got, sig)
	}
	if v := h.write("verify/ed", `{`+in+`,"signature":"`+sig+`"}`); v["valid"] != true {
		t.Errorf("verify own signature = %v", v)
	}
	if v := h.write("verify/ed", `{"input":"`+b64("other")+`","signature":"`+sig+`"}`); v["valid"] != false {
		t.Errorf("verify signature of other input = %v", v)
	}
	tampered := append([]byte(nil), raw...)
	tampered[5] ^= 1
	if v := h.write("verify/ed", `{`+in+`,"signature":"`+formatVersioned(1, tampered)+`"}`); v["valid"] != false {
		t.Errorf("verify tampered signature = %v", v)
	}

	h.write("keys/ed/rotate", "")
	sig2 := h.write("sign/ed", `{`+in+`}`)["signature"].(string)
	if !strings.HasPrefix(sig2, "vault:v2:") {
		t.Fatalf("sign after rotate = %q", sig2)
	}
	if v := h.write("verify/ed", `{`+in+`,"signature":"`+sig+`"}`); v["valid"] != true {
		t.Errorf("verify v1 signature after rotate = %v", v)
	}
	if got := h.write("sign/ed", `{`+in+`,"key_version":1}`)["signature"]; got != sig {
		t.Errorf("sign with key_version 1 = %v, want %v", got, sig)
	}
	h.write("keys/ed/config", `{"min_decryption_version":2}`)
	h.fail(logical.UpdateOperation, "verify/ed", `{`+in+`,"signature":"`+sig+`"}`, http.StatusBadRequest, msgTooOld)

	h.write("keys/aes", "")
	tests := []struct{ path, body, msg string }{
		{"sign/none", `{` + in + `}`, msgSigningNotFound},
		{"verify/none", `{` + in + `,"signature":"` + sig + `"}`, msgVerifyNotFound},
		{"sign/aes", `{` + in + `}`, "message signing not supported for key type aes256-gcm96"},
		{"verify/aes", `{` + in + `,"signature":"` + sig + `"}`, "message verification not supported for key type aes256-gcm96"},
		{"sign/ed", `{}`, "missing input"},
		{"sign/ed", `{` + in + `,"key_version":3}`, "requested version for signing is higher than the latest key version"},
		{"sign/ed", `{` + in + `,"prehashed":true}`, "prehashed input is not supported for ed25519 keys"},
		{"sign/ed/md5", `{` + in + `}`, `unsupported hash algorithm "md5"`},
		{"verify/ed", `{` + in + `,"signature":"vault:v3:AAAA"}`, "invalid signature: version is too new"},
		{"verify/ed", `{` + in + `,"signature":"sig"}`, "invalid signature: no prefix"},
		{"verify/ed", `{` + in + `,"signature":"vault:v2:*"}`, "invalid signature: could not decode base64"},
	}
	for _, tc := range tests {
		h.fail(logical.UpdateOperation, tc.path, tc.body, http.StatusBadRequest, tc.msg)
	}
}

func TestEd25519Derived(t *testing.T) {
	h := newHarness(t)
	h.write("keys/ed", `{"type":"ed25519","derived":true}`)
	in := `"input":"` + b64("m") + `"`
	ctxA, ctxB := `"context":"`+b64("a")+`"`, `"context":"`+b64("b")+`"`
	h.fail(logical.UpdateOperation, "sign/ed", `{`+in+`}`, http.StatusBadRequest, msgMissingContext)
	a := h.write("sign/ed", `{`+in+`,`+ctxA+`}`)
	b := h.write("sign/ed", `{`+in+`,`+ctxB+`}`)
	if a["public_key"] == b["public_key"] || a["signature"] == b["signature"] {
		t.Fatalf("two contexts gave the same key: %v %v", a, b)
	}
	// The same context derives the same key: signing is deterministic.
	if again := h.write("sign/ed", `{`+in+`,`+ctxA+`}`); again["signature"] != a["signature"] {
		t.Errorf("signing twice with one context differs")
	}
	pubA := ed25519.PublicKey(unb64(t, a["public_key"].(string)))
	if got := h.publicKey("ed", "1", `{`+ctxA+`}`); !pubA.Equal(got) {
		t.Errorf("keys/ed with context A shows public key %x, sign returned %x", got, pubA)
	}
	keys := h.must(logical.ReadOperation, "keys/ed", "").Data["keys"].(map[string]any)
	if pk := keys["1"].(map[string]any)["public_key"]; pk != "" {
		t.Errorf("keys/ed without a context shows public key %v, want none", pk)
	}
	sigA := a["signature"].(string)
	if v := h.write("verify/ed", `{`+in+`,`+ctxA+`,"signature":"`+sigA+`"}`); v["valid"] != true {
		t.Errorf("verify with context A = %v", v)
	}
	if v := h.write("verify/ed", `{`+in+`,`+ctxB+`,"signature":"`+sigA+`"}`); v["valid"] != false {
		t.Errorf("verify A's signature with context B = %v", v)
	}
	batch := h.write("sign/ed", jsonBody(t, map[string]any{"batch_input": []any{
		map[string]any{"input": b64("m"), "context": b64("a"), "reference": "r"},
		map[string]any{"input": b64("m")},
	}}))
	want := []map[string]any{
		{"signature": sigA, "key_version": 1, "publickey": a["public_key"], "reference": "r"},
		{"error": msgMissingContext, "reference": ""},
	}
	if diff := cmp.Diff(want, batch["batch_results"]); diff != "" {
		t.Errorf("sign batch (-want +got):\n%s", diff)
	}
}
