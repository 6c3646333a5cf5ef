package kmsplugin_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	kmsapi "k8s.io/kms/apis/v2"

	"github.com/coffer-dev/coffer/internal/kmsplugin"
)

func newKeyFile(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := kmsplugin.GenerateKeyFile(p); err != nil {
		t.Fatalf("GenerateKeyFile: %v", err)
	}
	return p
}

func TestGenerateKeyFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "key")
	if err := kmsplugin.GenerateKeyFile(p); err != nil {
		t.Fatalf("GenerateKeyFile: %v", err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %04o, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(filepath.Dir(p)); di.Mode().Perm() != 0o700 {
		t.Errorf("created directory mode = %04o, want 0700", di.Mode().Perm())
	}
	b, _ := os.ReadFile(p)
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b))); err != nil || len(k) != 32 {
		t.Errorf("key file = %q: want base64 of 32 bytes", b)
	}
	if err := kmsplugin.GenerateKeyFile(p); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("GenerateKeyFile over an existing file = %v, want a refusal", err)
	}
	other := newKeyFile(t, dir, "other")
	a, _ := kmsplugin.LoadLocalKey(p)
	b2, _ := kmsplugin.LoadLocalKey(other)
	if a.KeyID() == b2.KeyID() {
		t.Errorf("two generated keys share key_id %s", a.KeyID())
	}
}

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	raw := make([]byte, 32)
	rand.Read(raw)
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	b64 := base64.StdEncoding.EncodeToString(raw)
	good := []struct{ name, path string }{
		{"raw", write("raw", raw, 0o600)},
		{"base64", write("b64", []byte(b64), 0o600)},
		{"base64 newline", write("b64nl", []byte(b64+"\n"), 0o400)},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			k, err := kmsplugin.ReadKeyFile(tc.path)
			if err != nil || !bytes.Equal(k, raw) {
				t.Fatalf("ReadKeyFile(%s) = %x, %v; want the key", tc.name, k, err)
			}
		})
	}
	bad := []struct{ name, path, want string }{
		{"group readable", write("g", []byte(b64), 0o640), "must not be accessible by group or others"},
		{"world readable", write("w", raw, 0o604), "must not be accessible by group or others"},
		{"short", write("short", raw[:31], 0o600), "32 bytes"},
		{"long base64", write("long", []byte(base64.StdEncoding.EncodeToString(append(raw, 1))), 0o600), "32 bytes"},
		{"hex", write("hex", []byte(strings.Repeat("ab", 32)), 0o600), "32 bytes"},
		{"big", write("big", bytes.Repeat([]byte("a"), 4096), 0o600), "not a 32-byte key"},
		{"missing", filepath.Join(dir, "nope"), "no such file"},
		{"directory", dir, "not a regular file"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "directory" {
				os.Chmod(dir, 0o700)
			}
			_, err := kmsplugin.ReadKeyFile(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadKeyFile(%s) = %v, want an error containing %q", tc.name, err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), b64) {
				t.Fatalf("error %q contains the key", err)
			}
		})
	}
}

