package kmsplugin_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"google.golang.org/grpc/codes"
	kmsapi "k8s.io/kms/apis/v2"

	"github.com/coffer-dev/coffer/internal/coffertest"
	"github.com/coffer-dev/coffer/internal/kmsplugin"
)

// kmsPolicy is the least privilege the plugin needs (docs/kms.md).
const kmsPolicy = `
path "transit/encrypt/kubernetes" { capabilities = ["update"] }
path "transit/decrypt/kubernetes" { capabilities = ["update"] }
path "transit/keys/kubernetes"    { capabilities = ["read"] }
`

// cofferEnv is a real dev Coffer server with transit mounted at transit/,
// a key "kubernetes", the policy "kms" and a root Vault client.
type cofferEnv struct {
	srv *coffertest.Server
	vc  *vault.Client
	dir string
}

func startCoffer(t testing.TB) *cofferEnv {
	t.Helper()
	srv := coffertest.StartDev(t)
	cfg := vault.DefaultConfig()
	cfg.Address = srv.Addr
	vc, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	vc.SetToken(srv.RootToken)
	if err := vc.Sys().Mount("transit", &vault.MountInput{Type: "transit"}); err != nil {
		t.Fatalf("mount transit: %v", err)
	}
	if _, err := vc.Logical().Write("transit/keys/kubernetes", map[string]any{"type": "aes256-gcm96"}); err != nil {
		t.Fatalf("create key: %v", err)
	}
	if err := vc.Sys().PutPolicy("kms", kmsPolicy); err != nil {
		t.Fatalf("put policy: %v", err)
	}
	return &cofferEnv{srv: srv, vc: vc, dir: t.TempDir()}
}

// token creates a token with the given policy and extra create fields.
func (c *cofferEnv) token(t testing.TB, policy string, req *vault.TokenCreateRequest) string {
	t.Helper()
	if req == nil {
		req = &vault.TokenCreateRequest{TTL: "1h"}
	}
	// The default policy lets the token look itself up and renew itself.
	req.Policies = []string{policy}
	s, err := c.vc.Auth().Token().Create(req)
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	return s.Auth.ClientToken
}

func (c *cofferEnv) tokenFile(t testing.TB, tok string) string {
	t.Helper()
	f, err := os.CreateTemp(c.dir, "token")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(tok + "\n")
	f.Close()
	return f.Name()
}

