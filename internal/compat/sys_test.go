package compat

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/coffer-dev/coffer/internal/coffertest"
)

func newClient(t *testing.T, addr, token string) *vault.Client {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address = addr
	cfg.MaxRetries = 0
	c, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatalf("vault.NewClient: %v", err)
	}
	c.SetToken(token)
	return c
}

func startServer(t *testing.T, dir string, env map[string]string) *coffertest.Server {
	t.Helper()
	return coffertest.Start(t, env, "server", "-tls-disable", "-address=127.0.0.1:0",
		"-storage-path="+filepath.Join(dir, "coffer.db"), "-log-level=warn")
}

func wantStatus(t *testing.T, err error, status int, msg string) {
	t.Helper()
	var re *vault.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("error = %v, want a %d response", err, status)
	}
	if re.StatusCode != status {
		t.Fatalf("status = %d (%v), want %d", re.StatusCode, re.Errors, status)
	}
	if msg != "" && !strings.Contains(strings.Join(re.Errors, "\n"), msg) {
		t.Fatalf("errors = %q, want one containing %q", re.Errors, msg)
	}
}

// TestShamirLifecycle drives init, unseal, seal-status, health, seal,
// rotate and restart with the official Vault client.
func TestShamirLifecycle(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, nil)
	c := newClient(t, srv.Addr, "")
	sys := c.Sys()

	if init, err := sys.InitStatus(); err != nil || init {
		t.Fatalf("InitStatus() = %v, %v; want false", init, err)
	}
	h, err := sys.Health()
	if err != nil || h.Initialized || !h.Sealed {
		t.Fatalf("Health() before init = %+v, %v; want uninitialized and sealed", h, err)
	}

	// Bad init parameters are 400 and leave the server uninitialized.
	_, err = sys.Init(&vault.InitRequest{SecretShares: 3, SecretThreshold: 4})
	wantStatus(t, err, 400, "secret_threshold")
	_, err = sys.Init(&vault.InitRequest{SecretShares: 3, SecretThreshold: 1})
	wantStatus(t, err, 400, "greater than one")

	res, err := sys.Init(&vault.InitRequest{SecretShares: 5, SecretThreshold: 3})
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	if len(res.Keys) != 5 || len(res.KeysB64) != 5 || !strings.HasPrefix(res.RootToken, "cfr.") {
		t.Fatalf("Init() = %d keys, %d b64 keys, root %q", len(res.Keys), len(res.KeysB64), res.RootToken)
	}
	_, err = sys.Init(&vault.InitRequest{SecretShares: 5, SecretThreshold: 3})
	wantStatus(t, err, 400, "already initialized")

	st, err := sys.SealStatus()
	if err != nil || !st.Sealed || st.T != 3 || st.N != 5 || st.Progress != 0 || st.Type != "shamir" || !st.Initialized {
		t.Fatalf("SealStatus() = %+v, %v", st, err)
	}
	// Sealed: every other route is 503 "Coffer is sealed".
	c.SetToken(res.RootToken)
	_, err = c.Logical().Read("sys/mounts")
	wantStatus(t, err, 503, "Coffer is sealed")

	// Share errors: wrong encoding and wrong length are 400.
	_, err = sys.Unseal("not-a-key!")
	wantStatus(t, err, 400, "hex or base64")
	_, err = sys.Unseal(hex.EncodeToString([]byte("short")))
	wantStatus(t, err, 400, "length")

	// Two good shares and one forged share: unseal fails, progress resets.
	forged := make([]byte, 33)
	if _, err := rand.Read(forged); err != nil {
		t.Fatal(err)
	}
	forged[32] = 0xff // an x-coordinate unlikely to collide with a real share
	if st, err = sys.Unseal(res.Keys[0]); err != nil || st.Progress != 1 || st.Nonce == "" {
		t.Fatalf("Unseal(1) = %+v, %v", st, err)
	}
	if st, err = sys.Unseal(res.Keys[0]); err != nil || st.Progress != 1 {
		t.Fatalf("Unseal(same share) = %+v, %v; want progress still 1", st, err)
	}
	if st, err = sys.Unseal(res.KeysB64[1]); err != nil || st.Progress != 2 {
		t.Fatalf("Unseal(2, base64) = %+v, %v", st, err)
	}
	_, err = sys.Unseal(hex.EncodeToString(forged))
	wantStatus(t, err, 400, "progress has been reset")
	if st, err = sys.SealStatus(); err != nil || !st.Sealed || st.Progress != 0 {
		t.Fatalf("SealStatus() after bad share = %+v, %v; want sealed with progress 0", st, err)
	}

	// Reset discards progress.
	if st, err = sys.Unseal(res.Keys[2]); err != nil || st.Progress != 1 {
		t.Fatalf("Unseal = %+v, %v", st, err)
	}
	if st, err = sys.ResetUnsealProcess(); err != nil || st.Progress != 0 {
		t.Fatalf("ResetUnsealProcess() = %+v, %v", st, err)
	}

	for i, k := range []string{res.Keys[4], res.KeysB64[2], res.Keys[0]} {
		if st, err = sys.Unseal(k); err != nil {
			t.Fatalf("Unseal(%d): %v", i, err)
		}
	}
	if st.Sealed {
		t.Fatalf("still sealed after threshold: %+v", st)
	}
	h, err = sys.Health()
	if err != nil || !h.Initialized || h.Sealed || h.Standby || h.ClusterID == "" || h.ReplicationDRMode != "disabled" {
		t.Fatalf("Health() unsealed = %+v, %v", h, err)
	}
	if ld, err := sys.Leader(); err != nil || ld.HAEnabled {
		t.Fatalf("Leader() = %+v, %v", ld, err)
	}

	// Rotate, then key status shows term 2.
	if err := sys.Rotate(); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	ks, err := sys.KeyStatus()
	if err != nil || ks.Term != 2 {
		t.Fatalf("KeyStatus() = %+v, %v; want term 2", ks, err)
	}

	// Seal needs a root token.
	c.SetToken("cfr.nottherealtoken0000000000000000")
	wantStatus(t, c.Sys().Seal(), 403, "permission denied")
	c.SetToken(res.RootToken)
	if err := sys.Seal(); err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if st, err = sys.SealStatus(); err != nil || !st.Sealed {
		t.Fatalf("SealStatus() after seal = %+v, %v", st, err)
	}

	// Restart on the same storage: sealed, and the keys still work.
	srv.Stop()
	srv = startServer(t, dir, nil)
	c = newClient(t, srv.Addr, res.RootToken)
	sys = c.Sys()
	for _, k := range res.Keys[2:] {
		if st, err = sys.Unseal(k); err != nil {
			t.Fatalf("Unseal after restart: %v", err)
		}
	}
	if st.Sealed {
		t.Fatalf("sealed after restart and threshold")
	}
	ks, err = sys.KeyStatus()
	if err != nil || ks.Term != 2 {
		t.Fatalf("KeyStatus() after restart = %+v, %v; want term 2", ks, err)
	}
}

