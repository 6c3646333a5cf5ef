package kubetest_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coffer-dev/coffer/internal/kubetest"
)

// TestControlPlane starts etcd and kube-apiserver, writes a Secret through
// the API, finds it in etcd (unencrypted: no EncryptionConfiguration), and
// reads it again after an apiserver restart on the same etcd.
func TestControlPlane(t *testing.T) {
	cp := kubetest.Start(t, kubetest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	v, err := cp.Client.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("ServerVersion: %v", err)
	}
	if v.GitVersion != kubetest.KubeVersion {
		t.Errorf("GitVersion = %q, want %q", v.GitVersion, kubetest.KubeVersion)
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: "default"},
		Data:       map[string][]byte{"k": []byte("canary-d41d8cd98f")},
	}
	if _, err := cp.Client.CoreV1().Secrets("default").Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create secret: %v", err)
	}
	raw, found, err := cp.EtcdGet(ctx, "/registry/secrets/default/plain")
	if err != nil || !found {
		t.Fatalf("EtcdGet = found %v, err %v", found, err)
	}
	if !bytes.HasPrefix(raw, []byte("k8s\x00")) || !bytes.Contains(raw, []byte("canary-d41d8cd98f")) {
		t.Errorf("etcd value = %q, want the unencrypted protobuf with the canary", raw)
	}
	if _, found, err := cp.EtcdGet(ctx, "/registry/secrets/default/absent"); err != nil || found {
		t.Errorf("EtcdGet(absent) = found %v, err %v; want not found", found, err)
	}
	code, body, err := cp.Get(ctx, "/readyz")
	if err != nil || code != 200 {
		t.Errorf("GET /readyz = %d %q, %v", code, body, err)
	}

	cp.RestartAPIServer(t)
	got, err := cp.Client.CoreV1().Secrets("default").Get(ctx, "plain", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get after restart: %v", err)
	}
	if string(got.Data["k"]) != "canary-d41d8cd98f" {
		t.Errorf("after restart Data[k] = %q", got.Data["k"])
	}
}
