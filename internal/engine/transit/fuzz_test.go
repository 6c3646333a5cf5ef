package transit

import (
	"context"
	"strings"
	"testing"

	"github.com/coffer-dev/coffer/internal/logical"
)

// FuzzDecodeCiphertext feeds arbitrary strings to the "vault:v<N>:" parser
// (seeded from testdata/fuzz): no panics, only *ParseError failures, and
// what it accepts survives a round trip through formatVersioned.
func FuzzDecodeCiphertext(f *testing.F) {
	for _, s := range []string{
		"vault:v1:oKGio6SlpqeoqaqrknAZDTS+a9wJReWhaA2u/hbDIelh227cvtxj0qcEAMk/H8M=",
		"vault:v1:", "vault:v", "vault:v0:AA==", "vault:v01:AA==", "vault:v-1:AA==", "vault:v+1:AA==",
		"vault:v999999999:AA==", "vault:v1000000000:AA==", "vault:v1:AA", "vault:v1:A\nA==", "vault:v1::",
		"vault:v1:AAAA:AAAA", "v1:AAAA", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ver, raw, err := DecodeCiphertext(s)
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("DecodeCiphertext(%q) error %T %v, want *ParseError", s, err, err)
			}
			// The message is one of a fixed few: it never quotes the input.
			switch err.Error() {
			case "invalid ciphertext: no prefix", "invalid ciphertext: wrong number of fields",
				"invalid ciphertext: version number could not be decoded", "invalid ciphertext: could not decode base64":
			default:
				t.Fatalf("DecodeCiphertext(%q) error %q", s, err)
			}
			return
		}
		if ver < 1 || !strings.HasPrefix(s, versionPrefix) {
			t.Fatalf("DecodeCiphertext(%q) = version %d", s, ver)
		}
		again := formatVersioned(ver, raw)
		ver2, raw2, err := DecodeCiphertext(again)
		if err != nil || ver2 != ver || string(raw2) != string(raw) {
			t.Fatalf("DecodeCiphertext(formatVersioned(%d, %x)) = %d, %x, %v", ver, raw, ver2, raw2, err)
		}
	})
}

// FuzzDecrypt sends arbitrary ciphertexts and contexts to decrypt on a
// plain and a derived key: every failure is a 400, never a 500 or a panic.
func FuzzDecrypt(f *testing.F) {
	f.Add("vault:v1:oKGio6SlpqeoqaqrknAZDTS+a9wJReWhaA2u/hbDIelh227cvtxj0qcEAMk/H8M=", "", false)
	f.Add("vault:v2:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "dGVuYW50", true)
	f.Add("vault:v1:", "%%", true)
	h := newHarness(f)
	h.write("keys/plain", "")
	h.write("keys/derived", `{"derived":true}`)
	f.Fuzz(func(t *testing.T, ct, keyCtx string, derived bool) {
		path := "decrypt/plain"
		if derived {
			path = "decrypt/derived"
		}
		req := &logical.Request{Operation: logical.UpdateOperation, MountPath: path,
			Data: map[string]any{"ciphertext": ct, "context": keyCtx}}
		resp, err := h.b.HandleRequest(context.Background(), req)
		if code := status(resp, err); code != 400 && code != 200 {
			t.Fatalf("decrypt %q (context %q) = %d, %v", ct, keyCtx, code, err)
		}
	})
}
