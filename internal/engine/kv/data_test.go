package kv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
)

func versionMetaAt(created string, version uint64) map[string]any {
	return map[string]any{
		"created_time":    created,
		"custom_metadata": map[string]string(nil),
		"deletion_time":   "",
		"destroyed":       false,
		"version":         version,
	}
}

func TestDataWriteAndRead(t *testing.T) {
	h := newHarness(t, "2")
	resp := h.write("data/app/db", `{"data":{"user":"admin","port":5432,"nested":{"a":[1,"x",null]}}}`)
	if diff := cmp.Diff(versionMetaAt(t0s, 1), resp.Data); diff != "" {
		t.Fatalf("write data/app/db: response mismatch (-want +got):\n%s", diff)
	}
	h.clock.Advance(time.Second)
	h.write("data/app/db", `{"data":{"user":"root"}}`)

	tests := []struct {
		name    string
		path    string
		query   string
		want    map[string]any
		wantErr int
	}{
		{
			name: "latest",
			path: "data/app/db",
			want: map[string]any{
				"data":     map[string]any{"user": "root"},
				"metadata": versionMetaAt("2018-03-22T02:24:07.945319214Z", 2),
			},
		},
		{
			name:  "version 0 is latest",
			path:  "data/app/db",
			query: `{"version":"0"}`,
			want: map[string]any{
				"data":     map[string]any{"user": "root"},
				"metadata": versionMetaAt("2018-03-22T02:24:07.945319214Z", 2),
			},
		},
		{
			name:  "old version keeps exact numbers",
			path:  "data/app/db",
			query: `{"version":"1"}`,
			want: map[string]any{
				"data": map[string]any{
					"user":   "admin",
					"port":   json.Number("5432"),
					"nested": map[string]any{"a": []any{json.Number("1"), "x", nil}},
				},
				"metadata": versionMetaAt(t0s, 1),
			},
		},
		{name: "version as JSON number", path: "data/app/db", query: `{"version":2}`, want: map[string]any{
			"data":     map[string]any{"user": "root"},
			"metadata": versionMetaAt("2018-03-22T02:24:07.945319214Z", 2),
		}},
		{name: "missing secret", path: "data/app/none", wantErr: 404},
		{name: "missing version", path: "data/app/db", query: `{"version":"99"}`, wantErr: 404},
		{name: "negative version", path: "data/app/db", query: `{"version":"-1"}`, wantErr: 400},
		{name: "version not a number", path: "data/app/db", query: `{"version":"two"}`, wantErr: 400},
		{name: "folder is not a secret", path: "data/app", wantErr: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := h.do(logical.ReadOperation, tt.path, tt.query)
			if tt.wantErr != 0 {
				if got := status(resp, err); got != tt.wantErr {
					t.Fatalf("read %s %s = status %d (%v), want %d", tt.path, tt.query, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("read %s %s = %v", tt.path, tt.query, err)
			}
			if diff := cmp.Diff(tt.want, resp.Data); diff != "" {
				t.Errorf("read %s %s mismatch (-want +got):\n%s", tt.path, tt.query, diff)
			}
		})
	}
}

func TestDataWriteBodyErrors(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantMsg string
	}{
		{"no body", ``, "no data provided"},
		{"data null", `{"data":null}`, "no data provided"},
		{"data string", `{"data":"x"}`, "data: must be a JSON object"},
		{"data array", `{"data":[1]}`, "data: must be a JSON object"},
		{"unknown top-level field", `{"data":{},"foo":1}`, `unknown field "foo"`},
		{"v1 style body", `{"password":"s3cret"}`, `unknown field "password"`},
		{"options not object", `{"data":{},"options":3}`, "options: must be a JSON object"},
		{"unknown option", `{"data":{},"options":{"cas":0,"ttl":"1h"}}`, `options: unknown field "ttl"`},
		{"cas string", `{"data":{},"options":{"cas":"one"}}`, `cas: "one" is not an integer`},
		{"cas bool", `{"data":{},"options":{"cas":true}}`, "cas: must be an integer"},
		{"cas fraction", `{"data":{},"options":{"cas":1.5}}`, `cas: "1.5" is not an integer`},
		{"cas negative", `{"data":{},"options":{"cas":-1}}`, "cas: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "2")
			resp, err := h.do(logical.UpdateOperation, "data/x", tt.body)
			if got := status(resp, err); got != 400 {
				t.Fatalf("write %s = status %d (%v), want 400", tt.body, got, err)
			}
			if got := errText(err); got != tt.wantMsg {
				t.Errorf("write %s = %q, want %q", tt.body, got, tt.wantMsg)
			}
			if strings.Contains(errText(err), "s3cret") {
				t.Errorf("error %q contains the secret value", errText(err))
			}
			if keys := h.keys(); len(keys) != 0 {
				t.Errorf("refused write stored %v", keys)
			}
		})
	}
}

