package kv

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/coffer-dev/coffer/internal/logical"
)

// FuzzRequest sends arbitrary paths and bodies to a version 2 mount that
// already holds a secret: no panics, and every failure is a client error
// (4xx), never an internal one.
func FuzzRequest(f *testing.F) {
	seeds := []struct {
		op   byte
		path string
		body string
	}{
		{0, "data/k", `{"version":"1"}`},
		{1, "data/k", `{"data":{"a":1},"options":{"cas":1}}`},
		{2, "data/k", `{"data":{"a":null,"b":{"c":[1]}}}`},
		{3, "data/k", ``},
		{4, "metadata/", ``},
		{1, "metadata/k", `{"max_versions":3,"custom_metadata":{"a":"b"}}`},
		{2, "metadata/k", `{"custom_metadata":{"a":null}}`},
		{1, "destroy/k", `{"versions":"1,2"}`},
		{1, "undelete/k", `{"versions":[1]}`},
		{0, "subkeys/k", `{"depth":"2"}`},
		{1, "config", `{"delete_version_after":"1h","cas_required":false}`},
		{0, "data/a/../k", ``},
	}
	for _, s := range seeds {
		f.Add(s.op, s.path, []byte(s.body))
	}
	ops := []logical.Operation{logical.ReadOperation, logical.UpdateOperation, logical.PatchOperation, logical.DeleteOperation, logical.ListOperation, logical.CreateOperation, logical.HeadOperation}
	f.Fuzz(func(t *testing.T, op byte, path string, raw []byte) {
		h := newHarness(t, "2")
		h.write("data/k", `{"data":{"a":{"b":"c"}}}`)
		data := map[string]any{}
		if len(bytes.TrimSpace(raw)) > 0 {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			if err := dec.Decode(&data); err != nil || data == nil {
				return
			}
		}
		req := &logical.Request{Operation: ops[int(op)%len(ops)], MountPath: path, Data: data, ContentType: "application/merge-patch+json"}
		resp, err := h.b.HandleRequest(context.Background(), req)
		if code := status(resp, err); code >= 500 {
			t.Fatalf("%s %q %s = status %d (%v)", req.Operation, path, raw, code, err)
		}
		if resp != nil && resp.Data != nil {
			if _, err := json.Marshal(resp.Data); err != nil {
				t.Fatalf("%s %q %s: response does not encode: %v", req.Operation, path, raw, err)
			}
		}
	})
}