// TestLocalPlugin drives the plugin with a local key through a real gRPC
// client over the unix socket: the happy path and every refusal.
func TestLocalPlugin(t *testing.T) {
	dir := t.TempDir()
	kek, err := kmsplugin.LoadLocalKey(newKeyFile(t, dir, "key"))
	if err != nil {
		t.Fatal(err)
	}
	c := serve(t, kek, kmsplugin.Options{})
	ctx := rpcCtx(t)

	st, err := c.Status(ctx, &kmsapi.StatusRequest{})
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Version != "v2" || st.Healthz != "ok" || st.KeyId != kek.KeyID() || !strings.HasPrefix(st.KeyId, "coffer:local:") {
		t.Fatalf("Status = %+v, want v2/ok/%s", st, kek.KeyID())
	}
	seed := make([]byte, 32)
	rand.Read(seed)
	enc, err := c.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed, Uid: "u1"})
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	if enc.KeyId != st.KeyId || len(enc.Ciphertext) != 1+12+32+16 || bytes.Contains(enc.Ciphertext, seed) {
		t.Fatalf("Encrypt = key_id %q, %d-byte ciphertext; want key_id %q and 61 bytes", enc.KeyId, len(enc.Ciphertext), st.KeyId)
	}
	if string(enc.Annotations[kmsplugin.FormatAnnotation]) != "1" || len(enc.Annotations) != 1 {
		t.Fatalf("Encrypt annotations = %q", enc.Annotations)
	}
	enc2, _ := c.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed, Uid: "u2"})
	if bytes.Equal(enc.Ciphertext, enc2.Ciphertext) {
		t.Fatal("two encryptions of the same plaintext are equal: nonce reuse")
	}
	dec, err := c.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: enc.Ciphertext, KeyId: enc.KeyId, Annotations: enc.Annotations, Uid: "u3"})
	if err != nil || !bytes.Equal(dec.Plaintext, seed) {
		t.Fatalf("Decrypt = %x, %v; want the seed", dec.GetPlaintext(), err)
	}

	good := func() *kmsapi.DecryptRequest {
		return &kmsapi.DecryptRequest{Ciphertext: bytes.Clone(enc.Ciphertext), KeyId: enc.KeyId, Annotations: annotations("1")}
	}
	bigAnn := annotations("1")
	bigAnn["padding.example.com"] = bytes.Repeat([]byte("x"), 33*1024)
	hugeAnn := annotations("1")
	hugeAnn["padding.example.com"] = bytes.Repeat([]byte("x"), 100*1024)
	refusals := []struct {
		name string
		req  func() *kmsapi.DecryptRequest
		code codes.Code
		msg  string
	}{
		{"empty ciphertext", func() *kmsapi.DecryptRequest { r := good(); r.Ciphertext = nil; return r }, codes.InvalidArgument, "ciphertext is empty"},
		{"oversize ciphertext", func() *kmsapi.DecryptRequest { r := good(); r.Ciphertext = make([]byte, 1024); return r }, codes.InvalidArgument, "limit is 1023"},
		{"empty key_id", func() *kmsapi.DecryptRequest { r := good(); r.KeyId = ""; return r }, codes.InvalidArgument, "key_id is empty"},
		{"oversize key_id", func() *kmsapi.DecryptRequest { r := good(); r.KeyId = strings.Repeat("k", 1024); return r }, codes.InvalidArgument, "key_id is 1024 bytes"},
		{"unknown key_id", func() *kmsapi.DecryptRequest {
			r := good()
			r.KeyId = "coffer:local:00000000000000000000000000000000"
			return r
		}, codes.InvalidArgument, "unknown key_id"},
		{"truncated", func() *kmsapi.DecryptRequest { r := good(); r.Ciphertext = r.Ciphertext[:20]; return r }, codes.InvalidArgument, "too short"},
		{"unknown format", func() *kmsapi.DecryptRequest { r := good(); r.Ciphertext[0] = 2; return r }, codes.InvalidArgument, "unknown format"},
		{"missing annotation", func() *kmsapi.DecryptRequest { r := good(); r.Annotations = nil; return r }, codes.InvalidArgument, "is missing"},
		{"wrong format version", func() *kmsapi.DecryptRequest { r := good(); r.Annotations = annotations("2"); return r }, codes.InvalidArgument, "unsupported format version"},
		{"unexpected annotation", func() *kmsapi.DecryptRequest {
			r := good()
			r.Annotations["other.example.com"] = []byte("x")
			return r
		}, codes.InvalidArgument, "unexpected annotation"},
		{"annotation key not FQDN", func() *kmsapi.DecryptRequest {
			r := good()
			r.Annotations["Not_A_Domain"] = []byte("x")
			return r
		}, codes.InvalidArgument, "not a fully qualified domain name"},
		{"annotations over 32 kB", func() *kmsapi.DecryptRequest { r := good(); r.Annotations = bigAnn; return r }, codes.InvalidArgument, "the limit is 32768"},
		{"message over the gRPC limit", func() *kmsapi.DecryptRequest { r := good(); r.Annotations = hugeAnn; return r }, codes.ResourceExhausted, ""},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Decrypt(ctx, tc.req())
			wantCode(t, "Decrypt", err, tc.code)
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Decrypt error %q, want it to contain %q", err, tc.msg)
			}
		})
	}
	// Every single flipped bit anywhere in the ciphertext is refused.
	for i := range enc.Ciphertext {
		r := good()
		r.Ciphertext[i] ^= 0x01
		if _, err := c.Decrypt(ctx, r); err == nil {
			t.Fatalf("Decrypt with bit 0 of byte %d flipped succeeded", i)
		} else {
			wantCode(t, "tampered Decrypt", err, codes.InvalidArgument)
		}
	}

	_, err = c.Encrypt(ctx, &kmsapi.EncryptRequest{})
	wantCode(t, "Encrypt(empty)", err, codes.InvalidArgument)
	_, err = c.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: make([]byte, kmsplugin.MaxPlaintext+1)})
	wantCode(t, "Encrypt(oversize)", err, codes.InvalidArgument)
	if _, err := c.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: make([]byte, kmsplugin.MaxPlaintext)}); err != nil {
		t.Fatalf("Encrypt(MaxPlaintext bytes): %v", err)
	}
}

