package transit

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/coffer-dev/coffer/internal/logical"
)

func TestEncryptDecryptRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		typ       string
		plaintext string
		extra     string // extra encrypt and decrypt fields
	}{
		{"aes", "aes256-gcm96", "the quick brown fox", ""},
		{"chacha", "chacha20-poly1305", "the quick brown fox", ""},
		{"empty plaintext", "aes256-gcm96", "", ""},
		{"binary", "aes256-gcm96", "\x00\xff\x10 \n", ""},
		{"large", "chacha20-poly1305", strings.Repeat("x", 1<<16), ""},
		{"associated data", "aes256-gcm96", "secret", `,"associated_data":"` + b64("row 7") + `"`},
		{"associated data chacha", "chacha20-poly1305", "secret", `,"associated_data":"` + b64("row 7") + `"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.write("keys/k", `{"type":"`+tc.typ+`"}`)
			resp := h.write("encrypt/k", `{"plaintext":"`+b64(tc.plaintext)+`"`+tc.extra+`}`)
			if resp["key_version"] != 1 {
				t.Errorf("encrypt: key_version = %v, want 1", resp["key_version"])
			}
			ct := resp["ciphertext"].(string)
			if got := h.decrypt("k", ct, tc.extra); got != tc.plaintext {
				t.Errorf("decrypt(encrypt(%q)) = %q", clip(tc.plaintext), clip(got))
			}
		})
	}
}

func TestCiphertextFormat(t *testing.T) {
	for _, typ := range []string{"aes256-gcm96", "chacha20-poly1305"} {
		t.Run(typ, func(t *testing.T) {
			h := newHarness(t)
			h.write("keys/k", `{"type":"`+typ+`"}`)
			plaintext := "sixteen bytes!!!"
			ct1 := h.encrypt("k", plaintext, "")
			ct2 := h.encrypt("k", plaintext, "")
			for _, ct := range []string{ct1, ct2} {
				rest, ok := strings.CutPrefix(ct, "vault:v1:")
				if !ok {
					t.Fatalf("ciphertext %q lacks the vault:v1: prefix", ct)
				}
				raw, err := base64.StdEncoding.DecodeString(rest)
				if err != nil {
					t.Fatalf("ciphertext %q: payload is not standard base64: %v", ct, err)
				}
				if want := 12 + len(plaintext) + 16; len(raw) != want {
					t.Errorf("ciphertext payload is %d bytes, want nonce 12 + %d + tag 16 = %d", len(raw), len(plaintext), want)
				}
			}
			if ct1 == ct2 {
				t.Errorf("two encryptions of one plaintext gave the same ciphertext %q", ct1)
			}
			if ct1[len("vault:v1:"):][:16] == ct2[len("vault:v1:"):][:16] {
				t.Errorf("two encryptions reused a nonce")
			}
		})
	}
}

func TestTamperedCiphertext(t *testing.T) {
	h := newHarness(t)
	h.write("keys/k", "")
	ct := h.encrypt("k", "attack at dawn", "")
	raw := unb64(t, strings.TrimPrefix(ct, "vault:v1:"))
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		return "vault:v1:" + base64.StdEncoding.EncodeToString(b)
	}
	h.write("keys/k/rotate", "")
	tests := []struct{ name, ct string }{
		{"nonce", flip(0)},
		{"body", flip(12)},
		{"tag", flip(len(raw) - 1)},
		{"truncated tag", "vault:v1:" + base64.StdEncoding.EncodeToString(raw[:len(raw)-1])},
		{"shorter than a nonce and tag", "vault:v1:" + base64.StdEncoding.EncodeToString(raw[:27])},
		{"empty payload", "vault:v1:"},
		{"other version", strings.Replace(ct, "vault:v1:", "vault:v2:", 1)},
		{"appended byte", "vault:v1:" + base64.StdEncoding.EncodeToString(append(append([]byte(nil), raw...), 0))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.fail(logical.UpdateOperation, "decrypt/k", `{"ciphertext":"`+tc.ct+`"}`, http.StatusBadRequest, msgUnableToDecrypt)
		})
	}
	h.fail(logical.UpdateOperation, "decrypt/k", `{"ciphertext":"`+ct+`","associated_data":"`+b64("x")+`"}`,
		http.StatusBadRequest, msgUnableToDecrypt)
	if got := h.decrypt("k", ct, ""); got != "attack at dawn" {
		t.Errorf("untouched ciphertext decrypts to %q", got)
	}
}

func TestEncryptDecryptErrors(t *testing.T) {
	h := newHarness(t)
	h.write("keys/k", "")
	h.write("keys/k/rotate", "")
	h.write("keys/ed", `{"type":"ed25519"}`)
	good := h.encrypt("k", "x", "")
	tests := []struct {
		name string
		path string
		body string
		msg  string
	}{
		{"no prefix", "decrypt/k", `{"ciphertext":"v1:abcd"}`, "invalid ciphertext: no prefix"},
		{"no version separator", "decrypt/k", `{"ciphertext":"vault:v1"}`, "invalid ciphertext: wrong number of fields"},
		{"version not a number", "decrypt/k", `{"ciphertext":"vault:vx:AAAA"}`, "invalid ciphertext: version number could not be decoded"},
		{"version zero", "decrypt/k", `{"ciphertext":"vault:v0:AAAA"}`, "invalid ciphertext: version number could not be decoded"},
		{"version with leading zero", "decrypt/k", `{"ciphertext":"vault:v01:AAAA"}`, "invalid ciphertext: version number could not be decoded"},
		{"negative version", "decrypt/k", `{"ciphertext":"vault:v-1:AAAA"}`, "invalid ciphertext: version number could not be decoded"},
		{"bad base64", "decrypt/k", `{"ciphertext":"vault:v1:not base64!"}`, "invalid ciphertext: could not decode base64"},
		{"version too new", "decrypt/k", `{"ciphertext":"vault:v3:` + strings.TrimPrefix(good, "vault:v2:") + `"}`, "invalid ciphertext: version is too new"},
		{"missing ciphertext", "decrypt/k", `{}`, "missing ciphertext to decrypt"},
		{"decrypt missing key", "decrypt/none", `{"ciphertext":"` + good + `"}`, msgKeyNotFound},
		{"decrypt with signing key", "decrypt/ed", `{"ciphertext":"` + good + `"}`, "key type ed25519 does not support decryption"},
		{"decrypt unknown field", "decrypt/k", `{"ciphertext":"` + good + `","plaintext":""}`, `unknown field "plaintext"`},
		{"plaintext not base64", "encrypt/k", `{"plaintext":"@@"}`, "failed to base64-decode plaintext"},
		{"plaintext not a string", "encrypt/k", `{"plaintext":{}}`, "plaintext: must be a string"},
		{"missing plaintext", "encrypt/k", `{}`, "missing plaintext to encrypt"},
		{"context not base64", "encrypt/k", `{"plaintext":"","context":"%"}`, "failed to base64-decode context"},
		{"nonce", "encrypt/k", `{"plaintext":"","nonce":"` + b64("twelve bytes") + `"}`, msgNonce},
		{"convergent", "encrypt/k", `{"plaintext":"","convergent_encryption":true}`, msgConvergent},
		{"key version too high", "encrypt/k", `{"plaintext":"","key_version":3}`, "requested version for encryption is higher than the latest key version"},
		{"key version negative", "encrypt/k", `{"plaintext":"","key_version":-1}`, "requested version for encryption is negative"},
		{"key version not a number", "encrypt/k", `{"plaintext":"","key_version":"latest"}`, `key_version: "latest" is not an integer`},
		{"encrypt with signing key", "encrypt/ed", `{"plaintext":""}`, "key type ed25519 does not support encryption"},
		{"upsert of a signing key", "encrypt/new", `{"plaintext":"","type":"ed25519"}`, "key type ed25519 does not support encryption"},
		{"upsert of an unknown type", "encrypt/new", `{"plaintext":"","type":"rot13"}`, `unknown key type "rot13"`},
		{"rewrap missing key", "rewrap/none", `{"ciphertext":"` + good + `"}`, msgKeyNotFound},
		{"rewrap missing ciphertext", "rewrap/k", `{}`, "missing ciphertext to rewrap"},
		{"rewrap bad version", "rewrap/k", `{"ciphertext":"` + good + `","key_version":9}`, "requested version for encryption is higher than the latest key version"},
		{"partial failure code out of range", "encrypt/k", `{"plaintext":"","partial_failure_response_code":700}`,
			"partial_failure_response_code: 700 is not an HTTP status from 200 to 599"},
		{"empty batch", "encrypt/k", `{"batch_input":[]}`, "missing batch input to process"},
		{"batch not a list", "encrypt/k", `{"batch_input":{"plaintext":""}}`, "batch_input: must be a list of objects"},
		{"batch item not an object", "encrypt/k", `{"batch_input":["x"]}`, "batch_input[0]: must be an object"},
		{"batch item unknown field", "encrypt/k", `{"batch_input":[{"plaintext":""},{"text":""}]}`, `batch_input[1]: unknown field "text"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.fail(logical.UpdateOperation, tc.path, tc.body, http.StatusBadRequest, tc.msg)
		})
	}
	if resp, err := h.do(logical.ReadOperation, "keys/new", ""); status(resp, err) != http.StatusNotFound {
		t.Errorf("a refused upsert created the key: read = %d", status(resp, err))
	}
}

