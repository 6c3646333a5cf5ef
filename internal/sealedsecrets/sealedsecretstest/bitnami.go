package sealedsecretstest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// BitnamiController is a running Bitnami sealed-secrets controller v0.27.1.
type BitnamiController struct {
	// Addr is its HTTP API, host:port.
	Addr string
	// Namespace is its own namespace (keys).
	Namespace string
	cmd       *exec.Cmd
	done      chan struct{}
	out       *syncBuffer
	stopOnce  sync.Once
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

// BitnamiOptions configures StartBitnami.
type BitnamiOptions struct {
	// Namespace is the controller's namespace (created if missing).
	Namespace string
	// Namespaces it watches besides its own (it never watches all).
	Namespaces []string
	// ListenHost is the address its API listens on (default 127.0.0.1).
	ListenHost string
	// Args are extra flags.
	Args []string
}

// StartBitnami runs the real Bitnami controller out of cluster against
// the API server of cfg. That binary only knows the in-cluster
// configuration, so it runs in a private mount namespace (unshare -m)
// where a tmpfs on /run holds a service-account token and the API
// server's CA at the well-known paths; its identity is a service account
// bound to cluster-admin. Without unshare (or the right to use it) the
// test is skipped, or fails under COFFER_REQUIRE_INTEGRATION.
func StartBitnami(t testing.TB, cfg *rest.Config, opts BitnamiOptions) *BitnamiController {
	t.Helper()
	bin := Controller(t)
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		requireIntegration(t, "unshare(1) not found: needed to run the Bitnami controller out of cluster")
	}
	if out, err := exec.Command(unshare, "-m", "--propagation", "private", "true").CombinedOutput(); err != nil {
		requireIntegration(t, fmt.Sprintf("cannot create a mount namespace (unshare -m: %v %s): needed to run the Bitnami controller out of cluster", err, out))
	}
	u, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	ca := cfg.CAData
	if len(ca) == 0 && cfg.CAFile != "" {
		if ca, err = os.ReadFile(cfg.CAFile); err != nil {
			t.Fatal(err)
		}
	}
	token := serviceAccountToken(t, cfg, opts.Namespace, "bitnami-sealed-secrets")

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o600); err != nil {
		t.Fatal(err)
	}
	listenHost := opts.ListenHost
	if listenHost == "" {
		listenHost = "127.0.0.1"
	}
	apiPort, metricsPort := freePort(t, listenHost), freePort(t, "127.0.0.1")
	args := []string{
		"--all-namespaces=false",
		"--listen-addr", net.JoinHostPort(listenHost, strconv.Itoa(apiPort)),
		"--listen-metrics-addr", net.JoinHostPort("127.0.0.1", strconv.Itoa(metricsPort)),
	}
	if len(opts.Namespaces) > 0 {
		ns := opts.Namespaces[0]
		for _, n := range opts.Namespaces[1:] {
			ns += "," + n
		}
		args = append(args, "--additional-namespaces", ns)
	}
	args = append(args, opts.Args...)
	const sa = "/run/secrets/kubernetes.io/serviceaccount"
	script := `set -e
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p ` + sa + `
cp "$SS_DIR/token" "$SS_DIR/ca.crt" ` + sa + `/
echo "$POD_NAMESPACE" > ` + sa + `/namespace
exec "$SS_BIN" "$@"`
	cmd := exec.Command(unshare, append([]string{"-m", "--propagation", "private", "sh", "-c", script, "sh"}, args...)...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"KUBERNETES_SERVICE_HOST=" + host,
		"KUBERNETES_SERVICE_PORT=" + port,
		"POD_NAMESPACE=" + opts.Namespace,
		"SS_DIR=" + dir,
		"SS_BIN=" + bin,
	}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &BitnamiController{Addr: net.JoinHostPort(listenHost, strconv.Itoa(apiPort)), Namespace: opts.Namespace, cmd: cmd, done: make(chan struct{}), out: out}
	go func() { _ = cmd.Wait(); close(b.done) }()
	t.Cleanup(b.Stop)

	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get("http://" + b.Addr + "/v1/cert.pem")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return b
			}
		}
		select {
		case <-b.done:
			t.Fatalf("bitnami controller exited:\n%s", out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("bitnami controller did not serve its certificate in time:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Output is what the controller logged.
func (b *BitnamiController) Output() string { return b.out.String() }

// Pid is the process id of the controller (its RSS is measured there:
// unshare execs it in place).
func (b *BitnamiController) Pid() int { return b.cmd.Process.Pid }

// Stop sends SIGTERM and waits for the controller to exit.
func (b *BitnamiController) Stop() {
	b.stopOnce.Do(func() {
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
			<-b.done
		}
	})
}

// CertPEM fetches the controller's sealing certificate.
func (b *BitnamiController) CertPEM(t testing.TB) []byte {
	t.Helper()
	resp, err := http.Get("http://" + b.Addr + "/v1/cert.pem")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// serviceAccountToken makes (or reuses) a cluster-admin service account in
// namespace and returns a one-hour token for it.
func serviceAccountToken(t testing.TB, cfg *rest.Config, namespace, name string) string {
	t.Helper()
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ignoreExists := func(err error) {
		t.Helper()
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	ignoreExists(err)
	_, err = cs.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	ignoreExists(err)
	_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: namespace + "-" + name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: namespace}},
	}, metav1.CreateOptions{})
	ignoreExists(err)
	exp := int64(3600)
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

func freePort(t testing.TB, host string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// HostIP returns a non-loopback IPv4 address of this machine, which the
// API server accepts as a Service endpoint (it refuses loopback), so that
// its service proxy reaches a controller running here. "" if none.
func HostIP() string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLinkLocalUnicast() {
				return ipn.IP.String()
			}
		}
	}
	return ""
}

// ExposeService makes the Service kubeseal looks for (name, port 8080
// named "http") in namespace, backed by a controller running here at addr
// (host:port, host not loopback: see HostIP). The API server's service
// proxy only forwards to endpoints that are a Pod's IP, so this also
// makes a Pod (it stays Pending: there is no kubelet) whose status claims
// that IP, and the Endpoints naming it.
func ExposeService(t testing.TB, cfg *rest.Config, namespace, name, addr string) {
	t.Helper()
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(portStr)
	del := metav1.DeleteOptions{GracePeriodSeconds: new(int64)}
	_ = cs.CoreV1().Services(namespace).Delete(ctx, name, del)
	_ = cs.CoreV1().Endpoints(namespace).Delete(ctx, name, del) //nolint:staticcheck // the service proxy reads Endpoints
	_ = cs.CoreV1().Pods(namespace).Delete(ctx, name, del)
	for i := 0; i < 100; i++ {
		if _, err := cs.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := cs.CoreV1().Services(namespace).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	no := false
	pod, err := cs.CoreV1().Pods(namespace).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: &no,
			Containers:                   []corev1.Container{{Name: "controller", Image: "out-of-cluster"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.PodIP = host
	pod.Status.PodIPs = []corev1.PodIP{{IP: host}}
	if _, err := cs.CoreV1().Pods(namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	//nolint:staticcheck // the service proxy reads Endpoints
	if _, err := cs.CoreV1().Endpoints(namespace).Create(ctx, &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: host, TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: namespace, Name: name}}},
			Ports:     []corev1.EndpointPort{{Name: "http", Port: int32(port)}},
		}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
