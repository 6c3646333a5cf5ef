package kubernetes_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"

	kubeauth "github.com/coffer-dev/coffer/internal/auth/kubernetes"
	"github.com/coffer-dev/coffer/internal/coffertest"
	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage/inmem"
)

// cluster is the part of a test control plane these tests use.
type cluster struct {
	cs    *k8s.Clientset
	host  string
	caPEM string
	t     *testing.T
	ctx   context.Context
}

func (c *cluster) namespace(name string) {
	c.t.Helper()
	_, err := c.cs.CoreV1().Namespaces().Create(c.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		c.t.Fatalf("create namespace %s: %v", name, err)
	}
}

func (c *cluster) serviceAccount(ns, name string) *corev1.ServiceAccount {
	c.t.Helper()
	c.namespace(ns)
	sa, err := c.cs.CoreV1().ServiceAccounts(ns).Create(c.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		c.t.Fatalf("create service account %s/%s: %v", ns, name, err)
	}
	return sa
}

func (c *cluster) authDelegator(ns, name string) {
	c.t.Helper()
	_, err := c.cs.RbacV1().ClusterRoleBindings().Create(c.ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "auth-delegator-" + ns + "-" + name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: name}},
	}, metav1.CreateOptions{})
	if err != nil {
		c.t.Fatalf("bind auth-delegator: %v", err)
	}
}

// token asks the TokenRequest API for a token of ns/name.
func (c *cluster) token(ns, name string, audiences ...string) string {
	c.t.Helper()
	tr, err := c.cs.CoreV1().ServiceAccounts(ns).CreateToken(c.ctx, name, &authv1.TokenRequest{
		Spec: authv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: ptr(int64(3600))},
	}, metav1.CreateOptions{})
	if err != nil {
		c.t.Fatalf("TokenRequest %s/%s: %v", ns, name, err)
	}
	return tr.Status.Token
}

func ptr[T any](v T) *T { return &v }

