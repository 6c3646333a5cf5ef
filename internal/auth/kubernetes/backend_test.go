package kubernetes

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/coffer-dev/coffer/internal/logical"
)

func selfSignedPEM(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestConfigWriteRead(t *testing.T) {
	h := newHarness(t, LocalFiles{})
	ca := selfSignedPEM(t)
	wantStatus(t, errOf(h.do(logical.ReadOperation, "config", nil)), 404)
	h.mustDo(logical.UpdateOperation, "config", map[string]any{
		"kubernetes_host":    "https://10.0.0.1:443/",
		"kubernetes_ca_cert": ca,
		"token_reviewer_jwt": "reviewer-secret-jwt",
	})
	got := h.mustDo(logical.ReadOperation, "config", nil).Data
	want := map[string]any{
		"kubernetes_host": "https://10.0.0.1:443", "kubernetes_ca_cert": strings.TrimSpace(ca),
		"pem_keys": []string{}, "issuer": "", "disable_iss_validation": false,
		"disable_local_ca_jwt": false, "token_reviewer_jwt_set": true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config read (-want +got):\n%s", diff)
	}
	for _, v := range got {
		if s, ok := v.(string); ok && strings.Contains(s, "reviewer-secret-jwt") {
			t.Fatal("config read returned the reviewer JWT")
		}
	}
}

func TestConfigRejects(t *testing.T) {
	tests := []struct {
		name string
		data map[string]any
	}{
		{"no host", map[string]any{}},
		{"host not a URL", map[string]any{"kubernetes_host": "10.0.0.1"}},
		{"host with credentials", map[string]any{"kubernetes_host": "https://u:p@10.0.0.1"}},
		{"ftp host", map[string]any{"kubernetes_host": "ftp://10.0.0.1"}},
		{"bad CA", map[string]any{"kubernetes_host": "https://h", "kubernetes_ca_cert": "nope"}},
		{"bad pem key", map[string]any{"kubernetes_host": "https://h", "pem_keys": []any{"nope"}}},
		{"unknown field", map[string]any{"kubernetes_host": "https://h", "kubernetes_hots": "x"}},
		{"wrong type", map[string]any{"kubernetes_host": "https://h", "disable_local_ca_jwt": "maybe"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, LocalFiles{})
			wantStatus(t, errOf(h.do(logical.UpdateOperation, "config", tc.data)), 400)
		})
	}
}

func errOf(_ *logical.Response, err error) error { return err }

func TestRoleCRUD(t *testing.T) {
	h := newHarness(t, LocalFiles{})
	wantStatus(t, errOf(h.do(logical.ListOperation, "role/", nil)), 404)
	h.mustDo(logical.UpdateOperation, "role/app", map[string]any{
		"bound_service_account_names":      "app,worker-*",
		"bound_service_account_namespaces": []any{"team-a"},
		"token_policies":                   "App-Read",
		"token_ttl":                        "1h",
		"token_max_ttl":                    7200,
		"audience":                         "coffer",
	})
	got := h.mustDo(logical.ReadOperation, "role/app", nil).Data
	want := map[string]any{
		"bound_service_account_names":      []string{"app", "worker-*"},
		"bound_service_account_namespaces": []string{"team-a"},
		"audience":                         "coffer",
		"alias_name_source":                "serviceaccount_uid",
		"token_policies":                   []string{"app-read"},
		"policies":                         []string{"app-read"},
		"token_ttl":                        int64(3600),
		"token_max_ttl":                    int64(7200),
		"token_period":                     int64(0),
		"token_num_uses":                   0,
		"token_bound_cidrs":                []string{},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("role read (-want +got):\n%s", diff)
	}
	// A partial update keeps the other fields.
	h.mustDo(logical.UpdateOperation, "role/app", map[string]any{"token_num_uses": 3, "alias_name_source": "serviceaccount_name", "token_bound_cidrs": "10.1.0.0/16,10.2.3.4"})
	got = h.mustDo(logical.ReadOperation, "role/app", nil).Data
	if got["token_num_uses"] != 3 || got["audience"] != "coffer" || got["alias_name_source"] != "serviceaccount_name" ||
		!cmp.Equal(got["token_bound_cidrs"], []string{"10.1.0.0/16", "10.2.3.4/32"}) {
		t.Errorf("after partial update: %v", got)
	}
	keys := h.mustDo(logical.ListOperation, "role", nil).Data["keys"]
	if diff := cmp.Diff([]string{"app"}, keys); diff != "" {
		t.Errorf("LIST role (-want +got):\n%s", diff)
	}
	h.mustDo(logical.DeleteOperation, "role/app", nil)
	wantStatus(t, errOf(h.do(logical.ReadOperation, "role/app", nil)), 404)
}