// TestErrorsDoNotEchoPlaintext checks that no error shows the input.
func TestErrorsDoNotEchoPlaintext(t *testing.T) {
	h := newHarness(t)
	h.write("keys/k", "")
	canary := "CANARY-7f3a9c"
	bodies := []string{
		`{"plaintext":"` + canary + `"}`,
		`{"plaintext":"` + b64(canary) + `","key_version":7}`,
		`{"plaintext":"` + b64(canary) + `","nonce":"` + canary + `"}`,
		`{"plaintext":"` + b64(canary) + `","context":"` + canary + `"}`,
	}
	for _, body := range bodies {
		_, err := h.do(logical.UpdateOperation, "encrypt/k", body)
		if err == nil || strings.Contains(err.Error(), canary) || strings.Contains(err.Error(), b64(canary)) {
			t.Errorf("encrypt %s: error %v, want one that does not quote the input", body, err)
		}
	}
	_, err := h.do(logical.UpdateOperation, "decrypt/k", `{"ciphertext":"vault:v1:`+canary+`"}`)
	if err == nil || strings.Contains(err.Error(), canary) {
		t.Errorf("decrypt of a bad ciphertext: error %v quotes the input", err)
	}
}

func TestRotateThenDecryptOld(t *testing.T) {
	for _, typ := range []string{"aes256-gcm96", "chacha20-poly1305"} {
		t.Run(typ, func(t *testing.T) {
			h := newHarness(t)
			h.write("keys/k", `{"type":"`+typ+`"}`)
			ct1 := h.encrypt("k", "one", "")
			h.write("keys/k/rotate", "")
			ct2 := h.encrypt("k", "two", "")
			if !strings.HasPrefix(ct2, "vault:v2:") {
				t.Fatalf("encrypt after rotate = %q, want a v2 ciphertext", ct2)
			}
			old := h.write("encrypt/k", `{"plaintext":"`+b64("old")+`","key_version":1}`)
			if old["key_version"] != 1 || !strings.HasPrefix(old["ciphertext"].(string), "vault:v1:") {
				t.Errorf("encrypt with key_version 1 = %v", old)
			}
			for ct, want := range map[string]string{ct1: "one", ct2: "two", old["ciphertext"].(string): "old"} {
				if got := h.decrypt("k", ct, ""); got != want {
					t.Errorf("decrypt(%q) = %q, want %q", ct, got, want)
				}
			}
			// A version's key only opens its own ciphertexts.
			swapped := "vault:v2:" + strings.TrimPrefix(ct1, "vault:v1:")
			h.fail(logical.UpdateOperation, "decrypt/k", `{"ciphertext":"`+swapped+`"}`, http.StatusBadRequest, msgUnableToDecrypt)
		})
	}
}

