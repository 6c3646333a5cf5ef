package kmsplugin_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kmsapi "k8s.io/kms/apis/v2"

	"github.com/coffer-dev/coffer/internal/coffertest"
	"github.com/coffer-dev/coffer/internal/kmsplugin"
	"github.com/coffer-dev/coffer/internal/kubetest"
)

// BenchmarkPlugin measures Encrypt and Decrypt of a 32-byte DEK seed (what
// kube-apiserver sends) through a real gRPC client over the unix socket,
// with the local key and with a transit key of a real in-process Coffer
// dev server. "seq" is one request at a time (latency: ns/op, p50, p99);
// "par16" is 16 concurrent clients (throughput: req/s).
func BenchmarkPlugin(b *testing.B) {
	seed := make([]byte, 32)
	backends := []struct {
		name string
		kek  func(b *testing.B) kmsplugin.KEK
	}{
		{"local", func(b *testing.B) kmsplugin.KEK {
			p := filepath.Join(b.TempDir(), "key")
			if err := kmsplugin.GenerateKeyFile(p); err != nil {
				b.Fatal(err)
			}
			k, err := kmsplugin.LoadLocalKey(p)
			if err != nil {
				b.Fatal(err)
			}
			return k
		}},
		{"transit", func(b *testing.B) kmsplugin.KEK {
			return startCoffer(b).transit(b, kmsplugin.TransitConfig{})
		}},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			kc := serve(b, be.kek(b), kmsplugin.Options{})
			ctx := context.Background() // the benchmark may run for longer than any deadline
			enc, err := kc.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed})
			if err != nil {
				b.Fatal(err)
			}
			dreq := &kmsapi.DecryptRequest{Ciphertext: enc.Ciphertext, KeyId: enc.KeyId, Annotations: enc.Annotations}
			ops := map[string]func() error{
				"Encrypt": func() error { _, err := kc.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: seed}); return err },
				"Decrypt": func() error { _, err := kc.Decrypt(ctx, dreq); return err },
			}
			for _, name := range []string{"Encrypt", "Decrypt"} {
				op := ops[name]
				b.Run(name+"/seq", func(b *testing.B) {
					lat := make([]time.Duration, 0, b.N)
					for b.Loop() {
						start := time.Now()
						if err := op(); err != nil {
							b.Fatal(err)
						}
						lat = append(lat, time.Since(start))
					}
					slices.Sort(lat)
					b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
					b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
				})
				b.Run(name+"/par16", func(b *testing.B) {
					b.SetParallelism(8) // x GOMAXPROCS (2) = 16 concurrent clients
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := op(); err != nil {
								b.Error(err)
								return
							}
						}
					})
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
				})
			}
		})
	}
}

// BenchmarkAPIServerSecretCreate creates Secrets through real
// kube-apiservers (16 concurrent clients, one op = one Secret of 1 KiB):
// one whose EncryptionConfiguration encrypts Secrets with `coffer
// kms-plugin` on a transit key of a real Coffer server, one with the plugin
// on a local key, and one with identity (no encryption), started in the
// same run so that the ratio is meaningful on a shared machine. Run with
// -benchtime 5000x.
func BenchmarkAPIServerSecretCreate(b *testing.B) {
	if _, _, ok := kubetest.Binaries(); !ok {
		coffertest.RequireIntegration(b, "kube-apiserver and etcd are not built: run hack/testenv/build.sh")
	}
	encConfig := func(provider string) string {
		return `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
` + provider
	}
	kmsProvider := func(sock string) string {
		return fmt.Sprintf("      - kms: {apiVersion: v2, name: coffer, endpoint: unix://%s, timeout: 3s}\n      - identity: {}\n", sock)
	}

	c := startCoffer(b)
	transitSock := filepath.Join(shortTempDir(b), "kms.sock")
	serveSocket(b, transitSock, c.transit(b, kmsplugin.TransitConfig{}))
	localSock := filepath.Join(shortTempDir(b), "kms.sock")
	keyFile := filepath.Join(b.TempDir(), "key")
	if err := kmsplugin.GenerateKeyFile(keyFile); err != nil {
		b.Fatal(err)
	}
	local, err := kmsplugin.LoadLocalKey(keyFile)
	if err != nil {
		b.Fatal(err)
	}
	serveSocket(b, localSock, local)

	planes := []struct {
		name string
		cp   *kubetest.ControlPlane
	}{
		{"identity", kubetest.Start(b, kubetest.Options{EncryptionConfig: encConfig("      - identity: {}\n")})},
		{"kms-transit", kubetest.Start(b, kubetest.Options{EncryptionConfig: encConfig(kmsProvider(transitSock))})},
		{"kms-local", kubetest.Start(b, kubetest.Options{EncryptionConfig: encConfig(kmsProvider(localSock))})},
	}
	value := bytes.Repeat([]byte("v"), 1024)
	var seq atomic.Int64
	for _, p := range planes {
		b.Run(p.name, func(b *testing.B) {
			secrets := p.cp.Client.CoreV1().Secrets("default")
			b.SetParallelism(8) // x GOMAXPROCS (2) = 16 concurrent clients
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, err := secrets.Create(context.Background(), &corev1.Secret{
						ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%d", seq.Add(1))},
						Data:       map[string][]byte{"v": value},
					}, metav1.CreateOptions{})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "secrets/s")
		})
	}
}

// serveSocket serves kek on sock until the benchmark ends.
func serveSocket(b *testing.B, sock string, kek kmsplugin.KEK) {
	ln, err := kmsplugin.Listen(sock)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- kmsplugin.Serve(ctx, ln, kmsplugin.NewService(kek, kmsplugin.Options{})) }()
	b.Cleanup(func() { cancel(); <-done })
}
