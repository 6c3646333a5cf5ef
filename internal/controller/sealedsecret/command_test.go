package sealedsecret_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coffer-dev/coffer/internal/cli"
	"github.com/coffer-dev/coffer/internal/controller/sealedsecret"
	"github.com/coffer-dev/coffer/internal/sealedsecrets"
)

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// `coffer controller` end to end: flags, leader election, health,
// metrics, JSON logs without secret values, clean shutdown.
func testControllerCommand(t *testing.T, e *env) {
	ctl, app := e.namespace(t, "ctl"), e.namespace(t, "app")
	health, metrics, api := freePort(t), freePort(t), freePort(t)
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ce := &cli.Env{
		Getenv:  func(string) string { return "" },
		Stdin:   strings.NewReader(""),
		Stdout:  logs,
		Stderr:  logs,
		HomeDir: func() (string, error) { return t.TempDir(), nil },
	}
	go func() {
		done <- cli.RunEnv(ctx, ce, []string{"controller",
			"--kubeconfig", e.kubeconfig,
			"--namespace", ctl,
			"--watch-namespaces", ctl + "," + app,
			"--leader-elect=true",
			"--leader-election-id", "coffer-test-" + ctl,
			"--health-probe-bind-address", "127.0.0.1:" + strconv.Itoa(health),
			"--metrics-bind-address", "127.0.0.1:" + strconv.Itoa(metrics),
			"--listen-addr", "127.0.0.1:" + strconv.Itoa(api),
			"--key-size", "2048",
			"--log-format", "json",
		})
	}()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return fmt.Errorf("controller did not stop")
		}
	}
	t.Cleanup(func() {
		_ = stop()
		if t.Failed() {
			t.Logf("controller output:\n%s", logs)
		}
	})

	get := func(port int, path string) (int, string, error) {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
		return resp.StatusCode, b.String(), nil
	}
	e.eventually(t, 90*time.Second, "readyz", func() error {
		select {
		case err := <-done:
			done <- err
			return fmt.Errorf("controller exited: %v", err)
		default:
		}
		code, body, err := get(health, "/readyz")
		if err != nil {
			return err
		}
		if code != 200 {
			return fmt.Errorf("readyz %d: %s", code, body)
		}
		return nil
	})
	if code, _, err := get(health, "/healthz"); err != nil || code != 200 {
		t.Errorf("healthz = %d, %v", code, err)
	}
	lease, err := e.cs.CoordinationV1().Leases(ctl).Get(context.Background(), "coffer-test-"+ctl, metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Errorf("leader election lease: %+v, %v", lease, err)
	}
	code, certPEM, err := get(api, "/v1/cert.pem")
	if err != nil || code != 200 {
		t.Fatalf("cert.pem = %d, %v", code, err)
	}
	pub, err := sealedsecrets.PublicKeyFromCertPEM([]byte(certPEM), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	const canary = "canary-value-5f1d2a"
	ss, err := sealedsecrets.Seal(pub, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: app, Name: "cmd"}, StringData: map[string]string{"k": canary}})
	if err != nil {
		t.Fatal(err)
	}
	e.apply(t, ss)
	e.waitSecret(t, app, "cmd", hasData(map[string]string{"k": canary}))
	e.waitSynced(t, app, "cmd", corev1.ConditionTrue, sealedsecret.ReasonUnsealed)

	code, body, err := get(metrics, "/metrics")
	if err != nil || code != 200 || !strings.Contains(body, "sealed_secrets_controller_unseal_requests_total") || !strings.Contains(body, "controller_runtime_reconcile_total") {
		t.Errorf("metrics = %d, %v, missing sealed secrets or controller-runtime series", code, err)
	}
	if err := stop(); err != nil {
		t.Errorf("controller exit: %v", err)
	}
	out := logs.String()
	if strings.Contains(out, canary) {
		t.Error("the log contains a secret value")
	}
	lines := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("log line is not JSON: %q", line)
			break
		}
		lines++
	}
	if lines < 3 {
		t.Errorf("only %d log lines", lines)
	}
	// The lease was released on shutdown.
	lease, err = e.cs.CoordinationV1().Leases(ctl).Get(context.Background(), "coffer-test-"+ctl, metav1.GetOptions{})
	if err == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "" {
		t.Errorf("lease still held by %q after shutdown", *lease.Spec.HolderIdentity)
	}
}
