package secretsync_test

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/coffer-dev/coffer/internal/controller/rollout"
	"github.com/coffer-dev/coffer/internal/controller/secretsync"
	"github.com/coffer-dev/coffer/internal/controller/secretsync/v1alpha1"
)

func deployment(ns, name, secret string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{rollout.OptInAnnotation: "true"}},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "registry.example/app:1",
					EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}}},
				}}},
			},
		},
	}
}

func (e *env) podHash(ns, name string) string {
	var d appsv1.Deployment
	if err := e.c.Get(e.ctx, client.ObjectKey{Namespace: ns, Name: name}, &d); err != nil {
		e.t.Fatal(err)
	}
	return d.Spec.Template.Annotations[rollout.HashAnnotation]
}

// secretVersions maps the Secrets of ns to their resource versions.
func (e *env) secretVersions(ns string) map[string]string {
	e.t.Helper()
	var list corev1.SecretList
	if err := e.c.List(e.ctx, &list, client.InNamespace(ns)); err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range list.Items {
		out[s.Name] = s.ResourceVersion
	}
	return out
}

// TestSecretSync runs the SecretSync and rollout controllers against a
// real kube-apiserver and a real Coffer server.
func TestSecretSync(t *testing.T) {
	e := newEnv(t)
	e.tenant("team-a")
	e.tenant("team-b")
	e.startController(secretsync.Options{})

	t.Run("value change reaches the Secret and rolls the Deployment", func(t *testing.T) {
		e := e.with(t)
		e.kvPut("team-a/db", map[string]any{"user": "app", "password": "p1", "port": 5432})
		e.create(deployment("team-a", "web", "db-creds"))
		ss := kvSync("team-a", "db", "team-a/db", 2*time.Second)
		ss.Spec.Target = v1alpha1.Target{
			Name:   "db-creds",
			Labels: map[string]string{"app": "web"},
			Template: &v1alpha1.Template{
				Data:        map[string]string{"DSN": "postgres://{{ .user }}:{{ .password }}@db:{{ .port }}/app"},
				MergePolicy: "Merge",
			},
		}
		e.create(ss)
		s := e.waitSecretValue("team-a", "db-creds", "password", "p1", 30*time.Second)
		if got := string(s.Data["DSN"]); got != "postgres://app:p1@db:5432/app" {
			t.Errorf("DSN = %q", got)
		}
		if s.Labels["app"] != "web" || s.Type != corev1.SecretTypeOpaque {
			t.Errorf("labels %v, type %s", s.Labels, s.Type)
		}
		ref := metav1.GetControllerOf(s)
		if ref == nil || ref.Kind != "SecretSync" || ref.Name != "db" {
			t.Errorf("controller of the Secret = %+v, want SecretSync db (creationPolicy Owner)", ref)
		}
		got := e.waitReady("team-a", "db", metav1.ConditionTrue, v1alpha1.ReasonSynced, "")
		if got.Status.SourceVersion != 1 || got.Status.RefreshTime == nil {
			t.Errorf("status = %+v", got.Status)
		}
		var h1 string
		eventually(t, 30*time.Second, func() error {
			if h1 = e.podHash("team-a", "web"); h1 == "" {
				return fmt.Errorf("no %s on the pod template yet", rollout.HashAnnotation)
			}
			return nil
		})

		e.kvPut("team-a/db", map[string]any{"user": "app", "password": "p2", "port": 5432})
		e.waitSecretValue("team-a", "db-creds", "password", "p2", 30*time.Second)
		eventually(t, 30*time.Second, func() error {
			if h := e.podHash("team-a", "web"); h == h1 {
				return fmt.Errorf("pod template hash still %s", h)
			}
			return nil
		})
	})

	t.Run("force-sync", func(t *testing.T) {
		e := e.with(t)
		e.kvPut("team-a/forced", map[string]any{"v": "one"})
		e.create(kvSync("team-a", "forced", "team-a/forced", time.Hour))
		e.waitSecretValue("team-a", "forced", "v", "one", 30*time.Second)
		e.kvPut("team-a/forced", map[string]any{"v": "two"})
		ss := e.sync("team-a", "forced")
		ss.Annotations = map[string]string{v1alpha1.ForceSyncAnnotation: "now-1"}
		if err := e.c.Update(e.ctx, ss); err != nil {
			t.Fatal(err)
		}
		e.waitSecretValue("team-a", "forced", "v", "two", 30*time.Second)
		eventually(t, 30*time.Second, func() error {
			if got := e.sync("team-a", "forced").Status.ForceSyncRequest; got != "now-1" {
				return fmt.Errorf("status.forceSyncRequest = %q", got)
			}
			return nil
		})
	})

	t.Run("path the role cannot read", func(t *testing.T) {
		e := e.with(t)
		e.kvPut("team-b/private", map[string]any{"token": "team-b-only"})
		before := e.secretVersions("team-a")
		e.create(kvSync("team-a", "snoop", "team-b/private", time.Minute))
		e.waitReady("team-a", "snoop", metav1.ConditionFalse, v1alpha1.ReasonSyncedError, "permission denied")
		if _, err := e.secret("team-a", "snoop"); !apierrors.IsNotFound(err) {
			t.Errorf("Secret team-a/snoop: err = %v, want not found", err)
		}
		if after := e.secretVersions("team-a"); !maps.Equal(before, after) {
			t.Errorf("Secrets of team-a changed: %v -> %v", before, after)
		}
		var events corev1.EventList
		eventually(t, 10*time.Second, func() error {
			if err := e.c.List(e.ctx, &events, client.InNamespace("team-a")); err != nil {
				return err
			}
			for _, ev := range events.Items {
				if ev.InvolvedObject.Name == "snoop" && ev.Reason == "SyncFailed" && strings.Contains(ev.Message, "permission denied") {
					return nil
				}
			}
			return fmt.Errorf("no SyncFailed event for snoop")
		})
	})

	t.Run("cross-namespace attempts", func(t *testing.T) {
		e := e.with(t)
		e.kvPut("team-a/shared", map[string]any{"k": "v"})
		beforeA, beforeB := e.secretVersions("team-a"), e.secretVersions("team-b")
		// team-b borrows team-a's role: the login, as team-b/app, is refused.
		ss := kvSync("team-b", "borrow", "team-a/shared", time.Minute)
		ss.Spec.Coffer.Auth.Kubernetes.Role = "team-a"
		e.create(ss)
		e.waitReady("team-b", "borrow", metav1.ConditionFalse, v1alpha1.ReasonSyncedError, "namespace not authorized")
		// A service account of another namespace cannot even be named.
		ss = kvSync("team-b", "foreign-sa", "team-a/shared", time.Minute)
		ss.Spec.Coffer.Auth.Kubernetes.ServiceAccountName = "team-a:app"
		e.create(ss)
		e.waitReady("team-b", "foreign-sa", metav1.ConditionFalse, v1alpha1.ReasonSyncedError, "not a service account name in this namespace")
		if a, b := e.secretVersions("team-a"), e.secretVersions("team-b"); !maps.Equal(beforeA, a) || !maps.Equal(beforeB, b) {
			t.Errorf("Secrets changed: team-a %v -> %v, team-b %v -> %v", beforeA, a, beforeB, b)
		}
	})

	t.Run("deletionPolicy Delete", func(t *testing.T) {
		e := e.with(t)
		e.kvPut("team-a/temp", map[string]any{"x": "1"})
		ss := kvSync("team-a", "temp", "team-a/temp", 2*time.Second)
		ss.Spec.Target.DeletionPolicy = v1alpha1.DeletionDelete
		e.create(ss)
		e.waitSecretValue("team-a", "temp", "x", "1", 30*time.Second)
		if _, err := e.root.Logical().Delete("secret/metadata/team-a/temp"); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, func() error {
			if _, err := e.secret("team-a", "temp"); !apierrors.IsNotFound(err) {
				return fmt.Errorf("Secret still there (err %v)", err)
			}
			return nil
		})
		e.waitReady("team-a", "temp", metav1.ConditionFalse, v1alpha1.ReasonSecretDeleted, "not found")
	})

	t.Run("existing Secret not managed", func(t *testing.T) {
		e := e.with(t)
		e.kvPut("team-a/taken", map[string]any{"x": "coffer"})
		e.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "taken"}, StringData: map[string]string{"x": "mine"}})
		e.create(kvSync("team-a", "taken", "team-a/taken", time.Minute))
		e.waitReady("team-a", "taken", metav1.ConditionFalse, v1alpha1.ReasonSyncedError, "not managed by this SecretSync")
		if s, _ := e.secret("team-a", "taken"); string(s.Data["x"]) != "mine" {
			t.Errorf("unmanaged Secret overwritten: x=%q", s.Data["x"])
		}
	})

	t.Run("Merge and Orphan", func(t *testing.T) {
		e := e.with(t)
		e.kvPut("team-a/merge", map[string]any{"added": "from-coffer"})
		e.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "merged",
			Annotations: map[string]string{v1alpha1.AllowMergeAnnotation: "true"}}, StringData: map[string]string{"kept": "local"}})
		ss := kvSync("team-a", "merge", "team-a/merge", time.Minute)
		ss.Spec.Target = v1alpha1.Target{Name: "merged", CreationPolicy: v1alpha1.CreationMerge}
		e.create(ss)
		s := e.waitSecretValue("team-a", "merged", "added", "from-coffer", 30*time.Second)
		if string(s.Data["kept"]) != "local" || metav1.GetControllerOf(s) != nil {
			t.Errorf("merged Secret: kept=%q owner=%v", s.Data["kept"], metav1.GetControllerOf(s))
		}
		// Without the opt-in annotation Merge refuses.
		e.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "closed"}, StringData: map[string]string{"kept": "local"}})
		ss = kvSync("team-a", "merge-closed", "team-a/merge", time.Minute)
		ss.Spec.Target = v1alpha1.Target{Name: "closed", CreationPolicy: v1alpha1.CreationMerge}
		e.create(ss)
		e.waitReady("team-a", "merge-closed", metav1.ConditionFalse, v1alpha1.ReasonSyncedError, "does not allow merging")

		ss = kvSync("team-a", "orphan", "team-a/merge", time.Minute)
		ss.Spec.Target = v1alpha1.Target{CreationPolicy: v1alpha1.CreationOrphan}
		e.create(ss)
		s = e.waitSecretValue("team-a", "orphan", "added", "from-coffer", 30*time.Second)
		if len(s.OwnerReferences) != 0 || s.Annotations[v1alpha1.ManagedByAnnotation] != "orphan" {
			t.Errorf("orphan Secret: owners %v annotations %v", s.OwnerReferences, s.Annotations)
		}
	})

	t.Run("edited Secret is put back", func(t *testing.T) {
		e := e.with(t)
		e.kvPut("team-a/drift", map[string]any{"v": "coffer"})
		e.create(kvSync("team-a", "drift", "team-a/drift", time.Hour))
		s := e.waitSecretValue("team-a", "drift", "v", "coffer", 30*time.Second)
		s.Data["v"] = []byte("tampered")
		if err := e.c.Update(e.ctx, s); err != nil {
			t.Fatal(err)
		}
		e.waitSecretValue("team-a", "drift", "v", "coffer", 30*time.Second)
	})

	t.Run("service-account-token type refused", func(t *testing.T) {
		e := e.with(t)
		ss := kvSync("team-a", "satoken", "team-a/db", time.Minute)
		ss.Spec.Target.Type = corev1.SecretTypeServiceAccountToken
		err := e.c.Create(e.ctx, ss)
		if err == nil || !strings.Contains(err.Error(), "service-account-token") {
			t.Fatalf("create SecretSync with type %s: err = %v, want refused", corev1.SecretTypeServiceAccountToken, err)
		}
	})
}

