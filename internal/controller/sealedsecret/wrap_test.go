package sealedsecret_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coffer-dev/coffer/internal/cli"
	"github.com/coffer-dev/coffer/internal/coffertest"
	"github.com/coffer-dev/coffer/internal/controller/sealedsecret"
	"github.com/coffer-dev/coffer/internal/kmsplugin"
	"github.com/coffer-dev/coffer/internal/sealedsecrets"
)

// wrapEnv is a coffer server with a transit key "sealed-secrets" that the
// service account coffer-controller of ctl may use through the kubernetes
// auth role "sealed-secrets".
type wrapEnv struct {
	srv  *coffertest.Server
	root *vault.Client
	ctl  string
}

func (e *env) startWrapEnv(t *testing.T, ctl string) *wrapEnv {
	t.Helper()
	ctx := context.Background()
	srv := coffertest.StartDev(t)
	vc := vault.DefaultConfig()
	vc.Address = srv.Addr
	vc.MaxRetries = 0
	root, err := vault.NewClient(vc)
	if err != nil {
		t.Fatal(err)
	}
	root.SetToken(srv.RootToken)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(root.Sys().Mount("transit", &vault.MountInput{Type: "transit"}))
	_, err = root.Logical().Write("transit/keys/sealed-secrets", nil)
	must(err)
	must(root.Sys().PutPolicy("sealed-secrets", `
path "transit/encrypt/sealed-secrets" { capabilities = ["update"] }
path "transit/decrypt/sealed-secrets" { capabilities = ["update"] }
path "transit/keys/sealed-secrets"    { capabilities = ["read"] }
`))
	// Kubernetes auth against this control plane, the reviewer a service
	// account allowed to create TokenReviews.
	for _, sa := range []string{"reviewer", "coffer-controller"} {
		_, err := e.cs.CoreV1().ServiceAccounts(ctl).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
		must(err)
	}
	_, err = e.cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "reviewer-" + ctl},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ctl, Name: "reviewer"}},
	}, metav1.CreateOptions{})
	must(err)
	must(root.Sys().EnableAuthWithOptions("kubernetes", &vault.EnableAuthOptions{Type: "kubernetes"}))
	_, err = root.Logical().Write("auth/kubernetes/config", map[string]any{
		"kubernetes_host": e.cp.Config.Host, "kubernetes_ca_cert": string(e.cp.Config.CAData),
		"token_reviewer_jwt": e.saToken(t, ctl, "reviewer"), "disable_local_ca_jwt": true,
	})
	must(err)
	_, err = root.Logical().Write("auth/kubernetes/role/sealed-secrets", map[string]any{
		"bound_service_account_names": "coffer-controller", "bound_service_account_namespaces": ctl,
		"token_policies": "sealed-secrets", "token_ttl": "1h",
	})
	must(err)
	return &wrapEnv{srv: srv, root: root, ctl: ctl}
}

// saToken is a token of the service account ns/name (TokenRequest API).
func (e *env) saToken(t *testing.T, ns, name string) string {
	t.Helper()
	tr, err := e.cs.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), name, &authv1.TokenRequest{
		Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(3600))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

func ptrTo[T any](v T) *T { return &v }

// transit is the controller's wrapper: kubernetes login as
// ctl/coffer-controller with a token file, as in a pod.
func (w *wrapEnv) transit(t *testing.T, e *env) *kmsplugin.Transit {
	t.Helper()
	jwt := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(jwt, []byte(e.saToken(t, w.ctl, "coffer-controller")), 0o600); err != nil {
		t.Fatal(err)
	}
	tr, err := kmsplugin.NewTransit(kmsplugin.TransitConfig{
		Address: w.srv.Addr, Key: "sealed-secrets",
		Kubernetes: &kmsplugin.KubernetesLogin{Role: "sealed-secrets", JWTFile: jwt},
		Timeout:    10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go tr.Run(ctx)
	t.Cleanup(cancel)
	return tr
}

// keySecrets lists the controller namespace's plain and wrapped key
// Secrets.
func (e *env) keySecrets(t *testing.T, ns string) (plain, wrapped []corev1.Secret) {
	t.Helper()
	ctx := context.Background()
	p, err := e.cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: sealedsecret.KeyLabel + "=" + sealedsecret.KeyLabelActive})
	if err != nil {
		t.Fatal(err)
	}
	w, err := e.cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: sealedsecret.WrappedKeyLabel + "=" + sealedsecret.WrappedKeyLabelValue})
	if err != nil {
		t.Fatal(err)
	}
	return p.Items, w.Items
}

