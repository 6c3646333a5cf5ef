package sealedsecret_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/yaml"

	"github.com/coffer-dev/coffer/internal/cli"
	"github.com/coffer-dev/coffer/internal/coffertest"
	"github.com/coffer-dev/coffer/internal/controller"
	"github.com/coffer-dev/coffer/internal/controller/sealedsecret"
	"github.com/coffer-dev/coffer/internal/kubetest"
	"github.com/coffer-dev/coffer/internal/sealedsecrets"
	"github.com/coffer-dev/coffer/internal/sealedsecrets/sealedsecretstest"
)

// env is one control plane shared by the subtests of a top-level test;
// each subtest works in namespaces of its own, and each controller it
// starts watches only those.
type env struct {
	cp         *kubetest.ControlPlane
	kubeconfig string
	cs         *kubernetes.Clientset
	c          client.Client
	hostIP     string
}

var nsCounter atomic.Int64

func startEnv(t testing.TB) *env {
	t.Helper()
	cp := kubetest.Start(t, kubetest.Options{})
	scheme := controller.Scheme()
	if err := sealedsecrets.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cp.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{cp: cp, kubeconfig: cp.WriteKubeconfig(t), cs: cp.Client, c: c, hostIP: sealedsecretstest.HostIP()}
	e.installCRD(t)
	return e
}

// installCRD applies deploy/crds/bitnami.com_sealedsecrets.yaml, the CRD
// Coffer ships, and waits until it is served.
func (e *env) installCRD(t testing.TB) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "deploy", "crds", "bitnami.com_sealedsecrets.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var u unstructured.Unstructured
	if err := yaml.Unmarshal(b, &u.Object); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.c.Create(ctx, &u); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	e.eventually(t, 30*time.Second, "CRD established", func() error {
		var l sealedsecrets.SealedSecretList
		return e.c.List(ctx, &l)
	})
}