func (c *cofferEnv) transit(t testing.TB, cfg kmsplugin.TransitConfig) *kmsplugin.Transit {
	t.Helper()
	if cfg.Address == "" {
		cfg.Address = c.srv.Addr
	}
	if cfg.Key == "" {
		cfg.Key = "kubernetes"
	}
	if cfg.TokenFile == "" && cfg.AppRole == nil {
		cfg.TokenFile = c.tokenFile(t, c.token(t, "kms", nil))
	}
	tr, err := kmsplugin.NewTransit(cfg)
	if err != nil {
		t.Fatalf("NewTransit: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tr.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return tr
}

func (c *cofferEnv) keyCreated(t testing.TB, version string) int64 {
	t.Helper()
	s, err := c.vc.Logical().Read("transit/keys/kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Data["keys"].(map[string]any)[version].(json.Number).Int64()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor polls cond every 50 ms until it returns nil or the deadline
// passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var seed = []byte("0123456789abcdef0123456789abcdef")

func TestTransitPlugin(t *testing.T) {
	c := startCoffer(t)
	kc := serve(t, c.transit(t, kmsplugin.TransitConfig{}), kmsplugin.Options{})
	ctx := rpcCtx(t)

	wantID := "coffer:transit:transit/kubernetes:v1:" + itoa(c.keyCreated(t, "1"))
	st, err := kc.Status(ctx, &kmsapi.StatusRequest{})
	if err != nil || st.Healthz != "ok" || st.Version != "v2" || st.KeyId != wantID {
		t.Fatalf("Status = %+v, %v; want ok and key_id %s", st, err, wantID)
	}
	enc, err := kc.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed, Uid: "e1"})
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	if enc.KeyId != wantID || !bytes.HasPrefix(enc.Ciphertext, []byte("vault:v1:")) {
		t.Fatalf("Encrypt = %q under %q", enc.Ciphertext, enc.KeyId)
	}
	// The ciphertext is transit's own: Coffer decrypts it directly.
	s, err := c.vc.Logical().Write("transit/decrypt/kubernetes", map[string]any{"ciphertext": string(enc.Ciphertext)})
	if err != nil || s.Data["plaintext"] != base64.StdEncoding.EncodeToString(seed) {
		t.Fatalf("transit/decrypt of the plugin's ciphertext = %v, %v", s, err)
	}
	dec, err := kc.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: enc.Ciphertext, KeyId: enc.KeyId, Annotations: enc.Annotations})
	if err != nil || !bytes.Equal(dec.Plaintext, seed) {
		t.Fatalf("Decrypt = %q, %v", dec.GetPlaintext(), err)
	}

	good := func() *kmsapi.DecryptRequest {
		return &kmsapi.DecryptRequest{Ciphertext: bytes.Clone(enc.Ciphertext), KeyId: enc.KeyId, Annotations: annotations("1")}
	}
	// A ciphertext with one base64 character changed in the tag.
	tampered := bytes.Clone(enc.Ciphertext)
	if tampered[len(tampered)-3] == 'A' {
		tampered[len(tampered)-3] = 'B'
	} else {
		tampered[len(tampered)-3] = 'A'
	}
	refusals := []struct {
		name string
		req  func() *kmsapi.DecryptRequest
		code codes.Code
		msg  string
	}{
		{"another key's key_id", func() *kmsapi.DecryptRequest {
			r := good()
			r.KeyId = strings.Replace(r.KeyId, "/kubernetes:", "/other:", 1)
			return r
		}, codes.InvalidArgument, "unknown key_id"},
		{"local key_id", func() *kmsapi.DecryptRequest {
			r := good()
			r.KeyId = "coffer:local:00000000000000000000000000000000"
			return r
		}, codes.InvalidArgument, "unknown key_id"},
		{"wrong creation time (re-created key)", func() *kmsapi.DecryptRequest {
			r := good()
			r.KeyId = "coffer:transit:transit/kubernetes:v1:12345"
			return r
		}, codes.InvalidArgument, "re-created key"},
		{"version the key does not have", func() *kmsapi.DecryptRequest {
			r := good()
			r.KeyId = "coffer:transit:transit/kubernetes:v7:12345"
			r.Ciphertext = bytes.Replace(r.Ciphertext, []byte("vault:v1:"), []byte("vault:v7:"), 1)
			return r
		}, codes.InvalidArgument, "no version 7"},
		{"ciphertext of another version than key_id", func() *kmsapi.DecryptRequest {
			r := good()
			r.Ciphertext = bytes.Replace(r.Ciphertext, []byte("vault:v1:"), []byte("vault:v2:"), 1)
			return r
		}, codes.InvalidArgument, "names version 1"},
		{"tampered", func() *kmsapi.DecryptRequest { r := good(); r.Ciphertext = tampered; return r }, codes.InvalidArgument, "unable to decrypt"},
		{"not a transit ciphertext", func() *kmsapi.DecryptRequest { r := good(); r.Ciphertext = []byte("garbage"); return r }, codes.InvalidArgument, "not a transit ciphertext"},
		{"bad base64", func() *kmsapi.DecryptRequest { r := good(); r.Ciphertext = []byte("vault:v1:****"); return r }, codes.InvalidArgument, "base64"},
		{"annotations over 32 kB", func() *kmsapi.DecryptRequest {
			r := good()
			r.Annotations["padding.example.com"] = bytes.Repeat([]byte("x"), 32*1024)
			return r
		}, codes.InvalidArgument, "limit is 32768"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			_, err := kc.Decrypt(ctx, tc.req())
			wantCode(t, "Decrypt", err, tc.code)
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Decrypt error %q, want it to contain %q", err, tc.msg)
			}
		})
	}
	_, err = kc.Encrypt(ctx, &kmsapi.EncryptRequest{})
	wantCode(t, "Encrypt(empty)", err, codes.InvalidArgument)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestTransitRotation: rotating the transit key changes the key_id Status
