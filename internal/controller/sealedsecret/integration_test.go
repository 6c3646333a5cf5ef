package sealedsecret_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/coffer-dev/coffer/internal/controller/sealedsecret"
	"github.com/coffer-dev/coffer/internal/sealedsecrets"
	"github.com/coffer-dev/coffer/internal/sealedsecrets/sealedsecretstest"
)

// TestSealedSecretsCluster runs every scenario against one real
// kube-apiserver + etcd, each in namespaces of its own.
func TestSealedSecretsCluster(t *testing.T) {
	e := startEnv(t)
	t.Run("KubesealToCoffer", func(t *testing.T) { testKubesealToCoffer(t, e) })
	t.Run("BitnamiKeysThenCoffer", func(t *testing.T) { testBitnamiKeysThenCoffer(t, e) })
	t.Run("BadInput", func(t *testing.T) { testBadInput(t, e) })
	t.Run("AnnotationsAndTemplates", func(t *testing.T) { testAnnotationsAndTemplates(t, e) })
	t.Run("KeyRenewal", func(t *testing.T) { testKeyRenewal(t, e) })
	t.Run("CofferKeysThenBitnami", func(t *testing.T) { testCofferKeysThenBitnami(t, e) })
	t.Run("LeastPrivilegeRBAC", func(t *testing.T) { testLeastPrivilege(t, e) })
	t.Run("ControllerCommand", func(t *testing.T) { testControllerCommand(t, e) })
	t.Run("WrappedKeys", func(t *testing.T) { testWrappedKeys(t, e) })
}

