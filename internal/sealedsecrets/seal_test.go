package sealedsecrets_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/coffer-dev/coffer/internal/sealedsecrets"
	"github.com/coffer-dev/coffer/internal/sealedsecrets/sealedsecretstest"
)

func readYAML(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// A SealedSecret made by the real kubeseal opens into the Secret it was
// made from.
func TestUnsealKubesealOutput(t *testing.T) {
	var ss sealedsecrets.SealedSecret
	readYAML(t, "kubeseal-secret.yaml", &ss)
	ss.UID = "uid-1"
	keys := []*sealedsecrets.Key{sealedsecretstest.Key(t, "key")}
	s, err := sealedsecrets.Unseal(&ss, keys, sealedsecrets.UnsealOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"username": "admin", "password": "s3cr3t!"}
	if diff := cmp.Diff(want, stringData(s)); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
	if s.Type != corev1.SecretTypeBasicAuth || s.Name != "app-credentials" || s.Namespace != "team-a" {
		t.Errorf("secret %s/%s type %s", s.Namespace, s.Name, s.Type)
	}
	if diff := cmp.Diff(map[string]string{"note": "not secret"}, s.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	if s.Labels["app"] != "shop" {
		t.Errorf("labels %v", s.Labels)
	}
	if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].Kind != "SealedSecret" || s.OwnerReferences[0].APIVersion != "bitnami.com/v1alpha1" ||
		s.OwnerReferences[0].UID != "uid-1" || s.OwnerReferences[0].Controller == nil || !*s.OwnerReferences[0].Controller {
		t.Errorf("owner references %+v", s.OwnerReferences)
	}
}

func stringData(s *corev1.Secret) map[string]string {
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	return out
}

// Seal produces kubeseal's object, value for value apart from the
// (randomised) ciphertexts.
func TestSealMatchesKubeseal(t *testing.T) {
	var in corev1.Secret
	readYAML(t, "kubeseal-secret.input.yaml", &in)
	var want sealedsecrets.SealedSecret
	readYAML(t, "kubeseal-secret.yaml", &want)
	k := sealedsecretstest.Key(t, "key")
	got, err := sealedsecrets.Seal(k.Public(), &in)
	if err != nil {
		t.Fatal(err)
	}
	if in.Annotations["kubectl.kubernetes.io/last-applied-configuration"] == "" {
		t.Error("Seal modified its input")
	}
	norm := func(ss *sealedsecrets.SealedSecret) map[string]any {
		c := ss.DeepCopy()
		for k := range c.Spec.EncryptedData {
			c.Spec.EncryptedData[k] = "X"
		}
		b, _ := json.Marshal(c)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return m
	}
	if diff := cmp.Diff(norm(&want), norm(got)); diff != "" {
		t.Errorf("Seal differs from kubeseal (-kubeseal +coffer):\n%s", diff)
	}
	s, err := sealedsecrets.Unseal(got, []*sealedsecrets.Key{k}, sealedsecrets.UnsealOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Annotations["kubectl.kubernetes.io/last-applied-configuration"] != "" {
		t.Error("last-applied annotation leaked into the template")
	}
}

func sealed(t testing.TB, k *sealedsecrets.Key, ns, name string, ann map[string]string, data map[string]string) *sealedsecrets.SealedSecret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: ann}, StringData: data}
	ss, err := sealedsecrets.Seal(k.Public(), s)
	if err != nil {
		panic(err)
	}
	return ss
}

