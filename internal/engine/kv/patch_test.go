package kv

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/coffer-dev/coffer/internal/logical"
)

func decodeJSON(t testing.TB, s string) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return v
}

// TestMergeValueRFC7386 runs the examples of RFC 7386, Appendix A.
func TestMergeValueRFC7386(t *testing.T) {
	tests := []struct{ target, patch, want string }{
		{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{`{"a":"b"}`, `{"a":null}`, `{}`},
		{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{`["a","b"]`, `["c","d"]`, `["c","d"]`},
		{`{"a":"b"}`, `["c"]`, `["c"]`},
		{`{"a":"foo"}`, `null`, `null`},
		{`{"a":"foo"}`, `"bar"`, `"bar"`},
		{`{"e":null}`, `{"a":1}`, `{"e":null,"a":1}`},
		{`[1,2]`, `{"a":"b","c":null}`, `{"a":"b"}`},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
		// Arrays replace whole, nulls inside them included.
		{`{"a":[1,2,3]}`, `{"a":[null]}`, `{"a":[null]}`},
		// Nested objects merge at every level.
		{`{"db":{"user":"u","pass":"p","opts":{"ssl":true,"port":1}}}`, `{"db":{"pass":"q","opts":{"port":null,"tz":"utc"}}}`, `{"db":{"user":"u","pass":"q","opts":{"ssl":true,"tz":"utc"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.target+"+"+tt.patch, func(t *testing.T) {
			got := mergeValue(decodeJSON(t, tt.target), decodeJSON(t, tt.patch))
			if diff := cmp.Diff(decodeJSON(t, tt.want), got); diff != "" {
				t.Errorf("mergeValue(%s, %s) mismatch (-want +got):\n%s", tt.target, tt.patch, diff)
			}
		})
	}
}

func TestPatchData(t *testing.T) {
	tests := []struct {
		name    string
		setup   []string // "op path body"
		patch   string
		ctype   string
		want    int
		wantMsg string
		data    string // data of the latest version afterwards
	}{
		{
			name:  "merge",
			setup: []string{`update data/k {"data":{"a":"1","b":{"c":"2","d":"3"},"list":[1,2]}}`},
			patch: `{"data":{"a":null,"b":{"c":"20","e":"5"},"list":[3],"new":true}}`,
			want:  200,
			data:  `{"b":{"c":"20","d":"3","e":"5"},"list":[3],"new":true}`,
		},
		{
			name:  "with matching cas",
			setup: []string{`update data/k {"data":{"a":"1"}}`},
			patch: `{"data":{"b":"2"},"options":{"cas":1}}`,
			want:  200,
			data:  `{"a":"1","b":"2"}`,
		},
		{
			name:    "cas mismatch",
			setup:   []string{`update data/k {"data":{"a":"1"}}`},
			patch:   `{"data":{"b":"2"},"options":{"cas":0}}`,
			want:    400,
			wantMsg: "check-and-set parameter did not match the current version (current version is 1)",
			data:    `{"a":"1"}`,
		},
		{
			name:    "cas required",
			setup:   []string{`update data/k {"data":{"a":"1"}}`, `update metadata/k {"cas_required":true}`},
			patch:   `{"data":{"b":"2"}}`,
			want:    400,
			wantMsg: "check-and-set parameter required for this call",
			data:    `{"a":"1"}`,
		},
		{name: "missing secret", patch: `{"data":{"b":"2"}}`, want: 404},
		{
			name:  "metadata only",
			setup: []string{`update metadata/k {"max_versions":2}`},
			patch: `{"data":{"b":"2"}}`,
			want:  404,
		},
		{
			name:  "latest deleted",
			setup: []string{`update data/k {"data":{"a":"1"}}`, `delete data/k `},
			patch: `{"data":{"b":"2"}}`,
			want:  404,
		},
		{
			name:  "latest destroyed",
			setup: []string{`update data/k {"data":{"a":"1"}}`, `update destroy/k {"versions":[1]}`},
			patch: `{"data":{"b":"2"}}`,
			want:  404,
		},
		{
			name:  "wrong content type",
			setup: []string{`update data/k {"data":{"a":"1"}}`},
			patch: `{"data":{"b":"2"}}`,
			ctype: "application/json",
			want:  415,
			data:  `{"a":"1"}`,
		},
		{
			name:    "no data",
			setup:   []string{`update data/k {"data":{"a":"1"}}`},
			patch:   `{"options":{"cas":1}}`,
			want:    400,
			wantMsg: "no data provided",
			data:    `{"a":"1"}`,
		},
		{
			name:    "unknown field",
			setup:   []string{`update data/k {"data":{"a":"1"}}`},
			patch:   `{"data":{},"a":null}`,
			want:    400,
			wantMsg: `unknown field "a"`,
			data:    `{"a":"1"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "2")
			for _, s := range tt.setup {
				runStep(t, h, s)
			}
			ctype := tt.ctype
			if ctype == "" {
				ctype = "application/merge-patch+json"
			}
			resp, err := h.send(&logical.Request{Operation: logical.PatchOperation, MountPath: "data/k", Data: body(t, tt.patch), ContentType: ctype})
			if got := status(resp, err); got != tt.want {
				t.Fatalf("patch %s = status %d (%v), want %d", tt.patch, got, err, tt.want)
			}
			if tt.wantMsg != "" && errText(err) != tt.wantMsg {
				t.Errorf("patch %s = %q, want %q", tt.patch, errText(err), tt.wantMsg)
			}
			if tt.want == 200 {
				if resp.Data["version"] != uint64(len(tt.setup)+1) {
					t.Errorf("patch response version = %v, want %d", resp.Data["version"], len(tt.setup)+1)
				}
			}
			if tt.data == "" {
				return
			}
			got := h.read("data/k").Data["data"]
			if diff := cmp.Diff(decodeJSON(t, tt.data), any(got)); diff != "" {
				t.Errorf("data after patch mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzMergePatch applies arbitrary JSON patches to arbitrary JSON
// objects: no panics, an object patch gives an object that encodes as
// JSON, and applying the same patch twice changes nothing more
// (RFC 7386 patches are idempotent).
func FuzzMergePatch(f *testing.F) {
	f.Add([]byte(`{"a":"b","c":{"d":"e","f":"g"}}`), []byte(`{"a":"z","c":{"f":null}}`))
	f.Add([]byte(`{"title":"Goodbye!","author":{"givenName":"John","familyName":"Doe"},"tags":["example","sample"],"content":"This will be unchanged"}`),
		[]byte(`{"title":"Hello!","phoneNumber":"+01-123-456-7890","author":{"familyName":null},"tags":["example"]}`))
	f.Add([]byte(`{}`), []byte(`{"a":{"bb":{"ccc":null}}}`))
	f.Add([]byte(`{"a":[1,{"b":null}]}`), []byte(`{"a":{"x":[null]}}`))
	f.Add([]byte(`{"n":1e400}`), []byte(`{"n":-0.0}`))
	f.Fuzz(func(t *testing.T, doc, patch []byte) {
		target, err := decodeFuzzObject(doc)
		if err != nil {
			return
		}
		p, err := decodeFuzzObject(patch)
		if err != nil {
			return
		}
		got := mergeObject(target, p)
		if got == nil {
			t.Fatalf("mergeObject(%s, %s) = nil", doc, patch)
		}
		raw, err := json.Marshal(got)
		if err != nil {
			t.Fatalf("mergeObject(%s, %s) does not encode: %v", doc, patch, err)
		}
		again, err := decodeFuzzObject(raw)
		if err != nil {
			t.Fatalf("mergeObject(%s, %s) = %s, not a JSON object: %v", doc, patch, raw, err)
		}
		p2, _ := decodeFuzzObject(patch)
		twice, err := json.Marshal(mergeObject(again, p2))
		if err != nil || !bytes.Equal(raw, twice) {
			t.Fatalf("patch %s is not idempotent on %s: %s then %s", patch, doc, raw, twice)
		}
	})
}

func decodeFuzzObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

// runStep applies one "op path body" setup step, which must succeed.
func runStep(t *testing.T, h *harness, s string) {
	t.Helper()
	op, rest, _ := strings.Cut(s, " ")
	path, data, _ := strings.Cut(rest, " ")
	h.must(logical.Operation(op), path, data)
}
