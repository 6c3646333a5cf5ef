package transit

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
)

// vectors is testdata/vectors.json.
type vectors struct {
	Key       string `json:"key"`
	HMACKey   string `json:"hmac_key"`
	Nonce     string `json:"nonce"`
	Plaintext string `json:"plaintext"`
	Encrypt   []struct {
		Name           string `json:"name"`
		Type           string `json:"type"`
		Derived        bool   `json:"derived"`
		Context        string `json:"context"`
		AssociatedData string `json:"associated_data"`
		Ciphertext     string `json:"ciphertext"`
	} `json:"encrypt"`
	HMAC    string `json:"hmac_sha2_256"`
	Ed25519 struct {
		Seed      string `json:"seed"`
		PublicKey string `json:"public_key"`
		Signature string `json:"signature"`
	} `json:"ed25519"`
}

func loadVectors(t *testing.T) *vectors {
	t.Helper()
	raw, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("testdata/vectors.json: %v", err)
	}
	return &v
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

// putKey stores a one-version key with the given material by hand, in
// the documented storage layout.
func putKey(t *testing.T, h *harness, name, typ string, derived bool, key, hmacKey []byte) {
	t.Helper()
	kdf := ""
	if derived {
		kdf = "hkdf_sha256"
	}
	entry := map[string]any{
		"format": 1, "name": name, "type": typ, "derived": derived, "kdf": kdf,
		"min_decryption_version": 1, "min_encryption_version": 0, "min_available_version": 0, "latest_version": 1,
		"auto_rotate_period_seconds": 0,
		"versions": map[string]any{"1": map[string]any{
			"key": key, "hmac_key": hmacKey, "creation_time": t0.Format(time.RFC3339Nano),
		}},
	}
	if kdf == "" {
		delete(entry, "kdf")
	}
	raw, err := json.Marshal(entry)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.store.Put(context.Background(), &storage.Entry{Key: policyKey(name), Value: raw}); err != nil {
		t.Fatal(err)
	}
}

// TestKnownAnswerDecrypt builds each vector's ciphertext by hand with
// crypto/cipher (proving the vector), then decrypts it through the
// backend from key material stored by hand (proving the wire and storage
// formats).
func TestKnownAnswerDecrypt(t *testing.T) {
	v := loadVectors(t)
	key, hmacKey, nonce := unhex(t, v.Key), unhex(t, v.HMACKey), unhex(t, v.Nonce)
	for _, tc := range v.Encrypt {
		t.Run(tc.Name, func(t *testing.T) {
			k := key
			if tc.Derived {
				var err error
				if k, err = hkdf.Key(sha256.New, key, nil, tc.Context, 32); err != nil {
					t.Fatal(err)
				}
			}
			var aead cipher.AEAD
			var err error
			if tc.Type == "chacha20-poly1305" {
				aead, err = chacha20poly1305.New(k)
			} else {
				block, berr := aes.NewCipher(k)
				if berr != nil {
					t.Fatal(berr)
				}
				aead, err = cipher.NewGCM(block)
			}
			if err != nil {
				t.Fatal(err)
			}
			var aad []byte
			if tc.AssociatedData != "" {
				aad = []byte(tc.AssociatedData)
			}
			byHand := "vault:v1:" + base64.StdEncoding.EncodeToString(aead.Seal(bytes.Clone(nonce), nonce, []byte(v.Plaintext), aad))
			if byHand != tc.Ciphertext {
				t.Fatalf("ciphertext built with crypto/cipher = %s, vector says %s", byHand, tc.Ciphertext)
			}

			h := newHarness(t)
			putKey(t, h, "kat", tc.Type, tc.Derived, key, hmacKey)
			extra := ""
			if tc.Derived {
				extra += `,"context":"` + b64(tc.Context) + `"`
			}
			if aad != nil {
				extra += `,"associated_data":"` + b64(tc.AssociatedData) + `"`
			}
			if got := h.decrypt("kat", tc.Ciphertext, extra); got != v.Plaintext {
				t.Errorf("decrypt(%s) = %q, want %q", tc.Ciphertext, got, v.Plaintext)
			}
			// And the reverse: the backend's own ciphertexts open by hand.
			ct := h.encrypt("kat", "reverse", extra)
			raw := unb64(t, strings.TrimPrefix(ct, "vault:v1:"))
			pt, err := aead.Open(nil, raw[:12], raw[12:], aad)
			if err != nil || string(pt) != "reverse" {
				t.Errorf("opening the backend's ciphertext by hand = %q, %v", pt, err)
			}
		})
	}
}

