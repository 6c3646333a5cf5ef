package kv

import (
	"strings"
	"testing"

	"github.com/coffer-dev/coffer/internal/logical"
)

// TestPathChecks: the engine refuses unusable paths on every endpoint,
// even though the HTTP layer refuses most of them first.
func TestPathChecks(t *testing.T) {
	bad := []struct{ name, path string }{
		{"empty", ""},
		{"empty segment", "a//b"},
		{"leading slash", "/a"},
		{"trailing slash", "a/"},
		{"dot-dot", "a/../b"},
		{"dot-dot alone", ".."},
		{"dot", "a/./b"},
		{"NUL", "a\x00b"},
		{"newline", "a\nb"},
		{"DEL", "a\x7fb"},
		{"invalid UTF-8", "a\xffb"},
		{"too long", strings.Repeat("a", maxPathLen+1)},
	}
	endpoints := []struct {
		op       logical.Operation
		endpoint string
		body     string
	}{
		{logical.ReadOperation, "data/", ""},
		{logical.UpdateOperation, "data/", `{"data":{"a":1}}`},
		{logical.PatchOperation, "data/", `{"data":{"a":1}}`},
		{logical.DeleteOperation, "data/", ""},
		{logical.ReadOperation, "metadata/", ""},
		{logical.UpdateOperation, "metadata/", `{"max_versions":1}`},
		{logical.DeleteOperation, "metadata/", ""},
		{logical.ReadOperation, "subkeys/", ""},
		{logical.UpdateOperation, "delete/", `{"versions":[1]}`},
		{logical.UpdateOperation, "undelete/", `{"versions":[1]}`},
		{logical.UpdateOperation, "destroy/", `{"versions":[1]}`},
	}
	h := newHarness(t, "2")
	for _, e := range endpoints {
		for _, tt := range bad {
			t.Run(string(e.op)+" "+e.endpoint+tt.name, func(t *testing.T) {
				resp, err := h.do(e.op, e.endpoint+tt.path, e.body)
				if got := status(resp, err); got != 400 {
					t.Errorf("%s %q = status %d (%v), want 400", e.op, e.endpoint+tt.path, got, err)
				}
			})
		}
	}
	if keys := h.keys(); len(keys) != 0 {
		t.Errorf("refused requests stored %v", keys)
	}
	// The longest allowed path works.
	h.write("data/"+strings.Repeat("a", maxPathLen), `{"data":{"a":1}}`)
	// Unicode paths are fine.
	h.write("data/équipe/clé", `{"data":{"a":1}}`)
	h.read("data/équipe/clé")
}
