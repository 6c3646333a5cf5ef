package kv

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/coffer-dev/coffer/internal/logical"
)

func TestReadMetadata(t *testing.T) {
	h := newHarness(t, "2")
	h.write("data/my-secret", `{"data":{"a":1}}`)
	h.clock.Advance(time.Second)
	h.write("data/my-secret", `{"data":{"a":2}}`)
	h.clock.Advance(time.Second)
	h.write("metadata/my-secret", `{"max_versions":5,"delete_version_after":"3h25m19s","custom_metadata":{"owner":"jdoe","mission_critical":"false"}}`)
	h.must(logical.DeleteOperation, "data/my-secret", "")
	h.must(logical.UpdateOperation, "destroy/my-secret", `{"versions":[1]}`)

	want := map[string]any{
		"cas_required":         false,
		"created_time":         t0s,
		"current_version":      uint64(2),
		"custom_metadata":      map[string]string{"owner": "jdoe", "mission_critical": "false"},
		"delete_version_after": "3h25m19s",
		"max_versions":         5,
		"oldest_version":       uint64(0),
		"updated_time":         "2018-03-22T02:24:08.945319214Z",
		"versions": map[string]any{
			"1": map[string]any{"created_time": t0s, "deletion_time": "", "destroyed": true},
			"2": map[string]any{"created_time": "2018-03-22T02:24:07.945319214Z", "deletion_time": "2018-03-22T02:24:08.945319214Z", "destroyed": false},
		},
	}
	if diff := cmp.Diff(want, h.read("metadata/my-secret").Data); diff != "" {
		t.Errorf("read metadata mismatch (-want +got):\n%s", diff)
	}
	// custom_metadata shows in data responses too.
	resp, _ := h.do(logical.ReadOperation, "data/my-secret", "")
	if diff := cmp.Diff(want["custom_metadata"], resp.Data["metadata"].(map[string]any)["custom_metadata"]); diff != "" {
		t.Errorf("custom_metadata in data read mismatch (-want +got):\n%s", diff)
	}
	if resp, err := h.do(logical.ReadOperation, "metadata/none", ""); status(resp, err) != 404 {
		t.Errorf("read metadata/none = status %d, want 404", status(resp, err))
	}
}

func TestWriteMetadataBeforeData(t *testing.T) {
	h := newHarness(t, "2")
	h.write("metadata/k", `{"custom_metadata":{"team":"a"}}`)
	md := h.read("metadata/k").Data
	if md["current_version"] != uint64(0) || len(md["versions"].(map[string]any)) != 0 || md["created_time"] != t0s {
		t.Errorf("metadata without data = %v", md)
	}
	if resp, err := h.do(logical.ReadOperation, "data/k", ""); status(resp, err) != 404 {
		t.Errorf("read data of metadata-only secret = status %d, want 404", status(resp, err))
	}
	w := h.write("data/k", `{"data":{"a":1}}`).Data
	if diff := cmp.Diff(map[string]string{"team": "a"}, w["custom_metadata"]); diff != "" {
		t.Errorf("write response custom_metadata mismatch (-want +got):\n%s", diff)
	}
	// A POST without custom_metadata keeps it; one with it replaces it.
	h.write("metadata/k", `{"max_versions":3}`)
	if got := h.read("metadata/k").Data["custom_metadata"]; !cmp.Equal(got, map[string]string{"team": "a"}) {
		t.Errorf("custom_metadata after unrelated POST = %v", got)
	}
	h.write("metadata/k", `{"custom_metadata":{"x":"1"}}`)
	if got := h.read("metadata/k").Data["custom_metadata"]; !cmp.Equal(got, map[string]string{"x": "1"}) {
		t.Errorf("custom_metadata after replacing POST = %v", got)
	}
	h.write("metadata/k", `{"custom_metadata":{}}`)
	if got := h.read("metadata/k").Data["custom_metadata"]; !cmp.Equal(got, map[string]string(nil)) {
		t.Errorf("custom_metadata after emptying = %#v, want null", got)
	}
}