// TestClusterSecretSync stamps SecretSyncs into selected namespaces, each
// logging in with its own namespace's service account: a namespace the
// role does not bind gets nothing.
func TestClusterSecretSync(t *testing.T) {
	e := newEnv(t)
	for _, ns := range []string{"team-a", "team-b", "ops"} {
		e.tenant(ns)
	}
	e.kvPut("shared/ca", map[string]any{"ca.crt": "the CA"})
	if err := e.root.Sys().PutPolicy("shared-ca", `path "secret/data/shared/ca" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	e.write("auth/kubernetes/role/shared", map[string]any{
		"bound_service_account_names": "app", "bound_service_account_namespaces": "team-*",
		"audience": "coffer", "token_policies": "shared-ca",
	})
	e.startController(secretsync.Options{ClusterWide: true})
	for _, ns := range []string{"team-a", "team-b"} {
		e.label(ns, "shared-ca", "yes")
	}
	spec := kvSync("", "", "shared/ca", time.Minute).Spec
	spec.Coffer.Auth.Kubernetes.Role = "shared"
	css := &v1alpha1.ClusterSecretSync{
		ObjectMeta: metav1.ObjectMeta{Name: "shared-ca"},
		Spec: v1alpha1.ClusterSecretSyncSpec{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"shared-ca": "yes"}},
			Namespaces:        []string{"ops"},
			SecretSyncSpec:    spec,
		},
	}
	e.create(css)
	for _, ns := range []string{"team-a", "team-b"} {
		e.waitSecretValue(ns, "shared-ca", "ca.crt", "the CA", 30*time.Second)
		if ref := metav1.GetControllerOf(e.sync(ns, "shared-ca")); ref == nil || ref.Kind != "ClusterSecretSync" || ref.UID != css.UID {
			t.Errorf("SecretSync %s/shared-ca controller = %+v", ns, ref)
		}
	}
	e.waitReady("ops", "shared-ca", metav1.ConditionFalse, v1alpha1.ReasonSyncedError, "namespace not authorized")
	if _, err := e.secret("ops", "shared-ca"); !apierrors.IsNotFound(err) {
		t.Errorf("Secret ops/shared-ca: err = %v, want not found", err)
	}
	eventually(t, 30*time.Second, func() error {
		var got v1alpha1.ClusterSecretSync
		if err := e.c.Get(e.ctx, client.ObjectKey{Name: "shared-ca"}, &got); err != nil {
			return err
		}
		if strings.Join(got.Status.ProvisionedNamespaces, ",") != "ops,team-a,team-b" {
			return fmt.Errorf("provisioned = %v", got.Status.ProvisionedNamespaces)
		}
		if len(got.Status.FailedNamespaces) != 1 || got.Status.FailedNamespaces[0].Namespace != "ops" {
			return fmt.Errorf("failed = %+v", got.Status.FailedNamespaces)
		}
		return nil
	})
	// A namespace that stops matching loses its SecretSync.
	e.label("team-b", "shared-ca", "")
	eventually(t, 30*time.Second, func() error {
		var ss v1alpha1.SecretSync
		err := e.c.Get(e.ctx, client.ObjectKey{Namespace: "team-b", Name: "shared-ca"}, &ss)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("SecretSync team-b/shared-ca still there (err %v)", err)
	})
}

// label sets (or, with an empty value, removes) a namespace label.
func (e *env) label(ns, key, value string) {
	e.t.Helper()
	var n corev1.Namespace
	if err := e.c.Get(e.ctx, client.ObjectKey{Name: ns}, &n); err != nil {
		e.t.Fatal(err)
	}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	if value == "" {
		delete(n.Labels, key)
	} else {
		n.Labels[key] = value
	}
	if err := e.c.Update(e.ctx, &n); err != nil {
		e.t.Fatal(err)
	}
}