func TestDataEmptyObjectAndNullOptions(t *testing.T) {
	h := newHarness(t, "2")
	h.write("data/e", `{"data":{},"options":null}`)
	h.write("data/e", `{"data":{"a":1},"options":{"cas":null}}`)
	resp := h.read("data/e")
	if got := resp.Data["metadata"].(map[string]any)["version"]; got != uint64(2) {
		t.Errorf("version after two writes = %v, want 2", got)
	}
}

func TestCheckAndSet(t *testing.T) {
	tests := []struct {
		name    string
		setup   []string // requests "METHOD path body", applied in order
		body    string
		want    int
		wantMsg string
	}{
		{name: "cas 0 creates", body: `{"data":{"a":1},"options":{"cas":0}}`, want: 200},
		{
			name:    "cas 0 on existing",
			setup:   []string{`update data/k {"data":{"a":1}}`},
			body:    `{"data":{"a":2},"options":{"cas":0}}`,
			want:    400,
			wantMsg: "check-and-set parameter did not match the current version (current version is 1)",
		},
		{
			name:  "cas equals current",
			setup: []string{`update data/k {"data":{"a":1}}`, `update data/k {"data":{"a":2}}`},
			body:  `{"data":{"a":3},"options":{"cas":2}}`,
			want:  200,
		},
		{
			name:    "cas behind",
			setup:   []string{`update data/k {"data":{"a":1}}`, `update data/k {"data":{"a":2}}`, `update data/k {"data":{"a":3}}`},
			body:    `{"data":{"a":4},"options":{"cas":2}}`,
			want:    400,
			wantMsg: "check-and-set parameter did not match the current version (current version is 3)",
		},
		{
			name:    "cas ahead of a new secret",
			body:    `{"data":{"a":4},"options":{"cas":1}}`,
			want:    400,
			wantMsg: "check-and-set parameter did not match the current version (current version is 0)",
		},
		{
			name:    "required by mount config",
			setup:   []string{`update config {"cas_required":true}`},
			body:    `{"data":{"a":1}}`,
			want:    400,
			wantMsg: "check-and-set parameter required for this call",
		},
		{
			name:  "required by mount config and given",
			setup: []string{`update config {"cas_required":true}`},
			body:  `{"data":{"a":1},"options":{"cas":0}}`,
			want:  200,
		},
		{
			name:    "required by key metadata",
			setup:   []string{`update metadata/k {"cas_required":true}`},
			body:    `{"data":{"a":1}}`,
			want:    400,
			wantMsg: "check-and-set parameter required for this call",
		},
		{
			name:  "metadata without versions takes cas 0",
			setup: []string{`update metadata/k {"cas_required":true}`},
			body:  `{"data":{"a":1},"options":{"cas":0}}`,
			want:  200,
		},
		{
			name:    "soft-deleted secret needs its current version",
			setup:   []string{`update data/k {"data":{"a":1}}`, `delete data/k `},
			body:    `{"data":{"a":1},"options":{"cas":0}}`,
			want:    400,
			wantMsg: "check-and-set parameter did not match the current version (current version is 1)",
		},
		{
			name:  "soft-deleted secret with cas current",
			setup: []string{`update data/k {"data":{"a":1}}`, `delete data/k `},
			body:  `{"data":{"a":1},"options":{"cas":1}}`,
			want:  200,
		},
		{
			name:  "after metadata delete cas 0 works again",
			setup: []string{`update data/k {"data":{"a":1}}`, `delete metadata/k `},
			body:  `{"data":{"a":1},"options":{"cas":0}}`,
			want:  200,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "2")
			for _, s := range tt.setup {
				runStep(t, h, s)
			}
			resp, err := h.do(logical.UpdateOperation, "data/k", tt.body)
			if got := status(resp, err); got != tt.want {
				t.Fatalf("write %s = status %d (%v), want %d", tt.body, got, err, tt.want)
			}
			if got := errText(err); got != tt.wantMsg {
				t.Errorf("write %s = %q, want %q", tt.body, got, tt.wantMsg)
			}
		})
	}
}