func newClient(t *testing.T, addr, token string) *vault.Client {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address = addr
	cfg.MaxRetries = 0
	c, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
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

func mustWrite(t *testing.T, c *vault.Client, path string, data map[string]any) {
	t.Helper()
	if _, err := c.Logical().Write(path, data); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

func login(c *vault.Client, mount, role, jwt string) (*vault.Secret, error) {
	anon, err := c.Clone()
	if err != nil {
		return nil, err
	}
	anon.ClearToken()
	return anon.Logical().Write("auth/"+mount+"/login", map[string]any{"role": role, "jwt": jwt})
}

// eventually retries fn until it returns nil or the deadline passes.
func eventually(t *testing.T, d time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", d, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestLoginAgainstAPIServer logs in to a real Coffer server with tokens
// from a real kube-apiserver's TokenRequest API, reviewed through its
// TokenReview API.
func TestLoginAgainstAPIServer(t *testing.T) {
	kc := startCluster(t)
	kc.serviceAccount("coffer", "reviewer")
	kc.authDelegator("coffer", "reviewer")
	app := kc.serviceAccount("team-a", "app")
	kc.serviceAccount("team-a", "other")
	kc.serviceAccount("team-b", "app")
	reviewer := kc.token("coffer", "reviewer")

	srv := coffertest.StartDev(t)
	root := newClient(t, srv.Addr, srv.RootToken)
	if err := root.Sys().EnableAuthWithOptions("kubernetes", &vault.EnableAuthOptions{Type: "kubernetes"}); err != nil {
		t.Fatalf("enable auth: %v", err)
	}
	mustWrite(t, root, "auth/kubernetes/config", map[string]any{
		"kubernetes_host": kc.host, "kubernetes_ca_cert": kc.caPEM,
		"token_reviewer_jwt": reviewer, "disable_local_ca_jwt": true,
	})
	if err := root.Sys().PutPolicy("app-read", `path "secret/data/app/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, root, "secret/data/app/db", map[string]any{"data": map[string]any{"password": "hunter2"}})
	mustWrite(t, root, "auth/kubernetes/role/app", map[string]any{
		"bound_service_account_names": "app", "bound_service_account_namespaces": "team-a",
		"token_policies": "app-read", "token_ttl": "1h",
	})
	mustWrite(t, root, "auth/kubernetes/role/aud", map[string]any{
		"bound_service_account_names": "app", "bound_service_account_namespaces": "team-*",
		"audience": "coffer", "token_policies": "app-read", "alias_name_source": "serviceaccount_name",
	})

	t.Run("login", func(t *testing.T) {
		s, err := login(root, "kubernetes", "app", kc.token("team-a", "app"))
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		a := s.Auth
		if !slices.Contains(a.Policies, "app-read") || !slices.Contains(a.Policies, "default") {
			t.Errorf("policies = %v, want app-read and default", a.Policies)
		}
		want := map[string]string{
			"role": "app", "service_account_name": "app", "service_account_namespace": "team-a",
			"service_account_uid": string(app.UID),
		}
		for k, v := range want {
			if a.Metadata[k] != v {
				t.Errorf("metadata[%s] = %q, want %q", k, a.Metadata[k], v)
			}
		}
		if a.LeaseDuration != 3600 {
			t.Errorf("lease_duration = %d, want 3600 (token_ttl)", a.LeaseDuration)
		}
		c := newClient(t, srv.Addr, a.ClientToken)
		sec, err := c.Logical().Read("secret/data/app/db")
		if err != nil || sec == nil {
			t.Fatalf("read with the login token: %v", err)
		}
		_, err = c.Logical().Read("secret/data/other")
		wantStatus(t, err, 403, "permission denied")
	})
	t.Run("token bound to other addresses", func(t *testing.T) {
		mustWrite(t, root, "auth/kubernetes/role/far", map[string]any{
			"bound_service_account_names": "app", "bound_service_account_namespaces": "team-a",
			"token_policies": "app-read", "token_bound_cidrs": "10.0.0.0/8",
		})
		s, err := login(root, "kubernetes", "far", kc.token("team-a", "app"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = newClient(t, srv.Addr, s.Auth.ClientToken).Logical().Read("secret/data/app/db")
		wantStatus(t, err, 403, "permission denied")
	})
	t.Run("renewal asks the role", func(t *testing.T) {
		mustWrite(t, root, "auth/kubernetes/role/renew", map[string]any{
			"bound_service_account_names": "app", "bound_service_account_namespaces": "team-a",
			"token_policies": "app-read", "token_ttl": "1h",
		})
		s, err := login(root, "kubernetes", "renew", kc.token("team-a", "app"))
		if err != nil {
			t.Fatal(err)
		}
		c := newClient(t, srv.Addr, s.Auth.ClientToken)
		if _, err := c.Auth().Token().RenewSelf(3600); err != nil {
			t.Fatalf("renew while the role binds the account: %v", err)
		}
		mustWrite(t, root, "auth/kubernetes/role/renew", map[string]any{"bound_service_account_namespaces": "team-b"})
		_, err = c.Auth().Token().RenewSelf(3600)
		wantStatus(t, err, 400, `role "renew" no longer binds this service account: not renewing`)
		mustWrite(t, root, "auth/kubernetes/role/renew", map[string]any{"bound_service_account_namespaces": "team-a", "token_policies": "app-read,more"})
		_, err = c.Auth().Token().RenewSelf(3600)
		wantStatus(t, err, 400, "policies have changed, not renewing")
		if _, err := root.Logical().Delete("auth/kubernetes/role/renew"); err != nil {
			t.Fatal(err)
		}
		_, err = c.Auth().Token().RenewSelf(3600)
		wantStatus(t, err, 400, `role "renew" does not exist during renewal`)
	})
	t.Run("wrong namespace", func(t *testing.T) {
		_, err := login(root, "kubernetes", "app", kc.token("team-b", "app"))
		wantStatus(t, err, 403, "namespace not authorized")
	})
	t.Run("wrong name", func(t *testing.T) {
		_, err := login(root, "kubernetes", "app", kc.token("team-a", "other"))
		wantStatus(t, err, 403, "service account name not authorized")
	})
	t.Run("audience", func(t *testing.T) {
		// The role's audience is sent to TokenReview: a token for another
		// audience is refused, one for "coffer" accepted, and a glob binds
		// team-b too.
		_, err := login(root, "kubernetes", "aud", kc.token("team-a", "app", "something-else"))
		wantStatus(t, err, 403, "permission denied")
		_, err = login(root, "kubernetes", "aud", kc.token("team-a", "app"))
		wantStatus(t, err, 403, "permission denied")
		s, err := login(root, "kubernetes", "aud", kc.token("team-b", "app", "coffer"))
		if err != nil {
			t.Fatalf("login with the role's audience: %v", err)
		}
		if s.Auth.Metadata["service_account_namespace"] != "team-b" {
			t.Errorf("metadata = %v", s.Auth.Metadata)
		}
		// A token made for Coffer is not valid for the API server's own
		// audience, so a role without audience refuses it.
		_, err = login(root, "kubernetes", "app", kc.token("team-a", "app", "coffer"))
		wantStatus(t, err, 403, "permission denied")
	})
	t.Run("deleted service account", func(t *testing.T) {
		kc.serviceAccount("team-a", "shortlived")
		mustWrite(t, root, "auth/kubernetes/role/shortlived", map[string]any{
			"bound_service_account_names": "shortlived", "bound_service_account_namespaces": "team-a",
		})
		jwt := kc.token("team-a", "shortlived")
		if _, err := login(root, "kubernetes", "shortlived", jwt); err != nil {
			t.Fatalf("login before deletion: %v", err)
		}
		if err := kc.cs.CoreV1().ServiceAccounts("team-a").Delete(kc.ctx, "shortlived", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, func() error {
			_, err := login(root, "kubernetes", "shortlived", jwt)
			var re *vault.ResponseError
			if errors.As(err, &re) && re.StatusCode == 403 {
				return nil
			}
			return fmt.Errorf("login after deletion: %v", err)
		})
	})
	t.Run("forged token", func(t *testing.T) {
		// Claims copied from a real token, signature of another token: the
		// API server refuses it.
		a := strings.Split(kc.token("team-a", "app"), ".")
		b := strings.Split(kc.token("team-a", "other"), ".")
		_, err := login(root, "kubernetes", "app", a[0]+"."+a[1]+"."+b[2])
		wantStatus(t, err, 403, "permission denied")
	})
	t.Run("reviewer without auth-delegator", func(t *testing.T) {
		kc.serviceAccount("coffer", "weak")
		weak := kc.token("coffer", "weak")
		if err := root.Sys().EnableAuthWithOptions("k8s-weak", &vault.EnableAuthOptions{Type: "kubernetes"}); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, root, "auth/k8s-weak/config", map[string]any{
			"kubernetes_host": kc.host, "kubernetes_ca_cert": kc.caPEM, "token_reviewer_jwt": weak, "disable_local_ca_jwt": true,
		})
		mustWrite(t, root, "auth/k8s-weak/role/app", map[string]any{
			"bound_service_account_names": "app", "bound_service_account_namespaces": "team-a",
		})
		jwt := kc.token("team-a", "app")
		_, err := login(root, "k8s-weak", "app", jwt)
		wantStatus(t, err, 502, "system:auth-delegator")
		var re *vault.ResponseError
		errors.As(err, &re)
		for _, secret := range []string{jwt, weak, reviewer} {
			if strings.Contains(strings.Join(re.Errors, " "), secret) {
				t.Fatal("the error contains a token")
			}
		}
	})
	t.Run("client token as reviewer", func(t *testing.T) {
		if err := root.Sys().EnableAuthWithOptions("k8s-self", &vault.EnableAuthOptions{Type: "kubernetes"}); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, root, "auth/k8s-self/config", map[string]any{
			"kubernetes_host": kc.host, "kubernetes_ca_cert": kc.caPEM, "disable_local_ca_jwt": true,
		})
		mustWrite(t, root, "auth/k8s-self/role/self", map[string]any{
			"bound_service_account_names": "selfreview", "bound_service_account_namespaces": "team-a",
		})
		kc.serviceAccount("team-a", "selfreview")
		jwt := kc.token("team-a", "selfreview")
		// Without auth-delegator the account may not review itself.
		_, err := login(root, "k8s-self", "self", jwt)
		wantStatus(t, err, 403, "permission denied")
		kc.authDelegator("team-a", "selfreview")
		eventually(t, 30*time.Second, func() error {
			_, err := login(root, "k8s-self", "self", jwt)
			return err
		})
	})
	t.Run("API server unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if err := root.Sys().EnableAuthWithOptions("k8s-down", &vault.EnableAuthOptions{Type: "kubernetes"}); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, root, "auth/k8s-down/config", map[string]any{
			"kubernetes_host": "https://" + addr, "kubernetes_ca_cert": kc.caPEM, "token_reviewer_jwt": reviewer, "disable_local_ca_jwt": true,
		})
		mustWrite(t, root, "auth/k8s-down/role/app", map[string]any{
			"bound_service_account_names": "app", "bound_service_account_namespaces": "team-a",
		})
		_, err = login(root, "k8s-down", "app", kc.token("team-a", "app"))
		wantStatus(t, err, 502, "unreachable")
	})
}

// TestReviewerTokenReread drives the backend with its local service
// account files in a temporary directory: the reviewer token is read from
// the file, and a replaced (rotated) token is picked up after the reload
// period without any config change.
func TestReviewerTokenReread(t *testing.T) {
	kc := startCluster(t)
	kc.serviceAccount("coffer", "reviewer")
	kc.authDelegator("coffer", "reviewer")
	kc.serviceAccount("team-a", "app")

	dir := t.TempDir()
	tokPath, caPath := filepath.Join(dir, "token"), filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caPath, []byte(kc.caPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	// An unusable token first: the reviewer is refused (502).
	if err := os.WriteFile(tokPath, []byte("not-a-valid-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	be, err := kubeauth.NewFactory(kubeauth.LocalFiles{TokenPath: tokPath, CAPath: caPath, Reload: 300 * time.Millisecond})(
		context.Background(), &logical.BackendConfig{Storage: inmem.New()})
	if err != nil {
		t.Fatal(err)
	}
	do := func(path string, data map[string]any) (*logical.Response, error) {
		return be.HandleRequest(context.Background(), &logical.Request{
			Operation: logical.UpdateOperation, Path: "auth/kubernetes/" + path, MountPoint: "auth/kubernetes/", MountPath: path, Data: data,
		})
	}
	if _, err := do("config", map[string]any{"kubernetes_host": kc.host}); err != nil {
		t.Fatal(err)
	}
	if _, err := do("role/app", map[string]any{"bound_service_account_names": "app", "bound_service_account_namespaces": "team-a"}); err != nil {
		t.Fatal(err)
	}
	jwt := kc.token("team-a", "app")
	if _, err := do("login", map[string]any{"role": "app", "jwt": jwt}); !errors.Is(err, logical.ErrUpstream) {
		t.Fatalf("login with a bad reviewer file = %v, want an upstream error", err)
	}
	// Each step can only pass once the file has been read again: a good
	// reviewer, then one without auth-delegator (403 from the API server,
	// so 502), then a good one again.
	kc.serviceAccount("coffer", "weak")
	steps := []struct {
		token string
		ok    bool
	}{
		{kc.token("coffer", "reviewer"), true},
		{kc.token("coffer", "weak"), false},
		{kc.token("coffer", "reviewer"), true},
	}
	for i, st := range steps {
		if err := os.WriteFile(tokPath, []byte(st.token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, func() error {
			resp, err := do("login", map[string]any{"role": "app", "jwt": jwt})
			if !st.ok {
				if errors.Is(err, logical.ErrUpstream) && strings.Contains(err.Error(), "auth-delegator") {
					return nil
				}
				return fmt.Errorf("step %d: login = %v, want the reviewer refused", i, err)
			}
			if err != nil {
				return fmt.Errorf("step %d: %w", i, err)
			}
			if resp.Auth == nil || resp.Auth.Metadata["service_account_name"] != "app" {
				return fmt.Errorf("step %d: auth = %+v", i, resp.Auth)
			}
			return nil
		})
	}
}