// kubeseal (through the API server's service proxy) -> coffer controller;
// kubeseal and coffer seal --validate / --re-encrypt against it.
func testKubesealToCoffer(t *testing.T, e *env) {
	e.requireHostIP(t)
	ctl, app := e.namespace(t, "ctl"), e.namespace(t, "app")
	c := e.startCoffer(t, nil, ctl, []string{app}, nil)
	sealedsecretstest.ExposeService(t, e.cp.Config, ctl, "sealed-secrets-controller", c.Server.Addr())

	cert, err := e.kubeseal(t, nil, "--controller-namespace", ctl, "--fetch-cert")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cert, c.Keys.Newest().CertPEM()) {
		t.Fatalf("kubeseal --fetch-cert through the proxy = %q, want the newest certificate", cert)
	}
	mine, err := e.cofferSeal(t, nil, "--controller-namespace", ctl, "--fetch-cert")
	if err != nil || !bytes.Equal(mine, cert) {
		t.Fatalf("coffer seal --fetch-cert = %q, %v", mine, err)
	}

	out, err := e.kubeseal(t, secretYAML(app, "db", map[string]string{"password": "hunter2", "user": "app"}, nil), "--controller-namespace", ctl, "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	ss := decodeSS(t, out)
	e.apply(t, ss)
	s := e.waitSecret(t, app, "db", hasData(map[string]string{"password": "hunter2", "user": "app"}))
	got := e.waitSynced(t, app, "db", corev1.ConditionTrue, sealedsecret.ReasonUnsealed)
	if !metav1.IsControlledBy(s, got) {
		t.Errorf("secret owner references %+v, want the SealedSecret as controller", s.OwnerReferences)
	}
	e.eventually(t, 30*time.Second, "Unsealed event", func() error {
		evs, err := e.cs.CoreV1().Events(app).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, ev := range evs.Items {
			if ev.Reason == sealedsecret.EventUnsealed && ev.InvolvedObject.Name == "db" {
				return nil
			}
		}
		return errNotYet
	})

	// --validate: ok for the real object, refused when moved elsewhere.
	if _, err := e.kubeseal(t, out, "--controller-namespace", ctl, "--validate"); err != nil {
		t.Errorf("kubeseal --validate: %v", err)
	}
	if _, err := e.cofferSeal(t, out, "--controller-namespace", ctl, "--validate"); err != nil {
		t.Errorf("coffer seal --validate: %v", err)
	}
	moved := ss.DeepCopy()
	moved.Namespace = "elsewhere"
	movedJSON, _ := json.Marshal(moved)
	if _, err := e.kubeseal(t, movedJSON, "--controller-namespace", ctl, "--validate"); err == nil || !strings.Contains(err.Error(), "unable to decrypt sealed secret") {
		t.Errorf("kubeseal --validate of a moved object: %v", err)
	}
	if _, err := e.cofferSeal(t, movedJSON, "--controller-namespace", ctl, "--validate"); err == nil || !strings.Contains(err.Error(), "unable to decrypt sealed secret") {
		t.Errorf("coffer seal --validate of a moved object: %v", err)
	}

	// --re-encrypt, by both clients: the answer opens, same items.
	for name, run := range map[string]func(*testing.T, []byte, ...string) ([]byte, error){"kubeseal": e.kubeseal, "coffer seal": e.cofferSeal} {
		re, err := run(t, out, "--controller-namespace", ctl, "--re-encrypt")
		if err != nil {
			t.Errorf("%s --re-encrypt: %v", name, err)
			continue
		}
		rs := decodeSS(t, re)
		if rs.Spec.EncryptedData["password"] == ss.Spec.EncryptedData["password"] {
			t.Errorf("%s --re-encrypt returned the same ciphertext", name)
		}
		if err := sealedsecrets.Verify(rs, c.Keys.Keys(), sealedsecrets.UnsealOptions{}); err != nil {
			t.Errorf("%s --re-encrypt output does not open: %v", name, err)
		}
	}

	// coffer seal through the proxy -> coffer controller.
	out2, err := e.cofferSeal(t, secretYAML(app, "api", map[string]string{"token": "t0k"}, nil), "--controller-namespace", ctl)
	if err != nil {
		t.Fatal(err)
	}
	e.apply(t, decodeSS(t, out2))
	e.waitSecret(t, app, "api", hasData(map[string]string{"token": "t0k"}))

	// A deleted Secret comes back at the next resync; here, at once when
	// the SealedSecret changes.
	if err := e.cs.CoreV1().Secrets(app).Delete(context.Background(), "api", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	upd := decodeSS(t, out2)
	more, err := e.cofferSeal(t, secretYAML(app, "api", map[string]string{"extra": "x"}, nil), "--controller-namespace", ctl)
	if err != nil {
		t.Fatal(err)
	}
	upd.Spec.EncryptedData["extra"] = decodeSS(t, more).Spec.EncryptedData["extra"]
	e.apply(t, upd)
	e.waitSecret(t, app, "api", hasData(map[string]string{"token": "t0k", "extra": "x"}))
}

// A cluster whose keys the Bitnami controller made keeps working after the
// switch; SealedSecrets made by coffer seal open in the Bitnami
// controller.
func testBitnamiKeysThenCoffer(t *testing.T, e *env) {
	ctl, app := e.namespace(t, "ctl"), e.namespace(t, "app")
	listen := "127.0.0.1"
	if e.hostIP != "" {
		listen = e.hostIP
	}
	bn := sealedsecretstest.StartBitnami(t, e.cp.Config, sealedsecretstest.BitnamiOptions{Namespace: ctl, Namespaces: []string{app}, ListenHost: listen})
	bitnamiCert := bn.CertPEM(t)
	certFile := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(certFile, bitnamiCert, 0o644); err != nil {
		t.Fatal(err)
	}
	keySecrets, err := e.cs.CoreV1().Secrets(ctl).List(context.Background(), metav1.ListOptions{LabelSelector: sealedsecret.KeyLabel + "=active"})
	if err != nil || len(keySecrets.Items) != 1 {
		t.Fatalf("bitnami key secrets: %v, %v", keySecrets, err)
	}
	bitnamiKey := keySecrets.Items[0].Name

	// kubeseal -> Bitnami.
	s1, err := e.kubeseal(t, secretYAML(app, "one", map[string]string{"a": "1"}, nil), "--cert", certFile)
	if err != nil {
		t.Fatal(err)
	}
	e.apply(t, decodeSS(t, s1))
	e.waitSecret(t, app, "one", hasData(map[string]string{"a": "1"}))

	// coffer seal -> Bitnami: offline with its certificate, and through
	// the service proxy when the Bitnami controller is reachable there.
	s2, err := e.cofferSeal(t, secretYAML(app, "two", map[string]string{"b": "2"}, nil), "--cert", certFile)
	if err != nil {
		t.Fatal(err)
	}
	e.apply(t, decodeSS(t, s2))
	e.waitSecret(t, app, "two", hasData(map[string]string{"b": "2"}))
	if e.hostIP != "" {
		sealedsecretstest.ExposeService(t, e.cp.Config, ctl, "sealed-secrets-controller", bn.Addr)
		s2b, err := e.cofferSeal(t, secretYAML(app, "two-b", map[string]string{"c": "3"}, map[string]string{sealedsecrets.AnnotationNamespaceWide: "true"}), "--controller-namespace", ctl)
		if err != nil {
			t.Fatal(err)
		}
		ss := decodeSS(t, s2b)
		if ss.Scope() != sealedsecrets.ScopeNamespaceWide {
			t.Errorf("scope %v", ss.Scope())
		}
		ss.Name = "renamed-two-b" // namespace-wide: the name may change
		e.apply(t, ss)
		e.waitSecret(t, app, "renamed-two-b", hasData(map[string]string{"c": "3"}))
		if _, err := e.cofferSeal(t, s2, "--controller-namespace", ctl, "--validate"); err != nil {
			t.Errorf("coffer seal --validate against the Bitnami controller: %v", err)
		}
	}
	// Sealed now with the Bitnami certificate, applied after the switch.
	later, err := e.kubeseal(t, secretYAML(app, "three", map[string]string{"c": "3"}, nil), "--cert", certFile)
	if err != nil {
		t.Fatal(err)
	}
	bn.Stop()

	c := e.startCoffer(t, nil, ctl, []string{app}, nil)
	if got := c.Keys.Newest().CertPEM(); !bytes.Equal(got, bitnamiCert) {
		t.Errorf("coffer seals with another certificate than the Bitnami controller's")
	}
	if n := len(c.Keys.Keys()); n != 1 {
		t.Errorf("coffer holds %d keys, want the Bitnami key only (no new key while it is fresh)", n)
	}
	e.apply(t, decodeSS(t, later))
	e.waitSecret(t, app, "three", hasData(map[string]string{"c": "3"}))

	// A Bitnami-made Secret is updated by coffer when its SealedSecret
	// changes.
	one := decodeSS(t, s1)
	extra, err := e.kubeseal(t, secretYAML(app, "one", map[string]string{"added": "yes"}, nil), "--cert", certFile)
	if err != nil {
		t.Fatal(err)
	}
	one.Spec.EncryptedData["added"] = decodeSS(t, extra).Spec.EncryptedData["added"]
	e.apply(t, one)
	e.waitSecret(t, app, "one", hasData(map[string]string{"a": "1", "added": "yes"}))
	e.waitSynced(t, app, "one", corev1.ConditionTrue, sealedsecret.ReasonUnsealed)

	// The key Secret is untouched, and still the only one.
	keys2, _ := e.cs.CoreV1().Secrets(ctl).List(context.Background(), metav1.ListOptions{LabelSelector: sealedsecret.KeyLabel + "=active"})
	if len(keys2.Items) != 1 || keys2.Items[0].Name != bitnamiKey {
		t.Errorf("key secrets after the switch: %d", len(keys2.Items))
	}
}

func testBadInput(t *testing.T, e *env) {
	ctl, app, other := e.namespace(t, "ctl"), e.namespace(t, "app"), e.namespace(t, "other")
	c := e.startCoffer(t, nil, ctl, []string{app, other}, func(o *sealedsecret.Options) { o.ResyncPeriod = time.Second })
	pub := c.Keys.Newest().Public()
	seal := func(ns, name string, data map[string]string, ann map[string]string) *sealedsecrets.SealedSecret {
		ss, err := sealedsecrets.Seal(pub, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: ann}, StringData: data})
		if err != nil {
			t.Fatal(err)
		}
		return ss
	}
	noSecret := func(ns, name string) {
		t.Helper()
		time.Sleep(500 * time.Millisecond)
		if _, err := e.cs.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("secret %s/%s exists (err %v), want none", ns, name, err)
		}
	}

	// Renamed (strict): Synced=False, generic reason and message, no Secret.
	renamed := seal(app, "orig", map[string]string{"k": "v"}, nil)
	renamed.Name = "renamed"
	e.apply(t, renamed)
	got := e.waitSynced(t, app, "renamed", corev1.ConditionFalse, sealedsecret.ReasonUnsealFailed)
	if msg := got.Status.Condition(sealedsecrets.ConditionSynced).Message; msg != "no key could decrypt secret (k)" {
		t.Errorf("message %q", msg)
	}
	noSecret(app, "renamed")

	// Moved to another namespace (strict): the same.
	moved := seal(app, "moved", map[string]string{"k": "v"}, nil)
	moved.Namespace = other
	e.apply(t, moved)
	got = e.waitSynced(t, other, "moved", corev1.ConditionFalse, sealedsecret.ReasonUnsealFailed)
	if msg := got.Status.Condition(sealedsecrets.ConditionSynced).Message; msg != "no key could decrypt secret (k)" {
		t.Errorf("message %q", msg)
	}
	noSecret(other, "moved")

	// A tampered value reads exactly like a wrong name.
	tampered := seal(app, "tampered", map[string]string{"k": "v"}, nil)
	raw, _ := base64.StdEncoding.DecodeString(tampered.Spec.EncryptedData["k"])
	raw[len(raw)-3] ^= 1
	tampered.Spec.EncryptedData["k"] = base64.StdEncoding.EncodeToString(raw)
	e.apply(t, tampered)
	got = e.waitSynced(t, app, "tampered", corev1.ConditionFalse, sealedsecret.ReasonUnsealFailed)
	if msg := got.Status.Condition(sealedsecrets.ConditionSynced).Message; msg != "no key could decrypt secret (k)" {
		t.Errorf("message %q", msg)
	}

	// Existing Secret, not ours, not annotated: not overwritten; status
	// says why.
	if _, err := e.cs.CoreV1().Secrets(app).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "taken", Labels: map[string]string{"mine": "yes"}},
		StringData: map[string]string{"orig": "value"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.apply(t, seal(app, "taken", map[string]string{"new": "value"}, nil))
	got = e.waitSynced(t, app, "taken", corev1.ConditionFalse, sealedsecret.ReasonNotManaged)
	if msg := got.Status.Condition(sealedsecrets.ConditionSynced).Message; !strings.Contains(msg, "already exists and is not managed by SealedSecret") {
		t.Errorf("message %q", msg)
	}
	s, _ := e.cs.CoreV1().Secrets(app).Get(context.Background(), "taken", metav1.GetOptions{})
	if string(s.Data["orig"]) != "value" || len(s.Data) != 1 || len(s.OwnerReferences) != 0 {
		t.Errorf("unmanaged secret was changed: %v %+v", s.Data, s.OwnerReferences)
	}
	// Annotated managed: taken over at the next resync.
	s.Annotations = map[string]string{sealedsecrets.AnnotationManaged: "true"}
	if _, err := e.cs.CoreV1().Secrets(app).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	adopted := e.waitSecret(t, app, "taken", hasData(map[string]string{"new": "value"}))
	if _, ok := adopted.Data["orig"]; ok || len(adopted.OwnerReferences) != 1 || adopted.Labels["mine"] != "" {
		t.Errorf("adopted secret %v labels %v owners %+v: want replaced and owned", adopted.Data, adopted.Labels, adopted.OwnerReferences)
	}
	e.waitSynced(t, app, "taken", corev1.ConditionTrue, sealedsecret.ReasonUnsealed)

	// Service-account token type: refused, nothing written.
	sa := seal(app, "satoken", map[string]string{"token": "x"}, nil)
	sa.Spec.Template.Type = corev1.SecretTypeServiceAccountToken
	sa.Spec.Template.Annotations = map[string]string{corev1.ServiceAccountNameKey: "default"}
	e.apply(t, sa)
	e.waitSynced(t, app, "satoken", corev1.ConditionFalse, sealedsecret.ReasonForbiddenType)
	noSecret(app, "satoken")
	// Nor may an existing token Secret be taken over.
	if _, err := e.cs.CoreV1().ServiceAccounts(app).Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cs.CoreV1().Secrets(app).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "robot-token", Annotations: map[string]string{corev1.ServiceAccountNameKey: "robot", sealedsecrets.AnnotationManaged: "true"}},
		Type:       corev1.SecretTypeServiceAccountToken,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.apply(t, seal(app, "robot-token", map[string]string{"token": "forged"}, nil))
	e.waitSynced(t, app, "robot-token", corev1.ConditionFalse, sealedsecret.ReasonForbiddenType)

	// A template that does not render: its own reason, no Secret.
	bad := seal(app, "badtemplate", map[string]string{"k": "v"}, nil)
	bad.Spec.Template.Data = map[string]string{"x": "{{ range 1000000000 }}{{ end }}"}
	e.apply(t, bad)
	e.waitSynced(t, app, "badtemplate", corev1.ConditionFalse, sealedsecret.ReasonTemplateFailed)
	noSecret(app, "badtemplate")

	// No secret value reached the logs.
	for _, v := range []string{"forged", "hunter2"} {
		if strings.Contains(c.logs.String(), v) {
			t.Errorf("log contains a secret value %q", v)
		}
	}
}