func TestRoleRejects(t *testing.T) {
	base := func(extra map[string]any) map[string]any {
		d := map[string]any{"bound_service_account_names": "app", "bound_service_account_namespaces": "ns"}
		for k, v := range extra {
			d[k] = v
		}
		return d
	}
	tests := []struct {
		name string
		path string
		data map[string]any
	}{
		{"no names", "role/r", map[string]any{"bound_service_account_namespaces": "ns"}},
		{"no namespaces", "role/r", map[string]any{"bound_service_account_names": "app"}},
		{"both stars", "role/r", map[string]any{"bound_service_account_names": "*", "bound_service_account_namespaces": "*"}},
		{"root policy", "role/r", base(map[string]any{"token_policies": "default,root"})},
		{"ttl over max", "role/r", base(map[string]any{"token_ttl": "2h", "token_max_ttl": "1h"})},
		{"bad alias source", "role/r", base(map[string]any{"alias_name_source": "pod"})},
		{"negative uses", "role/r", base(map[string]any{"token_num_uses": -1})},
		{"unknown field", "role/r", base(map[string]any{"colour": "blue"})},
		{"bad bound cidr", "role/r", base(map[string]any{"token_bound_cidrs": "10.0.0.0/33"})},
		{"bad name", "role/a b", base(nil)},
		{"empty entry", "role/r", map[string]any{"bound_service_account_names": []any{""}, "bound_service_account_namespaces": "ns"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, LocalFiles{})
			wantStatus(t, errOf(h.do(logical.UpdateOperation, tc.path, tc.data)), 400)
		})
	}
}

func TestLoginRefusedBeforeReview(t *testing.T) {
	// The API server address is closed: reaching it would give 502, so a
	// 403 proves the refusal came before any network call.
	h := newHarness(t, LocalFiles{})
	h.mustDo(logical.UpdateOperation, "config", map[string]any{"kubernetes_host": "https://" + closedAddr(t)})
	h.mustDo(logical.UpdateOperation, "role/app", map[string]any{
		"bound_service_account_names": "app", "bound_service_account_namespaces": "team-*",
	})
	tests := []struct {
		name string
		data map[string]any
		code int
		msg  string
	}{
		{"wrong namespace", map[string]any{"role": "app", "jwt": makeJWT(t, "RS256", nil, projectedClaims("other", "app", "u"))}, 403, "namespace not authorized"},
		{"wrong name", map[string]any{"role": "app", "jwt": makeJWT(t, "RS256", nil, projectedClaims("team-a", "admin", "u"))}, 403, "service account name not authorized"},
		{"unknown role", map[string]any{"role": "nope", "jwt": makeJWT(t, "RS256", nil, projectedClaims("team-a", "app", "u"))}, 400, `invalid role name "nope"`},
		{"missing jwt", map[string]any{"role": "app"}, 400, "missing jwt"},
		{"missing role", map[string]any{"jwt": "x.y.z"}, 400, "missing role"},
		{"not a jwt", map[string]any{"role": "app", "jwt": "opaque-token"}, 400, "invalid jwt"},
		{"unknown field", map[string]any{"role": "app", "jwt": "a.b.c", "extra": 1}, 400, "unknown field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.do(logical.UpdateOperation, "login", tc.data)
			wantStatus(t, err, tc.code)
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("login error = %q, want it to contain %q", err, tc.msg)
			}
		})
	}
}

func TestLoginUnreachableAPIServer(t *testing.T) {
	h := newHarness(t, LocalFiles{})
	addr := closedAddr(t)
	h.mustDo(logical.UpdateOperation, "config", map[string]any{"kubernetes_host": "https://" + addr, "token_reviewer_jwt": "reviewer-canary"})
	h.mustDo(logical.UpdateOperation, "role/app", map[string]any{
		"bound_service_account_names": "app", "bound_service_account_namespaces": "team-a",
	})
	jwt := makeJWT(t, "RS256", nil, projectedClaims("team-a", "app", "u"))
	_, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": "app", "jwt": jwt})
	wantStatus(t, err, 502)
	msg := err.Error()
	if !strings.Contains(msg, "unreachable") || !strings.Contains(msg, addr) {
		t.Errorf("error %q does not say the API server at %s is unreachable", msg, addr)
	}
	for _, secret := range []string{jwt, "reviewer-canary"} {
		if strings.Contains(msg, secret) {
			t.Fatalf("error %q contains a token", msg)
		}
	}
}

func TestLocalFileReload(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "token")
	f := newCachedFile(p, time.Minute)
	t0 := time.Unix(1000, 0)
	if _, ok, err := f.get(t0); ok || err != nil {
		t.Fatalf("missing file: ok=%v err=%v", ok, err)
	}
	if err := os.WriteFile(p, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Still the cached absence inside the reload period.
	if _, ok, _ := f.get(t0.Add(30 * time.Second)); ok {
		t.Fatal("re-read before the reload period")
	}
	if v, ok, err := f.get(t0.Add(61 * time.Second)); !ok || err != nil || v != "first" {
		t.Fatalf("get = %q, %v, %v; want first", v, ok, err)
	}
	if err := os.WriteFile(p, []byte("rotated"), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := f.get(t0.Add(90 * time.Second)); v != "first" {
		t.Fatalf("get = %q inside the period, want the cached first", v)
	}
	if v, _, _ := f.get(t0.Add(125 * time.Second)); v != "rotated" {
		t.Fatalf("get = %q after the period, want rotated", v)
	}
}
