package compat

import (
	"encoding/base64"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/coffer-dev/coffer/internal/coffertest"
)

// TestTransit drives the transit engine through the official client's
// Logical helper: keys, encrypt/decrypt/rewrap with batches, rotation and
// the version policy, datakeys, HMAC, signatures, random, deletion, and the
// error cases of the issue (bad base64, unknown version, below the minimum).
func TestTransit(t *testing.T) {
	srv := coffertest.StartDev(t)
	c := newClient(t, srv.Addr, srv.RootToken)
	if err := c.Sys().Mount("transit", &vault.MountInput{Type: "transit"}); err != nil {
		t.Fatalf("mount transit: %v", err)
	}
	l := c.Logical()
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

	if _, err := l.Write("transit/keys/app", nil); err != nil {
		t.Fatalf("create key: %v", err)
	}
	key, err := l.Read("transit/keys/app")
	if err != nil || key.Data["type"] != "aes256-gcm96" || key.Data["latest_version"] == nil {
		t.Fatalf("read key = %+v, %v", key, err)
	}

	enc, err := l.Write("transit/encrypt/app", map[string]any{"plaintext": b64("hello coffer")})
	if err != nil {
		t.Fatalf("encrypt: %v", err)
	}
	ct1, _ := enc.Data["ciphertext"].(string)
	if !strings.HasPrefix(ct1, "vault:v1:") {
		t.Fatalf("ciphertext %q lacks vault:v1: prefix", ct1)
	}
	dec, err := l.Write("transit/decrypt/app", map[string]any{"ciphertext": ct1})
	if err != nil || dec.Data["plaintext"] != b64("hello coffer") {
		t.Fatalf("decrypt = %+v, %v", dec, err)
	}

	// Batch: results in input order, references echoed.
	batch, err := l.Write("transit/encrypt/app", map[string]any{"batch_input": []map[string]any{
		{"plaintext": b64("a"), "reference": "r1"},
		{"plaintext": b64("b"), "reference": "r2"},
	}})
	if err != nil {
		t.Fatalf("batch encrypt: %v", err)
	}
	results, _ := batch.Data["batch_results"].([]any)
	if len(results) != 2 {
		t.Fatalf("batch_results = %v", batch.Data)
	}
	var decIn []map[string]any
	for i, r := range results {
		m := r.(map[string]any)
		if m["reference"] != []string{"r1", "r2"}[i] {
			t.Fatalf("batch item %d reference = %v", i, m["reference"])
		}
		decIn = append(decIn, map[string]any{"ciphertext": m["ciphertext"]})
	}
	bdec, err := l.Write("transit/decrypt/app", map[string]any{"batch_input": decIn})
	if err != nil {
		t.Fatalf("batch decrypt: %v", err)
	}
	for i, r := range bdec.Data["batch_results"].([]any) {
		if got := r.(map[string]any)["plaintext"]; got != b64([]string{"a", "b"}[i]) {
			t.Fatalf("batch decrypt item %d = %v", i, got)
		}
	}

	// Rotate: new ciphertexts are v2, v1 still decrypts, rewrap moves v1 to v2.
	if _, err := l.Write("transit/keys/app/rotate", nil); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	enc2, err := l.Write("transit/encrypt/app", map[string]any{"plaintext": b64("x")})
	if err != nil || !strings.HasPrefix(enc2.Data["ciphertext"].(string), "vault:v2:") {
		t.Fatalf("encrypt after rotate = %+v, %v", enc2, err)
	}
	rw, err := l.Write("transit/rewrap/app", map[string]any{"ciphertext": ct1})
	if err != nil {
		t.Fatalf("rewrap: %v", err)
	}
	ct1v2 := rw.Data["ciphertext"].(string)
	if !strings.HasPrefix(ct1v2, "vault:v2:") {
		t.Fatalf("rewrap = %q", ct1v2)
	}
	if _, err := l.Write("transit/keys/app/config", map[string]any{"min_decryption_version": 2}); err != nil {
		t.Fatalf("config: %v", err)
	}
	_, err = l.Write("transit/decrypt/app", map[string]any{"ciphertext": ct1})
	wantStatus(t, err, 400, "disallowed by policy")
	dec, err = l.Write("transit/decrypt/app", map[string]any{"ciphertext": ct1v2})
	if err != nil || dec.Data["plaintext"] != b64("hello coffer") {
		t.Fatalf("decrypt rewrapped = %+v, %v", dec, err)
	}

	// Bad input: 400 with a clear message, nothing decrypted.
	_, err = l.Write("transit/decrypt/app", map[string]any{"ciphertext": "vault:v2:!!!notbase64"})
	wantStatus(t, err, 400, "base64")
	_, err = l.Write("transit/decrypt/app", map[string]any{"ciphertext": "vault:v9:" + b64(strings.Repeat("z", 40))})
	wantStatus(t, err, 400, "version is too new")
	_, err = l.Write("transit/encrypt/app", map[string]any{"plaintext": "%%%"})
	wantStatus(t, err, 400, "base64-decode plaintext")
	body, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(ct1v2, "vault:v2:"))
	body[len(body)-1] ^= 1
	tampered := "vault:v2:" + base64.StdEncoding.EncodeToString(body)
	_, err = l.Write("transit/decrypt/app", map[string]any{"ciphertext": tampered})
	wantStatus(t, err, 400, "unable to decrypt")

	// Data keys: the wrapped key decrypts to the plaintext one.
	dk, err := l.Write("transit/datakey/plaintext/app", nil)
	if err != nil {
		t.Fatalf("datakey: %v", err)
	}
	dkDec, err := l.Write("transit/decrypt/app", map[string]any{"ciphertext": dk.Data["ciphertext"]})
	if err != nil || dkDec.Data["plaintext"] != dk.Data["plaintext"] {
		t.Fatalf("datakey round trip: %+v, %v", dkDec, err)
	}
	raw, _ := base64.StdEncoding.DecodeString(dk.Data["plaintext"].(string))
	if len(raw) != 32 {
		t.Fatalf("datakey is %d bytes, want 32", len(raw))
	}

	// HMAC and verify.
	h, err := l.Write("transit/hmac/app", map[string]any{"input": b64("msg")})
	if err != nil {
		t.Fatalf("hmac: %v", err)
	}
	v, err := l.Write("transit/verify/app", map[string]any{"input": b64("msg"), "hmac": h.Data["hmac"]})
	if err != nil || v.Data["valid"] != true {
		t.Fatalf("verify hmac = %+v, %v", v, err)
	}
	v, err = l.Write("transit/verify/app", map[string]any{"input": b64("other"), "hmac": h.Data["hmac"]})
	if err != nil || v.Data["valid"] != false {
		t.Fatalf("verify wrong hmac = %+v, %v", v, err)
	}

	// Ed25519 signatures.
	if _, err := l.Write("transit/keys/signer", map[string]any{"type": "ed25519"}); err != nil {
		t.Fatalf("create ed25519: %v", err)
	}
	sig, err := l.Write("transit/sign/signer", map[string]any{"input": b64("doc")})
	if err != nil || !strings.HasPrefix(sig.Data["signature"].(string), "vault:v1:") {
		t.Fatalf("sign = %+v, %v", sig, err)
	}
	v, err = l.Write("transit/verify/signer", map[string]any{"input": b64("doc"), "signature": sig.Data["signature"]})
	if err != nil || v.Data["valid"] != true {
		t.Fatalf("verify signature = %+v, %v", v, err)
	}
	_, err = l.Write("transit/encrypt/signer", map[string]any{"plaintext": b64("x")})
	wantStatus(t, err, 400, "does not support encryption")

	// Random bytes.
	rnd, err := l.Write("transit/random/16", nil)
	if err != nil {
		t.Fatalf("random: %v", err)
	}
	rb, _ := base64.StdEncoding.DecodeString(rnd.Data["random_bytes"].(string))
	if len(rb) != 16 {
		t.Fatalf("random_bytes = %d bytes", len(rb))
	}

	// List, and deletion only once allowed.
	list, err := l.List("transit/keys")
	if err != nil || len(asList(list.Data["keys"])) != 2 {
		t.Fatalf("list keys = %+v, %v", list, err)
	}
	_, err = l.Delete("transit/keys/app")
	wantStatus(t, err, 400, "deletion is not allowed")
	if _, err := l.Write("transit/keys/app/config", map[string]any{"deletion_allowed": true}); err != nil {
		t.Fatalf("allow deletion: %v", err)
	}
	if _, err := l.Delete("transit/keys/app"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err = l.Write("transit/decrypt/app", map[string]any{"ciphertext": ct1v2})
	wantStatus(t, err, 400, "encryption key not found")
}

