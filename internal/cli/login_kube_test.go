package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coffer-dev/coffer/internal/coffertest"
	"github.com/coffer-dev/coffer/internal/kubetest"
)

// TestLoginKubernetes: `coffer login -method=kubernetes` with a real
// service account token from a real kube-apiserver, reviewed through its
// TokenReview API; a token of another namespace is refused with exit 1.
func TestLoginKubernetes(t *testing.T) {
	cp := kubetest.Start(t, kubetest.Options{})
	ctx := context.Background()
	for _, ns := range []string{"team-a", "team-b"} {
		if _, err := cp.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cp.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tokenFile := func(ns string) string {
		tr, err := cp.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "app", &authv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(p, []byte(tr.Status.Token), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	srv := coffertest.StartDev(t)
	home := t.TempDir()
	r := func(args ...string) result { return run(t, home, srv.Addr, srv.RootToken, "", args...) }
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, cp.CACert, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"auth", "enable", "kubernetes"},
		{"write", "auth/kubernetes/config", "kubernetes_host=" + cp.URL, "kubernetes_ca_cert=@" + caFile,
			"token_reviewer_jwt=" + cp.AdminToken, "disable_local_ca_jwt=true"},
		{"write", "auth/kubernetes/role/app", "bound_service_account_names=app",
			"bound_service_account_namespaces=team-a", "token_policies=default", "token_ttl=1h"},
	} {
		if res := r(args...); res.code != 0 {
			t.Fatalf("coffer %v: %+v", args, res)
		}
	}

	// The login stores its token, and later commands use it.
	loginHome := t.TempDir()
	res := run(t, loginHome, srv.Addr, "", "", "login", "-method=kubernetes", "role=app", "jwt=@"+tokenFile("team-a"))
	if res.code != 0 || !strings.Contains(res.stdout, "service_account_namespace") {
		t.Fatalf("kubernetes login: %+v", res)
	}
	stored, err := os.ReadFile(filepath.Join(loginHome, ".coffer-token"))
	if err != nil || len(stored) == 0 {
		t.Fatalf("token not stored: %v", err)
	}
	if res := run(t, loginHome, srv.Addr, "", "", "token", "lookup"); res.code != 0 || !strings.Contains(res.stdout, "team-a") {
		t.Fatalf("token lookup with the stored token: %+v", res)
	}

	res = run(t, t.TempDir(), srv.Addr, "", "", "login", "-method=kubernetes", "role=app", "jwt=@"+tokenFile("team-b"))
	if res.code != 1 || !strings.Contains(res.stderr, "namespace not authorized") {
		t.Fatalf("login from another namespace: %+v", res)
	}
	res = run(t, t.TempDir(), srv.Addr, "", "", "login", "-method=kubernetes", "jwt=x")
	if res.code != 2 || !strings.Contains(res.stderr, "role=NAME") {
		t.Fatalf("login without a role: %+v", res)
	}
}