func testAnnotationsAndTemplates(t *testing.T, e *env) {
	ctl, app := e.namespace(t, "ctl"), e.namespace(t, "app")
	c := e.startCoffer(t, nil, ctl, []string{app}, func(o *sealedsecret.Options) { o.ResyncPeriod = time.Second })
	pub := c.Keys.Newest().Public()
	ctx := context.Background()

	// Templates, labels, annotations, type, immutable.
	ss, err := sealedsecrets.Seal(pub, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: app, Name: "tmpl", Labels: map[string]string{"l": "1"}, Annotations: map[string]string{"a": "1"}},
		Type:       corev1.SecretTypeBasicAuth,
		StringData: map[string]string{"username": "admin", "password": "p@ss"},
	})
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	ss.Spec.Template.Immutable = &yes
	ss.Spec.Template.Data = map[string]string{"url": "postgres://{{ .username }}:{{ .password | urlquery }}@db/x", "b64": "{{ .password | b64enc }}"}
	e.apply(t, ss)
	s := e.waitSecret(t, app, "tmpl", hasData(map[string]string{"username": "admin", "url": "postgres://admin:p%40ss@db/x", "b64": "cEBzcw=="}))
	if s.Type != corev1.SecretTypeBasicAuth || s.Labels["l"] != "1" || s.Annotations["a"] != "1" || s.Immutable == nil || !*s.Immutable {
		t.Errorf("secret %+v type %s immutable %v", s.ObjectMeta, s.Type, s.Immutable)
	}
	// Immutable and changed: refused with its own reason.
	ss2, _ := sealedsecrets.Seal(pub, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: app, Name: "tmpl"}, StringData: map[string]string{"password": "changed"}})
	cur := &sealedsecrets.SealedSecret{}
	if err := e.c.Get(ctx, client.ObjectKey{Namespace: app, Name: "tmpl"}, cur); err != nil {
		t.Fatal(err)
	}
	cur.Spec.EncryptedData["password"] = ss2.Spec.EncryptedData["password"]
	e.apply(t, cur)
	e.waitSynced(t, app, "tmpl", corev1.ConditionFalse, sealedsecret.ReasonImmutable)

	// skip-set-owner-references.
	free, _ := sealedsecrets.Seal(pub, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: app, Name: "free", Annotations: map[string]string{sealedsecrets.AnnotationSkipSetOwnerReferences: "true"}}, StringData: map[string]string{"k": "v"}})
	e.apply(t, free)
	if s := e.waitSecret(t, app, "free", hasData(map[string]string{"k": "v"})); len(s.OwnerReferences) != 0 {
		t.Errorf("owner references %+v despite skip-set-owner-references", s.OwnerReferences)
	}

	// patch: an existing Secret annotated patch keeps its other items,
	// labels and annotations, and gets no owner reference.
	if _, err := e.cs.CoreV1().Secrets(app).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "patched", Labels: map[string]string{"keep": "l"}, Annotations: map[string]string{sealedsecrets.AnnotationPatch: "true", "keep": "a"}},
		StringData: map[string]string{"kept": "1", "over": "old"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p, _ := sealedsecrets.Seal(pub, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: app, Name: "patched", Labels: map[string]string{"new": "l"}}, StringData: map[string]string{"over": "new", "added": "2"}})
	e.apply(t, p)
	ps := e.waitSecret(t, app, "patched", hasData(map[string]string{"kept": "1", "over": "new", "added": "2"}))
	if ps.Labels["keep"] != "l" || ps.Labels["new"] != "l" || ps.Annotations["keep"] != "a" || len(ps.OwnerReferences) != 0 {
		t.Errorf("patched secret labels %v annotations %v owners %+v", ps.Labels, ps.Annotations, ps.OwnerReferences)
	}

	// Legacy spec.data (a whole Secret sealed as one blob).
	inner, _ := json.Marshal(corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: app}, Data: map[string][]byte{"old": []byte("style")}})
	blob, _ := sealedsecrets.Encrypt(pub, inner, sealedsecrets.Label(app, "legacy", sealedsecrets.ScopeStrict))
	e.apply(t, &sealedsecrets.SealedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: app, Name: "legacy"}, Spec: sealedsecrets.SealedSecretSpec{Data: blob, EncryptedData: sealedsecrets.EncryptedData{}}})
	e.waitSecret(t, app, "legacy", hasData(map[string]string{"old": "style"}))

	// Deleted Secret: recreated by the resync.
	if err := e.cs.CoreV1().Secrets(app).Delete(ctx, "free", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitSecret(t, app, "free", hasData(map[string]string{"k": "v"}))
}