func TestMinVersions(t *testing.T) {
	h := newHarness(t)
	h.write("keys/k", "")
	ct1 := h.encrypt("k", "one", "")
	h.write("keys/k/rotate", "")
	ct2 := h.encrypt("k", "two", "")
	h.write("keys/k/config", `{"min_decryption_version":2}`)
	h.fail(logical.UpdateOperation, "decrypt/k", `{"ciphertext":"`+ct1+`"}`, http.StatusBadRequest, msgTooOld)
	h.fail(logical.UpdateOperation, "rewrap/k", `{"ciphertext":"`+ct1+`"}`, http.StatusBadRequest, msgTooOld)
	if got := h.decrypt("k", ct2, ""); got != "two" {
		t.Errorf("decrypt v2 = %q, want two", got)
	}
	// Lowering it again makes v1 readable: it is policy, not erasure.
	h.write("keys/k/config", `{"min_decryption_version":1}`)
	if got := h.decrypt("k", ct1, ""); got != "one" {
		t.Errorf("decrypt v1 after lowering min_decryption_version = %q, want one", got)
	}
	h.write("keys/k/config", `{"min_encryption_version":2}`)
	h.fail(logical.UpdateOperation, "encrypt/k", `{"plaintext":"","key_version":1}`, http.StatusBadRequest,
		"requested version for encryption is less than the minimum encryption key version")
	if got := h.write("encrypt/k", `{"plaintext":""}`)["key_version"]; got != 2 {
		t.Errorf("encrypt with min_encryption_version 2: key_version = %v, want 2", got)
	}
}

