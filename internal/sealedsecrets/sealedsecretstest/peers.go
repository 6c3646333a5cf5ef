// Package sealedsecretstest finds the Bitnami sealed-secrets peer tools
// (kubeseal and the controller, v0.27.1) for interoperability tests and
// loads the test key pairs of internal/sealedsecrets/testdata.
//
// The tools are installed by hack/peers-sealed-secrets.sh into
// $COFFER_CACHE_DIR/bin (default $HOME/.cache/coffer-testenv/bin); the
// environment variables COFFER_KUBESEAL_BIN and
// COFFER_SEALED_SECRETS_CONTROLLER_BIN override the paths. A missing tool
// skips the test, or fails it under COFFER_REQUIRE_INTEGRATION=1.
//
// It is imported only by tests.
package sealedsecretstest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/coffer-dev/coffer/internal/sealedsecrets"
)

// CacheBin is the directory the peer script installs into.
func CacheBin() string {
	dir := os.Getenv("COFFER_CACHE_DIR")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".cache", "coffer-testenv")
	}
	return filepath.Join(dir, "bin")
}

func find(t testing.TB, env, name string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		p = filepath.Join(CacheBin(), name)
	}
	if _, err := exec.LookPath(p); err != nil {
		requireIntegration(t, name+" v0.27.1 not installed (run hack/peers-sealed-secrets.sh)")
	}
	return p
}

// Kubeseal returns the path of the kubeseal binary.
func Kubeseal(t testing.TB) string {
	t.Helper()
	return find(t, "COFFER_KUBESEAL_BIN", "kubeseal")
}

// Controller returns the path of the Bitnami controller binary.
func Controller(t testing.TB) string {
	t.Helper()
	return find(t, "COFFER_SEALED_SECRETS_CONTROLLER_BIN", "sealed-secrets-controller")
}

// TestdataDir is internal/sealedsecrets/testdata.
func TestdataDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata")
}

// Key loads a test key pair: "key" (RSA-4096, as the controller makes) or
// "key2" (RSA-2048).
func Key(t testing.TB, name string) *sealedsecrets.Key {
	t.Helper()
	dir := TestdataDir()
	certName := "cert.pem"
	if name == "key2" {
		certName = "cert2.pem"
	}
	kp, err := os.ReadFile(filepath.Join(dir, name+".pem"))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := os.ReadFile(filepath.Join(dir, certName))
	if err != nil {
		t.Fatal(err)
	}
	k, err := sealedsecrets.ParseKeyPair(kp, cp)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// requireIntegration is coffertest.RequireIntegration, repeated here
// because coffertest imports the CLI, which imports the packages whose
// internal tests use this one.
func requireIntegration(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("COFFER_REQUIRE_INTEGRATION") != "" {
		t.Fatalf("integration test cannot run: %s (COFFER_REQUIRE_INTEGRATION is set)", reason)
	}
	t.Skip(reason)
}