// namespace creates a fresh namespace.
func (e *env) namespace(t testing.TB, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d-%d", prefix, os.Getpid()%1000, nsCounter.Add(1))
	if _, err := e.cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

func (e *env) eventually(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cofferCtl is a coffer controller (manager + sealedsecret.Setup) running
// in-process.
type cofferCtl struct {
	*sealedsecret.Controller
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
	once   sync.Once
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Stop stops the controller and waits for it.
func (c *cofferCtl) Stop() {
	c.once.Do(func() {
		c.cancel()
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
		}
	})
}

// startCoffer runs the sealed secrets controller with its keys in ctlNS,
// watching watch, its API on the host IP (reachable by the service
// proxy) when there is one. mod adjusts the options (2048-bit keys by
// default, for speed).
func (e *env) startCoffer(t *testing.T, cfg *rest.Config, ctlNS string, watch []string, mod func(*sealedsecret.Options)) *cofferCtl {
	t.Helper()
	return e.startCofferWith(t, cfg, ctlNS, watch, mod, true)
}

// startCofferWith is startCoffer; waitKey says whether to wait until the
// controller has a key.
func (e *env) startCofferWith(t *testing.T, cfg *rest.Config, ctlNS string, watch []string, mod func(*sealedsecret.Options), waitKey bool) *cofferCtl {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mc := controller.DefaultConfig(func(string) string { return "" })
	mc.Kubeconfig = e.kubeconfig
	mc.Namespace = ctlNS
	mc.WatchNamespaces = append([]string{ctlNS}, watch...)
	mc.MetricsAddr = "0"
	mc.HealthAddr = "0"
	mc.LeaderElection = false
	mc.Logger = log
	var mgrCfg *rest.Config
	if cfg != nil {
		mgrCfg = cfg
	}
	mgr, err := newManager(t, mc, mgrCfg)
	if err != nil {
		t.Fatal(err)
	}
	opts := sealedsecret.DefaultOptions(ctlNS)
	opts.KeyGen.Size = 2048
	opts.Logger = log
	opts.ListenAddr = "127.0.0.1:0"
	if e.hostIP != "" {
		opts.ListenAddr = net.JoinHostPort(e.hostIP, "0")
	}
	if mod != nil {
		mod(&opts)
	}
	sc, err := sealedsecret.Setup(mgr, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &cofferCtl{Controller: sc, cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { c.done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			t.Logf("coffer controller log:\n%s", logs)
		}
	})
	if !waitKey {
		return c
	}
	e.eventually(t, 60*time.Second, "coffer controller has a key", func() error {
		select {
		case err := <-c.done:
			c.done <- err
			return fmt.Errorf("controller exited: %v", err)
		default:
		}
		if sc.Keys.Newest() == nil {
			return errors.New("no key yet")
		}
		return nil
	})
	return c
}

// newManager is controller.NewManager, optionally with another identity
// than the kubeconfig's (a service-account token).
func newManager(t *testing.T, mc controller.Config, as *rest.Config) (manager.Manager, error) {
	t.Helper()
	if as != nil {
		dir := t.TempDir()
		path := filepath.Join(dir, "kubeconfig")
		kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: %q, certificate-authority: %q}
users:
- name: u
  user: {token: %q}
contexts:
- name: c
  context: {cluster: c, user: u}
current-context: c
`, as.Host, as.CAFile, as.BearerToken)
		if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
			t.Fatal(err)
		}
		mc.Kubeconfig = path
	}
	scheme := controller.Scheme()
	return controller.NewManager(mc, scheme)
}

// apply creates or updates a SealedSecret (spec and metadata).
func (e *env) apply(t *testing.T, ss *sealedsecrets.SealedSecret) {
	t.Helper()
	ctx := context.Background()
	cur := &sealedsecrets.SealedSecret{}
	err := e.c.Get(ctx, client.ObjectKeyFromObject(ss), cur)
	if apierrors.IsNotFound(err) {
		obj := ss.DeepCopy()
		obj.ResourceVersion = ""
		if err := e.c.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	cur.Spec = ss.Spec
	cur.Labels, cur.Annotations = ss.Labels, ss.Annotations
	if err := e.c.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
}

// waitSecret waits until the Secret exists and ok accepts it.
func (e *env) waitSecret(t *testing.T, ns, name string, ok func(*corev1.Secret) error) *corev1.Secret {
	t.Helper()
	var s *corev1.Secret
	e.eventually(t, 60*time.Second, "secret "+ns+"/"+name, func() error {
		var err error
		s, err = e.cs.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if ok != nil {
			return ok(s)
		}
		return nil
	})
	return s
}

func hasData(want map[string]string) func(*corev1.Secret) error {
	return func(s *corev1.Secret) error {
		got := map[string]string{}
		for k, v := range s.Data {
			got[k] = string(v)
		}
		for k, v := range want {
			if got[k] != v {
				return fmt.Errorf("data[%s] = %q, want %q (all: %v)", k, got[k], v, keysOf(got))
			}
		}
		return nil
	}
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// waitSynced waits for the Synced condition to have status (and reason,
// when not empty) at the current generation.
func (e *env) waitSynced(t *testing.T, ns, name string, status corev1.ConditionStatus, reason string) *sealedsecrets.SealedSecret {
	t.Helper()
	var ss sealedsecrets.SealedSecret
	e.eventually(t, 60*time.Second, fmt.Sprintf("%s/%s Synced=%s %s", ns, name, status, reason), func() error {
		if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &ss); err != nil {
			return err
		}
		c := ss.Status.Condition(sealedsecrets.ConditionSynced)
		if c == nil {
			return errors.New("no Synced condition")
		}
		if c.Status != status || (reason != "" && c.Reason != reason) || ss.Status.ObservedGeneration != ss.Generation {
			return fmt.Errorf("Synced=%s reason %q message %q observedGeneration %d generation %d", c.Status, c.Reason, c.Message, ss.Status.ObservedGeneration, ss.Generation)
		}
		return nil
	})
	return &ss
}

// kubeseal runs the real kubeseal with the admin kubeconfig.
func (e *env) kubeseal(t *testing.T, stdin []byte, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(sealedsecretstest.Kubeseal(t), append([]string{"--kubeconfig", e.kubeconfig}, args...)...)
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("kubeseal %v: %v: %s", args, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// cofferSeal runs `coffer seal` in-process with the admin kubeconfig.
func (e *env) cofferSeal(t *testing.T, stdin []byte, args ...string) ([]byte, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	home := t.TempDir()
	ce := &cli.Env{
		Getenv:  func(k string) string { return "" },
		Stdin:   bytes.NewReader(stdin),
		Stdout:  &stdout,
		Stderr:  &stderr,
		HomeDir: func() (string, error) { return home, nil },
	}
	err := cli.RunEnv(context.Background(), ce, append([]string{"seal", "--kubeconfig", e.kubeconfig}, args...))
	if err != nil {
		return stdout.Bytes(), fmt.Errorf("coffer seal %v: %v: %s", args, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

func secretYAML(ns, name string, data map[string]string, annotations map[string]string) []byte {
	s := corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations},
		StringData: data,
	}
	b, _ := yaml.Marshal(s)
	return b
}

func decodeSS(t *testing.T, b []byte) *sealedsecrets.SealedSecret {
	t.Helper()
	ss, err := sealedsecret.DecodeSealedSecret(b)
	if err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return ss
}

func (e *env) requireHostIP(t *testing.T) {
	t.Helper()
	if e.hostIP == "" {
		coffertest.RequireIntegration(t, "no non-loopback IPv4 address: the API server's service proxy cannot reach a local controller")
	}
}

var errNotYet = errors.New("not yet")
