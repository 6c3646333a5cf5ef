package kv

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/coffer-dev/coffer/internal/logical"
)

func TestConfig(t *testing.T) {
	h := newHarness(t, "2")
	want := map[string]any{"cas_required": false, "delete_version_after": "0s", "max_versions": 0}
	if diff := cmp.Diff(want, h.read("config").Data); diff != "" {
		t.Fatalf("default config mismatch (-want +got):\n%s", diff)
	}
	if resp, err := h.do(logical.UpdateOperation, "config", `{"max_versions":5,"cas_required":true,"delete_version_after":"3h25m19s"}`); status(resp, err) != 204 {
		t.Fatalf("write config = status %d (%v), want 204", status(resp, err), err)
	}
	want = map[string]any{"cas_required": true, "delete_version_after": "3h25m19s", "max_versions": 5}
	if diff := cmp.Diff(want, h.read("config").Data); diff != "" {
		t.Errorf("config mismatch (-want +got):\n%s", diff)
	}
	// Fields not given are kept.
	h.write("config", `{"cas_required":false}`)
	want["cas_required"] = false
	if diff := cmp.Diff(want, h.read("config").Data); diff != "" {
		t.Errorf("config after partial write mismatch (-want +got):\n%s", diff)
	}
	// The config survives a rebuild of the backend on the same storage.
	h2 := newHarnessOn(t, h.store, "2")
	if diff := cmp.Diff(want, h2.read("config").Data); diff != "" {
		t.Errorf("config after rebuild mismatch (-want +got):\n%s", diff)
	}

	for _, tt := range []struct{ name, body string }{
		{"negative max_versions", `{"max_versions":-1}`},
		{"fractional max_versions", `{"max_versions":1.5}`},
		{"bad cas_required", `{"cas_required":3}`},
		{"bad delete_version_after", `{"delete_version_after":"-1h"}`},
		{"unknown field", `{"max_version":3}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := h.do(logical.UpdateOperation, "config", tt.body)
			if got := status(resp, err); got != 400 {
				t.Errorf("write config %s = status %d (%v), want 400", tt.body, got, err)
			}
		})
	}
	if diff := cmp.Diff(want, h.read("config").Data); diff != "" {
		t.Errorf("config changed by refused writes (-want +got):\n%s", diff)
	}
	if resp, err := h.do(logical.DeleteOperation, "config", ""); status(resp, err) != 405 {
		t.Errorf("delete config = status %d, want 405", status(resp, err))
	}
}

func TestExists(t *testing.T) {
	h := newHarness(t, "2")
	h.write("data/k", `{"data":{"a":1}}`)
	h.write("metadata/m", `{"max_versions":1}`)
	for _, tt := range []struct {
		path string
		want bool
	}{
		{"data/k", true},
		{"data/none", false},
		{"metadata/k", true},
		{"metadata/m", true},
		{"data/m", true},
		{"metadata/none", false},
		{"config", true},
		{"delete/none", true},
		{"undelete/none", true},
		{"destroy/none", true},
		{"subkeys/k", false},
		{"data/a//b", false},
		{"nowhere", false},
	} {
		got, err := h.b.Exists(context.Background(), &logical.Request{Operation: logical.UpdateOperation, MountPath: tt.path})
		if err != nil || got != tt.want {
			t.Errorf("Exists(%q) = %v, %v; want %v", tt.path, got, err, tt.want)
		}
	}
}
