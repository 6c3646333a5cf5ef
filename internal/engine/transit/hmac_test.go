package transit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/coffer-dev/coffer/internal/logical"
)

// TestHMACKnownAnswer recomputes every algorithm's HMAC with the version's
// stored HMAC key.
func TestHMACKnownAnswer(t *testing.T) {
	h := newHarness(t)
	h.write("keys/k", "")
	s := h.stored("k")
	hk := s.Versions["1"].HMACKey
	if len(hk) != 32 || bytes.Equal(hk, s.Versions["1"].Key) {
		t.Fatalf("version 1 HMAC key is %d bytes, equal to the encryption key: %v", len(hk), bytes.Equal(hk, s.Versions["1"].Key))
	}
	input := []byte("the quick brown fox")
	tests := []struct {
		alg string
		h   func() hash.Hash
	}{
		{"sha2-224", sha256.New224},
		{"sha2-256", sha256.New},
		{"sha2-384", sha512.New384},
		{"sha2-512", sha512.New},
		{"sha3-224", func() hash.Hash { return sha3.New224() }},
		{"sha3-256", func() hash.Hash { return sha3.New256() }},
		{"sha3-384", func() hash.Hash { return sha3.New384() }},
		{"sha3-512", func() hash.Hash { return sha3.New512() }},
	}
	for _, tc := range tests {
		t.Run(tc.alg, func(t *testing.T) {
			m := hmac.New(tc.h, hk)
			m.Write(input)
			want := "vault:v1:" + base64.StdEncoding.EncodeToString(m.Sum(nil))
			for _, req := range []struct{ path, body string }{
				{"hmac/k/" + tc.alg, `{"input":"` + b64(string(input)) + `"}`},
				{"hmac/k", `{"input":"` + b64(string(input)) + `","algorithm":"` + tc.alg + `"}`},
				{"hmac/k/" + tc.alg, `{"input":"` + b64(string(input)) + `","algorithm":"sha2-256"}`}, // URL wins
			} {
				if got := h.write(req.path, req.body)["hmac"]; got != want {
					t.Errorf("%s %s: hmac = %v, want %v", req.path, req.body, got, want)
				}
			}
			valid := h.write("verify/k/"+tc.alg, `{"input":"`+b64(string(input))+`","hmac":"`+want+`"}`)
			if diff := cmp.Diff(map[string]any{"valid": true}, valid); diff != "" {
				t.Errorf("verify own hmac (-want +got):\n%s", diff)
			}
			other := h.write("verify/k", `{"input":"`+b64("other")+`","hmac":"`+want+`","hash_algorithm":"`+tc.alg+`"}`)
			if other["valid"] != false {
				t.Errorf("verify hmac of other input = %v, want false", other)
			}
		})
	}
	// sha2-256 is the default.
	def := h.write("hmac/k", `{"input":""}`)["hmac"]
	m := hmac.New(sha256.New, hk)
	if want := "vault:v1:" + base64.StdEncoding.EncodeToString(m.Sum(nil)); def != want {
		t.Errorf("hmac of empty input with the default algorithm = %v, want %v", def, want)
	}
}

func TestHMACVersions(t *testing.T) {
	h := newHarness(t)
	h.write("keys/k", `{"type":"ed25519"}`) // every key type has HMAC keys
	in := `"input":"` + b64("data") + `"`
	mac1 := h.write("hmac/k", `{`+in+`}`)["hmac"].(string)
	h.write("keys/k/rotate", "")
	mac2 := h.write("hmac/k", `{`+in+`}`)["hmac"].(string)
	if mac1[:9] != "vault:v1:" || mac2[:9] != "vault:v2:" || mac1[9:] == mac2[9:] {
		t.Fatalf("hmac before and after rotate = %q, %q", mac1, mac2)
	}
	if got := h.write("hmac/k", `{`+in+`,"key_version":1}`)["hmac"]; got != mac1 {
		t.Errorf("hmac with key_version 1 = %v, want %v", got, mac1)
	}
	for _, mac := range []string{mac1, mac2} {
		if got := h.write("verify/k", `{`+in+`,"hmac":"`+mac+`"}`)["valid"]; got != true {
			t.Errorf("verify %s = %v, want true", mac, got)
		}
	}
	// A MAC relabelled with the other version does not verify.
	if got := h.write("verify/k", `{`+in+`,"hmac":"vault:v2:`+mac1[9:]+`"}`)["valid"]; got != false {
		t.Errorf("verify v1 MAC labelled v2 = %v, want false", got)
	}
	h.write("keys/k/config", `{"min_decryption_version":2,"min_encryption_version":2}`)
	h.fail(logical.UpdateOperation, "verify/k", `{`+in+`,"hmac":"`+mac1+`"}`, http.StatusBadRequest, msgTooOld)
	h.fail(logical.UpdateOperation, "hmac/k", `{`+in+`,"key_version":1}`, http.StatusBadRequest,
		"cannot generate HMAC: version is too old (disallowed by policy)")

	tests := []struct{ path, body, msg string }{
		{"hmac/k", `{` + in + `,"key_version":3}`, "key version does not exist; latest key version is 2"},
		{"hmac/k", `{` + in + `,"key_version":-1}`, "key version does not exist (cannot be negative)"},
		{"hmac/k", `{}`, "missing input for HMAC"},
		{"hmac/k", `{"input":"***"}`, "failed to base64-decode input"},
		{"hmac/k/md5", `{` + in + `}`, `unsupported algorithm "md5"`},
		{"hmac/none", `{` + in + `}`, msgKeyNotFound},
		{"verify/k", `{` + in + `}`, "missing hmac or signature to verify"},
		{"verify/k", `{` + in + `,"hmac":"x","signature":"y"}`, `provide one of "hmac" or "signature", not both`},
		{"verify/k", `{` + in + `,"hmac":"vault:v9:AAAA"}`, "invalid HMAC: version is too new"},
		{"verify/k", `{` + in + `,"hmac":"v2:AAAA"}`, "invalid HMAC: no prefix"},
		{"verify/k", `{` + in + `,"hmac":"vault:v2:%%%"}`, "invalid HMAC: could not decode base64"},
		{"verify/none", `{` + in + `,"hmac":"` + mac2 + `"}`, msgKeyNotFound},
	}
	for _, tc := range tests {
		h.fail(logical.UpdateOperation, tc.path, tc.body, http.StatusBadRequest, tc.msg)
	}
}