func TestScopesOnRenameAndMove(t *testing.T) {
	k := sealedsecretstest.Key(t, "key2")
	keys := []*sealedsecrets.Key{k}
	cases := []struct {
		scope        sealedsecrets.Scope
		renameOK     bool
		moveOK       bool
		annotationOK bool
	}{
		{sealedsecrets.ScopeStrict, false, false, false},
		{sealedsecrets.ScopeNamespaceWide, true, false, false},
		{sealedsecrets.ScopeClusterWide, true, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.scope.String(), func(t *testing.T) {
			ss := sealed(t, k, "ns", "orig", sealedsecrets.SetScope(nil, tc.scope), map[string]string{"a": "1"})
			if got := ss.Scope(); got != tc.scope {
				t.Fatalf("sealed scope %v", got)
			}
			check := func(what string, mut func(*sealedsecrets.SealedSecret), ok bool) {
				c := ss.DeepCopy()
				mut(c)
				s, err := sealedsecrets.Unseal(c, keys, sealedsecrets.UnsealOptions{})
				if ok && err != nil {
					t.Errorf("%s: %v", what, err)
				}
				if !ok {
					if err == nil {
						t.Errorf("%s: unsealed %v", what, stringData(s))
					} else if err.Error() != "no key could decrypt secret (a)" {
						t.Errorf("%s: error %q", what, err)
					}
				}
			}
			check("rename", func(c *sealedsecrets.SealedSecret) { c.Name = "renamed" }, tc.renameOK)
			check("move", func(c *sealedsecrets.SealedSecret) { c.Namespace = "other" }, tc.moveOK)
			// Dropping the scope annotation narrows the label: fails
			// unless it was strict already.
			check("annotations dropped", func(c *sealedsecrets.SealedSecret) { c.Annotations = nil }, tc.scope == sealedsecrets.ScopeStrict)
			// Claiming cluster-wide on a narrower object fails.
			check("widened by annotation", func(c *sealedsecrets.SealedSecret) {
				c.Annotations = sealedsecrets.SetScope(c.Annotations, sealedsecrets.ScopeClusterWide)
			}, tc.annotationOK)
		})
	}
}

func TestUnsealTemplates(t *testing.T) {
	k := sealedsecretstest.Key(t, "key2")
	keys := []*sealedsecrets.Key{k}
	ss := sealed(t, k, "ns", "app", nil, map[string]string{"user": "admin", "pass": "p@ss", "b64": "aGVsbG8="})
	ss.UID = "u"
	immutable := true
	ss.Spec.Template.Type = corev1.SecretTypeOpaque
	ss.Spec.Template.Immutable = &immutable
	ss.Spec.Template.Labels = map[string]string{"l": "v"}
	ss.Spec.Template.Annotations = map[string]string{"a": "v"}
	ss.Spec.Template.Name = "ignored"
	ss.Spec.Template.Namespace = "ignored"
	ss.Spec.Template.Data = map[string]string{
		"dsn":    "postgres://{{ .user }}:{{ .pass | urlquery }}@db/app",
		"conf":   "auth:{{ .user | nindent 2 }}\nhash: {{ sha256sum .pass }}",
		"pass":   "{{ .pass | upper }}",
		"dec":    "{{ b64dec .b64 }}",
		"json":   `{{ dict "u" .user "p" .pass | toJson }}`,
		"dflt":   `{{ .missing | default "fallback" }}|{{ .missing }}`,
		"quoted": `{{ quote .user }} {{ squote .user }} {{ trunc 3 .pass }} {{ replace "@" "a" .pass }}`,
	}
	s, err := sealedsecrets.Unseal(ss, keys, sealedsecrets.UnsealOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"user":   "admin",
		"pass":   "P@SS", // a template item replaces the sealed item
		"b64":    "aGVsbG8=",
		"dsn":    "postgres://admin:p%40ss@db/app",
		"conf":   "auth:\n  admin\nhash: " + sha256hex("p@ss"),
		"dec":    "hello",
		"json":   `{"p":"p@ss","u":"admin"}`,
		"dflt":   "fallback|<no value>",
		"quoted": `"admin" 'admin' p@s pass`,
	}
	if diff := cmp.Diff(want, stringData(s)); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
	if s.Name != "app" || s.Namespace != "ns" || s.Immutable == nil || !*s.Immutable || s.Labels["l"] != "v" || s.Annotations["a"] != "v" {
		t.Errorf("secret metadata %+v immutable %v", s.ObjectMeta, s.Immutable)
	}

	// Template errors name the item, never a value.
	ss.Spec.Template.Data = map[string]string{"bad": "{{ b64dec .pass }}"}
	_, err = sealedsecrets.Unseal(ss, keys, sealedsecrets.UnsealOptions{})
	var te *sealedsecrets.TemplateError
	if !errors.As(err, &te) || te.Item != "bad" || strings.Contains(err.Error(), "p@ss") {
		t.Errorf("template error %v", err)
	}
	ss.Spec.Template.Data = map[string]string{"bad": "{{ nosuchfunc .pass }}"}
	if _, err := sealedsecrets.Unseal(ss, keys, sealedsecrets.UnsealOptions{}); !errors.As(err, &te) {
		t.Errorf("unknown function: %v", err)
	}
	// Verify never renders templates (no oracle over decrypted values).
	if err := sealedsecrets.Verify(ss, keys, sealedsecrets.UnsealOptions{}); err != nil {
		t.Errorf("Verify with a broken template = %v, want nil", err)
	}
}

