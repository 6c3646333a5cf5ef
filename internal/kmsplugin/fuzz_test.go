package kmsplugin_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	kmsapi "k8s.io/kms/apis/v2"

	"github.com/coffer-dev/coffer/internal/kmsplugin"
)

// FuzzParsers feeds arbitrary bytes to every parser of what the apiserver
// (or a stored etcd value) hands the plugin: key_ids, transit ciphertexts
// and annotations. They must never panic, and must refuse with the right
// sentinel.
func FuzzParsers(f *testing.F) {
	f.Add("coffer:transit:transit/kubernetes:v3:1714564800", "vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "version.kms.coffer.dev", []byte("1"))
	f.Add("coffer:transit:transit/kubernetes:v0:", "vault:v:", "a.b", []byte{})
	f.Add("coffer:local:00", "vault:v99999999999:!!", "NOT_FQDN", []byte("2"))
	f.Fuzz(func(t *testing.T, keyID, ct, annKey string, annVal []byte) {
		if _, _, err := kmsplugin.ParseTransitKeyID(keyID, "transit", "kubernetes"); err != nil && !errors.Is(err, kmsplugin.ErrUnknownKeyID) {
			t.Fatalf("ParseTransitKeyID error %v is not ErrUnknownKeyID", err)
		} else if err == nil {
			v, c, _ := kmsplugin.ParseTransitKeyID(keyID, "transit", "kubernetes")
			if kmsplugin.TransitKeyID("transit", "kubernetes", v, c) != keyID {
				t.Fatalf("key_id %q accepted but not canonical", keyID)
			}
		}
		if _, err := kmsplugin.CiphertextVersion(ct); err != nil && !errors.Is(err, kmsplugin.ErrInvalidCiphertext) {
			t.Fatalf("CiphertextVersion error %v is not ErrInvalidCiphertext", err)
		}
		_ = kmsplugin.CheckAnnotations(map[string][]byte{annKey: annVal})
	})
}

// FuzzLocalDecrypt sends arbitrary Decrypt requests to a local-key service
// (the gRPC handler, without the transport): never a panic, never a
// plaintext for anything but a real ciphertext.
func FuzzLocalDecrypt(f *testing.F) {
	dir := f.TempDir()
	p := filepath.Join(dir, "key")
	if err := kmsplugin.GenerateKeyFile(p); err != nil {
		f.Fatal(err)
	}
	kek, err := kmsplugin.LoadLocalKey(p)
	if err != nil {
		f.Fatal(err)
	}
	svc := kmsplugin.NewService(kek, kmsplugin.Options{})
	ctx := context.Background()
	enc, err := svc.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: []byte("seed")})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc.Ciphertext, enc.KeyId, "1")
	f.Add([]byte{1}, kek.KeyID(), "1")
	f.Add([]byte{}, "", "")
	f.Fuzz(func(t *testing.T, ct []byte, keyID, version string) {
		resp, err := svc.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: ct, KeyId: keyID, Annotations: map[string][]byte{kmsplugin.FormatAnnotation: []byte(version)}})
		if err == nil && string(resp.Plaintext) != "seed" {
			t.Fatalf("Decrypt accepted a forged ciphertext: %q", resp.Plaintext)
		}
	})
}