func TestRewrap(t *testing.T) {
	h := newHarness(t)
	h.write("keys/k", "")
	ct1 := h.encrypt("k", "payload", "")
	h.write("keys/k/rotate", "")
	h.write("keys/k/rotate", "")
	got := h.write("rewrap/k", `{"ciphertext":"`+ct1+`"}`)
	if got["key_version"] != 3 || !strings.HasPrefix(got["ciphertext"].(string), "vault:v3:") {
		t.Fatalf("rewrap = %v, want a v3 ciphertext", got)
	}
	if pt := h.decrypt("k", got["ciphertext"].(string), ""); pt != "payload" {
		t.Errorf("decrypt(rewrap) = %q, want payload", pt)
	}
	if _, ok := got["plaintext"]; ok {
		t.Errorf("rewrap response shows the plaintext")
	}
	got = h.write("rewrap/k", `{"ciphertext":"`+ct1+`","key_version":2}`)
	if got["key_version"] != 2 {
		t.Errorf("rewrap to key_version 2 = %v", got)
	}
	resp, err := h.do(logical.UpdateOperation, "rewrap/k", jsonBody(t, map[string]any{"batch_input": []any{
		map[string]any{"ciphertext": ct1, "reference": "a"},
		map[string]any{"ciphertext": "junk", "reference": "b"},
	}}))
	if status(resp, err) != http.StatusBadRequest {
		t.Fatalf("batch rewrap with a bad item = %d (%v), want 400 with results", status(resp, err), err)
	}
	results := resp.Data["batch_results"].([]map[string]any)
	if results[0]["key_version"] != 3 || results[0]["reference"] != "a" {
		t.Errorf("batch rewrap item 0 = %v", results[0])
	}
	if diff := cmp.Diff(map[string]any{"error": "invalid ciphertext: no prefix", "reference": "b"}, results[1]); diff != "" {
		t.Errorf("batch rewrap item 1 (-want +got):\n%s", diff)
	}
}

func TestDerivedKeys(t *testing.T) {
	for _, typ := range []string{"aes256-gcm96", "chacha20-poly1305"} {
		t.Run(typ, func(t *testing.T) {
			h := newHarness(t)
			h.write("keys/k", `{"derived":true,"type":"`+typ+`"}`)
			ctxA, ctxB := `,"context":"`+b64("tenant-a")+`"`, `,"context":"`+b64("tenant-b")+`"`
			h.fail(logical.UpdateOperation, "encrypt/k", `{"plaintext":"`+b64("x")+`"}`, http.StatusBadRequest, msgMissingContext)
			h.fail(logical.UpdateOperation, "encrypt/k", `{"plaintext":"`+b64("x")+`","context":""}`, http.StatusBadRequest, msgMissingContext)
			a := h.encrypt("k", "same", ctxA)
			b := h.encrypt("k", "same", ctxB)
			if a == b {
				t.Fatalf("two contexts gave one ciphertext")
			}
			if got := h.decrypt("k", a, ctxA); got != "same" {
				t.Errorf("decrypt with context A = %q", got)
			}
			if got := h.decrypt("k", b, ctxB); got != "same" {
				t.Errorf("decrypt with context B = %q", got)
			}
			h.fail(logical.UpdateOperation, "decrypt/k", `{"ciphertext":"`+a+`"`+ctxB+`}`, http.StatusBadRequest, msgUnableToDecrypt)
			h.fail(logical.UpdateOperation, "decrypt/k", `{"ciphertext":"`+a+`"}`, http.StatusBadRequest, msgMissingContext)
			// rewrap keeps the context; datakeys use it too.
			rw := h.write("rewrap/k", `{"ciphertext":"`+a+`"`+ctxA+`}`)["ciphertext"].(string)
			if got := h.decrypt("k", rw, ctxA); got != "same" {
				t.Errorf("decrypt(rewrap) with context A = %q", got)
			}
			h.fail(logical.UpdateOperation, "datakey/plaintext/k", `{}`, http.StatusBadRequest, msgMissingContext)
			dk := h.write("datakey/plaintext/k", `{"bits":128`+ctxA+`}`)
			if got := h.write("decrypt/k", `{"ciphertext":"`+dk["ciphertext"].(string)+`"`+ctxA+`}`)["plaintext"]; got != dk["plaintext"] {
				t.Errorf("decrypt(datakey) = %v, want %v", got, dk["plaintext"])
			}
		})
	}
}

