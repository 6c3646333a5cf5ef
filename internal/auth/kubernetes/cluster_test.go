package kubernetes_test

import (
	"context"
	"testing"

	"github.com/coffer-dev/coffer/internal/kubetest"
)

// startCluster starts a real control plane (kube-apiserver + etcd).
func startCluster(t *testing.T) *cluster {
	t.Helper()
	cp := kubetest.Start(t, kubetest.Options{})
	return &cluster{cs: cp.Client, host: cp.URL, caPEM: string(cp.CACert), t: t, ctx: context.Background()}
}
