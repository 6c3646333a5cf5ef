package cli_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	kmsapi "k8s.io/kms/apis/v2"

	"github.com/coffer-dev/coffer/internal/cli"
	"github.com/coffer-dev/coffer/internal/coffertest"
)

// kmsPlugin runs `coffer kms-plugin` in-process with env and waits until it
// serves; it is stopped (as by SIGTERM) in Cleanup.
func kmsPlugin(t *testing.T, env map[string]string, args ...string) (stdout, stderr *coffertest.SyncBuffer, stop func() error) {
	t.Helper()
	stdout, stderr = &coffertest.SyncBuffer{}, &coffertest.SyncBuffer{}
	e := &cli.Env{
		Getenv:  func(k string) string { return env[k] },
		Stdin:   strings.NewReader(""),
		Stdout:  stdout,
		Stderr:  stderr,
		HomeDir: func() (string, error) { return t.TempDir(), nil },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cli.RunEnv(ctx, e, append([]string{"kms-plugin"}, args...)) }()
	var result error
	stopped := false
	stop = func() error {
		if !stopped {
			cancel()
			result = <-done
			stopped = true
		}
		return result
	}
	t.Cleanup(func() { stop() })
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stdout.String(), "Coffer KMS plugin started") {
		select {
		case err := <-done:
			t.Fatalf("kms-plugin exited: %v\nstderr:\n%s", err, stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("kms-plugin did not start\nstderr:\n%s", stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return stdout, stderr, stop
}

func kmsClient(t *testing.T, sock string) kmsapi.KeyManagementServiceClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return kmsapi.NewKeyManagementServiceClient(conn)
}

func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kmscli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestKMSPluginUsage(t *testing.T) {
	dir := t.TempDir()
	home := t.TempDir()
	tok := filepath.Join(dir, "tok")
	os.WriteFile(tok, []byte("t\n"), 0o600)
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no key", []string{"kms-plugin", "-token-file", tok}, 2, "-key NAME (a transit key) or -local-key-file FILE is required"},
		{"no credentials", []string{"kms-plugin", "-key", "k"}, 2, "-token-file FILE or -role-id-file/-secret-id-file is required"},
		{"half approle", []string{"kms-plugin", "-key", "k", "-role-id-file", tok}, 2, "needs both -role-id-file and -secret-id-file"},
		{"local and transit", []string{"kms-plugin", "-local-key-file", tok, "-key", "k"}, 2, "cannot be combined with -key"},
		{"old key without key", []string{"kms-plugin", "-key", "k", "-token-file", tok, "-local-decrypt-key-file", tok}, 2, "needs -local-key-file"},
		{"bad log level", []string{"kms-plugin", "-log-level", "loud", "-key", "k", "-token-file", tok}, 2, "invalid -log-level"},
		{"bad key name", []string{"kms-plugin", "-key", "a/b", "-token-file", tok}, 1, "invalid transit key name"},
		{"generate-key without -out", []string{"kms-plugin", "generate-key"}, 2, "-out FILE is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, home, "", "", "", tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", r.code, r.stderr, tc.code, tc.want)
			}
		})
	}
}