// TestTransitAcrossRestart checks that a transit key lives in the barrier of
// a bbolt-backed server: ciphertexts made before a restart decrypt after it.
func TestTransitAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, nil)
	c := newClient(t, srv.Addr, "")
	init, err := c.Sys().Init(&vault.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	c.SetToken(init.RootToken)
	if _, err := c.Sys().Unseal(init.KeysB64[0]); err != nil {
		t.Fatalf("unseal: %v", err)
	}
	if err := c.Sys().Mount("transit", &vault.MountInput{Type: "transit"}); err != nil {
		t.Fatalf("mount: %v", err)
	}
	_, err = c.Logical().Write("transit/datakey/plaintext/k", nil)
	wantStatus(t, err, 400, "encryption key not found")
	if _, err := c.Logical().Write("transit/keys/k", nil); err != nil {
		t.Fatalf("create: %v", err)
	}
	enc, err := c.Logical().Write("transit/encrypt/k", map[string]any{"plaintext": base64.StdEncoding.EncodeToString([]byte("persist me"))})
	if err != nil {
		t.Fatalf("encrypt: %v", err)
	}
	srv.Stop()

	srv = startServer(t, dir, nil)
	c = newClient(t, srv.Addr, init.RootToken)
	if _, err := c.Sys().Unseal(init.KeysB64[0]); err != nil {
		t.Fatalf("unseal after restart: %v", err)
	}
	dec, err := c.Logical().Write("transit/decrypt/k", map[string]any{"ciphertext": enc.Data["ciphertext"]})
	if err != nil || dec.Data["plaintext"] != base64.StdEncoding.EncodeToString([]byte("persist me")) {
		t.Fatalf("decrypt after restart = %+v, %v", dec, err)
	}
}