// Keys wrapped by a Coffer transit key: existing plain keys migrate (the
// wrapped copy is checked before the plain Secret goes), SealedSecrets of
// the old key keep opening, new keys are wrapped from the start, a transit
// key rotation re-wraps them, and a controller that cannot open the
// wrapped keys makes no plain key in their place.
func testWrappedKeys(t *testing.T, e *env) {
	ctl, app := e.namespace(t, "ctl"), e.namespace(t, "app")
	w := e.startWrapEnv(t, ctl)
	ctx := context.Background()

	// A cluster with a plain (Bitnami-format) key and a SealedSecret.
	c := e.startCoffer(t, nil, ctl, []string{app}, nil)
	first := c.Keys.Newest()
	c.Stop()
	ss := func(k *sealedsecrets.Key, name, v string) *sealedsecrets.SealedSecret {
		s, err := sealedsecrets.Seal(k.Public(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: app, Name: name}, StringData: map[string]string{"v": v}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// Switch on wrapping with migration.
	c = e.startCoffer(t, nil, ctl, []string{app}, func(o *sealedsecret.Options) {
		o.KeyWrapper = w.transit(t, e)
		o.MigratePlainKeys = true
	})
	e.eventually(t, 60*time.Second, "plain key migrated", func() error {
		plain, wrapped := e.keySecrets(t, ctl)
		if len(plain) != 0 || len(wrapped) != 1 {
			return errNotYet
		}
		return nil
	})
	_, wrapped := e.keySecrets(t, ctl)
	ws := wrapped[0]
	if ws.Type != corev1.SecretTypeOpaque || !bytes.Equal(ws.Data[corev1.TLSCertKey], first.CertPEM()) ||
		!bytes.HasPrefix(ws.Data[sealedsecret.WrappedKeyData], []byte("vault:v1:")) ||
		!strings.HasPrefix(string(ws.Data[sealedsecret.WrappedKeyIDData]), "coffer:transit:transit/sealed-secrets:v1:") {
		t.Errorf("wrapped key secret: type %s, fields %v", ws.Type, keysOfBytes(ws.Data))
	}
	if ws.Annotations[sealedsecret.MigratedFromAnnotation] == "" || ws.Labels[sealedsecret.KeyLabel] != "" {
		t.Errorf("wrapped key secret metadata: labels %v annotations %v", ws.Labels, ws.Annotations)
	}
	assertNoPlainKeys(t, e, ctl)
	// The migrated key still opens what it sealed.
	e.apply(t, ss(first, "before", "one"))
	e.waitSecret(t, app, "before", hasData(map[string]string{"v": "one"}))

	// A new key is wrapped from the start and becomes the sealing key.
	name, err := c.Keys.Generate(ctx, sealedsecret.KeyGen{Size: 2048, ValidFor: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	second := c.Keys.Newest()
	if second.Equal(first) {
		t.Fatal("the new key does not seal")
	}
	if s, err := e.cs.CoreV1().Secrets(ctl).Get(ctx, name, metav1.GetOptions{}); err != nil || s.Labels[sealedsecret.WrappedKeyLabel] != sealedsecret.WrappedKeyLabelValue {
		t.Errorf("new key secret %s: %v, labels %v", name, err, s.GetLabels())
	}
	assertNoPlainKeys(t, e, ctl)
	c.Stop()

	// Rotate the transit key: a restarted controller re-wraps both keys
	// with version 2 and still opens SealedSecrets of both.
	if _, err := w.root.Logical().Write("transit/keys/sealed-secrets/rotate", nil); err != nil {
		t.Fatal(err)
	}
	c = e.startCoffer(t, nil, ctl, []string{app}, func(o *sealedsecret.Options) { o.KeyWrapper = w.transit(t, e) })
	e.eventually(t, 60*time.Second, "keys re-wrapped with version 2", func() error {
		_, wrapped := e.keySecrets(t, ctl)
		for _, s := range wrapped {
			if !bytes.HasPrefix(s.Data[sealedsecret.WrappedKeyData], []byte("vault:v2:")) {
				return errNotYet
			}
		}
		return nil
	})
	if !c.Keys.Newest().Equal(second) || len(c.Keys.Keys()) != 2 {
		t.Errorf("after restart: %d keys, newest is the second: %v", len(c.Keys.Keys()), c.Keys.Newest().Equal(second))
	}
	e.apply(t, ss(second, "after", "two"))
	e.waitSecret(t, app, "after", hasData(map[string]string{"v": "two"}))
	c.Stop()
	// Old transit versions can now be retired.
	if _, err := w.root.Logical().Write("transit/keys/sealed-secrets/config", map[string]any{"min_decryption_version": 2}); err != nil {
		t.Fatal(err)
	}

	// Fail closed: without the wrapping key, or with Coffer refusing the
	// controller, no key is readable and none is made in their place.
	for _, tc := range []struct {
		name string
		mod  func(*sealedsecret.Options)
		want string
	}{
		{"no wrapper", nil, "no wrapping key is configured"},
		{"policy revoked", func(o *sealedsecret.Options) { o.KeyWrapper = w.transit(t, e) }, "permission denied"},
	} {
		if tc.name == "policy revoked" {
			if err := w.root.Sys().PutPolicy("sealed-secrets", `path "transit/keys/sealed-secrets" { capabilities = ["read"] }`); err != nil {
				t.Fatal(err)
			}
		}
		c = e.startCofferWith(t, nil, ctl, []string{app}, tc.mod, false)
		e.eventually(t, 30*time.Second, tc.name+": the refusal is logged", func() error {
			if !strings.Contains(c.logs.String(), tc.want) {
				return errNotYet
			}
			return nil
		})
		time.Sleep(2 * time.Second)
		if c.Keys.Newest() != nil {
			t.Errorf("%s: the controller has a sealing key", tc.name)
		}
		plain, wrapped := e.keySecrets(t, ctl)
		if len(plain) != 0 || len(wrapped) != 2 {
			t.Errorf("%s: %d plain and %d wrapped key secrets, want 0 and 2", tc.name, len(plain), len(wrapped))
		}
		c.Stop()
	}

	// The same through the command line: bad flag sets are refused, and
	// with the policy back, `coffer controller` serves the second key.
	if err := w.root.Sys().PutPolicy("sealed-secrets", `
path "transit/encrypt/sealed-secrets" { capabilities = ["update"] }
path "transit/decrypt/sealed-secrets" { capabilities = ["update"] }
path "transit/keys/sealed-secrets"    { capabilities = ["read"] }
`); err != nil {
		t.Fatal(err)
	}
	jwt := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(jwt, []byte(e.saToken(t, ctl, "coffer-controller")), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"controller", "--kubeconfig", e.kubeconfig, "--namespace", ctl, "--watch-namespaces", ctl + "," + app,
		"--leader-elect=false", "--metrics-bind-address", "0", "--log-format", "text", "--controllers", "sealedsecrets"}
	for _, bad := range [][]string{
		{"--key-wrap-migrate"},
		{"--key-wrap-transit-key", "sealed-secrets", "--key-wrap-kubernetes-role", "r"},
		{"--key-wrap-transit-key", "sealed-secrets", "--coffer-addr", w.srv.Addr},
		{"--key-wrap-transit-key", "sealed-secrets", "--coffer-addr", w.srv.Addr, "--key-wrap-kubernetes-role", "r", "--key-wrap-token-file", jwt},
		{"--key-wrap-transit-key", "bad/name", "--coffer-addr", w.srv.Addr, "--key-wrap-kubernetes-role", "r"},
	} {
		out, err := runCLI(t, 20*time.Second, append(slices.Clone(base), bad...)...)
		if err == nil || !strings.Contains(err.Error(), "key-wrap") {
			t.Errorf("coffer controller %v: %v, want a usage error naming the flag\n%s", bad, err, out)
		}
	}
	health, api := freePort(t), freePort(t)
	ctx2, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	logs := &syncBuffer{}
	go func() {
		done <- cli.RunEnv(ctx2, &cli.Env{
			Getenv: func(string) string { return "" }, Stdin: strings.NewReader(""), Stdout: logs, Stderr: logs,
			HomeDir: func() (string, error) { return t.TempDir(), nil },
		}, append(slices.Clone(base),
			"--health-probe-bind-address", "127.0.0.1:"+strconv.Itoa(health), "--listen-addr", "127.0.0.1:"+strconv.Itoa(api),
			"--coffer-addr", w.srv.Addr, "--key-wrap-transit-key", "sealed-secrets",
			"--key-wrap-kubernetes-role", "sealed-secrets", "--key-wrap-jwt-file", jwt))
	}()
	defer func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("controller output:\n%s", logs)
		}
	}()
	e.eventually(t, 60*time.Second, "coffer controller serves the wrapped key's certificate", func() error {
		select {
		case err := <-done:
			done <- err
			return fmt.Errorf("controller exited: %v", err)
		default:
		}
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(api) + "/v1/cert.pem")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !bytes.Equal(b, second.CertPEM()) {
			return fmt.Errorf("cert.pem %d: not the second key's certificate", resp.StatusCode)
		}
		return nil
	})
	if strings.Contains(logs.String(), "PRIVATE KEY") || strings.Contains(logs.String(), "vault:v") {
		t.Errorf("controller logs hold key material")
	}
}

// runCLI runs the coffer CLI in-process until it returns or d passes.
func runCLI(t *testing.T, d time.Duration, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	out := &syncBuffer{}
	err := cli.RunEnv(ctx, &cli.Env{
		Getenv: func(string) string { return "" }, Stdin: strings.NewReader(""), Stdout: out, Stderr: out,
		HomeDir: func() (string, error) { return t.TempDir(), nil },
	}, args)
	return out.String(), err
}

// assertNoPlainKeys fails if any Secret of ns holds a PEM private key.
func assertNoPlainKeys(t *testing.T, e *env, ns string) {
	t.Helper()
	list, err := e.cs.CoreV1().Secrets(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list.Items {
		for k, v := range s.Data {
			if bytes.Contains(v, []byte("PRIVATE KEY")) {
				t.Errorf("secret %s/%s field %s holds a plain private key", ns, s.Name, k)
			}
		}
	}
}

func keysOfBytes(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
