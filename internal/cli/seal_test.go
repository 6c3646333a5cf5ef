package cli_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/coffer-dev/coffer/internal/cli"
	"github.com/coffer-dev/coffer/internal/controller/sealedsecret"
	"github.com/coffer-dev/coffer/internal/sealedsecrets"
	"github.com/coffer-dev/coffer/internal/sealedsecrets/sealedsecretstest"
)

// seal runs `coffer seal` in-process with env (nil: empty), without any
// kubeconfig.
func seal(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	home := t.TempDir()
	e := &cli.Env{
		Getenv:  func(k string) string { return env[k] },
		Stdin:   strings.NewReader(stdin),
		Stdout:  &out,
		Stderr:  &errb,
		HomeDir: func() (string, error) { return home, nil },
	}
	err := cli.RunEnv(context.Background(), e, append([]string{"seal"}, args...))
	return result{code: cli.ExitCode(err), stdout: out.String(), stderr: errb.String()}
}

const inputSecret = `apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: shop
  labels: {app: shop}
type: Opaque
data:
  user: YWRtaW4=
stringData:
  password: hunter2
`

func testdata(name string) string { return filepath.Join(sealedsecretstest.TestdataDir(), name) }

func unseal(t *testing.T, out string) *corev1.Secret {
	t.Helper()
	ss, err := sealedsecret.DecodeSealedSecret([]byte(out))
	if err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	keys := []*sealedsecrets.Key{sealedsecretstest.Key(t, "key"), sealedsecretstest.Key(t, "key2")}
	s, err := sealedsecrets.Unseal(ss, keys, sealedsecrets.UnsealOptions{})
	if err != nil {
		t.Fatalf("Unseal: %v", err)
	}
	return s
}

func TestSealOffline(t *testing.T) {
	cert := testdata("cert.pem")
	res := seal(t, nil, inputSecret, "--cert", cert)
	if res.code != 0 || !strings.HasPrefix(res.stdout, "{\n  \"kind\": \"SealedSecret\",\n  \"apiVersion\": \"bitnami.com/v1alpha1\"") {
		t.Fatalf("seal = %d %q %q", res.code, res.stdout, res.stderr)
	}
	s := unseal(t, res.stdout)
	if string(s.Data["user"]) != "admin" || string(s.Data["password"]) != "hunter2" || s.Labels["app"] != "shop" {
		t.Errorf("unsealed %v %v", s.Data, s.Labels)
	}
	if strings.Contains(res.stdout, "hunter2") {
		t.Error("output contains the plaintext")
	}

	// YAML, to a file, scope from the flag, certificate from the env.
	out := filepath.Join(t.TempDir(), "sealed.yaml")
	res = seal(t, map[string]string{"SEALED_SECRETS_CERT": cert}, inputSecret, "-w", out, "--scope", "namespace-wide")
	if res.code != 0 || res.stdout != "" {
		t.Fatalf("seal -w = %d %q %q", res.code, res.stdout, res.stderr)
	}
	b, _ := os.ReadFile(out)
	if !strings.HasPrefix(string(b), "---\napiVersion: bitnami.com/v1alpha1\n") {
		t.Errorf("-w .yaml wrote %q", b)
	}
	ss, _ := sealedsecret.DecodeSealedSecret(b)
	if ss.Scope() != sealedsecrets.ScopeNamespaceWide || ss.Spec.Template.Annotations[sealedsecrets.AnnotationNamespaceWide] != "true" {
		t.Errorf("scope %v, template annotations %v", ss.Scope(), ss.Spec.Template.Annotations)
	}
	ss.Name = "renamed"
	if _, err := sealedsecrets.Unseal(ss, []*sealedsecrets.Key{sealedsecretstest.Key(t, "key")}, sealedsecrets.UnsealOptions{}); err != nil {
		t.Errorf("namespace-wide object does not open renamed: %v", err)
	}

	// Several documents in, several objects out; --name overrides.
	res = seal(t, nil, inputSecret+"---\n"+strings.Replace(inputSecret, "name: db", "name: db2", 1), "--cert", cert, "-o", "yaml")
	if res.code != 0 || strings.Count(res.stdout, "kind: SealedSecret") != 2 || !strings.Contains(res.stdout, "name: db2") {
		t.Errorf("two documents: %d %q", res.code, res.stdout)
	}

	// The namespace comes from -n when the Secret has none.
	noNS := strings.Replace(inputSecret, "  namespace: shop\n", "", 1)
	if res := seal(t, nil, noNS, "--cert", cert); res.code != 1 || !strings.Contains(res.stderr, "cannot infer the namespace") {
		t.Errorf("no namespace: %d %q", res.code, res.stderr)
	}
	res = seal(t, nil, noNS, "--cert", cert, "-n", "other")
	if res.code != 0 || unseal(t, res.stdout).Namespace != "other" {
		t.Errorf("-n: %d %q", res.code, res.stderr)
	}
}