// reports (so the apiserver makes a new seed) and Encrypt uses; old
// ciphertexts still decrypt until min_decryption_version passes them.
func TestTransitRotation(t *testing.T) {
	c := startCoffer(t)
	kc := serve(t, c.transit(t, kmsplugin.TransitConfig{KeyPollInterval: 100 * time.Millisecond}),
		kmsplugin.Options{HealthCacheTTL: 50 * time.Millisecond})
	ctx := rpcCtx(t)
	old, err := kc.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.vc.Logical().Write("transit/keys/kubernetes/rotate", nil); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	wantID := "coffer:transit:transit/kubernetes:v2:" + itoa(c.keyCreated(t, "2"))
	waitFor(t, 10*time.Second, "Status reports the new key_id", func() error {
		st, err := kc.Status(ctx, &kmsapi.StatusRequest{})
		if err != nil {
			return err
		}
		if st.KeyId != wantID || st.Healthz != "ok" {
			return errors.New("Status = " + st.Healthz + " " + st.KeyId)
		}
		return nil
	})
	enc, err := kc.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed})
	if err != nil || enc.KeyId != wantID || !bytes.HasPrefix(enc.Ciphertext, []byte("vault:v2:")) {
		t.Fatalf("Encrypt after rotation = %q under %q, %v", enc.GetCiphertext(), enc.GetKeyId(), err)
	}
	if enc.KeyId == old.KeyId {
		t.Fatal("key_id unchanged by rotation")
	}
	decOld := func() error {
		_, err := kc.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: old.Ciphertext, KeyId: old.KeyId, Annotations: old.Annotations})
		return err
	}
	if err := decOld(); err != nil {
		t.Fatalf("Decrypt of a v1 ciphertext after rotation: %v", err)
	}
	if _, err := c.vc.Logical().Write("transit/keys/kubernetes/config", map[string]any{"min_decryption_version": 2}); err != nil {
		t.Fatal(err)
	}
	err = decOld()
	wantCode(t, "Decrypt below min_decryption_version", err, codes.FailedPrecondition)
	if !strings.Contains(err.Error(), "min_decryption_version") {
		t.Errorf("error %q does not name min_decryption_version", err)
	}
	// Policy, not erasure: lowering it makes v1 readable again.
	if _, err := c.vc.Logical().Write("transit/keys/kubernetes/config", map[string]any{"min_decryption_version": 1}); err != nil {
		t.Fatal(err)
	}
	if err := decOld(); err != nil {
		t.Fatalf("Decrypt after lowering min_decryption_version: %v", err)
	}
}