// TestLocalRotation: a new primary key encrypts with a new key_id; the old
// key, kept as decrypt-only, still decrypts what it encrypted; without it
// the old key_id is unknown.
func TestLocalRotation(t *testing.T) {
	dir := t.TempDir()
	oldFile, newFile := newKeyFile(t, dir, "old"), newKeyFile(t, dir, "new")
	oldKEK, _ := kmsplugin.LoadLocalKey(oldFile)
	ctx := rpcCtx(t)
	c1 := serve(t, oldKEK, kmsplugin.Options{})
	seed := []byte("0123456789abcdef0123456789abcdef")
	enc1, err := c1.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed})
	if err != nil {
		t.Fatal(err)
	}

	rotated, err := kmsplugin.LoadLocalKey(newFile, oldFile)
	if err != nil {
		t.Fatal(err)
	}
	c2 := serve(t, rotated, kmsplugin.Options{})
	st, _ := c2.Status(ctx, &kmsapi.StatusRequest{})
	if st.KeyId == enc1.KeyId || st.Healthz != "ok" {
		t.Fatalf("after rotation Status = %+v; want a new key_id (old %s)", st, enc1.KeyId)
	}
	enc2, _ := c2.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed})
	if enc2.KeyId != st.KeyId {
		t.Fatalf("Encrypt key_id %s, Status key_id %s", enc2.KeyId, st.KeyId)
	}
	for _, e := range []*kmsapi.EncryptResponse{enc1, enc2} {
		d, err := c2.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: e.Ciphertext, KeyId: e.KeyId, Annotations: e.Annotations})
		if err != nil || !bytes.Equal(d.Plaintext, seed) {
			t.Fatalf("Decrypt(%s) = %v", e.KeyId, err)
		}
	}
	// The new key's ciphertext under the old key's id: refused (the key_id
	// is the additional data).
	_, err = c2.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: enc2.Ciphertext, KeyId: enc1.KeyId, Annotations: enc2.Annotations})
	wantCode(t, "Decrypt(ciphertext under another key's id)", err, codes.InvalidArgument)

	only, _ := kmsplugin.LoadLocalKey(newFile)
	c3 := serve(t, only, kmsplugin.Options{})
	_, err = c3.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: enc1.Ciphertext, KeyId: enc1.KeyId, Annotations: enc1.Annotations})
	wantCode(t, "Decrypt(dropped key)", err, codes.InvalidArgument)

	if _, err := kmsplugin.LoadLocalKey(newFile, newFile); err == nil {
		t.Error("LoadLocalKey with the same key twice succeeded")
	}
}