func TestSealErrors(t *testing.T) {
	cert := testdata("cert.pem")
	cases := []struct {
		name, stdin string
		args        []string
		code        int
		stderr      string
	}{
		{"from-file without raw", inputSecret, []string{"--cert", cert, "--from-file", "x"}, 2, "--from-file requires --raw"},
		{"two modes", inputSecret, []string{"--cert", cert, "--raw", "--validate"}, 2, "choose one of"},
		{"bad scope", inputSecret, []string{"--cert", cert, "--scope", "global"}, 2, "invalid scope"},
		{"bad format", inputSecret, []string{"--cert", cert, "-o", "xml"}, 2, "unsupported output format"},
		{"not a secret", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", []string{"--cert", cert}, 1, "not a v1 Secret"},
		{"garbage", "{{{", []string{"--cert", cert}, 1, "not a Secret"},
		{"empty data", "apiVersion: v1\nkind: Secret\nmetadata: {name: x, namespace: ns1}\n", []string{"--cert", cert}, 1, "secret.data is empty"},
		{"no name", "apiVersion: v1\nkind: Secret\nmetadata: {namespace: ns1}\nstringData: {a: b}\n", []string{"--cert", cert}, 1, "missing metadata.name"},
		{"missing cert", inputSecret, []string{"--cert", "/nonexistent/cert.pem"}, 1, "no such file"},
		{"not a cert", inputSecret, []string{"--cert", testdata("key.pem")}, 1, "no PEM certificate"},
		{"recovery without key", inputSecret, []string{"--recovery-unseal"}, 2, "--recovery-private-key"},
		{"no cluster", inputSecret, []string{}, 1, "kubeconfig"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := seal(t, nil, tc.stdin, tc.args...)
			if res.code != tc.code || !strings.Contains(res.stderr, tc.stderr) {
				t.Errorf("seal %v = %d %q, want %d and %q", tc.args, res.code, res.stderr, tc.code, tc.stderr)
			}
		})
	}
	// Empty data is accepted when asked.
	if res := seal(t, nil, "apiVersion: v1\nkind: Secret\nmetadata: {name: x, namespace: ns1}\n", "--cert", cert, "--allow-empty-data"); res.code != 0 {
		t.Errorf("--allow-empty-data: %d %q", res.code, res.stderr)
	}
}

func TestSealRaw(t *testing.T) {
	cert := testdata("cert.pem")
	k := []*sealedsecrets.Key{sealedsecretstest.Key(t, "key")}
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args  []string
		stdin string
		label string
	}{
		{[]string{"--namespace", "ns", "--name", "n", "--from-file", file}, "", "ns/n"},
		{[]string{"--namespace", "ns", "--name", "n", "--from-file", "pw=" + file}, "", "ns/n"},
		{[]string{"--namespace", "ns", "--scope", "namespace-wide"}, "s3cret\n", "ns"},
		{[]string{"--scope", "cluster-wide"}, "s3cret\n", ""},
	}
	for _, tc := range cases {
		res := seal(t, nil, tc.stdin, append([]string{"--cert", cert, "--raw"}, tc.args...)...)
		if res.code != 0 || strings.HasSuffix(res.stdout, "\n") {
			t.Fatalf("raw %v = %d %q %q", tc.args, res.code, res.stdout, res.stderr)
		}
		pt, err := sealedsecrets.DecryptString(k, res.stdout, []byte(tc.label))
		if err != nil || string(pt) != "s3cret\n" {
			t.Errorf("raw %v opens to %q, %v", tc.args, pt, err)
		}
	}
	if res := seal(t, nil, "x", "--cert", cert, "--raw", "--namespace", "ns"); res.code != 2 || !strings.Contains(res.stderr, "--name") {
		t.Errorf("strict without name: %d %q", res.code, res.stderr)
	}
	if res := seal(t, nil, "x", "--cert", cert, "--raw", "--name", "n"); res.code != 2 || !strings.Contains(res.stderr, "--namespace") {
		t.Errorf("strict without namespace: %d %q", res.code, res.stderr)
	}
	if res := seal(t, nil, "x", "--cert", cert, "--raw", "--namespace", "ns", "--name", "n", "--from-file", file, "--from-file", file); res.code != 2 {
		t.Errorf("two --from-file: %d %q", res.code, res.stderr)
	}
}

