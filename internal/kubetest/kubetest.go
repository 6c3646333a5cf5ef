// Package kubetest starts a real Kubernetes control plane for tests: etcd
// and kube-apiserver, built from their Go modules by hack/testenv/build.sh
// into $COFFER_CACHE_DIR/bin (default $HOME/.cache/coffer-testenv/bin), or
// taken from $COFFER_TESTENV_BIN. There is no kubelet: pods stay Pending,
// which is enough for controllers, admission webhooks, TokenReview and KMS
// encryption at rest.
//
// Everything runs on free loopback ports in a temporary directory: a CA and
// serving certificate for the apiserver, a service-account key pair, and a
// static token file with an admin token (group system:masters). Processes
// are stopped in t.Cleanup; their logs are printed when the test fails.
//
// When the binaries are missing the test is skipped (or fails, with
// COFFER_REQUIRE_INTEGRATION=1) through coffertest.RequireIntegration.
//
// It is imported only by tests.
package kubetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/coffer-dev/coffer/internal/coffertest"
)

// Versions that hack/testenv/build.sh builds.
const (
	KubeVersion = "v1.34.4"
	EtcdVersion = "v3.6.6"
)

// ServiceAccountIssuer is the issuer of the service-account tokens the
// apiserver signs.
const ServiceAccountIssuer = "https://kubernetes.default.svc"

// Options configure a control plane.
type Options struct {
	// EncryptionConfig, if not empty, is an EncryptionConfiguration (YAML)
	// written to a file and passed as --encryption-provider-config.
	EncryptionConfig string
	// ExtraArgs are appended to kube-apiserver's arguments; a flag given
	// here overrides the default one (the last value wins).
	ExtraArgs []string
	// StartTimeout bounds each start of kube-apiserver until /readyz
	// answers ok (default 3 minutes: the machines running tests are slow
	// and shared).
	StartTimeout time.Duration
}

// ControlPlane is a running etcd and kube-apiserver.
type ControlPlane struct {
	// Dir holds the certificates, keys, configuration and logs.
	Dir string
	// EtcdURL is etcd's client URL, e.g. http://127.0.0.1:41234.
	EtcdURL string
	// URL is the apiserver's base URL, e.g. https://127.0.0.1:41235. It
	// stays the same across RestartAPIServer.
	URL string
	// AdminToken authenticates as user "admin" in group system:masters.
	AdminToken string
	// CACert is the PEM CA certificate that signed the apiserver's serving
	// certificate; CACertFile is the same on disk. It is also the client CA
	// (--client-ca-file).
	CACert     []byte
	CACertFile string
	// ServiceAccountKeyFile (PEM public key) verifies, and
	// ServiceAccountSigningKeyFile (PEM RSA private key) signs,
	// service-account tokens; their issuer is ServiceAccountIssuer.
	ServiceAccountKeyFile        string
	ServiceAccountSigningKeyFile string
	// EncryptionConfigFile is the --encryption-provider-config file, if any.
	EncryptionConfigFile string
	// Config authenticates as the admin; Client is a clientset on it.
	Config *rest.Config
	Client *kubernetes.Clientset

	apiserverBin string
	apiArgs      []string
	timeout      time.Duration

	mu        sync.Mutex
	apiserver *proc
	etcd      *proc
	starts    int
}

// Binaries returns the paths of kube-apiserver and etcd, and whether both
// exist.
func Binaries() (apiserver, etcd string, ok bool) {
	dir := os.Getenv("COFFER_TESTENV_BIN")
	if dir == "" {
		cache := os.Getenv("COFFER_CACHE_DIR")
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", "", false
			}
			cache = filepath.Join(home, ".cache", "coffer-testenv")
		}
		dir = filepath.Join(cache, "bin")
	}
	apiserver, etcd = filepath.Join(dir, "kube-apiserver"), filepath.Join(dir, "etcd")
	for _, p := range []string{apiserver, etcd} {
		if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
			return apiserver, etcd, false
		}
	}
	return apiserver, etcd, true
}

