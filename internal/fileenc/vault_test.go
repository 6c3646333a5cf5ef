package fileenc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/coffer-dev/coffer/internal/coffertest"
	"github.com/coffer-dev/coffer/internal/fileenc"
)

// startTransit starts a coffer dev server with a transit key "sops".
func startTransit(t *testing.T) (*coffertest.Server, fileenc.VaultURI) {
	t.Helper()
	srv := coffertest.StartDev(t)
	post := func(path string, body any) {
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, srv.Addr+"/v1/"+path, bytes.NewReader(raw))
		req.Header.Set("X-Vault-Token", srv.RootToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("POST %s: %s", path, resp.Status)
		}
	}
	post("sys/mounts/transit", map[string]string{"type": "transit"})
	post("transit/keys/sops", map[string]string{})
	return srv, fileenc.VaultURI{Address: srv.Addr, EnginePath: "transit", KeyName: "sops"}
}

func TestVaultKeySource(t *testing.T) {
	srv, uri := startTransit(t)
	vc := &fileenc.VaultClient{Token: srv.RootToken}
	plain := "db:\n    password: hunter2\n"
	doc, err := fileenc.ParsePlain([]byte(plain), fileenc.FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	keys := &fileenc.Keys{Vault: vc}
	if err := keys.Encrypt(context.Background(), doc, fileenc.EncryptOptions{Groups: []fileenc.KeyGroupSpec{{Vault: []fileenc.VaultURI{uri}}}}); err != nil {
		t.Fatal(err)
	}
	enc, err := doc.Emit(fileenc.FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(enc), "vault:v1:") || !strings.Contains(string(enc), "engine_path: transit") {
		t.Fatalf("no hc_vault entry:\n%s", enc)
	}
	if got := cofferDecrypt(t, enc, fileenc.FormatYAML, keys); got != plain {
		t.Errorf("decrypt = %q, want %q", got, plain)
	}
	// A wrong token fails and names the transit key.
	_, err = decrypt(enc, fileenc.FormatYAML, &fileenc.Keys{Vault: &fileenc.VaultClient{Token: "wrong"}})
	if err == nil || !strings.Contains(err.Error(), "transit/keys/sops") {
		t.Errorf("decrypt with a wrong token: %v, want an error naming the key", err)
	}
}

func TestInteropVault(t *testing.T) {
	sopsBin(t)
	srv, uri := startTransit(t)
	k := loadTestKey(t, 1)
	vc := &fileenc.VaultClient{Token: srv.RootToken}
	env := []string{"VAULT_ADDR=" + srv.Addr, "VAULT_TOKEN=" + srv.RootToken}
	dir := t.TempDir()
	plain := "db:\n    password: hunter2\n    port: 5432\n"

	// Coffer encrypts to the transit key, sops decrypts through the server.
	doc, err := fileenc.ParsePlain([]byte(plain), fileenc.FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	if err := (&fileenc.Keys{Vault: vc}).Encrypt(context.Background(), doc, fileenc.EncryptOptions{Groups: []fileenc.KeyGroupSpec{{Vault: []fileenc.VaultURI{uri}}}}); err != nil {
		t.Fatal(err)
	}
	enc, _ := doc.Emit(fileenc.FormatYAML)
	if got := mustSops(t, dir, env, "decrypt", writeFile(t, dir, "coffer.enc.yaml", enc)); got != plain {
		t.Errorf("sops decrypt of Coffer's hc_vault file = %q, want %q", got, plain)
	}

	// sops encrypts to the transit key, Coffer decrypts.
	sopsEnc := mustSops(t, dir, env, "encrypt", "--hc-vault-transit", uri.String(), writeFile(t, dir, "plain.yaml", []byte(plain)))
	if got := cofferDecrypt(t, []byte(sopsEnc), fileenc.FormatYAML, &fileenc.Keys{Vault: vc}); got != plain {
		t.Errorf("Coffer decrypt of sops' hc_vault file = %q, want %q", got, plain)
	}

	// Two key groups, an age key and the transit key, both needed: sops
	// splits, Coffer combines, and the reverse.
	writeFile(t, dir, ".sops.yaml", []byte("creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age: ["+k.recipient+"]\n      - hc_vault: [\""+uri.String()+"\"]\n"))
	sopsEnc = mustSops(t, dir, append(env, "SOPS_AGE_KEY_FILE="+k.path), "encrypt", writeFile(t, dir, "g.yaml", []byte(plain)))
	if got := cofferDecrypt(t, []byte(sopsEnc), fileenc.FormatYAML, &fileenc.Keys{Vault: vc, AgeIdentities: keysFor(k).AgeIdentities}); got != plain {
		t.Errorf("Coffer decrypt of sops' age+vault groups = %q, want %q", got, plain)
	}
	doc, _ = fileenc.ParsePlain([]byte(plain), fileenc.FormatYAML)
	err = (&fileenc.Keys{Vault: vc}).Encrypt(context.Background(), doc, fileenc.EncryptOptions{
		Groups: []fileenc.KeyGroupSpec{{Age: []string{k.recipient}}, {Vault: []fileenc.VaultURI{uri}}}, ShamirThreshold: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	enc, _ = doc.Emit(fileenc.FormatYAML)
	if got := mustSops(t, dir, append(env, "SOPS_AGE_KEY_FILE="+k.path), "decrypt", writeFile(t, dir, "cg.enc.yaml", enc)); got != plain {
		t.Errorf("sops decrypt of Coffer's age+vault groups = %q, want %q", got, plain)
	}
	// Without the server token, the age group alone is not enough.
	if _, errOut, err := runSops(t, dir, []string{"SOPS_AGE_KEY_FILE=" + k.path, "VAULT_ADDR=" + srv.Addr, "VAULT_TOKEN=bad"}, nil, "decrypt", writeFile(t, dir, "cg2.enc.yaml", enc)); err == nil {
		t.Errorf("sops decrypted with one of two required groups")
	} else {
		t.Logf("sops without the vault group: %s", strings.SplitN(errOut, "\n", 2)[0])
	}
}
