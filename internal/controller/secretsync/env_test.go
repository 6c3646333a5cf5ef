package secretsync_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	vault "github.com/hashicorp/vault/api"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/coffer-dev/coffer/internal/coffertest"
	"github.com/coffer-dev/coffer/internal/controller"
	"github.com/coffer-dev/coffer/internal/controller/rollout"
	"github.com/coffer-dev/coffer/internal/controller/secretsync"
	"github.com/coffer-dev/coffer/internal/controller/secretsync/v1alpha1"
	"github.com/coffer-dev/coffer/internal/kubetest"
)

// env is a control plane with the CRDs installed, a Coffer dev server
// whose kubernetes auth method reviews tokens against it, and a client.
type env struct {
	t   testing.TB
	ctx context.Context
	cp  *kubetest.ControlPlane
	cfg *rest.Config
	c   client.Client
	// cofferAddr is the Coffer server's address; cofferPID its process id
	// when it runs as a child process (0 in-process).
	cofferAddr string
	cofferPID  int
	root       *vault.Client
}

func scheme(t testing.TB) *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func crdDir() string { return filepath.Join("..", "..", "..", "deploy", "crds") }

// installCRDs creates the CRDs of deploy/crds and waits until they are
// established.
func installCRDs(t testing.TB, cfg *rest.Config) {
	t.Helper()
	sch := runtime.NewScheme()
	if err := apiextv1.AddToScheme(sch); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: sch})
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(crdDir(), "coffer.dev_*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in %s: %v", crdDir(), err)
	}
	ctx := context.Background()
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var crd apiextv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(raw, &crd); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if err := c.Create(ctx, &crd); err != nil {
			t.Fatalf("create CRD %s: %v", crd.Name, err)
		}
		eventually(t, time.Minute, func() error {
			var got apiextv1.CustomResourceDefinition
			if err := c.Get(ctx, client.ObjectKey{Name: crd.Name}, &got); err != nil {
				return err
			}
			for _, cond := range got.Status.Conditions {
				if cond.Type == apiextv1.Established && cond.Status == apiextv1.ConditionTrue {
					return nil
				}
			}
			return fmt.Errorf("CRD %s not established", crd.Name)
		})
	}
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, func() (string, string, int) {
		s := coffertest.StartDev(t)
		return s.Addr, s.RootToken, 0
	})
}

// newEnvWith is newEnv with the Coffer server started by startCoffer,
// which returns its address, root token and process id.
func newEnvWith(t testing.TB, startCoffer func() (addr, rootToken string, pid int)) *env {
	t.Helper()
	cp := kubetest.Start(t, kubetest.Options{})
	cfg := cp.Config
	installCRDs(t, cfg)
	c, err := client.New(cfg, client.Options{Scheme: scheme(t)})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: context.Background(), cp: cp, cfg: cfg, c: c}
	e.namespace("coffer")
	e.serviceAccount("coffer", "reviewer")
	e.create(&rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "coffer-reviewer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "coffer", Name: "reviewer"}},
	})
	addr, rootToken, pid := startCoffer()
	e.cofferAddr, e.cofferPID = addr, pid
	vc := vault.DefaultConfig()
	vc.Address = addr
	vc.MaxRetries = 0
	root, err := vault.NewClient(vc)
	if err != nil {
		t.Fatal(err)
	}
	root.SetToken(rootToken)
	e.root = root
	if err := root.Sys().EnableAuthWithOptions("kubernetes", &vault.EnableAuthOptions{Type: "kubernetes"}); err != nil {
		t.Fatalf("enable kubernetes auth: %v", err)
	}
	e.write("auth/kubernetes/config", map[string]any{
		"kubernetes_host": cfg.Host, "kubernetes_ca_cert": string(cfg.CAData),
		"token_reviewer_jwt": e.token("coffer", "reviewer", 24*time.Hour), "disable_local_ca_jwt": true,
	})
	return e
}

// tenant creates namespace ns with service account "app", and a Coffer
// policy and role letting that account (audience "coffer") read
// secret/data/<ns>/*.
func (e *env) tenant(ns string) {
	e.t.Helper()
	e.namespace(ns)
	e.serviceAccount(ns, "app")
	if err := e.root.Sys().PutPolicy(ns+"-read", fmt.Sprintf(`path "secret/data/%s/*" { capabilities = ["read"] }
path "database/creds/%s" { capabilities = ["read"] }`, ns, ns)); err != nil {
		e.t.Fatal(err)
	}
	e.write("auth/kubernetes/role/"+ns, map[string]any{
		"bound_service_account_names": "app", "bound_service_account_namespaces": ns,
		"audience": "coffer", "token_policies": ns + "-read", "token_ttl": "1h",
	})
}

func (e *env) write(path string, data map[string]any) {
	e.t.Helper()
	if _, err := e.root.Logical().Write(path, data); err != nil {
		e.t.Fatalf("write %s: %v", path, err)
	}
}

func (e *env) kvPut(path string, data map[string]any) {
	e.t.Helper()
	e.write("secret/data/"+path, map[string]any{"data": data})
}

func (e *env) namespace(name string) {
	e.t.Helper()
	err := e.c.Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		e.t.Fatalf("create namespace %s: %v", name, err)
	}
}