// TestTransitSealed: while Coffer is sealed Encrypt and Decrypt fail fast
// with Unavailable and Status says why; after unseal the same plugin
// recovers by itself.
func TestTransitSealed(t *testing.T) {
	c := startCoffer(t)
	timeout := 2 * time.Second
	kc := serve(t, c.transit(t, kmsplugin.TransitConfig{Timeout: timeout}), kmsplugin.Options{HealthCacheTTL: 50 * time.Millisecond})
	ctx := rpcCtx(t)
	enc, err := kc.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.vc.Sys().Seal(); err != nil {
		t.Fatalf("seal: %v", err)
	}
	start := time.Now()
	_, err = kc.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed})
	if took := time.Since(start); took >= timeout {
		t.Errorf("Encrypt while sealed took %s: it must fail fast, not wait for the %s timeout", took, timeout)
	}
	wantCode(t, "Encrypt while sealed", err, codes.Unavailable)
	if !strings.Contains(err.Error(), "sealed") {
		t.Errorf("Encrypt error %q does not say sealed", err)
	}
	_, err = kc.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: enc.Ciphertext, KeyId: enc.KeyId, Annotations: enc.Annotations})
	wantCode(t, "Decrypt while sealed", err, codes.Unavailable)
	waitFor(t, 5*time.Second, "Status unhealthy", func() error {
		st, err := kc.Status(ctx, &kmsapi.StatusRequest{})
		if err != nil {
			return err
		}
		if !strings.Contains(st.Healthz, "coffer is sealed") || st.KeyId != "" {
			return errors.New("healthz " + st.Healthz + ", key_id " + st.KeyId)
		}
		return nil
	})

	if _, err := c.vc.Sys().Unseal(c.srv.UnsealKey); err != nil {
		t.Fatalf("unseal: %v", err)
	}
	waitFor(t, 10*time.Second, "Status healthy after unseal", func() error {
		st, err := kc.Status(ctx, &kmsapi.StatusRequest{})
		if err != nil {
			return err
		}
		if st.Healthz != "ok" {
			return errors.New(st.Healthz)
		}
		return nil
	})
	if _, err := kc.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed}); err != nil {
		t.Fatalf("Encrypt after unseal: %v", err)
	}
	if d, err := kc.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: enc.Ciphertext, KeyId: enc.KeyId, Annotations: enc.Annotations}); err != nil || !bytes.Equal(d.Plaintext, seed) {
		t.Fatalf("Decrypt after unseal: %v", err)
	}
}

// TestTransitDown: with Coffer gone, requests fail with Unavailable naming
// the address.
func TestTransitDown(t *testing.T) {
	c := startCoffer(t)
	kc := serve(t, c.transit(t, kmsplugin.TransitConfig{}), kmsplugin.Options{HealthCacheTTL: 50 * time.Millisecond})
	ctx := rpcCtx(t)
	if _, err := kc.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed}); err != nil {
		t.Fatal(err)
	}
	c.srv.Stop()
	_, err := kc.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed})
	wantCode(t, "Encrypt with Coffer down", err, codes.Unavailable)
	if !strings.Contains(err.Error(), "cannot reach coffer at "+c.srv.Addr) {
		t.Errorf("error %q does not say Coffer is unreachable", err)
	}
	waitFor(t, 5*time.Second, "Status unhealthy", func() error {
		st, _ := kc.Status(ctx, &kmsapi.StatusRequest{})
		if !strings.Contains(st.GetHealthz(), "cannot reach") {
			return errors.New(st.GetHealthz())
		}
		return nil
	})
}

// TestTransitUnreachableAtStart: the plugin starts while Coffer does not
// answer yet, reports why, and works once it does — here, a proxy that
// refuses connections until it is switched on.
func TestTransitStartsBeforeCoffer(t *testing.T) {
	c := startCoffer(t)
	target, _ := url.Parse(c.srv.Addr)
	var on atomic.Bool
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !on.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"errors":["Coffer is sealed"]}`))
			return
		}
		httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
	}))
	defer proxy.Close()
	tok := c.token(t, "kms", nil)
	kc := serve(t, c.transit(t, kmsplugin.TransitConfig{Address: proxy.URL, TokenFile: c.tokenFile(t, tok)}),
		kmsplugin.Options{HealthCacheTTL: 50 * time.Millisecond})
	ctx := rpcCtx(t)
	st, err := kc.Status(ctx, &kmsapi.StatusRequest{})
	if err != nil || st.Healthz == "ok" || !strings.Contains(st.Healthz, "sealed") {
		t.Fatalf("Status before Coffer is up = %+v, %v", st, err)
	}
	on.Store(true)
	waitFor(t, 10*time.Second, "healthy once Coffer answers", func() error {
		st, _ := kc.Status(ctx, &kmsapi.StatusRequest{})
		if st.GetHealthz() != "ok" {
			return errors.New(st.GetHealthz())
		}
		return nil
	})
}

func TestTransitPermissionDenied(t *testing.T) {
	c := startCoffer(t)
	ctx := rpcCtx(t)
	noDecrypt := `