func TestUnsealOwnerReferencesAndForbiddenType(t *testing.T) {
	k := sealedsecretstest.Key(t, "key2")
	keys := []*sealedsecrets.Key{k}
	ss := sealed(t, k, "ns", "app", nil, map[string]string{"a": "1"})
	ss.Spec.Template.Annotations = map[string]string{sealedsecrets.AnnotationSkipSetOwnerReferences: "true"}
	s, err := sealedsecrets.Unseal(ss, keys, sealedsecrets.UnsealOptions{})
	if err != nil || len(s.OwnerReferences) != 0 {
		t.Errorf("skip-set-owner-references: %v, %+v", err, s)
	}
	ss.Spec.Template.Type = corev1.SecretTypeServiceAccountToken
	ss.Spec.Template.Annotations = map[string]string{corev1.ServiceAccountNameKey: "admin"}
	if _, err := sealedsecrets.Unseal(ss, keys, sealedsecrets.UnsealOptions{}); !errors.Is(err, sealedsecrets.ErrForbiddenType) {
		t.Errorf("service-account-token: %v, want ErrForbiddenType", err)
	}
}

func TestUnsealLegacyData(t *testing.T) {
	k := sealedsecretstest.Key(t, "key2")
	keys := []*sealedsecrets.Key{k}
	inner := `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x","namespace":"y","labels":{"l":"1"}},"data":{"k":"dg=="},"stringData":{"s":"w"}}`
	blob, err := sealedsecrets.Encrypt(k.Public(), []byte(inner), sealedsecrets.Label("ns", "legacy", sealedsecrets.ScopeStrict))
	if err != nil {
		t.Fatal(err)
	}
	ss := &sealedsecrets.SealedSecret{ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: "ns"}, Spec: sealedsecrets.SealedSecretSpec{Data: blob}}
	s, err := sealedsecrets.Unseal(ss, keys, sealedsecrets.UnsealOptions{AcceptLegacyData: true})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"k": "v", "s": "w"}, stringData(s)); diff != "" || s.Name != "legacy" || s.Namespace != "ns" || s.Labels["l"] != "1" {
		t.Errorf("legacy secret %+v (-want +got data):\n%s", s.ObjectMeta, diff)
	}
	if _, err := sealedsecrets.Unseal(ss, keys, sealedsecrets.UnsealOptions{}); !errors.Is(err, sealedsecrets.ErrLegacyData) {
		t.Errorf("legacy data disabled: %v", err)
	}
	ss.Spec.EncryptedData = sealedsecrets.EncryptedData{"a": "b"}
	if _, err := sealedsecrets.Unseal(ss, keys, sealedsecrets.UnsealOptions{AcceptLegacyData: true}); !errors.Is(err, sealedsecrets.ErrLegacyData) {
		t.Errorf("data and encryptedData: %v", err)
	}
	// A legacy blob holding a service-account token is refused too.
	tok, _ := sealedsecrets.Encrypt(k.Public(), []byte(`{"type":"kubernetes.io/service-account-token"}`), sealedsecrets.Label("ns", "legacy", sealedsecrets.ScopeStrict))
	ss.Spec = sealedsecrets.SealedSecretSpec{Data: tok}
	if _, err := sealedsecrets.Unseal(ss, keys, sealedsecrets.UnsealOptions{AcceptLegacyData: true}); !errors.Is(err, sealedsecrets.ErrForbiddenType) {
		t.Errorf("legacy service-account token: %v", err)
	}
}