func (e *env) serviceAccount(ns, name string) {
	e.t.Helper()
	e.create(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
}

func (e *env) create(o client.Object) {
	e.t.Helper()
	if err := e.c.Create(e.ctx, o); err != nil {
		e.t.Fatalf("create %T %s: %v", o, o.GetName(), err)
	}
}

func (e *env) token(ns, name string, ttl time.Duration) string {
	e.t.Helper()
	tr := &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(ttl / time.Second))}}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := e.c.SubResource("token").Create(e.ctx, sa, tr); err != nil {
		e.t.Fatalf("TokenRequest %s/%s: %v", ns, name, err)
	}
	return tr.Status.Token
}

// startController runs a manager with the SecretSync and rollout
// controllers until the test ends. opts.CofferAddress defaults to the dev
// server.
func (e *env) startController(opts secretsync.Options) {
	e.t.Helper()
	if opts.CofferAddress == "" {
		opts.CofferAddress = e.cofferAddr
	}
	if opts.MinRefreshInterval == 0 {
		opts.MinRefreshInterval = time.Second
	}
	// The manager `coffer controller` builds, on a kubeconfig for the
	// test control plane.
	mcfg := controller.DefaultConfig(func(string) string { return "" })
	mcfg.Kubeconfig = e.cp.WriteKubeconfig(e.t)
	mcfg.Namespace = "coffer"
	mcfg.LeaderElection = false
	mcfg.MetricsAddr, mcfg.HealthAddr = "0", "0"
	mcfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	mgr, err := controller.NewManager(mcfg, controller.Scheme())
	if err != nil {
		e.t.Fatal(err)
	}
	if err := secretsync.Setup(mgr, opts); err != nil {
		e.t.Fatalf("secretsync.Setup: %v", err)
	}
	if err := rollout.Setup(mgr, rollout.Options{}); err != nil {
		e.t.Fatalf("rollout.Setup: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("manager: %v", err)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// with returns e reporting to t (a subtest).
func (e *env) with(t testing.TB) *env {
	c := *e
	c.t = t
	return &c
}

func init() {
	// controller-runtime logs through a package-level logger; keep only
	// warnings and errors on stderr.
	ctrllog.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// eventually polls fn until it returns nil; it fails the test with fn's
// last error after d.
func eventually(t testing.TB, d time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *env) secret(ns, name string) (*corev1.Secret, error) {
	var s corev1.Secret
	err := e.c.Get(e.ctx, client.ObjectKey{Namespace: ns, Name: name}, &s)
	return &s, err
}

// secretValue waits until Secret ns/name has key == want.
func (e *env) waitSecretValue(ns, name, key, want string, d time.Duration) *corev1.Secret {
	e.t.Helper()
	var got *corev1.Secret
	eventually(e.t, d, func() error {
		s, err := e.secret(ns, name)
		if err != nil {
			return err
		}
		if string(s.Data[key]) != want {
			return fmt.Errorf("Secret %s/%s has %s=%q, want %q", ns, name, key, s.Data[key], want)
		}
		got = s
		return nil
	})
	return got
}

func (e *env) sync(ns, name string) *v1alpha1.SecretSync {
	e.t.Helper()
	var ss v1alpha1.SecretSync
	if err := e.c.Get(e.ctx, client.ObjectKey{Namespace: ns, Name: name}, &ss); err != nil {
		e.t.Fatal(err)
	}
	return &ss
}

func readyOf(ss *v1alpha1.SecretSync) *metav1.Condition {
	for i := range ss.Status.Conditions {
		if ss.Status.Conditions[i].Type == v1alpha1.ConditionReady {
			return &ss.Status.Conditions[i]
		}
	}
	return nil
}

// waitReady waits until the SecretSync's Ready condition has status and
// its message contains msg.
func (e *env) waitReady(ns, name string, status metav1.ConditionStatus, reason, msg string) *v1alpha1.SecretSync {
	e.t.Helper()
	var out *v1alpha1.SecretSync
	eventually(e.t, 30*time.Second, func() error {
		var ss v1alpha1.SecretSync
		if err := e.c.Get(e.ctx, client.ObjectKey{Namespace: ns, Name: name}, &ss); err != nil {
			return err
		}
		c := readyOf(&ss)
		if c == nil {
			return errors.New("no Ready condition yet")
		}
		if c.Status != status || c.Reason != reason || !strings.Contains(c.Message, msg) {
			return fmt.Errorf("Ready = %s/%s %q, want %s/%s containing %q", c.Status, c.Reason, c.Message, status, reason, msg)
		}
		out = &ss
		return nil
	})
	return out
}

// kvSync builds a SecretSync of secret/<path> logging in as ns/app with
// role ns.
func kvSync(ns, name, path string, refresh time.Duration) *v1alpha1.SecretSync {
	return &v1alpha1.SecretSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.SecretSyncSpec{
			Coffer: v1alpha1.CofferRef{Auth: v1alpha1.CofferAuth{Kubernetes: &v1alpha1.KubernetesAuth{
				Role: ns, ServiceAccountName: "app", Audiences: []string{"coffer"},
			}}},
			Source:          v1alpha1.Source{KV: &v1alpha1.KVSource{Mount: "secret", Path: path}},
			RefreshInterval: &metav1.Duration{Duration: refresh},
		},
	}
}