// Start starts etcd and kube-apiserver and waits until the apiserver is
// ready. Both are stopped in t.Cleanup.
func Start(t testing.TB, opts Options) *ControlPlane {
	t.Helper()
	apiserverBin, etcdBin, ok := Binaries()
	if !ok {
		coffertest.RequireIntegration(t, "kube-apiserver and etcd are not built: run hack/testenv/build.sh")
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 3 * time.Minute
	}
	dir, err := os.MkdirTemp("", "coffer-kubetest-")
	if err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cp := &ControlPlane{Dir: dir, apiserverBin: apiserverBin, timeout: opts.StartTimeout}
	if err := cp.writeCredentials(); err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	if opts.EncryptionConfig != "" {
		cp.EncryptionConfigFile = filepath.Join(dir, "encryption-config.yaml")
		if err := os.WriteFile(cp.EncryptionConfigFile, []byte(opts.EncryptionConfig), 0o600); err != nil {
			t.Fatalf("kubetest: %v", err)
		}
	}

	etcdPort, peerPort, apiPort := freePort(t), freePort(t), freePort(t)
	cp.EtcdURL = "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	cp.etcd = startProc(t, etcdBin, filepath.Join(dir, "etcd.log"),
		"--name=default",
		"--data-dir="+filepath.Join(dir, "etcd-data"),
		"--listen-client-urls="+cp.EtcdURL,
		"--advertise-client-urls="+cp.EtcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		"--unsafe-no-fsync", // test data only: durability is not under test
		"--log-level=warn",
	)
	t.Cleanup(func() { cp.dumpLogsOnFailure(t) })
	cp.waitEtcd(t)

	cp.URL = "https://127.0.0.1:" + strconv.Itoa(apiPort)
	cp.apiArgs = []string{
		"--etcd-servers=" + cp.EtcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--cert-dir=" + filepath.Join(dir, "cert"),
		"--tls-cert-file=" + filepath.Join(dir, "apiserver.crt"),
		"--tls-private-key-file=" + filepath.Join(dir, "apiserver.key"),
		"--client-ca-file=" + cp.CACertFile,
		"--service-account-issuer=" + ServiceAccountIssuer,
		"--service-account-key-file=" + cp.ServiceAccountKeyFile,
		"--service-account-signing-key-file=" + cp.ServiceAccountSigningKeyFile,
		"--token-auth-file=" + filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--allow-privileged=true",
		// No controller-manager creates default service accounts.
		"--disable-admission-plugins=ServiceAccount",
	}
	if cp.EncryptionConfigFile != "" {
		cp.apiArgs = append(cp.apiArgs, "--encryption-provider-config="+cp.EncryptionConfigFile)
	}
	cp.apiArgs = append(cp.apiArgs, opts.ExtraArgs...)

	cp.Config = &rest.Config{
		Host:            cp.URL,
		BearerToken:     cp.AdminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: cp.CACert},
		QPS:             1000,
		Burst:           2000,
		Timeout:         30 * time.Second,
	}
	if cp.Client, err = kubernetes.NewForConfig(cp.Config); err != nil {
		t.Fatalf("kubetest: clientset: %v", err)
	}
	cp.StartAPIServer(t)
	return cp
}

// StartAPIServer starts kube-apiserver (after StopAPIServer) with the same
// arguments, etcd and URL, and waits until it is ready (/readyz).
func (cp *ControlPlane) StartAPIServer(t testing.TB) {
	t.Helper()
	cp.StartAPIServerWaitFor(t, "/readyz")
}

// StartAPIServerWaitFor is StartAPIServer waiting for the health endpoint
// path instead: "/livez" for a test that expects the apiserver to stay
// unready (an object it cannot decrypt keeps /readyz's informer-sync
// check failing).
func (cp *ControlPlane) StartAPIServerWaitFor(t testing.TB, path string) {
	t.Helper()
	cp.mu.Lock()
	if cp.apiserver != nil {
		cp.mu.Unlock()
		t.Fatalf("kubetest: kube-apiserver is already running")
	}
	cp.starts++
	logFile := filepath.Join(cp.Dir, fmt.Sprintf("kube-apiserver-%d.log", cp.starts))
	p := startProc(t, cp.apiserverBin, logFile, cp.apiArgs...)
	cp.apiserver = p
	cp.mu.Unlock()
	if err := cp.waitReady(p, path); err != nil {
		t.Fatalf("kubetest: kube-apiserver not ready: %v\n%s", err, tail(p.logFile, 40))
	}
}

