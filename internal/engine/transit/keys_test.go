package transit

import (
	"crypto/ed25519"
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/coffer-dev/coffer/internal/logical"
)

// keyInfo is the read-key response of a fresh key, to adjust per case.
func keyInfo(name, typ string, keys map[string]any) map[string]any {
	enc := typ != "ed25519"
	return map[string]any{
		"name":                   name,
		"type":                   typ,
		"keys":                   keys,
		"latest_version":         1,
		"min_available_version":  0,
		"min_decryption_version": 1,
		"min_encryption_version": 0,
		"deletion_allowed":       false,
		"derived":                false,
		"exportable":             false,
		"allow_plaintext_backup": false,
		"supports_encryption":    enc,
		"supports_decryption":    enc,
		"supports_derivation":    true,
		"supports_signing":       !enc,
		"auto_rotate_period":     int64(0),
		"imported_key":           false,
	}
}

func TestCreateAndReadKey(t *testing.T) {
	unix := map[string]any{"1": t0.Unix()}
	tests := []struct {
		name   string
		body   string
		want   func(map[string]any)
		typ    string
		edwKey bool
	}{
		{name: "default is aes256-gcm96", body: ``, typ: "aes256-gcm96"},
		{name: "aes256-gcm96", body: `{"type":"aes256-gcm96"}`, typ: "aes256-gcm96"},
		{name: "chacha20-poly1305", body: `{"type":"chacha20-poly1305"}`, typ: "chacha20-poly1305"},
		{name: "ed25519", body: `{"type":"ed25519"}`, typ: "ed25519", edwKey: true},
		{
			name: "derived with options", typ: "aes256-gcm96",
			body: `{"derived":true,"exportable":"true","auto_rotate_period":"24h","allow_plaintext_backup":false,"convergent_encryption":false}`,
			want: func(m map[string]any) {
				m["derived"], m["exportable"], m["auto_rotate_period"] = true, true, int64(86400)
				m["kdf"], m["convergent_encryption"] = "hkdf_sha256", false
			},
		},
		{
			name: "auto_rotate_period in seconds", typ: "aes256-gcm96", body: `{"auto_rotate_period":3600}`,
			want: func(m map[string]any) { m["auto_rotate_period"] = int64(3600) },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			created := h.write("keys/k1", tc.body)
			got := h.must(logical.ReadOperation, "keys/k1", "").Data
			keys := unix
			if tc.edwKey {
				s := h.stored("k1")
				pub := ed25519.PrivateKey(s.Versions["1"].Key).Public().(ed25519.PublicKey)
				keys = map[string]any{"1": map[string]any{
					"name": "ed25519", "public_key": base64.StdEncoding.EncodeToString(pub),
					"certificate_chain": "", "creation_time": t0.Format(time.RFC3339Nano),
				}}
			}
			want := keyInfo("k1", tc.typ, keys)
			if tc.want != nil {
				tc.want(want)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("read keys/k1 after create %s: (-want +got):\n%s", tc.body, diff)
			}
			if diff := cmp.Diff(got, created); diff != "" {
				t.Errorf("create keys/k1 %s: response differs from read (-read +create):\n%s", tc.body, diff)
			}
		})
	}
}

func TestCreateKeyErrors(t *testing.T) {
	tests := []struct {
		name string
		path string
		body string
		msg  string
	}{
		{"unknown type", "keys/k", `{"type":"des"}`, `unknown key type "des"`},
		{"vault-only type", "keys/k", `{"type":"rsa-2048"}`, `key type "rsa-2048" is not supported by Coffer (use aes256-gcm96, chacha20-poly1305 or ed25519)`},
		{"convergent", "keys/k", `{"derived":true,"convergent_encryption":true}`, msgConvergent},
		{"plaintext backup", "keys/k", `{"allow_plaintext_backup":true}`, "allow_plaintext_backup is not supported by Coffer"},
		{"rotate period too short", "keys/k", `{"auto_rotate_period":"30m"}`, "auto_rotate_period must be 0 to disable or at least an hour (and at most 100 years)"},
		{"rotate period not a duration", "keys/k", `{"auto_rotate_period":"soon"}`, `auto_rotate_period: "soon" is not a duration (use seconds or a form like "1h30m")`},
		{"unknown field", "keys/k", `{"colour":"red"}`, `unknown field "colour"`},
		{"derived not a bool", "keys/k", `{"derived":"maybe"}`, `derived: "maybe" is not a boolean`},
		{"name with a space", "keys/a b", ``, `invalid key name "a b": use letters, digits, '_', and '-' or '.' inside`},
		{"name starting with a dot", "keys/.k", ``, `invalid key name ".k": use letters, digits, '_', and '-' or '.' inside`},
		{"name ending with a dash", "keys/k-", ``, `invalid key name "k-": use letters, digits, '_', and '-' or '.' inside`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.fail(logical.UpdateOperation, tc.path, tc.body, http.StatusBadRequest, tc.msg)
			if resp, err := h.do(logical.ListOperation, "keys/", ""); status(resp, err) != http.StatusNotFound {
				t.Errorf("LIST keys/ after a refused create = %d, want 404", status(resp, err))
			}
		})
	}
}