func TestKMSPluginGenerateKey(t *testing.T) {
	dir := t.TempDir()
	home := t.TempDir()
	key := filepath.Join(dir, "kms", "key")
	r := run(t, home, "", "", "", "kms-plugin", "generate-key", "-out", key)
	if r.code != 0 || !regexp.MustCompile(`key_id coffer:local:[0-9a-f]{32}`).MatchString(r.stdout) {
		t.Fatalf("generate-key: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	if r := run(t, home, "", "", "", "kms-plugin", "generate-key", "-out", key); r.code != 1 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("second generate-key: exit %d, stderr %q", r.code, r.stderr)
	}
	os.Chmod(key, 0o644)
	r = run(t, home, "", "", "", "kms-plugin", "-local-key-file", key, "-socket", filepath.Join(socketDir(t), "k.sock"))
	if r.code != 1 || !strings.Contains(r.stderr, "must not be accessible by group or others") {
		t.Fatalf("group-readable key: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestKMSPluginLocal runs the command with a local key, JSON debug logs and
// metrics, and checks what an operator sees: the socket, the metrics, and
// logs without the plaintext.
func TestKMSPluginLocal(t *testing.T) {
	dir := t.TempDir()
	home := t.TempDir()
	key := filepath.Join(dir, "key")
	if r := run(t, home, "", "", "", "kms-plugin", "generate-key", "-out", key); r.code != 0 {
		t.Fatalf("generate-key: %s", r.stderr)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	metricsAddr := ln.Addr().String()
	ln.Close()
	sock := filepath.Join(socketDir(t), "run", "kms.sock")
	stdout, stderr, stop := kmsPlugin(t, nil, "-socket", "unix://"+sock, "-local-key-file", key,
		"-metrics-address", metricsAddr, "-log-level", "debug", "-log-format", "json")
	if !strings.Contains(stdout.String(), "Socket: unix://"+sock) || !strings.Contains(stdout.String(), "http://"+metricsAddr+"/metrics") {
		t.Fatalf("stdout %q does not show the socket and metrics address", stdout)
	}
	if fi, err := os.Lstat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v, %v", fi, err)
	}
	c := kmsClient(t, sock)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	canary := []byte("canary-seed-5b1f0e27aa914c3d8e6f")
	enc, err := c.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: canary, Uid: "uid-1"})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := c.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: enc.Ciphertext, KeyId: enc.KeyId, Annotations: enc.Annotations, Uid: "uid-2"})
	if err != nil || !bytes.Equal(dec.Plaintext, canary) {
		t.Fatalf("Decrypt = %v", err)
	}
	_, err = c.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: enc.Ciphertext, KeyId: "coffer:local:nope", Annotations: enc.Annotations, Uid: "uid-3"})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Decrypt(unknown key_id) = %v", err)
	}
	if st, err := c.Status(ctx, &kmsapi.StatusRequest{}); err != nil || st.Healthz != "ok" || st.KeyId != enc.KeyId {
		t.Fatalf("Status = %v, %v", st, err)
	}

	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`coffer_kms_requests_total{code="OK",method="Encrypt"} 1`,
		`coffer_kms_requests_total{code="OK",method="Decrypt"} 1`,
		`coffer_kms_requests_total{code="InvalidArgument",method="Decrypt"} 1`,
		`coffer_kms_requests_total{code="OK",method="Status"} 1`,
		`coffer_kms_request_duration_seconds_count{method="Encrypt"} 1`,
		`coffer_kms_healthy 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	if err := stop(); err != nil {
		t.Fatalf("kms-plugin exit: %v", err)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left after shutdown: %v", err)
	}
	logs := stderr.String()
	for _, form := range []string{string(canary), base64.StdEncoding.EncodeToString(canary), hex.EncodeToString(canary), base64.StdEncoding.EncodeToString(enc.Ciphertext)} {
		if strings.Contains(logs, form) {
			t.Fatalf("logs contain the plaintext or ciphertext (%q):\n%s", form, logs)
		}
	}
	var sawFailure bool
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] == "kms request failed" && rec["method"] == "Decrypt" && rec["code"] == "InvalidArgument" && rec["uid"] == "uid-3" {
			sawFailure = true
		}
	}
	if !sawFailure {
		t.Errorf("no structured log record of the refused Decrypt:\n%s", logs)
	}
}

// TestKMSPluginTransitEnv configures the transit backend from the
// environment (COFFER_ADDR, COFFER_KMS_KEY, COFFER_KMS_SOCKET) against a real
// dev server.
func TestKMSPluginTransitEnv(t *testing.T) {
	srv := coffertest.StartDev(t)
	cfg := vault.DefaultConfig()
	cfg.Address = srv.Addr
	vc, _ := vault.NewClient(cfg)
	vc.SetToken(srv.RootToken)
	if err := vc.Sys().Mount("kube-transit", &vault.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	if _, err := vc.Logical().Write("kube-transit/keys/etcd", nil); err != nil {
		t.Fatal(err)
	}
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte(srv.RootToken), 0o600)
	sock := filepath.Join(socketDir(t), "kms.sock")
	kmsPlugin(t, map[string]string{"COFFER_ADDR": srv.Addr, "COFFER_KMS_KEY": "etcd", "COFFER_KMS_SOCKET": sock},
		"-transit-mount", "kube-transit", "-token-file", tok)
	c := kmsClient(t, sock)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Status(ctx, &kmsapi.StatusRequest{})
	if err != nil || st.Healthz != "ok" || !strings.HasPrefix(st.KeyId, "coffer:transit:kube-transit/etcd:v1:") {
		t.Fatalf("Status = %v, %v", st, err)
	}
}
