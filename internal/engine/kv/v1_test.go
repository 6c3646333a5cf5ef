package kv

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage/inmem"
)

func TestV1(t *testing.T) {
	h := newHarness(t, "1")
	for _, p := range []string{"app/db", "app/cache/redis", "top"} {
		if resp, err := h.do(logical.UpdateOperation, p, `{"password":"s3cret","port":6379}`); status(resp, err) != 204 {
			t.Fatalf("write %s = status %d (%v), want 204", p, status(resp, err), err)
		}
	}
	h.write("top", `{"replaced":true}`)

	tests := []struct {
		name string
		op   logical.Operation
		path string
		body string
		code int
		want map[string]any
	}{
		{name: "read", op: logical.ReadOperation, path: "app/db", code: 200, want: map[string]any{"password": "s3cret", "port": json.Number("6379")}},
		{name: "write replaces", op: logical.ReadOperation, path: "top", code: 200, want: map[string]any{"replaced": true}},
		{name: "read missing", op: logical.ReadOperation, path: "app/none", code: 404},
		{name: "read folder", op: logical.ReadOperation, path: "app", code: 404},
		{name: "list root", op: logical.ListOperation, path: "", code: 200, want: map[string]any{"keys": []string{"app/", "top"}}},
		{name: "list folder", op: logical.ListOperation, path: "app/", code: 200, want: map[string]any{"keys": []string{"cache/", "db"}}},
		{name: "list empty", op: logical.ListOperation, path: "nothing/", code: 404},
		{name: "list without slash", op: logical.ListOperation, path: "app", code: 400},
		{name: "empty write", op: logical.UpdateOperation, path: "x", body: `{}`, code: 400},
		{name: "patch unsupported", op: logical.PatchOperation, path: "top", body: `{"a":1}`, code: 405},
		{name: "delete missing", op: logical.DeleteOperation, path: "nothing", code: 204},
		{name: "dot-dot", op: logical.ReadOperation, path: "app/../top", code: 400},
		{name: "empty segment", op: logical.UpdateOperation, path: "app//x", body: `{"a":1}`, code: 400},
		{name: "trailing slash write", op: logical.UpdateOperation, path: "app/", body: `{"a":1}`, code: 400},
		{name: "control character", op: logical.UpdateOperation, path: "a\x00b", body: `{"a":1}`, code: 400},
		{name: "root write", op: logical.UpdateOperation, path: "", body: `{"a":1}`, code: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := h.do(tt.op, tt.path, tt.body)
			if got := status(resp, err); got != tt.code {
				t.Fatalf("%s %q = status %d (%v), want %d", tt.op, tt.path, got, err, tt.code)
			}
			if tt.want == nil {
				return
			}
			if diff := cmp.Diff(tt.want, resp.Data); diff != "" {
				t.Errorf("%s %q mismatch (-want +got):\n%s", tt.op, tt.path, diff)
			}
		})
	}
	if err := errText(func() error { _, err := h.do(logical.UpdateOperation, "x", `{}`); return err }()); err != "missing data fields" {
		t.Errorf("empty write error = %q, want %q", err, "missing data fields")
	}

	h.must(logical.DeleteOperation, "app/db", "")
	if resp, err := h.do(logical.ReadOperation, "app/db", ""); status(resp, err) != 404 {
		t.Errorf("read after delete = status %d, want 404", status(resp, err))
	}
	for _, tt := range []struct {
		path string
		want bool
	}{{"top", true}, {"app/db", false}, {"app//x", false}} {
		got, err := h.b.Exists(context.Background(), &logical.Request{Operation: logical.UpdateOperation, MountPath: tt.path})
		if err != nil || got != tt.want {
			t.Errorf("Exists(%q) = %v, %v; want %v", tt.path, got, err, tt.want)
		}
	}
}

func TestFactory(t *testing.T) {
	for _, tt := range []struct {
		version string
		want    int
		wantErr bool
	}{
		{"", 1, false}, {"1", 1, false}, {"2", 2, false}, {" 2 ", 2, false}, {"3", 0, true}, {"v2", 0, true},
	} {
		b, err := Factory(context.Background(), &logical.BackendConfig{Storage: inmem.New(), Options: map[string]string{"version": tt.version}})
		if (err != nil) != tt.wantErr {
			t.Fatalf("Factory(version %q) = %v, want error %v", tt.version, err, tt.wantErr)
		}
		if err == nil && b.(*Backend).version != tt.want {
			t.Errorf("Factory(version %q) built version %d, want %d", tt.version, b.(*Backend).version, tt.want)
		}
	}
	if _, err := Factory(context.Background(), &logical.BackendConfig{}); err == nil {
		t.Errorf("Factory without storage succeeded")
	}
}
