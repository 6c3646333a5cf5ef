package kmsplugin_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	kmsapi "k8s.io/kms/apis/v2"

	"github.com/coffer-dev/coffer/internal/kmsplugin"
)

// shortTempDir returns a temporary directory with a short path: unix
// socket paths are limited to 108 bytes, and t.TempDir embeds the test name.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kms")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// serve serves kek through a real gRPC server on a unix socket and returns
// a real client connected to it, as kube-apiserver would be.
func serve(t testing.TB, kek kmsplugin.KEK, o kmsplugin.Options) kmsapi.KeyManagementServiceClient {
	t.Helper()
	sock := filepath.Join(shortTempDir(t), "kms.sock")
	ln, err := kmsplugin.Listen(sock)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- kmsplugin.Serve(ctx, ln, kmsplugin.NewService(kek, o)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return dial(t, sock)
}

func dial(t testing.TB, sock string) kmsapi.KeyManagementServiceClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return kmsapi.NewKeyManagementServiceClient(conn)
}

func rpcCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantCode fails unless err is a gRPC status with code c.
func wantCode(t testing.TB, what string, err error, c codes.Code) {
	t.Helper()
	if got := status.Code(err); got != c {
		t.Fatalf("%s: code %v (%v), want %v", what, got, err, c)
	}
}

func annotations(v string) map[string][]byte {
	return map[string][]byte{kmsplugin.FormatAnnotation: []byte(v)}
}