// Renewal makes a new sealing key and keeps the old ones.
func testKeyRenewal(t *testing.T, e *env) {
	ctl, app := e.namespace(t, "ctl"), e.namespace(t, "app")
	c := e.startCoffer(t, nil, ctl, []string{app}, func(o *sealedsecret.Options) { o.KeyRenewPeriod = 3 * time.Second })
	first := c.Keys.Newest()
	old, _ := sealedsecrets.Seal(first.Public(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: app, Name: "old"}, StringData: map[string]string{"k": "old"}})
	e.eventually(t, 60*time.Second, "a renewed key", func() error {
		if n := len(c.Keys.Keys()); n < 2 {
			return errNotYet
		}
		return nil
	})
	c.Stop()
	// Another controller (a restart) reads both keys back from their
	// Secrets, in Bitnami's format.
	list, err := e.cs.CoreV1().Secrets(ctl).List(context.Background(), metav1.ListOptions{LabelSelector: sealedsecret.KeyLabel + "=active"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) < 2 {
		t.Fatalf("%d key secrets", len(list.Items))
	}
	for _, s := range list.Items {
		if s.Type != corev1.SecretTypeTLS || !strings.HasPrefix(s.Name, sealedsecret.DefaultKeyPrefix) || !bytes.HasPrefix(s.Data["tls.key"], []byte("-----BEGIN RSA PRIVATE KEY-----")) {
			t.Errorf("key secret %s: type %s", s.Name, s.Type)
		}
	}
	c2 := e.startCoffer(t, nil, ctl, []string{app}, func(o *sealedsecret.Options) { o.KeyRenewPeriod = time.Hour })
	if c2.Keys.Newest().Equal(first) {
		t.Error("the oldest key still seals")
	}
	e.apply(t, old)
	e.waitSecret(t, app, "old", hasData(map[string]string{"k": "old"}))
	newer, _ := sealedsecrets.Seal(c2.Keys.Newest().Public(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: app, Name: "new"}, StringData: map[string]string{"k": "new"}})
	e.apply(t, newer)
	e.waitSecret(t, app, "new", hasData(map[string]string{"k": "new"}))
}

