package compat

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-dev/coffer/internal/cli"
)

// runServerExpectFailure runs `coffer server` and returns its error; the
// server must fail before it starts serving.
func runServerExpectFailure(t *testing.T, dir string, env map[string]string) error {
	t.Helper()
	e := &cli.Env{
		Getenv: func(k string) string {
			if v, ok := env[k]; ok {
				return v
			}
			if strings.HasPrefix(k, "COFFER_") || strings.HasPrefix(k, "VAULT_") {
				return ""
			}
			return os.Getenv(k)
		},
		Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard,
		HomeDir: func() (string, error) { return t.TempDir(), nil },
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	return cli.RunEnv(ctx, e, []string{"server", "-tls-disable", "-address=127.0.0.1:0",
		"-storage-path=" + filepath.Join(dir, "coffer.db"), "-log-level=error"})
}
