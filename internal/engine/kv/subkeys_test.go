package kv

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/coffer-dev/coffer/internal/logical"
)

func TestSubkeys(t *testing.T) {
	h := newHarness(t, "2")
	// Vault's documented sample, one level deeper.
	h.write("data/s", `{"data":{"foo":"abc","bar":{"baz":"def","deep":{"x":1}},"quux":{},"list":[{"a":1}]}}`)
	h.write("data/s", `{"data":{"only":"v2"}}`)

	tests := []struct {
		name  string
		query string
		want  string
		code  int
	}{
		{name: "version 1, no limit", query: `{"version":"1"}`, want: `{"foo":null,"bar":{"baz":null,"deep":{"x":null}},"quux":null,"list":null}`},
		{name: "depth 1", query: `{"version":"1","depth":"1"}`, want: `{"foo":null,"bar":null,"quux":null,"list":null}`},
		{name: "depth 2", query: `{"version":"1","depth":"2"}`, want: `{"foo":null,"bar":{"baz":null,"deep":null},"quux":null,"list":null}`},
		{name: "depth 0 is no limit", query: `{"version":"1","depth":"0"}`, want: `{"foo":null,"bar":{"baz":null,"deep":{"x":null}},"quux":null,"list":null}`},
		{name: "latest", want: `{"only":null}`},
		{name: "negative depth", query: `{"depth":"-1"}`, code: 400},
		{name: "bad depth", query: `{"depth":"deep"}`, code: 400},
		{name: "missing version", query: `{"version":"3"}`, code: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := h.do(logical.ReadOperation, "subkeys/s", tt.query)
			if tt.code != 0 {
				if got := status(resp, err); got != tt.code {
					t.Fatalf("subkeys %s = status %d (%v), want %d", tt.query, got, err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("subkeys %s = %v", tt.query, err)
			}
			if diff := cmp.Diff(decodeJSON(t, tt.want), any(resp.Data["subkeys"])); diff != "" {
				t.Errorf("subkeys %s mismatch (-want +got):\n%s", tt.query, diff)
			}
			if _, ok := resp.Data["metadata"].(map[string]any)["version"]; !ok {
				t.Errorf("subkeys %s: no version metadata in %v", tt.query, resp.Data)
			}
		})
	}

	h.must(logical.DeleteOperation, "data/s", "")
	resp, err := h.do(logical.ReadOperation, "subkeys/s", "")
	if status(resp, err) != 404 || resp.Data["subkeys"] != nil || resp.Data["metadata"].(map[string]any)["deletion_time"] == "" {
		t.Errorf("subkeys of deleted version = %v, %v; want 404 with metadata", resp, err)
	}
	if resp, err := h.do(logical.ReadOperation, "subkeys/none", ""); status(resp, err) != 404 || err == nil {
		t.Errorf("subkeys/none = %v, %v; want plain 404", resp, err)
	}
}
