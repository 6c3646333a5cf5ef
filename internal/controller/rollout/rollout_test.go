package rollout_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/coffer-dev/coffer/internal/controller"
	"github.com/coffer-dev/coffer/internal/controller/rollout"
	"github.com/coffer-dev/coffer/internal/kubetest"
)

func podTemplate(name string, spec corev1.PodSpec) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}}, Spec: spec}
}

func envFrom(secret string) corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example/app:1",
		EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}}}}}}
}

func volume(secret string) corev1.PodSpec {
	return corev1.PodSpec{
		Containers: []corev1.Container{{Name: "c", Image: "registry.example/app:1"}},
		Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}}},
		}}}},
	}
}

func eventually(t *testing.T, d time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRolloutOnSecretChange runs the rollout controllers against a real
// kube-apiserver: opted-in workloads of the three kinds get the digest,
// which follows changes of the Secrets they use, however they are made.
func TestRolloutOnSecretChange(t *testing.T) {
	cp := kubetest.Start(t, kubetest.Options{})
	ctx := context.Background()
	mcfg := controller.DefaultConfig(func(string) string { return "" })
	mcfg.Kubeconfig = cp.WriteKubeconfig(t)
	mcfg.Namespace = "kube-system"
	mcfg.LeaderElection = false
	mcfg.MetricsAddr, mcfg.HealthAddr = "0", "0"
	mcfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	mgr, err := controller.NewManager(mcfg, controller.Scheme())
	if err != nil {
		t.Fatal(err)
	}
	if err := rollout.Setup(mgr, rollout.Options{}); err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	t.Cleanup(func() { cancel(); <-done })
	c := mgr.GetClient()

	mk := func(o client.Object) {
		t.Helper()
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("create %s: %v", o.GetName(), err)
		}
	}
	// Our own namespace: "default" appears only a moment after the API
	// server is ready.
	const ns = "rollout"
	mk(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	sel := func(name string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}
	}
	optIn := func(v string) map[string]string { return map[string]string{rollout.OptInAnnotation: v} }
	mk(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}, StringData: map[string]string{"password": "one"}})
	mk(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tls"}, StringData: map[string]string{"tls.key": "k1"}})
	mk(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web", Annotations: optIn("true")},
		Spec: appsv1.DeploymentSpec{Selector: sel("web"), Template: podTemplate("web", envFrom("db"))}})
	mk(&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "store", Annotations: optIn("tls")},
		Spec: appsv1.StatefulSetSpec{Selector: sel("store"), Template: podTemplate("store", envFrom("db"))}})
	mk(&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent", Annotations: optIn("true")},
		Spec: appsv1.DaemonSetSpec{Selector: sel("agent"), Template: podTemplate("agent", volume("later"))}})
	mk(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plain"},
		Spec: appsv1.DeploymentSpec{Selector: sel("plain"), Template: podTemplate("plain", envFrom("db"))}})

	hashes := func() map[string]string {
		out := map[string]string{}
		var d appsv1.Deployment
		var s appsv1.StatefulSet
		var ds appsv1.DaemonSet
		var p appsv1.Deployment
		for name, o := range map[string]client.Object{"web": &d, "store": &s, "agent": &ds, "plain": &p} {
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, o); err != nil {
				t.Fatal(err)
			}
		}
		out["web"] = d.Spec.Template.Annotations[rollout.HashAnnotation]
		out["store"] = s.Spec.Template.Annotations[rollout.HashAnnotation]
		out["agent"] = ds.Spec.Template.Annotations[rollout.HashAnnotation]
		out["plain"] = p.Spec.Template.Annotations[rollout.HashAnnotation]
		return out
	}
	var h0 map[string]string
	eventually(t, 30*time.Second, func() error {
		h0 = hashes()
		for _, n := range []string{"web", "store", "agent"} {
			if h0[n] == "" {
				return fmt.Errorf("%s has no digest yet", n)
			}
		}
		return nil
	})
	if h0["plain"] != "" {
		t.Errorf("workload without the opt-in got a digest")
	}

	// changed asserts that only the named workloads' digests move.
	changed := func(prev map[string]string, names ...string) map[string]string {
		t.Helper()
		want := map[string]bool{}
		for _, n := range names {
			want[n] = true
		}
		var cur map[string]string
		eventually(t, 30*time.Second, func() error {
			cur = hashes()
			for _, n := range names {
				if cur[n] == prev[n] {
					return fmt.Errorf("%s digest unchanged", n)
				}
			}
			return nil
		})
		// Give a wrongly triggered update a moment to show up.
		time.Sleep(time.Second)
		cur = hashes()
		for n, h := range cur {
			if !want[n] && h != prev[n] {
				t.Errorf("%s digest changed, but none of its Secrets did", n)
			}
		}
		return cur
	}

	var db corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "db"}, &db); err != nil {
		t.Fatal(err)
	}
	db.Data["password"] = []byte("two")
	if err := c.Update(ctx, &db); err != nil {
		t.Fatal(err)
	}
	// store lists only "tls", so a change of db leaves it alone.
	h1 := changed(h0, "web")

	var tls corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "tls"}, &tls); err != nil {
		t.Fatal(err)
	}
	tls.Data["tls.key"] = []byte("k2")
	if err := c.Update(ctx, &tls); err != nil {
		t.Fatal(err)
	}
	h2 := changed(h1, "store")

	// A Secret that did not exist yet appears.
	mk(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "later"}, StringData: map[string]string{"x": "1"}})
	h3 := changed(h2, "agent")

	// A label change keeps the data, and so the digest.
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "db"}, &db); err != nil {
		t.Fatal(err)
	}
	db.Labels = map[string]string{"touched": "yes"}
	if err := c.Update(ctx, &db); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if got := hashes(); got["web"] != h3["web"] {
		t.Errorf("web digest changed on a label-only update")
	}
}