// The controller works as a service account holding only the RBAC of
// deploy/controller/rbac-sealedsecrets.yaml (namespace and names
// adjusted), and cannot list Secrets anywhere but its own namespace.
func testLeastPrivilege(t *testing.T, e *env) {
	ctl, app := e.namespace(t, "ctl"), e.namespace(t, "app")
	ctx := context.Background()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "deploy", "controller", "rbac-sealedsecrets.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sa := "coffer-controller"
	if _, err := e.cs.CoreV1().ServiceAccounts(ctl).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		doc = strings.ReplaceAll(doc, "namespace: kube-system", "namespace: "+ctl)
		switch meta.Kind {
		case "ClusterRole":
			var cr rbacv1.ClusterRole
			mustYAML(t, doc, &cr)
			cr.Name += "-" + ctl
			if _, err := e.cs.RbacV1().ClusterRoles().Create(ctx, &cr, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		case "ClusterRoleBinding":
			var crb rbacv1.ClusterRoleBinding
			mustYAML(t, doc, &crb)
			crb.Name += "-" + ctl
			crb.RoleRef.Name += "-" + ctl
			if _, err := e.cs.RbacV1().ClusterRoleBindings().Create(ctx, &crb, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		case "Role":
			var r rbacv1.Role
			mustYAML(t, doc, &r)
			if _, err := e.cs.RbacV1().Roles(ctl).Create(ctx, &r, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		case "RoleBinding":
			var rb rbacv1.RoleBinding
			mustYAML(t, doc, &rb)
			if _, err := e.cs.RbacV1().RoleBindings(ctl).Create(ctx, &rb, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("unexpected kind %q in the RBAC manifest", meta.Kind)
		}
	}
	exp := int64(3600)
	tr, err := e.cs.CoreV1().ServiceAccounts(ctl).CreateToken(ctx, sa, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	asSA := &rest.Config{Host: e.cp.URL, BearerToken: tr.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAFile: e.cp.CACertFile}}

	saCS, err := kubernetes.NewForConfig(asSA)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{app, ""} {
		review, err := saCS.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "list", Resource: "secrets"},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if review.Status.Allowed {
			t.Errorf("the controller's service account may list secrets in %q", ns)
		}
	}

	c := e.startCoffer(t, asSA, ctl, []string{app}, nil)
	ss, _ := sealedsecrets.Seal(c.Keys.Newest().Public(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: app, Name: "rbac"}, StringData: map[string]string{"k": "v"}})
	e.apply(t, ss)
	e.waitSecret(t, app, "rbac", hasData(map[string]string{"k": "v"}))
	e.waitSynced(t, app, "rbac", corev1.ConditionTrue, sealedsecret.ReasonUnsealed)
	if strings.Contains(c.logs.String(), "forbidden") {
		t.Errorf("forbidden requests in the log:\n%s", c.logs)
	}
}

func mustYAML(t *testing.T, doc string, v any) {
	t.Helper()
	if err := yaml.Unmarshal([]byte(doc), v); err != nil {
		t.Fatal(err)
	}
}

// Going back: the Bitnami controller reads the keys Coffer made (two, after
// a renewal), seals with the newest and opens what the older one sealed.
func testCofferKeysThenBitnami(t *testing.T, e *env) {
	ctl, app := e.namespace(t, "ctl"), e.namespace(t, "app")
	c := e.startCoffer(t, nil, ctl, []string{app}, func(o *sealedsecret.Options) { o.KeyRenewPeriod = 2 * time.Second })
	first := c.Keys.Newest()
	e.eventually(t, 60*time.Second, "a renewed key", func() error {
		if len(c.Keys.Keys()) < 2 {
			return errNotYet
		}
		return nil
	})
	c.Stop()
	newest := c.Keys.Newest()
	old, _ := sealedsecrets.Seal(first.Public(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: app, Name: "by-first-key"}, StringData: map[string]string{"k": "1"}})

	bn := sealedsecretstest.StartBitnami(t, e.cp.Config, sealedsecretstest.BitnamiOptions{Namespace: ctl, Namespaces: []string{app}, Args: []string{"--key-renew-period=0"}})
	if got := bn.CertPEM(t); !bytes.Equal(got, newest.CertPEM()) {
		t.Errorf("the Bitnami controller seals with another certificate than Coffer's newest")
	}
	e.apply(t, old)
	e.waitSecret(t, app, "by-first-key", hasData(map[string]string{"k": "1"}))
	list, _ := e.cs.CoreV1().Secrets(ctl).List(context.Background(), metav1.ListOptions{LabelSelector: sealedsecret.KeyLabel + "=active"})
	if len(list.Items) != len(c.Keys.Keys()) {
		t.Errorf("the Bitnami controller made a key of its own: %d key secrets", len(list.Items))
	}
}