func TestHealthOverrides(t *testing.T) {
	srv := startServer(t, t.TempDir(), nil)
	get := func(method, q string) (int, string) {
		req, err := http.NewRequest(method, srv.Addr+"/v1/sys/health"+q, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		name, method, query string
		want                int
	}{
		{"uninit default", "GET", "", 501},
		{"uninitcode", "GET", "?uninitcode=299", 299},
		{"head", "HEAD", "", 501},
		{"bad code", "GET", "?uninitcode=abc", 400},
		{"bad bool", "GET", "?standbyok=maybe", 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, body := get(tc.method, tc.query); got != tc.want {
				t.Errorf("%s sys/health%s = %d (%s), want %d", tc.method, tc.query, got, body, tc.want)
			}
		})
	}
	c := newClient(t, srv.Addr, "")
	res, err := c.Sys().Init(&vault.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, query string
		want        int
	}{{"sealed default", "", 503}, {"sealedcode", "?sealedcode=299", 299}, {"activecode ignored while sealed", "?activecode=201", 503}} {
		if got, _ := get("GET", tc.query); got != tc.want {
			t.Errorf("%s: sys/health%s = %d, want %d", tc.name, tc.query, got, tc.want)
		}
	}
	if _, err := c.Sys().Unseal(res.Keys[0]); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, query string
		want        int
	}{{"active default", "", 200}, {"activecode", "?activecode=201", 201}, {"sealedcode ignored when unsealed", "?sealedcode=299&standbyok=true", 200}} {
		if got, _ := get("GET", tc.query); got != tc.want {
			t.Errorf("%s: sys/health%s = %d, want %d", tc.name, tc.query, got, tc.want)
		}
	}
}