// TestCheckAndSetRace writes concurrently with the same cas: exactly one
// writer may win, both for a new secret (cas 0) and an existing one.
func TestCheckAndSetRace(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup bool
		cas   int
	}{{"create", false, 0}, {"update", true, 1}} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "2")
			if tt.setup {
				h.write("data/race", `{"data":{"n":-1}}`)
			}
			const writers = 32
			var wg sync.WaitGroup
			results := make([]error, writers)
			start := make(chan struct{})
			for i := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, results[i] = h.do(logical.UpdateOperation, "data/race",
						fmt.Sprintf(`{"data":{"n":%d},"options":{"cas":%d}}`, i, tt.cas))
				}()
			}
			close(start)
			wg.Wait()
			wins := 0
			for _, err := range results {
				switch {
				case err == nil:
					wins++
				case status(nil, err) != 400:
					t.Errorf("concurrent cas write = %v, want success or 400", err)
				}
			}
			if wins != 1 {
				t.Fatalf("concurrent cas writes: %d succeeded, want exactly 1", wins)
			}
			meta := h.read("metadata/race").Data
			if got, want := meta["current_version"], uint64(tt.cas+1); got != want {
				t.Errorf("current_version = %v, want %v", got, want)
			}
		})
	}
}

func TestDeleteLatest(t *testing.T) {
	h := newHarness(t, "2")
	h.write("data/k", `{"data":{"a":1}}`)
	h.clock.Advance(time.Minute)
	h.write("data/k", `{"data":{"a":2}}`)
	h.clock.Advance(time.Minute)

	if resp, err := h.do(logical.DeleteOperation, "data/k", ""); status(resp, err) != 204 {
		t.Fatalf("delete data/k = %v, %v; want 204", resp, err)
	}
	resp, err := h.do(logical.ReadOperation, "data/k", "")
	if err != nil {
		t.Fatalf("read deleted data/k = %v", err)
	}
	want := &logical.Response{Status: 404, Data: map[string]any{
		"data": nil,
		"metadata": map[string]any{
			"created_time":    "2018-03-22T02:25:06.945319214Z",
			"custom_metadata": map[string]string(nil),
			"deletion_time":   "2018-03-22T02:26:06.945319214Z",
			"destroyed":       false,
			"version":         uint64(2),
		},
	}}
	if diff := cmp.Diff(want, resp); diff != "" {
		t.Errorf("read deleted data/k mismatch (-want +got):\n%s", diff)
	}
	// Version 1 is untouched; a second delete of the latest is a no-op.
	h.must(logical.ReadOperation, "data/k", `{"version":"1"}`)
	h.clock.Advance(time.Minute)
	h.must(logical.DeleteOperation, "data/k", "")
	got := h.read("metadata/k").Data["versions"].(map[string]any)["2"].(map[string]any)["deletion_time"]
	if got != "2018-03-22T02:26:06.945319214Z" {
		t.Errorf("deletion_time after a second delete = %v, want the first one", got)
	}
	// Deleting a missing secret succeeds, as in Vault.
	if resp, err := h.do(logical.DeleteOperation, "data/none", ""); status(resp, err) != 204 {
		t.Errorf("delete data/none = %v, %v; want 204", resp, err)
	}
}

func TestDataUnsupportedOperations(t *testing.T) {
	h := newHarness(t, "2")
	for _, tt := range []struct {
		op   logical.Operation
		path string
		want int
	}{
		{logical.ListOperation, "data/", 405},
		{logical.ListOperation, "data/a/", 405},
		{logical.PatchOperation, "subkeys/a", 405},
		{logical.ReadOperation, "delete/a", 405},
		{logical.DeleteOperation, "destroy/a", 405},
		{logical.PatchOperation, "config", 405},
		{logical.ReadOperation, "data", 404},
		{logical.ReadOperation, "foo/bar", 404},
		{logical.ReadOperation, "", 404},
		{logical.ListOperation, "subkeys/", 405},
	} {
		resp, err := h.do(tt.op, tt.path, "")
		if got := status(resp, err); got != tt.want {
			t.Errorf("%s %q = status %d (%v), want %d", tt.op, tt.path, got, err, tt.want)
		}
	}
}

func TestHeadIsRead(t *testing.T) {
	h := newHarness(t, "2")
	h.write("data/k", `{"data":{"a":1}}`)
	resp, err := h.do(logical.HeadOperation, "data/k", "")
	if status(resp, err) != 200 {
		t.Errorf("head data/k = %v, %v; want 200", resp, err)
	}
}

// TestCorruptEntry: an entry that does not decode is an internal error
// whose text quotes nothing of the stored bytes.
func TestCorruptEntry(t *testing.T) {
	h := newHarness(t, "2")
	h.write("data/k", `{"data":{"a":1}}`)
	if err := h.store.Put(context.Background(), &storage.Entry{Key: dataKey("k", 1), Value: []byte(`{"pw":"hunter2"`)}); err != nil {
		t.Fatal(err)
	}
	_, err := h.do(logical.ReadOperation, "data/k", "")
	if !errors.Is(err, errCorrupt) || status(nil, err) != 500 {
		t.Fatalf("read of a corrupt version = %v, want errCorrupt (500)", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %q quotes the stored value", err)
	}
}