// StopAPIServer stops kube-apiserver (SIGTERM, then SIGKILL after 20 s);
// etcd keeps running.
func (cp *ControlPlane) StopAPIServer(t testing.TB) {
	t.Helper()
	cp.mu.Lock()
	p := cp.apiserver
	cp.apiserver = nil
	cp.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// RestartAPIServer stops and starts kube-apiserver: the new process has
// none of the old one's caches (decrypted DEKs, watch cache).
func (cp *ControlPlane) RestartAPIServer(t testing.TB) {
	t.Helper()
	cp.StopAPIServer(t)
	cp.StartAPIServer(t)
}

// APIServerLog returns the current kube-apiserver's log so far.
func (cp *ControlPlane) APIServerLog() string {
	cp.mu.Lock()
	p := cp.apiserver
	cp.mu.Unlock()
	if p == nil {
		return ""
	}
	b, _ := os.ReadFile(p.logFile)
	return string(b)
}

// Get sends GET path (e.g. "/healthz/kms-providers") to the apiserver as
// the admin and returns the status code and body.
func (cp *ControlPlane) Get(ctx context.Context, path string) (int, []byte, error) {
	var code int
	body, err := cp.Client.RESTClient().Get().AbsPath(path).Do(ctx).StatusCode(&code).Raw()
	if code != 0 {
		return code, body, nil
	}
	return code, body, err
}

// EtcdGet reads key's raw value straight from etcd, through etcd's JSON
// gRPC gateway (/v3/kv/range), bypassing the apiserver: what is stored at
// rest. Kubernetes objects live under /registry/<resource>/<namespace>/<name>.
func (cp *ControlPlane) EtcdGet(ctx context.Context, key string) (value []byte, found bool, err error) {
	body, _ := json.Marshal(map[string]string{"key": base64.StdEncoding.EncodeToString([]byte(key))})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cp.EtcdURL+"/v3/kv/range", bytes.NewReader(body))
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("etcd range: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, false, fmt.Errorf("etcd range: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, false, fmt.Errorf("etcd range: status %d: %s", resp.StatusCode, raw)
	}
	var out struct {
		Kvs []struct {
			Value []byte `json:"value"` // base64 in JSON
		} `json:"kvs"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, false, fmt.Errorf("etcd range: %w", err)
	}
	if len(out.Kvs) == 0 {
		return nil, false, nil
	}
	return out.Kvs[0].Value, true, nil
}

// WriteKubeconfig writes a kubeconfig for the admin (for kubectl) and
// returns its path.
func (cp *ControlPlane) WriteKubeconfig(t testing.TB) string {
	t.Helper()
	path := filepath.Join(cp.Dir, "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: kubetest
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: kubetest
  context: {cluster: kubetest, user: admin}
current-context: kubetest
`, cp.URL, base64.StdEncoding.EncodeToString(cp.CACert), cp.AdminToken)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	return path
}

func (cp *ControlPlane) waitEtcd(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(cp.timeout)
	for time.Now().Before(deadline) {
		if cp.etcd.exited() {
			t.Fatalf("kubetest: etcd exited early:\n%s", tail(cp.etcd.logFile, 40))
		}
		resp, err := http.Get(cp.EtcdURL + "/health")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && bytes.Contains(b, []byte(`"true"`)) {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("kubetest: etcd not healthy after %s:\n%s", cp.timeout, tail(cp.etcd.logFile, 40))
}

func (cp *ControlPlane) waitReady(p *proc, path string) error {
	deadline := time.Now().Add(cp.timeout)
	var last string
	for time.Now().Before(deadline) {
		if p.exited() {
			return errors.New("kube-apiserver exited")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		code, body, err := cp.Get(ctx, path)
		cancel()
		if err == nil && code == http.StatusOK {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%s answered %d: %s", path, code, body)
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s; last answer: %s", cp.timeout, last)
}

func (cp *ControlPlane) dumpLogsOnFailure(t testing.TB) {
	if !t.Failed() {
		return
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.apiserver != nil {
		t.Logf("kube-apiserver log (last lines):\n%s", tail(cp.apiserver.logFile, 60))
	}
	t.Logf("etcd log (last lines):\n%s", tail(cp.etcd.logFile, 20))
}

// writeCredentials creates the CA, the apiserver's serving certificate,
// the service-account key pair and the token file.
func (cp *ControlPlane) writeCredentials() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kubetest-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	srvKeyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		return err
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	tok := make([]byte, 32)
	rand.Read(tok)
	cp.AdminToken = hex.EncodeToString(tok)

	cp.CACert = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	cp.CACertFile = filepath.Join(cp.Dir, "ca.crt")
	cp.ServiceAccountKeyFile = filepath.Join(cp.Dir, "sa.pub")
	cp.ServiceAccountSigningKeyFile = filepath.Join(cp.Dir, "sa.key")
	files := []struct {
		name string
		data []byte
	}{
		{"ca.crt", cp.CACert},
		{"apiserver.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER})},
		{"apiserver.key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: srvKeyDER})},
		{"sa.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER})},
		{"sa.key", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)})},
		{"tokens.csv", []byte(cp.AdminToken + `,admin,admin,"system:masters"` + "\n")},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(cp.Dir, f.name), f.data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// CAPool returns a cert pool with the apiserver's CA.
func (cp *ControlPlane) CAPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cp.CACert)
	return pool
}

// HTTPClient returns an HTTP client that trusts the apiserver's CA (and
// sends no credentials).
func (cp *ControlPlane) HTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: cp.CAPool(), MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// proc is a child process whose output goes to a log file.
type proc struct {
	cmd     *exec.Cmd
	logFile string
	done    chan struct{}
	once    sync.Once
}

func startProc(t testing.TB, bin, logFile string, args ...string) *proc {
	t.Helper()
	f, err := os.OpenFile(logFile, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("kubetest: start %s: %v", filepath.Base(bin), err)
	}
	p := &proc{cmd: cmd, logFile: logFile, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, then SIGKILL after 20 s, and waits for the exit.
func (p *proc) stop() {
	p.once.Do(func() {
		if p.exited() {
			return
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("kubetest: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