func TestCreateExistingKeyKeepsIt(t *testing.T) {
	h := newHarness(t)
	h.write("keys/k", `{"type":"chacha20-poly1305"}`)
	before := h.stored("k")
	resp := h.must(logical.UpdateOperation, "keys/k", `{"type":"ed25519"}`)
	if diff := cmp.Diff([]string{"key k already existed"}, resp.Warnings); diff != "" {
		t.Errorf("create existing key: warnings (-want +got):\n%s", diff)
	}
	if got := resp.Data["type"]; got != "chacha20-poly1305" {
		t.Errorf("create existing key: type = %v, want chacha20-poly1305", got)
	}
	if diff := cmp.Diff(before, h.stored("k")); diff != "" {
		t.Errorf("create existing key changed storage (-before +after):\n%s", diff)
	}
}

func TestListKeys(t *testing.T) {
	h := newHarness(t)
	h.fail(logical.ListOperation, "keys/", "", http.StatusNotFound, "")
	for _, n := range []string{"b", "a.1", "c_d-e"} {
		h.write("keys/"+n, "")
	}
	for _, path := range []string{"keys/", "keys"} {
		got := h.must(logical.ListOperation, path, "").Data
		if diff := cmp.Diff(map[string]any{"keys": []string{"a.1", "b", "c_d-e"}}, got); diff != "" {
			t.Errorf("LIST %s (-want +got):\n%s", path, diff)
		}
	}
}

func TestDeleteKey(t *testing.T) {
	h := newHarness(t)
	h.fail(logical.DeleteOperation, "keys/k", "", http.StatusBadRequest, "error deleting policy k: could not delete key; not found")
	h.write("keys/k", "")
	ct := h.encrypt("k", "hello", "")
	h.fail(logical.DeleteOperation, "keys/k", "", http.StatusBadRequest, "error deleting policy k: deletion is not allowed for this key")
	h.decrypt("k", ct, "") // still there

	if got := h.write("keys/k/config", `{"deletion_allowed":true}`)["deletion_allowed"]; got != true {
		t.Fatalf("config deletion_allowed=true: deletion_allowed = %v", got)
	}
	if resp := h.must(logical.DeleteOperation, "keys/k", ""); resp != nil {
		t.Errorf("DELETE keys/k = %+v, want no body", resp)
	}
	h.fail(logical.ReadOperation, "keys/k", "", http.StatusNotFound, "")
	h.fail(logical.UpdateOperation, "decrypt/k", `{"ciphertext":"`+ct+`"}`, http.StatusBadRequest, msgKeyNotFound)
	if _, err := h.store.Get(t.Context(), policyKey("k")); err == nil {
		t.Errorf("storage still holds %s after delete", policyKey("k"))
	}
}

func TestRotateKey(t *testing.T) {
	h := newHarness(t)
	h.fail(logical.UpdateOperation, "keys/k/rotate", "", http.StatusBadRequest, "key not found")
	h.write("keys/k", "")
	h.clock.Advance(time.Hour)
	if got := h.write("keys/k/rotate", ""); got["latest_version"] != 2 {
		t.Errorf("rotate: latest_version = %v, want 2", got["latest_version"])
	}
	h.clock.Advance(time.Hour)
	h.write("keys/k/rotate", "")
	got := h.must(logical.ReadOperation, "keys/k", "").Data
	want := map[string]any{"1": t0.Unix(), "2": t0.Add(time.Hour).Unix(), "3": t0.Add(2 * time.Hour).Unix()}
	if diff := cmp.Diff(want, got["keys"]); diff != "" {
		t.Errorf("keys after two rotations (-want +got):\n%s", diff)
	}
	if got["latest_version"] != 3 {
		t.Errorf("latest_version = %v, want 3", got["latest_version"])
	}
	h.fail(logical.UpdateOperation, "keys/k/rotate", `{"x":1}`, http.StatusBadRequest, `unknown field "x"`)
}

