package core

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/coffer-dev/coffer/internal/barrier"
	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage/inmem"
	"github.com/coffer-dev/coffer/internal/token"
)

// noop is a backend that does nothing, so a benchmark through it measures
// the pipeline alone: token lookup, ACL, audit.
type noop struct{}

func (noop) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	return &logical.Response{Data: map[string]any{"ok": true}}, nil
}

func newBenchCore(tb testing.TB, auditDir string) (*Core, string) {
	tb.Helper()
	ctx := context.Background()
	c, err := New(Config{
		Storage:  inmem.New(),
		AuditDir: auditDir,
		Engines: map[string]logical.Factory{
			"noop": func(context.Context, *logical.BackendConfig) (logical.Backend, error) { return noop{}, nil },
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	res, err := c.Init(ctx, InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.SubmitUnsealShare(ctx, res.Keys[0]); err != nil {
		tb.Fatal(err)
	}
	if err := c.Mount(ctx, false, &MountEntry{Path: "noop/", Type: "noop"}); err != nil {
		tb.Fatal(err)
	}
	if err := c.policies.put(ctx, "app", `path "noop/*" { capabilities = ["read"] }`); err != nil {
		tb.Fatal(err)
	}
	te, err := c.tokens.Create(ctx, &token.Entry{Policies: []string{"app", "default"}, TTL: token.DefaultTTL, Renewable: true})
	if err != nil {
		tb.Fatal(err)
	}
	if auditDir != "" {
		_, err := c.HandleRequest(ctx, &logical.Request{
			Operation: logical.UpdateOperation, Path: "sys/audit/file", ClientToken: res.RootToken,
			Data: map[string]any{"type": "file", "options": map[string]any{"file_path": filepath.Join(auditDir, "audit.log")}},
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return c, te.ID
}

// BenchmarkPipeline measures one authenticated, authorized (and, in the
// audit case, audited twice) request through HandleRequest.
func BenchmarkPipeline(b *testing.B) {
	for _, tc := range []struct {
		name  string
		audit bool
	}{{"no-audit", false}, {"file-audit", true}} {
		b.Run(tc.name, func(b *testing.B) {
			dir := ""
			if tc.audit {
				dir = b.TempDir()
			}
			c, tok := newBenchCore(b, dir)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				req := &logical.Request{Operation: logical.ReadOperation, Path: "noop/x", ClientToken: tok, Data: map[string]any{}}
				if _, err := c.HandleRequest(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestPipelineDenies(t *testing.T) {
	c, tok := newBenchCore(t, "")
	ctx := context.Background()
	for _, tc := range []struct {
		name, path, token string
		op                logical.Operation
	}{
		{"no capability", "noop/x", tok, logical.UpdateOperation},
		{"other path", "sys/mounts", tok, logical.ReadOperation},
		{"no token", "noop/x", "", logical.ReadOperation},
		{"unknown token", "noop/x", "cfr.unknown00000000000000000000000", logical.ReadOperation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.HandleRequest(ctx, &logical.Request{Operation: tc.op, Path: tc.path, ClientToken: tc.token, Data: map[string]any{}})
			if err != logical.ErrPermissionDenied {
				t.Fatalf("HandleRequest(%s %s) error = %v, want permission denied", tc.op, tc.path, err)
			}
		})
	}
	if _, err := c.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "noop/x", ClientToken: tok, Data: map[string]any{}}); err != nil {
		t.Fatalf("allowed read: %v", err)
	}
}

func mustKey(t testing.TB) barrier.Key {
	t.Helper()
	k, err := barrier.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