path "transit/encrypt/kubernetes" { capabilities = ["update"] }
path "transit/keys/kubernetes"    { capabilities = ["read"] }
`
	if err := c.vc.Sys().PutPolicy("encrypt-only", noDecrypt); err != nil {
		t.Fatal(err)
	}
	kc := serve(t, c.transit(t, kmsplugin.TransitConfig{TokenFile: c.tokenFile(t, c.token(t, "encrypt-only", nil))}), kmsplugin.Options{})
	st, _ := kc.Status(ctx, &kmsapi.StatusRequest{})
	if !strings.Contains(st.GetHealthz(), "permission denied on transit/decrypt/kubernetes") {
		t.Fatalf("Status healthz = %q, want permission denied on decrypt", st.GetHealthz())
	}
	enc, err := kc.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed})
	if err != nil {
		t.Fatal(err)
	}
	_, err = kc.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: enc.Ciphertext, KeyId: enc.KeyId, Annotations: enc.Annotations})
	wantCode(t, "Decrypt without the capability", err, codes.PermissionDenied)

	if err := c.vc.Sys().PutPolicy("nothing", `path "sys/nothing" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	kc2 := serve(t, c.transit(t, kmsplugin.TransitConfig{TokenFile: c.tokenFile(t, c.token(t, "nothing", nil))}), kmsplugin.Options{})
	_, err = kc2.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed})
	wantCode(t, "Encrypt without any capability", err, codes.PermissionDenied)
}

// TestTransitMissingKey: a key that does not exist is a clear
// FailedPrecondition, and the plugin never creates it (transit's encrypt
// would, for a token allowed to create).
func TestTransitMissingKey(t *testing.T) {
	c := startCoffer(t)
	ctx := rpcCtx(t)
	kc := serve(t, c.transit(t, kmsplugin.TransitConfig{Key: "absent", TokenFile: c.tokenFile(t, c.srv.RootToken)}), kmsplugin.Options{})
	_, err := kc.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed})
	wantCode(t, "Encrypt with a missing key", err, codes.FailedPrecondition)
	if !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("error %q", err)
	}
	if s, err := c.vc.Logical().Read("transit/keys/absent"); err != nil || s != nil {
		t.Fatalf("transit/keys/absent = %v, %v; the plugin created the key", s, err)
	}
}

// TestTransitTokenRenewal: a renewable token with a 3 s TTL keeps working
// well past 3 s because the plugin renews it.
func TestTransitTokenRenewal(t *testing.T) {
	c := startCoffer(t)
	ctx := rpcCtx(t)
	tok := c.token(t, "kms", &vault.TokenCreateRequest{TTL: "3s", ExplicitMaxTTL: "1h"})
	kc := serve(t, c.transit(t, kmsplugin.TransitConfig{TokenFile: c.tokenFile(t, tok)}), kmsplugin.Options{})
	if _, err := kc.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(7 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := kc.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed}); err != nil {
			t.Fatalf("Encrypt after %s: %v", 7*time.Second-time.Until(deadline), err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	s, err := c.vc.Auth().Token().Lookup(tok)
	if err != nil {
		t.Fatalf("token expired although the plugin should renew it: %v", err)
	}
	if ttl, _ := s.Data["ttl"].(json.Number).Int64(); ttl < 1 {
		t.Fatalf("token ttl = %d", ttl)
	}
}

// TestTransitTokenFileReplaced: a token that can no longer be renewed
// expires; once a new token is written to the file the plugin picks it up
// by itself.
func TestTransitTokenFileReplaced(t *testing.T) {
	c := startCoffer(t)
	ctx := rpcCtx(t)
	short := c.token(t, "kms", &vault.TokenCreateRequest{TTL: "2s", ExplicitMaxTTL: "2s"})
	file := c.tokenFile(t, short)
	kc := serve(t, c.transit(t, kmsplugin.TransitConfig{TokenFile: file}), kmsplugin.Options{HealthCacheTTL: 50 * time.Millisecond})
	if _, err := kc.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "Encrypt refused once the token expired", func() error {
		_, err := kc.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed})
		if err == nil {
			return errors.New("still accepted")
		}
		return nil
	})
	_, err := kc.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed})
	wantCode(t, "Encrypt with an expired token", err, codes.PermissionDenied)
	if err := os.WriteFile(file, []byte(c.token(t, "kms", nil)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 35*time.Second, "Encrypt works with the new token", func() error {
		_, err := kc.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed})
		return err
	})
}