func TestConfigKey(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		msg      string // empty: success
		want     map[string]any
		warnings []string
	}{
		{name: "min versions", body: `{"min_decryption_version":2,"min_encryption_version":3}`,
			want: map[string]any{"min_decryption_version": 2, "min_encryption_version": 3}},
		{name: "min decryption 0 means 1", body: `{"min_decryption_version":0}`,
			want:     map[string]any{"min_decryption_version": 1},
			warnings: []string{"since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1"}},
		{name: "empty fields change nothing", body: `{"min_decryption_version":"","auto_rotate_period":null}`, want: map[string]any{}},
		{name: "auto rotate", body: `{"auto_rotate_period":"2h"}`, want: map[string]any{"auto_rotate_period": int64(7200)}},
		{name: "auto rotate off", body: `{"auto_rotate_period":0}`, want: map[string]any{"auto_rotate_period": int64(0)}},
		{name: "exportable and deletion", body: `{"exportable":true,"deletion_allowed":true}`,
			want: map[string]any{"exportable": true, "deletion_allowed": true}},
		{name: "min decryption above latest", body: `{"min_decryption_version":4}`,
			msg: "cannot set min decryption version of 4, latest key version is 3"},
		{name: "min decryption negative", body: `{"min_decryption_version":-1}`, msg: "min decryption version cannot be negative"},
		{name: "min encryption above latest", body: `{"min_encryption_version":4}`,
			msg: "cannot set min encryption version of 4, latest key version is 3"},
		{name: "min encryption negative", body: `{"min_encryption_version":-2}`, msg: "min encryption version cannot be negative"},
		{name: "min encryption below min decryption", body: `{"min_decryption_version":3,"min_encryption_version":2}`,
			msg: "cannot set min encryption/decryption values; min encryption version of 2 must be greater than or equal to min decryption version of 3"},
		{name: "rotate period too short", body: `{"auto_rotate_period":"59m"}`,
			msg: "auto_rotate_period must be 0 to disable or at least an hour (and at most 100 years)"},
		{name: "plaintext backup", body: `{"allow_plaintext_backup":true}`, msg: "allow_plaintext_backup is not supported by Coffer"},
		{name: "unknown field", body: `{"min_version":1}`, msg: `unknown field "min_version"`},
		{name: "not a number", body: `{"min_decryption_version":"two"}`, msg: `min_decryption_version: "two" is not an integer`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.write("keys/k", "")
			h.write("keys/k/rotate", "")
			h.write("keys/k/rotate", "")
			before := h.must(logical.ReadOperation, "keys/k", "").Data
			if tc.msg != "" {
				h.fail(logical.UpdateOperation, "keys/k/config", tc.body, http.StatusBadRequest, tc.msg)
				if diff := cmp.Diff(before, h.must(logical.ReadOperation, "keys/k", "").Data); diff != "" {
					t.Errorf("refused config %s changed the key (-before +after):\n%s", tc.body, diff)
				}
				return
			}
			resp := h.must(logical.UpdateOperation, "keys/k/config", tc.body)
			want := before
			for k, v := range tc.want {
				want[k] = v
			}
			if diff := cmp.Diff(want, resp.Data); diff != "" {
				t.Errorf("config %s: response (-want +got):\n%s", tc.body, diff)
			}
			if diff := cmp.Diff(tc.warnings, resp.Warnings); diff != "" {
				t.Errorf("config %s: warnings (-want +got):\n%s", tc.body, diff)
			}
			if diff := cmp.Diff(want, h.must(logical.ReadOperation, "keys/k", "").Data); diff != "" {
				t.Errorf("read after config %s (-want +got):\n%s", tc.body, diff)
			}
		})
	}
}

func TestConfigKeyExportableStays(t *testing.T) {
	h := newHarness(t)
	h.write("keys/k", `{"exportable":true}`)
	h.fail(logical.UpdateOperation, "keys/k/config", `{"exportable":false}`, http.StatusBadRequest, "exportable cannot be disabled once enabled")
	h.fail(logical.UpdateOperation, "keys/none/config", `{"deletion_allowed":true}`, http.StatusBadRequest, "no existing key named none could be found")
}