func TestKnownAnswerHMACAndSignature(t *testing.T) {
	v := loadVectors(t)
	key, hmacKey := unhex(t, v.Key), unhex(t, v.HMACKey)
	in := `"input":"` + b64(v.Plaintext) + `"`

	m := hmac.New(sha256.New, hmacKey)
	m.Write([]byte(v.Plaintext))
	if byHand := "vault:v1:" + base64.StdEncoding.EncodeToString(m.Sum(nil)); byHand != v.HMAC {
		t.Fatalf("HMAC by hand = %s, vector says %s", byHand, v.HMAC)
	}
	h := newHarness(t)
	putKey(t, h, "kat", "aes256-gcm96", false, key, hmacKey)
	if got := h.write("hmac/kat", `{`+in+`}`)["hmac"]; got != v.HMAC {
		t.Errorf("hmac/kat = %v, want %s", got, v.HMAC)
	}

	priv := ed25519.NewKeyFromSeed(unhex(t, v.Ed25519.Seed))
	if byHand := "vault:v1:" + base64.StdEncoding.EncodeToString(ed25519.Sign(priv, []byte(v.Plaintext))); byHand != v.Ed25519.Signature {
		t.Fatalf("signature by hand = %s, vector says %s", byHand, v.Ed25519.Signature)
	}
	putKey(t, h, "ed", "ed25519", false, priv, hmacKey)
	if got := h.write("sign/ed", `{`+in+`}`)["signature"]; got != v.Ed25519.Signature {
		t.Errorf("sign/ed = %v, want %s", got, v.Ed25519.Signature)
	}
	if got := h.write("verify/ed", `{`+in+`,"signature":"`+v.Ed25519.Signature+`"}`)["valid"]; got != true {
		t.Errorf("verify/ed of the vector = %v", got)
	}
	keys := h.must(logical.ReadOperation, "keys/ed", "").Data["keys"].(map[string]any)
	if got := keys["1"].(map[string]any)["public_key"]; got != v.Ed25519.PublicKey {
		t.Errorf("keys/ed public_key = %v, want %s", got, v.Ed25519.PublicKey)
	}
}

// TestStorageHoldsNoPlaintext writes canaries through every endpoint that
// takes secrets and checks that the engine's storage holds none of them,
// raw or encoded: only key material is stored.
func TestStorageHoldsNoPlaintext(t *testing.T) {
	h := newHarness(t)
	canary := "CANARY-d41d8cd98f00"
	h.encrypt("k", canary, "")
	h.write("hmac/k", `{"input":"`+b64(canary)+`"}`)
	h.encrypt("d", canary, `,"context":"`+b64(canary)+`"`)
	names, err := h.store.List(context.Background(), policyPrefix)
	if err != nil {
		t.Fatal(err)
	}
	forms := []string{canary, b64(canary), hex.EncodeToString([]byte(canary))}
	for _, n := range names {
		e, err := h.store.Get(context.Background(), policyKey(n))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range forms {
			if bytes.Contains(e.Value, []byte(f)) {
				t.Errorf("storage entry %s contains the canary as %q", policyKey(n), f)
			}
		}
	}
}

// TestKeyMaterialIsRedacted: key types print as [REDACTED] however they
// are formatted or encoded.
func TestKeyMaterialIsRedacted(t *testing.T) {
	h := newHarness(t)
	h.write("keys/k", "")
	l := h.b.lockFor("k")
	l.RLock()
	p, err := h.b.load(context.Background(), "k")
	l.RUnlock()
	if err != nil || p == nil {
		t.Fatalf("load(k) = %v, %v", p, err)
	}
	s := p.versions[1].key
	raw, _ := json.Marshal(p.versions[1].hmacKey)
	text, _ := s.MarshalText()
	for _, got := range []string{s.String(), s.GoString(), fmtAll(s), string(raw), string(text), s.LogValue().String()} {
		if strings.Contains(got, hex.EncodeToString(s.b)) || !strings.Contains(got, redacted) {
			t.Errorf("formatted key = %q, want [REDACTED]", got)
		}
	}
}

func fmtAll(s secret) string {
	var sb strings.Builder
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		sb.WriteString(fmt.Sprintf(verb, s))
	}
	return sb.String()
}