// TestTransitAppRole logs in with Coffer's AppRole method. The role's
// tokens live 2 s and at most 3 s, so working for 7 s takes renewals and
// new logins; a wrong secret_id is a clear PermissionDenied.
func TestTransitAppRole(t *testing.T) {
	c := startCoffer(t)
	ctx := rpcCtx(t)
	if err := c.vc.Sys().EnableAuthWithOptions("approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatalf("enable approle: %v", err)
	}
	if _, err := c.vc.Logical().Write("auth/approle/role/kms", map[string]any{
		"token_policies": "kms", "token_ttl": "2s", "token_max_ttl": "3s",
	}); err != nil {
		t.Fatalf("create role: %v", err)
	}
	s, err := c.vc.Logical().Read("auth/approle/role/kms/role-id")
	if err != nil {
		t.Fatal(err)
	}
	roleID, _ := s.Data["role_id"].(string)
	s, err = c.vc.Logical().Write("auth/approle/role/kms/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	secretID, _ := s.Data["secret_id"].(string)
	write := func(name, v string) string {
		p := filepath.Join(c.dir, name)
		os.WriteFile(p, []byte(v+"\n"), 0o600)
		return p
	}
	kc := serve(t, c.transit(t, kmsplugin.TransitConfig{AppRole: &kmsplugin.AppRole{
		RoleIDFile: write("role", roleID), SecretIDFile: write("secret", secretID),
	}}), kmsplugin.Options{})
	deadline := time.Now().Add(7 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := kc.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed}); err != nil {
			t.Fatalf("Encrypt: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The role's tokens cannot outlive 3 s (checked here on a login of our
	// own), so 7 s of work took new logins, not only renewals.
	login, err := c.vc.Logical().Write("auth/approle/login", map[string]any{"role_id": roleID, "secret_id": secretID})
	if err != nil {
		t.Fatal(err)
	}
	look, err := c.vc.Auth().Token().Lookup(login.Auth.ClientToken)
	if err != nil {
		t.Fatal(err)
	}
	if max, _ := look.Data["explicit_max_ttl"].(json.Number).Int64(); max != 3 || login.Auth.LeaseDuration != 2 {
		t.Fatalf("role token: ttl %d, explicit_max_ttl %v; want 2 and 3", login.Auth.LeaseDuration, look.Data["explicit_max_ttl"])
	}

	bad := serve(t, c.transit(t, kmsplugin.TransitConfig{AppRole: &kmsplugin.AppRole{
		RoleIDFile: write("role2", roleID), SecretIDFile: write("secret2", "wrong"),
	}}), kmsplugin.Options{})
	st, _ := bad.Status(ctx, &kmsapi.StatusRequest{})
	if !strings.Contains(st.GetHealthz(), "approle login refused") {
		t.Fatalf("Status with a wrong secret_id = %q", st.GetHealthz())
	}
	_, err = bad.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed})
	wantCode(t, "Encrypt with a wrong secret_id", err, codes.PermissionDenied)
}

