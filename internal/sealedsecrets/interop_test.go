package sealedsecrets_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/coffer-dev/coffer/internal/sealedsecrets"
	"github.com/coffer-dev/coffer/internal/sealedsecrets/sealedsecretstest"
)

// runKubeseal runs the real kubeseal offline (no kubeconfig).
func runKubeseal(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(sealedsecretstest.Kubeseal(t), args...)
	cmd.Env = []string{"HOME=" + t.TempDir(), "KUBECONFIG=" + filepath.Join(t.TempDir(), "none")}
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubeseal %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// Both directions, every scope, offline: kubeseal seals -> Coffer opens;
// Coffer seals -> kubeseal --recovery-unseal opens with the same key.
func TestInteropKubesealOffline(t *testing.T) {
	k := sealedsecretstest.Key(t, "key")
	dir := sealedsecretstest.TestdataDir()
	cert := filepath.Join(dir, "cert.pem")
	keyFile := filepath.Join(dir, "key.pem")
	for _, scope := range []sealedsecrets.Scope{sealedsecrets.ScopeStrict, sealedsecrets.ScopeNamespaceWide, sealedsecrets.ScopeClusterWide} {
		t.Run(scope.String(), func(t *testing.T) {
			in := &corev1.Secret{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
				ObjectMeta: metav1.ObjectMeta{Name: "interop", Namespace: "ns1", Labels: map[string]string{"x": "y"}},
				Type:       corev1.SecretTypeOpaque,
				Data:       map[string][]byte{"bin": {0, 1, 2, 0xff}, "empty": {}},
				StringData: map[string]string{"text": "héllo\nworld"},
			}
			want := map[string]string{"bin": "\x00\x01\x02\xff", "empty": "", "text": "héllo\nworld"}
			inJSON, _ := json.Marshal(in)

			// kubeseal -> Coffer
			out := runKubeseal(t, inJSON, "--cert", cert, "--scope", scope.String(), "-o", "json")
			var ss sealedsecrets.SealedSecret
			if err := json.Unmarshal(out, &ss); err != nil {
				t.Fatal(err)
			}
			if ss.Scope() != scope {
				t.Errorf("kubeseal wrote scope %v", ss.Scope())
			}
			s, err := sealedsecrets.Unseal(&ss, []*sealedsecrets.Key{k}, sealedsecrets.UnsealOptions{})
			if err != nil {
				t.Fatalf("Unseal(kubeseal output): %v", err)
			}
			if diff := cmp.Diff(want, stringData(s)); diff != "" {
				t.Errorf("kubeseal -> coffer (-want +got):\n%s", diff)
			}

			// Coffer -> kubeseal --recovery-unseal
			in2 := in.DeepCopy()
			in2.Annotations = sealedsecrets.SetScope(nil, scope)
			mine, err := sealedsecrets.Seal(k.Public(), in2)
			if err != nil {
				t.Fatal(err)
			}
			mineYAML, _ := yaml.Marshal(mine)
			plain := runKubeseal(t, mineYAML, "--recovery-unseal", "--recovery-private-key", keyFile, "-o", "json")
			var back corev1.Secret
			if err := json.Unmarshal(plain, &back); err != nil {
				t.Fatalf("%v: %s", err, plain)
			}
			if diff := cmp.Diff(want, stringData(&back)); diff != "" {
				t.Errorf("coffer -> kubeseal (-want +got):\n%s", diff)
			}
			if back.Labels["x"] != "y" {
				t.Errorf("labels %v", back.Labels)
			}

			// --raw values for the same scope.
			args := []string{"--cert", cert, "--raw", "--scope", scope.String(), "--from-file", "/dev/stdin"}
			if scope != sealedsecrets.ScopeClusterWide {
				args = append(args, "--namespace", "ns1")
			}
			if scope == sealedsecrets.ScopeStrict {
				args = append(args, "--name", "interop")
			}
			raw := runKubeseal(t, []byte("raw value"), args...)
			pt, err := sealedsecrets.DecryptString([]*sealedsecrets.Key{k}, string(raw), sealedsecrets.Label("ns1", "interop", scope))
			if err != nil || string(pt) != "raw value" {
				t.Errorf("raw: %q, %v", pt, err)
			}
		})
	}
}

// A SealedSecret sealed by Coffer opens with kubeseal's recovery mode
// given all the keys of a rotated controller, whichever sealed it.
func TestInteropRecoveryWithSeveralKeys(t *testing.T) {
	k2 := sealedsecretstest.Key(t, "key2")
	dir := sealedsecretstest.TestdataDir()
	ss, err := sealedsecrets.Seal(k2.Public(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "ns"}, StringData: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ss)
	out := runKubeseal(t, b, "--recovery-unseal", "--recovery-private-key", filepath.Join(dir, "key.pem")+","+filepath.Join(dir, "key2.pem"))
	var s corev1.Secret
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatal(err)
	}
	if string(s.Data["a"]) != "b" {
		t.Errorf("data %v", s.Data)
	}
}