func TestWriteMetadataErrors(t *testing.T) {
	many := make([]string, 65)
	for i := range many {
		many[i] = fmt.Sprintf(`"k%d":"v"`, i)
	}
	tests := []struct {
		name, body, wantMsg string
	}{
		{"unknown field", `{"max_versions":1,"data":{}}`, `unknown field "data"`},
		{"negative max_versions", `{"max_versions":-1}`, "max_versions: must be between 0 and 4294967295"},
		{"huge max_versions", `{"max_versions":4294967296}`, "max_versions: must be between 0 and 4294967295"},
		{"word max_versions", `{"max_versions":"many"}`, `max_versions: "many" is not an integer`},
		{"bad cas_required", `{"cas_required":"maybe"}`, `cas_required: "maybe" is not a boolean`},
		{"bad delete_version_after", `{"delete_version_after":"soon"}`, `delete_version_after: "soon" is not a duration (use seconds or a form like "1h30m")`},
		{"custom_metadata not object", `{"custom_metadata":"a=b"}`, "custom_metadata: must be a JSON object of strings"},
		{"custom_metadata number value", `{"custom_metadata":{"a":1}}`, "custom_metadata: every value must be a string"},
		{"too many keys", `{"custom_metadata":{` + strings.Join(many, ",") + `}}`, "custom_metadata validation failed: 65 keys, the maximum is 64"},
		{"key too long", `{"custom_metadata":{"` + strings.Repeat("k", 129) + `":"v"}}`, "custom_metadata validation failed: a key is longer than 128 bytes"},
		{"value too long", `{"custom_metadata":{"k":"` + strings.Repeat("v", 513) + `"}}`, "custom_metadata validation failed: a value is longer than 512 bytes"},
		{"empty key", `{"custom_metadata":{"":"v"}}`, "custom_metadata validation failed: a key is empty"},
		{"control character", `{"custom_metadata":{"k":"a\u0007b"}}`, "custom_metadata validation failed: a value contains unprintable characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "2")
			resp, err := h.do(logical.UpdateOperation, "metadata/k", tt.body)
			if got := status(resp, err); got != 400 {
				t.Fatalf("write metadata %s = status %d (%v), want 400", tt.name, got, err)
			}
			if got := errText(err); got != tt.wantMsg {
				t.Errorf("write metadata %s = %q, want %q", tt.name, got, tt.wantMsg)
			}
			if keys := h.keys(); len(keys) != 0 {
				t.Errorf("refused metadata write stored %v", keys)
			}
		})
	}
	// The limits themselves are allowed.
	h := newHarness(t, "2")
	h.write("metadata/k", `{"custom_metadata":{"`+strings.Repeat("k", 128)+`":"`+strings.Repeat("v", 512)+`"}}`)
}

func TestPatchMetadata(t *testing.T) {
	h := newHarness(t, "2")
	h.write("metadata/k", `{"max_versions":5,"cas_required":true,"custom_metadata":{"a":"1","b":"2"}}`)
	h.clock.Advance(time.Second)

	resp, err := h.do(logical.PatchOperation, "metadata/k", `{"custom_metadata":{"b":null,"c":"3"},"delete_version_after":"1h"}`)
	if status(resp, err) != 204 {
		t.Fatalf("patch metadata = status %d (%v), want 204", status(resp, err), err)
	}
	md := h.read("metadata/k").Data
	got := map[string]any{
		"max_versions": md["max_versions"], "cas_required": md["cas_required"],
		"delete_version_after": md["delete_version_after"], "custom_metadata": md["custom_metadata"],
		"updated_time": md["updated_time"], "created_time": md["created_time"],
	}
	want := map[string]any{
		"max_versions": 5, "cas_required": true,
		"delete_version_after": "1h0m0s", "custom_metadata": map[string]string{"a": "1", "c": "3"},
		"updated_time": "2018-03-22T02:24:07.945319214Z", "created_time": t0s,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metadata after patch mismatch (-want +got):\n%s", diff)
	}

	// null resets a field to its default.
	h.must(logical.PatchOperation, "metadata/k", `{"max_versions":null,"cas_required":null,"custom_metadata":null}`)
	md = h.read("metadata/k").Data
	if md["max_versions"] != 0 || md["cas_required"] != false || !cmp.Equal(md["custom_metadata"], map[string]string(nil)) {
		t.Errorf("metadata after null patch = %v", md)
	}

	for _, tt := range []struct {
		name        string
		path, body  string
		contentType string
		want        int
	}{
		{"missing secret", "metadata/none", `{"max_versions":1}`, "application/merge-patch+json", 404},
		{"wrong content type", "metadata/k", `{"max_versions":1}`, "application/json", 415},
		{"no content type", "metadata/k", `{"max_versions":1}`, "", 415},
		{"content type with parameters", "metadata/k", `{"max_versions":1}`, "application/merge-patch+json; charset=utf-8", 204},
		{"unknown field", "metadata/k", `{"versions":{}}`, "application/merge-patch+json", 400},
		{"merged custom_metadata over the limit", "metadata/k", `{"custom_metadata":{"k":"` + strings.Repeat("v", 513) + `"}}`, "application/merge-patch+json", 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := h.send(&logical.Request{Operation: logical.PatchOperation, MountPath: tt.path, Data: body(t, tt.body), ContentType: tt.contentType})
			if got := status(resp, err); got != tt.want {
				t.Errorf("patch %s = status %d (%v), want %d", tt.path, got, err, tt.want)
			}
		})
	}
}