func TestReencrypt(t *testing.T) {
	oldKey := sealedsecretstest.Key(t, "key2")
	newKey := sealedsecretstest.Key(t, "key")
	both := []*sealedsecrets.Key{newKey, oldKey}
	ss := sealed(t, oldKey, "ns", "app", sealedsecrets.SetScope(nil, sealedsecrets.ScopeNamespaceWide), map[string]string{"a": "1", "b": "2"})
	ss.Spec.Template.Data = map[string]string{"t": "{{ .a }}{{ .b }}"}
	ss.ResourceVersion = "42"
	ss.UID = "u"
	ss.Status = &sealedsecrets.SealedSecretStatus{ObservedGeneration: 3}
	out, err := sealedsecrets.Reencrypt(ss, both, newKey.Public(), sealedsecrets.UnsealOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if out.Status != nil || out.ResourceVersion != "" || out.UID != "" {
		t.Errorf("server fields kept: %+v", out.ObjectMeta)
	}
	if out.Spec.Template.Data["t"] != "{{ .a }}{{ .b }}" {
		t.Errorf("template data changed: %v", out.Spec.Template.Data)
	}
	if out.Scope() != sealedsecrets.ScopeNamespaceWide {
		t.Errorf("scope %v", out.Scope())
	}
	if err := sealedsecrets.Verify(out, []*sealedsecrets.Key{oldKey}, sealedsecrets.UnsealOptions{}); err == nil {
		t.Error("re-encrypted object still opens with the old key only")
	}
	out.Name = "renamed" // namespace-wide: still fine
	s, err := sealedsecrets.Unseal(out, []*sealedsecrets.Key{newKey}, sealedsecrets.UnsealOptions{})
	if err != nil || string(s.Data["t"]) != "12" {
		t.Errorf("Unseal(re-encrypted) = %v, %v", s, err)
	}

	// Widening through template annotations is refused.
	ss.Spec.Template.Annotations = sealedsecrets.SetScope(nil, sealedsecrets.ScopeClusterWide)
	if _, err := sealedsecrets.Reencrypt(ss, both, newKey.Public(), sealedsecrets.UnsealOptions{}); !errors.Is(err, sealedsecrets.ErrScopeWidened) {
		t.Errorf("widened scope: %v, want ErrScopeWidened", err)
	}
	// Items that do not open fail the whole re-encryption, generically.
	ss.Spec.Template.Annotations = nil
	ss.Name = "moved"
	if _, err := sealedsecrets.Reencrypt(ss, both, newKey.Public(), sealedsecrets.UnsealOptions{}); err != nil {
		t.Errorf("namespace-wide rename: %v", err)
	}
	ss.Namespace = "other"
	if _, err := sealedsecrets.Reencrypt(ss, both, newKey.Public(), sealedsecrets.UnsealOptions{}); !errors.Is(err, sealedsecrets.ErrDecrypt) {
		t.Errorf("moved: %v, want ErrDecrypt", err)
	}
}

func TestEncryptedDataLenientDecoding(t *testing.T) {
	var ss sealedsecrets.SealedSecret
	err := json.Unmarshal([]byte(`{"metadata":{"name":"n","namespace":"ns"},"spec":{"encryptedData":{"a":"AgB","b":5,"c":{"x":1}}}}`), &ss)
	if err != nil {
		t.Fatal(err)
	}
	want := sealedsecrets.EncryptedData{"a": "AgB", "b": "", "c": ""}
	if diff := cmp.Diff(want, ss.Spec.EncryptedData); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	k := sealedsecretstest.Key(t, "key2")
	_, err = sealedsecrets.Unseal(&ss, []*sealedsecrets.Key{k}, sealedsecrets.UnsealOptions{})
	if err == nil || err.Error() != "no key could decrypt secret (a, b, c)" {
		t.Errorf("Unseal = %v", err)
	}
}

func sha256hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