func TestSealCertSources(t *testing.T) {
	certPEM, _ := os.ReadFile(testdata("cert.pem"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/cert.pem" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(certPEM)
	}))
	defer srv.Close()
	for _, src := range []string{srv.URL + "/v1/cert.pem", "file://" + testdata("cert.pem"), testdata("cert.pem")} {
		res := seal(t, nil, "", "--cert", src, "--fetch-cert")
		if res.code != 0 || res.stdout != string(certPEM) {
			t.Errorf("--fetch-cert --cert %s = %d %q", src, res.code, res.stderr)
		}
		if res := seal(t, nil, inputSecret, "--cert", src); res.code != 0 {
			t.Errorf("--cert %s: %d %q", src, res.code, res.stderr)
		}
	}
	if res := seal(t, nil, inputSecret, "--cert", srv.URL+"/missing"); res.code != 1 || !strings.Contains(res.stderr, "404") {
		t.Errorf("404 cert: %d %q", res.code, res.stderr)
	}
	// An expired certificate is refused, as kubeseal does.
	expired, err := sealedsecrets.SelfSign(mustPriv(t), mustTime(t, "2001-01-01T00:00:00Z"), 24*time.Hour, "old")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "old.pem")
	_ = os.WriteFile(f, expired.CertPEM(), 0o644)
	if res := seal(t, nil, inputSecret, "--cert", f); res.code != 1 || !strings.Contains(res.stderr, "expired") {
		t.Errorf("expired cert: %d %q", res.code, res.stderr)
	}
}

func TestSealMergeInto(t *testing.T) {
	cert := testdata("cert.pem")
	dir := t.TempDir()
	file := filepath.Join(dir, "sealed.yaml")
	res := seal(t, nil, strings.Replace(inputSecret, "metadata:\n", "metadata:\n  annotations: {sealedsecrets.bitnami.com/cluster-wide: \"true\"}\n", 1), "--cert", cert, "-o", "yaml")
	if res.code != 0 {
		t.Fatal(res.stderr)
	}
	if err := os.WriteFile(file, []byte(res.stdout), 0o640); err != nil {
		t.Fatal(err)
	}
	// The input names another Secret: the file's name, namespace and scope win.
	more := "apiVersion: v1\nkind: Secret\nmetadata: {name: other, namespace: elsewhere, labels: {extra: l}}\nstringData: {token: t0k, password: changed}\n"
	if res := seal(t, nil, more, "--cert", cert, "--merge-into", file); res.code != 0 || res.stdout != "" {
		t.Fatalf("merge-into: %d %q %q", res.code, res.stdout, res.stderr)
	}
	b, _ := os.ReadFile(file)
	if !strings.HasPrefix(string(b), "---\n") {
		t.Errorf("merge-into changed the file's format: %q", b[:20])
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the file's own 0640", st.Mode().Perm())
	}
	s := unseal(t, string(b))
	want := map[string]string{"user": "admin", "password": "changed", "token": "t0k"}
	for k, v := range want {
		if string(s.Data[k]) != v {
			t.Errorf("data[%s] = %q, want %q", k, s.Data[k], v)
		}
	}
	if s.Name != "db" || s.Namespace != "shop" || s.Labels["extra"] != "l" || s.Labels["app"] != "shop" {
		t.Errorf("merged metadata %+v", s.ObjectMeta)
	}
	if res := seal(t, nil, more, "--cert", cert, "--merge-into", file, "--scope", "strict"); res.code != 2 || !strings.Contains(res.stderr, "differs") {
		t.Errorf("scope mismatch: %d %q", res.code, res.stderr)
	}
}