func TestRequestLimits(t *testing.T) {
	srv := coffertest.Start(t, map[string]string{"COFFER_MAX_REQUEST_SIZE": "4096"}, "server", "-tls-disable",
		"-address=127.0.0.1:0", "-storage-path="+filepath.Join(t.TempDir(), "c.db"), "-log-level=warn")
	big := `{"secret_shares":5,"pgp_keys":["` + strings.Repeat("A", 8192) + `"]}`
	for _, path := range []string{"sys/init", "sys/unseal"} {
		resp, err := http.Post(srv.Addr+"/v1/"+path, "application/json", strings.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("POST %s with 8 KiB body = %d, want 413", path, resp.StatusCode)
		}
	}
	c := newClient(t, srv.Addr, "")
	if init, err := c.Sys().InitStatus(); err != nil || init {
		t.Fatalf("InitStatus() after refused init = %v, %v; want false", init, err)
	}

	// A KV value over the limit is 413 and nothing is written.
	dev := coffertest.Start(t, map[string]string{"COFFER_MAX_REQUEST_SIZE": "4096"}, "server", "-dev",
		"-dev-listen-address=127.0.0.1:0", "-log-level=warn")
	dc := newClient(t, dev.Addr, dev.RootToken)
	_, err := dc.Logical().Write("secret/data/big", map[string]any{"data": map[string]any{"v": strings.Repeat("x", 8192)}})
	wantStatus(t, err, 413, "too large")
	if s, err := dc.Logical().Read("secret/data/big"); err != nil || s != nil {
		t.Fatalf("oversized write left data behind: %v, %v", s, err)
	}
}

func TestStaticSealAutoUnseal(t *testing.T) {
	dir := t.TempDir()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"COFFER_SEAL_TYPE": "static", "COFFER_SEAL_KEY": base64.StdEncoding.EncodeToString(key)}
	srv := startServer(t, dir, env)
	c := newClient(t, srv.Addr, "")
	res, err := c.Sys().Init(&vault.InitRequest{RecoveryShares: 3, RecoveryThreshold: 2})
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	if len(res.Keys) != 0 || len(res.RecoveryKeys) != 3 || res.RootToken == "" {
		t.Fatalf("Init() = %d keys, %d recovery keys; want 0 and 3", len(res.Keys), len(res.RecoveryKeys))
	}
	st, err := c.Sys().SealStatus()
	if err != nil || st.Sealed || !st.RecoverySeal || st.Type != "static" {
		t.Fatalf("SealStatus() after static init = %+v, %v; want unsealed static", st, err)
	}
	c.SetToken(res.RootToken)
	if err := c.Sys().Seal(); err != nil {
		t.Fatalf("Seal: %v", err)
	}
	srv.Stop()

	// Restart: unsealed by itself.
	srv = startServer(t, dir, env)
	c = newClient(t, srv.Addr, res.RootToken)
	if st, err = c.Sys().SealStatus(); err != nil || st.Sealed {
		t.Fatalf("SealStatus() after restart = %+v, %v; want auto-unsealed", st, err)
	}
	if _, err := c.Sys().KeyStatus(); err != nil {
		t.Fatalf("KeyStatus with root token after auto-unseal: %v", err)
	}
	srv.Stop()

	// A wrong static key refuses to start.
	wrong := make([]byte, 32)
	env["COFFER_SEAL_KEY"] = hex.EncodeToString(wrong)
	err = runServerExpectFailure(t, dir, env)
	if err == nil || !strings.Contains(err.Error(), "auto-unseal") {
		t.Fatalf("server with wrong static key: %v, want an auto-unseal error", err)
	}
}

func TestMetrics(t *testing.T) {
	srv := coffertest.StartDev(t)
	c := newClient(t, srv.Addr, srv.RootToken)
	if _, err := c.Logical().Read("secret/data/none"); err != nil {
		t.Fatal(err)
	}
	req := c.NewRequest(http.MethodGet, "/v1/sys/metrics")
	req.Params.Set("format", "prometheus")
	resp, err := c.RawRequest(req)
	if err != nil {
		t.Fatalf("sys/metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`coffer_http_requests_total{mount="secret/",operation="read",status="404"}`, "coffer_sealed 0", "coffer_tokens ", "coffer_audit_refused_requests_total 0"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("sys/metrics lacks %q", want)
		}
	}
	// Without a token: permission denied.
	anon := newClient(t, srv.Addr, "")
	anon.ClearToken()
	r2, err := anon.RawRequest(anon.NewRequest(http.MethodGet, "/v1/sys/metrics"))
	if r2 != nil {
		r2.Body.Close()
	}
	wantStatus(t, err, 403, "permission denied")
}