func TestDeleteMetadata(t *testing.T) {
	h := newHarness(t, "2")
	h.write("data/k", `{"data":{"a":1}}`)
	h.write("data/k", `{"data":{"a":2}}`)
	h.must(logical.UpdateOperation, "destroy/k", `{"versions":[1]}`)
	h.write("data/other", `{"data":{"a":1}}`)
	before := len(h.keys())

	if resp, err := h.do(logical.DeleteOperation, "metadata/k", ""); status(resp, err) != 204 {
		t.Fatalf("delete metadata/k = status %d (%v), want 204", status(resp, err), err)
	}
	for _, key := range []string{metaKey("k"), dataKey("k", 1), dataKey("k", 2)} {
		if h.has(key) {
			t.Errorf("after delete metadata/k, %s is still stored", key)
		}
	}
	if after := len(h.keys()); after != before-2 {
		t.Errorf("stored keys %d -> %d, want 2 fewer (metadata and version 2)", before, after)
	}
	for _, p := range []string{"data/k", "metadata/k"} {
		if resp, err := h.do(logical.ReadOperation, p, ""); status(resp, err) != 404 {
			t.Errorf("read %s after delete = status %d, want 404", p, status(resp, err))
		}
	}
	h.read("data/other")
	if resp, err := h.do(logical.DeleteOperation, "metadata/none", ""); status(resp, err) != 204 {
		t.Errorf("delete metadata/none = status %d, want 204", status(resp, err))
	}
}

func TestListMetadata(t *testing.T) {
	h := newHarness(t, "2")
	for _, p := range []string{"foo", "foo/bar", "foo/baz/qux", "app/db", "zeta"} {
		h.write("data/"+p, `{"data":{"a":1}}`)
	}
	h.write("metadata/only-meta", `{"max_versions":2}`)
	h.must(logical.DeleteOperation, "data/zeta", "") // soft-deleted secrets are still listed

	tests := []struct {
		folder string
		want   []string
		status int
	}{
		{"", []string{"app/", "foo", "foo/", "only-meta", "zeta"}, 200},
		{"foo/", []string{"bar", "baz/"}, 200},
		{"foo/baz/", []string{"qux"}, 200},
		{"nothing/", nil, 404},
		{"foo/bar/", nil, 404},
		{"foo", nil, 400},
		{"a//", nil, 400},
		{"../", nil, 400},
	}
	for _, tt := range tests {
		t.Run(tt.folder, func(t *testing.T) {
			resp, err := h.do(logical.ListOperation, "metadata/"+tt.folder, "")
			if got := status(resp, err); got != tt.status {
				t.Fatalf("list metadata/%s = status %d (%v), want %d", tt.folder, got, err, tt.status)
			}
			if tt.status != 200 {
				return
			}
			if diff := cmp.Diff(map[string]any{"keys": tt.want}, resp.Data); diff != "" {
				t.Errorf("list metadata/%s mismatch (-want +got):\n%s", tt.folder, diff)
			}
		})
	}
	h.must(logical.DeleteOperation, "metadata/foo/baz/qux", "")
	if resp, err := h.do(logical.ListOperation, "metadata/foo/", ""); err != nil || !cmp.Equal(resp.Data["keys"], []string{"bar"}) {
		t.Errorf("list metadata/foo/ after delete = %v, %v; want [bar]", resp, err)
	}
}