func TestNonDerivedKeyIgnoresContext(t *testing.T) {
	h := newHarness(t)
	h.write("keys/k", "")
	ct := h.encrypt("k", "x", `,"context":"`+b64("a")+`"`)
	if got := h.decrypt("k", ct, ""); got != "x" {
		t.Errorf("decrypt without the context of a non-derived key = %q, want x", got)
	}
}

func TestBatch(t *testing.T) {
	h := newHarness(t)
	h.write("keys/k", "")
	in := []any{
		map[string]any{"plaintext": b64("zero"), "reference": "r0"},
		map[string]any{"plaintext": "!!", "reference": "r1"},
		map[string]any{"plaintext": b64("two")},
		map[string]any{"plaintext": b64("three"), "key_version": 5, "reference": "r3"},
	}
	resp, err := h.do(logical.UpdateOperation, "encrypt/k", jsonBody(t, map[string]any{"batch_input": in}))
	if got := status(resp, err); got != http.StatusBadRequest {
		t.Fatalf("batch encrypt with failures = %d (%v), want 400 with results", got, err)
	}
	res := resp.Data["batch_results"].([]map[string]any)
	if len(res) != 4 {
		t.Fatalf("batch encrypt: %d results, want 4", len(res))
	}
	wantErrs := []map[string]any{
		nil,
		{"error": "failed to base64-decode plaintext", "reference": "r1"},
		nil,
		{"error": "requested version for encryption is higher than the latest key version", "reference": "r3"},
	}
	for i, want := range wantErrs {
		if want != nil {
			if diff := cmp.Diff(want, res[i]); diff != "" {
				t.Errorf("batch item %d (-want +got):\n%s", i, diff)
			}
		}
	}
	if res[0]["reference"] != "r0" || res[0]["key_version"] != 1 || res[2]["reference"] != "" {
		t.Errorf("batch successes = %v, %v", res[0], res[2])
	}

	resp, err = h.do(logical.UpdateOperation, "encrypt/k", jsonBody(t, map[string]any{"batch_input": in, "partial_failure_response_code": 207}))
	if got := status(resp, err); got != 207 {
		t.Errorf("partial failure with partial_failure_response_code 207 = %d (%v)", got, err)
	}
	allBad := []any{map[string]any{"plaintext": "!"}, map[string]any{}}
	resp, err = h.do(logical.UpdateOperation, "encrypt/k", jsonBody(t, map[string]any{"batch_input": allBad, "partial_failure_response_code": 200}))
	if got := status(resp, err); got != http.StatusBadRequest {
		t.Errorf("batch where every item fails, with partial_failure_response_code = %d, want 400", got)
	}

	// Decrypt the successes and a tampered one in one batch.
	dec := []any{
		map[string]any{"ciphertext": res[0]["ciphertext"], "reference": "a"},
		map[string]any{"ciphertext": res[2]["ciphertext"], "reference": "b"},
		map[string]any{"ciphertext": "vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "reference": "c"},
	}
	resp, err = h.do(logical.UpdateOperation, "decrypt/k", jsonBody(t, map[string]any{"batch_input": dec}))
	if got := status(resp, err); got != http.StatusBadRequest {
		t.Fatalf("batch decrypt with a bad item = %d (%v), want 400", got, err)
	}
	want := []map[string]any{
		{"plaintext": b64("zero"), "reference": "a"},
		{"plaintext": b64("two"), "reference": "b"},
		{"error": msgUnableToDecrypt, "reference": "c"},
	}
	if diff := cmp.Diff(want, resp.Data["batch_results"]); diff != "" {
		t.Errorf("batch decrypt (-want +got):\n%s", diff)
	}
	ok := h.write("decrypt/k", jsonBody(t, map[string]any{"batch_input": dec[:2]}))
	if diff := cmp.Diff(want[:2], ok["batch_results"]); diff != "" {
		t.Errorf("batch decrypt, all good (-want +got):\n%s", diff)
	}
}

func TestUpsertOnEncrypt(t *testing.T) {
	h := newHarness(t)
	// A token without the create capability sends an update: no upsert.
	req := &logical.Request{Operation: logical.UpdateOperation, MountPath: "encrypt/k", Data: body(t, `{"plaintext":""}`)}
	if _, err := h.send(req, true); errMsg(err) != msgKeyNotFound {
		t.Fatalf("encrypt to a missing key without create = %v, want %q", err, msgKeyNotFound)
	}
	ok, err := h.b.Exists(t.Context(), &logical.Request{MountPath: "encrypt/k"})
	if err != nil || ok {
		t.Fatalf("Exists(encrypt/k) = %v, %v; want false", ok, err)
	}
	ct := h.encrypt("k", "hi", "")
	if got := h.must(logical.ReadOperation, "keys/k", "").Data["type"]; got != "aes256-gcm96" {
		t.Errorf("upserted key type = %v", got)
	}
	if got := h.decrypt("k", ct, ""); got != "hi" {
		t.Errorf("decrypt after upsert = %q", got)
	}
	if ok, err := h.b.Exists(t.Context(), &logical.Request{MountPath: "encrypt/k"}); err != nil || !ok {
		t.Errorf("Exists(encrypt/k) after upsert = %v, %v; want true", ok, err)
	}

	h.encrypt("c", "hi", `,"type":"chacha20-poly1305","context":"`+b64("ctx")+`"`)
	got := h.must(logical.ReadOperation, "keys/c", "").Data
	if got["type"] != "chacha20-poly1305" || got["derived"] != true {
		t.Errorf("upsert with type and context: type %v derived %v, want chacha20-poly1305 and derived", got["type"], got["derived"])
	}
	batch := h.write("encrypt/b", jsonBody(t, map[string]any{"batch_input": []any{map[string]any{"plaintext": b64("x")}}}))
	if n := len(batch["batch_results"].([]map[string]any)); n != 1 {
		t.Errorf("batch upsert: %d results", n)
	}
	if ok, _ := h.b.Exists(t.Context(), &logical.Request{MountPath: "keys/anything"}); !ok {
		t.Errorf("Exists(keys/anything) = false; only encrypt creates")
	}
}

func TestDatakey(t *testing.T) {
	h := newHarness(t)
	h.write("keys/k", "")
	tests := []struct {
		name  string
		path  string
		body  string
		bytes int
	}{
		{"plaintext default", "datakey/plaintext/k", ``, 32},
		{"plaintext 128", "datakey/plaintext/k", `{"bits":128}`, 16},
		{"wrapped 512", "datakey/wrapped/k", `{"bits":"512"}`, 64},
		{"wrapped 256", "datakey/wrapped/k", `{"bits":256}`, 32},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := h.write(tc.path, tc.body)
			ct, _ := got["ciphertext"].(string)
			if !strings.HasPrefix(ct, "vault:v1:") || got["key_version"] != 1 {
				t.Fatalf("datakey = %v", got)
			}
			dk := unb64(t, h.write("decrypt/k", `{"ciphertext":"`+ct+`"}`)["plaintext"].(string))
			if len(dk) != tc.bytes {
				t.Errorf("decrypted data key is %d bytes, want %d", len(dk), tc.bytes)
			}
			pt, shown := got["plaintext"]
			if wrapped := strings.Contains(tc.path, "wrapped"); wrapped == shown {
				t.Errorf("%s: plaintext shown = %v", tc.path, shown)
			}
			if shown && pt != base64.StdEncoding.EncodeToString(dk) {
				t.Errorf("datakey plaintext %v does not match its ciphertext's %x", pt, dk)
			}
		})
	}
	errs := []struct{ path, body, msg string }{
		{"datakey/plaintext/k", `{"bits":64}`, "bits must be 128, 256 or 512"},
		{"datakey/raw/k", ``, `invalid data key type "raw": must be "plaintext" or "wrapped"`},
		{"datakey/wrapped/none", ``, msgKeyNotFound},
		{"datakey/wrapped/k", `{"nonce":"abc="}`, msgNonce},
		{"datakey/wrapped/k", `{"key_version":2}`, "requested version for encryption is higher than the latest key version"},
	}
	for _, tc := range errs {
		h.fail(logical.UpdateOperation, tc.path, tc.body, http.StatusBadRequest, tc.msg)
	}
}