func TestSealRecoveryUnseal(t *testing.T) {
	cert := testdata("cert.pem")
	res := seal(t, nil, inputSecret, "--cert", cert, "-o", "yaml")
	if res.code != 0 {
		t.Fatal(res.stderr)
	}
	sealedYAML := res.stdout
	k := sealedsecretstest.Key(t, "key")
	// A key Secret as `kubectl get secret -o yaml` writes it, in a List.
	list := map[string]any{"apiVersion": "v1", "kind": "List", "items": []any{corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: "sealed-secrets-keyabcde"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.key": k.PrivateKeyPEM(), "tls.crt": k.CertPEM()},
	}}}
	lb, _ := yaml.Marshal(list)
	dir := t.TempDir()
	listFile := filepath.Join(dir, "keys.yaml")
	_ = os.WriteFile(listFile, lb, 0o600)
	for _, keys := range []string{testdata("key.pem"), listFile, testdata("key2.pem") + "," + listFile} {
		res := seal(t, nil, sealedYAML, "--recovery-unseal", "--recovery-private-key", keys)
		if res.code != 0 {
			t.Errorf("recovery with %s: %d %q", keys, res.code, res.stderr)
			continue
		}
		var s corev1.Secret
		if err := json.Unmarshal([]byte(res.stdout), &s); err != nil || string(s.Data["password"]) != "hunter2" {
			t.Errorf("recovery with %s: %v %v", keys, err, s.Data)
		}
	}
	if res := seal(t, nil, sealedYAML, "--recovery-unseal", "--recovery-private-key", testdata("key2.pem")); res.code != 1 || !strings.Contains(res.stderr, "no key could decrypt secret") {
		t.Errorf("wrong key: %d %q", res.code, res.stderr)
	}
	out := filepath.Join(dir, "plain.json")
	if res := seal(t, nil, sealedYAML, "--recovery-unseal", "--recovery-private-key", testdata("key.pem"), "-w", out); res.code != 0 {
		t.Fatal(res.stderr)
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 {
		t.Errorf("plaintext written with mode %v", st.Mode().Perm())
	}
}

// coffer seal prints what kubeseal prints, apart from the ciphertexts and
// the creationTimestamp: null that kubeseal's older library writes.
func TestSealOutputMatchesKubeseal(t *testing.T) {
	ks := sealedsecretstest.Kubeseal(t)
	cert := testdata("cert.pem")
	mask := regexp.MustCompile(`Ag[A-Za-z0-9+/=]{100,}`)
	norm := func(s string) string {
		s = mask.ReplaceAllString(s, "X")
		var lines []string
		for _, l := range strings.Split(s, "\n") {
			if !strings.Contains(l, "creationTimestamp") {
				lines = append(lines, l)
			}
		}
		return strings.Join(lines, "\n")
	}
	in, _ := os.ReadFile(testdata("kubeseal-secret.input.yaml"))
	for _, format := range []string{"json", "yaml"} {
		cmd := exec.Command(ks, "--cert", cert, "-o", format)
		cmd.Env = []string{"HOME=" + t.TempDir()}
		cmd.Stdin = bytes.NewReader(in)
		want, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		res := seal(t, nil, string(in), "--cert", cert, "-o", format)
		if res.code != 0 {
			t.Fatal(res.stderr)
		}
		// JSON needs the trailing comma fixed where kubeseal's extra field was.
		got, exp := norm(res.stdout), norm(string(want))
		if format == "json" {
			got = strings.ReplaceAll(got, "\",\n", "\"\n")
			exp = strings.ReplaceAll(exp, "\",\n", "\"\n")
		}
		if got != exp {
			t.Errorf("-o %s differs from kubeseal:\n--- kubeseal\n%s\n--- coffer\n%s", format, exp, got)
		}
	}
}

func mustPriv(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	b, err := os.ReadFile(testdata("key2.pem"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := sealedsecrets.ParsePrivateKeyPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