func TestTrimKey(t *testing.T) {
	h := newHarness(t)
	h.write("keys/k", "")
	ct1 := h.encrypt("k", "one", "")
	h.write("keys/k/rotate", "")
	h.write("keys/k/rotate", "")
	ct3 := h.encrypt("k", "three", "")

	h.fail(logical.UpdateOperation, "keys/k/trim", `{"min_available_version":2}`, http.StatusBadRequest,
		"minimum available version cannot be set while min_encryption_version is 0 (the latest)")
	h.write("keys/k/config", `{"min_decryption_version":3,"min_encryption_version":3}`)
	tests := []struct{ body, msg string }{
		{`{"min_available_version":0}`, "minimum available version should be positive"},
		{`{"min_available_version":4}`, "minimum available version should not be greater than the minimum decryption or encryption version"},
		{`{"min_available_version":"x"}`, `min_available_version: "x" is not an integer`},
	}
	for _, tc := range tests {
		h.fail(logical.UpdateOperation, "keys/k/trim", tc.body, http.StatusBadRequest, tc.msg)
	}
	got := h.write("keys/k/trim", `{"min_available_version":3}`)
	if got["min_available_version"] != 3 {
		t.Errorf("trim: min_available_version = %v, want 3", got["min_available_version"])
	}
	if diff := cmp.Diff(map[string]any{"3": t0.Unix()}, got["keys"]); diff != "" {
		t.Errorf("trim: keys (-want +got):\n%s", diff)
	}
	if s := h.stored("k"); len(s.Versions) != 1 || s.Versions["3"] == nil {
		t.Errorf("trim: stored versions = %v, want only 3", s.Versions)
	}
	h.fail(logical.UpdateOperation, "keys/k/trim", `{"min_available_version":2}`, http.StatusBadRequest,
		"minimum available version should not be less than the current minimum available version")
	h.fail(logical.UpdateOperation, "keys/k/config", `{"min_decryption_version":1}`, http.StatusBadRequest,
		"cannot set min decryption version of 1, versions below 3 have been trimmed")
	h.fail(logical.UpdateOperation, "decrypt/k", `{"ciphertext":"`+ct1+`"}`, http.StatusBadRequest, msgTooOld)
	if got := h.decrypt("k", ct3, ""); got != "three" {
		t.Errorf("decrypt v3 after trim = %q, want three", got)
	}
	// min_encryption_version back to 0 must not reach trimmed versions.
	h.write("keys/k/config", `{"min_encryption_version":0}`)
	h.fail(logical.UpdateOperation, "encrypt/k", `{"plaintext":"","key_version":1}`, http.StatusBadRequest,
		"requested version for encryption has been trimmed")
}

func TestRoutes(t *testing.T) {
	h := newHarness(t)
	h.write("keys/k", "")
	tests := []struct {
		op     logical.Operation
		path   string
		status int
	}{
		{logical.ReadOperation, "nothing", http.StatusNotFound},
		{logical.ReadOperation, "keys/k/versions", http.StatusNotFound},
		{logical.UpdateOperation, "encrypt/k/extra", http.StatusNotFound},
		{logical.UpdateOperation, "datakey/k", http.StatusNotFound},
		{logical.UpdateOperation, "hash/sha2-256/x", http.StatusNotFound},
		{logical.UpdateOperation, "random/platform/8/x", http.StatusNotFound},
		{logical.ReadOperation, "encrypt/k", http.StatusMethodNotAllowed},
		{logical.ListOperation, "keys/k", http.StatusMethodNotAllowed},
		{logical.ReadOperation, "keys/", http.StatusMethodNotAllowed},
		{logical.ReadOperation, "keys/k/rotate", http.StatusMethodNotAllowed},
		{logical.DeleteOperation, "keys/k/config", http.StatusMethodNotAllowed},
		{logical.UpdateOperation, "encrypt/", http.StatusBadRequest},
		{logical.HeadOperation, "keys/k", http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(string(tc.op)+" "+tc.path, func(t *testing.T) {
			resp, err := h.do(tc.op, tc.path, "")
			if got := status(resp, err); got != tc.status {
				t.Errorf("HandleRequest(%s %q) = %d (%v), want %d", tc.op, tc.path, got, err, tc.status)
			}
		})
	}
}
