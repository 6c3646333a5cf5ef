package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coffer-dev/coffer/internal/audit"
)

// sampleRequest is a typical authenticated KV write.
func sampleRequest(i int, token, secret string) *audit.Request {
	return &audit.Request{
		Time: time.Date(2025, 6, 1, 12, 0, 0, i, time.UTC),
		Auth: &audit.Auth{
			ClientToken:   token,
			Accessor:      "acc-" + token,
			DisplayName:   "token-app",
			Policies:      []string{"default", "app"},
			TokenPolicies: []string{"default", "app"},
			Metadata:      map[string]string{"owner": "meta-" + secret},
			EntityID:      "ent-1",
			TokenType:     "service",
			TokenTTL:      3600,
		},
		Request: &audit.RequestInfo{
			ID:                  fmt.Sprintf("req-%d", i),
			Operation:           "update",
			MountType:           "kv",
			MountAccessor:       "kv_1",
			ClientToken:         token,
			ClientTokenAccessor: "acc-" + token,
			Path:                "secret/data/app",
			RemoteAddress:       "127.0.0.1",
			Headers:             map[string][]string{"X-Vault-Token": {token}},
			Data: map[string]any{
				"data": map[string]any{
					"password": secret,
					"list":     []any{"l-" + secret, 3},
				},
				"options": map[string]any{"cas": 1},
			},
		},
	}
}

// sampleResponse answers sampleRequest with a leased secret and an issued
// token.
func sampleResponse(i int, token, secret string) *audit.Response {
	req := sampleRequest(i, token, secret)
	return &audit.Response{
		Time:    req.Time,
		Auth:    req.Auth,
		Request: req.Request,
		Response: &audit.ResponseInfo{
			MountType: "kv",
			Data:      map[string]any{"value": "resp-" + secret, "version": 3},
			Secret:    &audit.Secret{LeaseID: "secret/creds/lease-" + secret},
			Auth:      &audit.Auth{ClientToken: "issued-" + token, Accessor: "issued-acc-" + token},
			Headers:   map[string][]string{"X-Resp": {"hdr-" + secret}},
		},
	}
}

func openDevice(t testing.TB, path string, opts audit.FileOptions) *audit.FileDevice {
	t.Helper()
	d, err := audit.OpenFile(path, opts)
	if err != nil {
		t.Fatalf("OpenFile(%q) error = %v", path, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// logPairs logs n request/response pairs with per-pair token and secret.
func logPairs(t testing.TB, d audit.Device, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		tok, sec := fmt.Sprintf("tok-%d", i), fmt.Sprintf("sec-%d", i)
		if err := d.LogRequest(ctx, sampleRequest(i, tok, sec)); err != nil {
			t.Fatalf("LogRequest(%d) error = %v", i, err)
		}
		if err := d.LogResponse(ctx, sampleResponse(i, tok, sec)); err != nil {
			t.Fatalf("LogResponse(%d) error = %v", i, err)
		}
	}
}

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte("\n"))[:bytes.Count(b, []byte("\n"))]
}

func writeFile(t testing.TB, path string, lines ...[]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func verifyOK(t testing.TB, path string, wantLines int) *audit.VerifyResult {
	t.Helper()
	res, err := audit.VerifyFile(path)
	if err != nil {
		t.Fatalf("VerifyFile(%q) error = %v", filepath.Base(path), err)
	}
	if res.Lines != wantLines {
		t.Errorf("VerifyFile(%q).Lines = %d, want %d", filepath.Base(path), res.Lines, wantLines)
	}
	return res
}