func TestHMACBatch(t *testing.T) {
	h := newHarness(t)
	h.write("keys/k", "")
	got := h.write("hmac/k", jsonBody(t, map[string]any{"batch_input": []any{
		map[string]any{"input": b64("a"), "reference": "1"},
		map[string]any{},
		map[string]any{"input": ""},
	}}))
	res := got["batch_results"].([]map[string]any)
	if res[0]["reference"] != "1" || res[0]["hmac"] == nil || res[2]["hmac"] == nil {
		t.Errorf("hmac batch successes = %v, %v", res[0], res[2])
	}
	if diff := cmp.Diff(map[string]any{"error": "missing input for HMAC", "reference": ""}, res[1]); diff != "" {
		t.Errorf("hmac batch item 1 (-want +got):\n%s", diff)
	}
	v := h.write("verify/k", jsonBody(t, map[string]any{"batch_input": []any{
		map[string]any{"input": b64("a"), "hmac": res[0]["hmac"], "reference": "x"},
		map[string]any{"input": b64("b"), "hmac": res[0]["hmac"]},
		map[string]any{"input": b64("a"), "hmac": "junk"},
	}}))
	want := []map[string]any{
		{"valid": true, "reference": "x"},
		{"valid": false, "reference": ""},
		{"error": "invalid HMAC: no prefix", "reference": ""},
	}
	if diff := cmp.Diff(want, v["batch_results"]); diff != "" {
		t.Errorf("verify batch (-want +got):\n%s", diff)
	}
	h.fail(logical.UpdateOperation, "verify/k", jsonBody(t, map[string]any{"batch_input": []any{
		map[string]any{"input": "", "hmac": "x"}, map[string]any{"input": "", "signature": "y"},
	}}), http.StatusBadRequest, `batch_input: every item must have an "hmac", or every item a "signature"`)
}

func TestHash(t *testing.T) {
	h := newHarness(t)
	sum := sha512.Sum512([]byte("abc"))
	tests := []struct{ path, body, want string }{
		{"hash", `{"input":"` + b64("abc") + `"}`, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"hash/sha2-512", `{"input":"` + b64("abc") + `","format":"base64"}`, base64.StdEncoding.EncodeToString(sum[:])},
		{"hash", `{"input":"` + b64("abc") + `","algorithm":"sha2-512"}`, hex.EncodeToString(sum[:])},
	}
	for _, tc := range tests {
		if got := h.write(tc.path, tc.body)["sum"]; got != tc.want {
			t.Errorf("%s %s: sum = %v, want %v", tc.path, tc.body, got, tc.want)
		}
	}
	h.fail(logical.UpdateOperation, "hash", `{"input":"`+b64("abc")+`","format":"raw"}`, http.StatusBadRequest,
		`unsupported encoding format "raw"; must be "hex" or "base64"`)
	h.fail(logical.UpdateOperation, "hash", `{}`, http.StatusBadRequest, "missing input to hash")
}

func TestRandom(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		path, body string
		decode     func(string) ([]byte, error)
		n          int
	}{
		{"random", ``, base64.StdEncoding.DecodeString, 32},
		{"random/16", ``, base64.StdEncoding.DecodeString, 16},
		{"random/16", `{"bytes":8}`, base64.StdEncoding.DecodeString, 16},
		{"random", `{"bytes":"24","format":"hex"}`, hex.DecodeString, 24},
		{"random/platform/64", `{"format":"hex"}`, hex.DecodeString, 64},
		{"random/all", `{"bytes":1}`, base64.StdEncoding.DecodeString, 1},
		{"random", `{"bytes":131072}`, base64.StdEncoding.DecodeString, 131072},
	}
	for _, tc := range tests {
		s, _ := h.write(tc.path, tc.body)["random_bytes"].(string)
		b, err := tc.decode(s)
		if err != nil || len(b) != tc.n {
			t.Errorf("%s %s: random_bytes decode to %d bytes (%v), want %d", tc.path, tc.body, len(b), err, tc.n)
		}
	}
	a, b := h.write("random", "")["random_bytes"], h.write("random", "")["random_bytes"]
	if a == b {
		t.Errorf("two random calls returned %v", a)
	}
	errs := []struct{ path, body, msg string }{
		{"random", `{"bytes":0}`, "bytes must be between 1 and 131072"},
		{"random/131073", ``, "bytes must be between 1 and 131072"},
		{"random", `{"format":"base32"}`, `unsupported encoding format "base32"; must be "hex" or "base64"`},
		{"random/seal", ``, `source "seal" (entropy augmentation) is not supported by Coffer`},
		{"random/moon/8", ``, `unsupported entropy source "moon"`},
		{"random/platform/x", ``, `bytes: "x" is not a number`},
	}
	for _, tc := range errs {
		h.fail(logical.UpdateOperation, tc.path, tc.body, http.StatusBadRequest, tc.msg)
	}
}
