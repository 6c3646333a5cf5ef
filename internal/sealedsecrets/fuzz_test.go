package sealedsecrets_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/coffer-dev/coffer/internal/sealedsecrets"
	"github.com/coffer-dev/coffer/internal/sealedsecrets/sealedsecretstest"
)

func seedBlobs(f *testing.F) [][]byte {
	f.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "kubeseal-raw-vectors.json"))
	if err != nil {
		f.Fatal(err)
	}
	var vs []rawVector
	if err := json.Unmarshal(b, &vs); err != nil {
		f.Fatal(err)
	}
	var out [][]byte
	for _, v := range vs {
		raw, _ := base64.StdEncoding.DecodeString(v.Blob)
		out = append(out, raw)
	}
	return append(out, nil, []byte{0}, []byte{0, 0}, []byte{0xff, 0xff, 1, 2, 3}, []byte{0, 1, 7})
}

// FuzzParseBlob: the blob decoder never panics, and what it accepts
// re-frames to the same bytes.
func FuzzParseBlob(f *testing.F) {
	for _, b := range seedBlobs(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		blob, err := sealedsecrets.ParseBlob(b)
		if err != nil {
			var pe *sealedsecrets.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseBlob error %T is not a *ParseError", err)
			}
			return
		}
		n := len(blob.RSACiphertext)
		re := append([]byte{byte(n >> 8), byte(n)}, blob.RSACiphertext...)
		re = append(re, blob.AESCiphertext...)
		if !bytes.Equal(re, b) {
			t.Fatalf("ParseBlob does not cover its input")
		}
	})
}

// FuzzDecryptString: arbitrary values and labels never panic, never open
// to anything but the one sealed value (each fuzz worker seals its own
// copy, and base64 decoding skips newlines, so the text may differ), and
// always fail with the one generic message.
func FuzzDecryptString(f *testing.F) {
	k := sealedsecretstest.Key(f, "key2")
	keys := []*sealedsecrets.Key{k}
	good, err := sealedsecrets.EncryptString(k.Public(), []byte("v"), []byte("ns/n"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, "ns/n")
	for _, b := range seedBlobs(f) {
		f.Add(base64.StdEncoding.EncodeToString(b), "team-a/db")
	}
	f.Add("!!!", "")
	f.Fuzz(func(t *testing.T, value, label string) {
		pt, err := sealedsecrets.DecryptString(keys, value, []byte(label))
		if err == nil {
			if label != "ns/n" || string(pt) != "v" {
				t.Fatalf("opened an unexpected value")
			}
			return
		}
		if err.Error() != "no key could decrypt secret" {
			t.Fatalf("error %q is not the generic one", err)
		}
	})
}

// FuzzSealedSecret: any SealedSecret JSON (as a user may apply) decodes,
// verifies and unseals without panicking, and a failure is never a
// partial Secret. Templates of the seed are fuzzed through the JSON.
func FuzzSealedSecret(f *testing.F) {
	k := sealedsecretstest.Key(f, "key2")
	keys := []*sealedsecrets.Key{k}
	ss := sealed(nil, k, "ns", "n", nil, map[string]string{"a": "1", "b": "xyz"})
	ss.Spec.Template.Data = map[string]string{"t": "{{ .a }}-{{ .b | upper | b64enc }}"}
	seed, _ := json.Marshal(ss)
	f.Add(seed)
	ss.Spec.Template.Data = map[string]string{"t": `{{ repeat 3 .b | indent 4 }}{{ dict "x" .a | toJson }}`}
	seed, _ = json.Marshal(ss)
	f.Add(seed)
	kubesealYAML, _ := os.ReadFile(filepath.Join("testdata", "kubeseal-secret.yaml"))
	f.Add(kubesealYAML)
	f.Add([]byte(`{"spec":{"data":"AAAA","encryptedData":{}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ss sealedsecrets.SealedSecret
		if json.Unmarshal(b, &ss) != nil {
			return
		}
		opts := sealedsecrets.UnsealOptions{AcceptLegacyData: true}
		_ = sealedsecrets.Verify(&ss, keys, opts)
		s, err := sealedsecrets.Unseal(&ss, keys, opts)
		if err != nil && s != nil {
			t.Fatal("Unseal returned a Secret with an error")
		}
	})
}