// TestTransitTLS: the plugin verifies Coffer's certificate against the
// given CA (here a TLS proxy in front of the dev server) and refuses an
// unknown one.
func TestTransitTLS(t *testing.T) {
	c := startCoffer(t)
	ctx := rpcCtx(t)
	target, _ := url.Parse(c.srv.Addr)
	ts := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(target))
	defer ts.Close()
	caFile := filepath.Join(c.dir, "ca.pem")
	var pemBuf bytes.Buffer
	pemBuf.WriteString("-----BEGIN CERTIFICATE-----\n")
	b64 := base64.StdEncoding.EncodeToString(ts.Certificate().Raw)
	for len(b64) > 64 {
		pemBuf.WriteString(b64[:64] + "\n")
		b64 = b64[64:]
	}
	pemBuf.WriteString(b64 + "\n-----END CERTIFICATE-----\n")
	os.WriteFile(caFile, pemBuf.Bytes(), 0o600)

	kc := serve(t, c.transit(t, kmsplugin.TransitConfig{Address: ts.URL, CACert: caFile}), kmsplugin.Options{})
	if st, _ := kc.Status(ctx, &kmsapi.StatusRequest{}); st.GetHealthz() != "ok" {
		t.Fatalf("Status over TLS with the CA = %q", st.GetHealthz())
	}
	untrusted := serve(t, c.transit(t, kmsplugin.TransitConfig{Address: ts.URL}), kmsplugin.Options{})
	st, _ := untrusted.Status(ctx, &kmsapi.StatusRequest{})
	if !strings.Contains(st.GetHealthz(), "certificate") {
		t.Fatalf("Status over TLS without the CA = %q, want a certificate error", st.GetHealthz())
	}
}

func TestNewTransitConfig(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "tok")
	os.WriteFile(tok, []byte("s.abc\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	cases := []struct {
		name string
		cfg  kmsplugin.TransitConfig
		want string
	}{
		{"no key", kmsplugin.TransitConfig{Address: "http://x:1", TokenFile: tok}, "key name is required"},
		{"bad key", kmsplugin.TransitConfig{Address: "http://x:1", Key: "a/b", TokenFile: tok}, "invalid transit key name"},
		{"bad mount", kmsplugin.TransitConfig{Address: "http://x:1", Key: "k", Mount: "a/../b", TokenFile: tok}, "invalid transit mount"},
		{"bad address", kmsplugin.TransitConfig{Address: "ftp://x", Key: "k", TokenFile: tok}, "invalid Coffer address"},
		{"no credentials", kmsplugin.TransitConfig{Address: "http://x:1", Key: "k"}, "token file, AppRole credentials or a kubernetes role are required"},
		{"both credentials", kmsplugin.TransitConfig{Address: "http://x:1", Key: "k", TokenFile: tok, AppRole: &kmsplugin.AppRole{RoleIDFile: tok, SecretIDFile: tok}}, "not several"},
		{"token and kubernetes", kmsplugin.TransitConfig{Address: "http://x:1", Key: "k", TokenFile: tok, Kubernetes: &kmsplugin.KubernetesLogin{Role: "r"}}, "not several"},
		{"kubernetes without role", kmsplugin.TransitConfig{Address: "http://x:1", Key: "k", Kubernetes: &kmsplugin.KubernetesLogin{}}, "kubernetes auth role is required"},
		{"kubernetes bad mount", kmsplugin.TransitConfig{Address: "http://x:1", Key: "k", Kubernetes: &kmsplugin.KubernetesLogin{Role: "r", Mount: "a b"}}, "invalid kubernetes auth mount"},
		{"missing token file", kmsplugin.TransitConfig{Address: "http://x:1", Key: "k", TokenFile: filepath.Join(dir, "nope")}, "no such file"},
		{"empty token file", kmsplugin.TransitConfig{Address: "http://x:1", Key: "k", TokenFile: empty}, "non-empty line"},
		{"missing CA", kmsplugin.TransitConfig{Address: "https://x:1", Key: "k", TokenFile: tok, CACert: filepath.Join(dir, "nope")}, "CA certificate"},
		{"CA not PEM", kmsplugin.TransitConfig{Address: "https://x:1", Key: "k", TokenFile: tok, CACert: tok}, "no PEM certificate"},
		{"key_id too long", kmsplugin.TransitConfig{Address: "http://x:1", Key: "k", Mount: strings.Repeat("m", 1000), TokenFile: tok}, "too long"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := kmsplugin.NewTransit(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewTransit = %v, want an error containing %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "s.abc") {
				t.Fatalf("error %q contains the token", err)
			}
		})
	}
}
