package kv

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/coffer-dev/coffer/internal/logical"
)

// versionStates summarises metadata versions as "deleted"/"destroyed"/
// "live" per version number, the deletion time aside.
func versionStates(t *testing.T, h *harness, path string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for n, v := range h.read("metadata/" + path).Data["versions"].(map[string]any) {
		vm := v.(map[string]any)
		switch {
		case vm["destroyed"] == true:
			out[n] = "destroyed"
		case vm["deletion_time"] != "":
			out[n] = "deleted"
		default:
			out[n] = "live"
		}
	}
	return out
}

func TestDeleteUndeleteDestroy(t *testing.T) {
	tests := []struct {
		name  string
		steps []string // "endpoint body"
		want  map[string]string
	}{
		{
			name:  "delete two",
			steps: []string{`delete {"versions":[1,3]}`},
			want:  map[string]string{"1": "deleted", "2": "live", "3": "deleted"},
		},
		{
			name:  "versions as comma string",
			steps: []string{`delete {"versions":"1,2"}`},
			want:  map[string]string{"1": "deleted", "2": "deleted", "3": "live"},
		},
		{
			name:  "versions as numeric strings",
			steps: []string{`delete {"versions":["2"]}`},
			want:  map[string]string{"1": "live", "2": "deleted", "3": "live"},
		},
		{
			name:  "undelete",
			steps: []string{`delete {"versions":[1,2,3]}`, `undelete {"versions":[2]}`},
			want:  map[string]string{"1": "deleted", "2": "live", "3": "deleted"},
		},
		{
			name:  "destroy",
			steps: []string{`destroy {"versions":[1]}`},
			want:  map[string]string{"1": "destroyed", "2": "live", "3": "live"},
		},
		{
			name:  "undelete of a destroyed version keeps it destroyed",
			steps: []string{`delete {"versions":[2]}`, `destroy {"versions":[2]}`, `undelete {"versions":[2]}`},
			want:  map[string]string{"1": "live", "2": "destroyed", "3": "live"},
		},
		{
			name:  "delete of a destroyed version keeps it destroyed",
			steps: []string{`destroy {"versions":[3]}`, `delete {"versions":[3]}`},
			want:  map[string]string{"1": "live", "2": "live", "3": "destroyed"},
		},
		{
			name:  "versions that do not exist are skipped",
			steps: []string{`delete {"versions":[7,99]}`, `destroy {"versions":[42]}`, `undelete {"versions":[1000]}`},
			want:  map[string]string{"1": "live", "2": "live", "3": "live"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "2")
			for i := 1; i <= 3; i++ {
				h.write("data/k", fmt.Sprintf(`{"data":{"v":%d}}`, i))
			}
			for _, s := range tt.steps {
				endpoint, data, _ := strings.Cut(s, " ")
				resp, err := h.do(logical.UpdateOperation, endpoint+"/k", data)
				if got := status(resp, err); got != 204 {
					t.Fatalf("%s = status %d (%v), want 204", s, got, err)
				}
			}
			if diff := cmp.Diff(tt.want, versionStates(t, h, "k")); diff != "" {
				t.Errorf("version states mismatch (-want +got):\n%s", diff)
			}
			// Reads agree with the metadata, and destroyed data is gone.
			for n, state := range tt.want {
				resp, err := h.do(logical.ReadOperation, "data/k", `{"version":"`+n+`"}`)
				wantStatus := 200
				if state != "live" {
					wantStatus = 404
				}
				if got := status(resp, err); got != wantStatus {
					t.Errorf("read version %s (%s) = status %d, want %d", n, state, got, wantStatus)
				}
				if state != "live" {
					md := resp.Data["metadata"].(map[string]any)
					if md["destroyed"] != (state == "destroyed") || resp.Data["data"] != nil {
						t.Errorf("read version %s (%s) = %v, want metadata without data", n, state, resp.Data)
					}
				}
				num, _ := strconv.ParseUint(n, 10, 64)
				present := h.has(dataKey("k", num))
				if present == (state == "destroyed") {
					t.Errorf("version %s (%s): data stored = %v", n, state, present)
				}
			}
		})
	}
}

func TestVersionsErrors(t *testing.T) {
	h := newHarness(t, "2")
	h.write("data/k", `{"data":{"a":1}}`)
	tests := []struct {
		name, body, wantMsg string
	}{
		{"missing", `{}`, "no version number provided"},
		{"empty list", `{"versions":[]}`, "no version number provided"},
		{"empty string", `{"versions":""}`, "no version number provided"},
		{"zero", `{"versions":[0]}`, "versions: every element must be a positive integer"},
		{"negative", `{"versions":[-1]}`, "versions: every element must be a positive integer"},
		{"fraction", `{"versions":[1.5]}`, "versions: every element must be a positive integer"},
		{"word", `{"versions":["one"]}`, "versions: every element must be a positive integer"},
		{"null element", `{"versions":[null]}`, "versions: every element must be a positive integer"},
		{"object", `{"versions":{"1":true}}`, "versions: every element must be a positive integer"},
		{"unknown field", `{"versions":[1],"version":1}`, `unknown field "version"`},
	}
	for _, endpoint := range []string{"delete", "undelete", "destroy"} {
		for _, tt := range tests {
			t.Run(endpoint+"/"+tt.name, func(t *testing.T) {
				resp, err := h.do(logical.UpdateOperation, endpoint+"/k", tt.body)
				if got := status(resp, err); got != 400 {
					t.Fatalf("%s %s = status %d (%v), want 400", endpoint, tt.body, got, err)
				}
				if got := errText(err); got != tt.wantMsg {
					t.Errorf("%s %s = %q, want %q", endpoint, tt.body, got, tt.wantMsg)
				}
			})
		}
	}
	// On a missing secret the versions are skipped: success.
	if resp, err := h.do(logical.UpdateOperation, "destroy/none", `{"versions":[1]}`); status(resp, err) != 204 {
		t.Errorf("destroy/none = %v, %v; want 204", resp, err)
	}
}

func TestMaxVersions(t *testing.T) {
	tests := []struct {
		name       string
		config     string
		meta       string
		writes     int
		wantOldest uint64
		wantKept   []string
	}{
		{name: "default keeps 10", writes: 12, wantOldest: 3, wantKept: []string{"3", "4", "5", "6", "7", "8", "9", "10", "11", "12"}},
		{name: "under the limit", writes: 3, wantOldest: 0, wantKept: []string{"1", "2", "3"}},
		{name: "mount config", config: `{"max_versions":3}`, writes: 5, wantOldest: 3, wantKept: []string{"3", "4", "5"}},
		{name: "key overrides mount down", config: `{"max_versions":3}`, meta: `{"max_versions":2}`, writes: 5, wantOldest: 4, wantKept: []string{"4", "5"}},
		{name: "key overrides mount up", config: `{"max_versions":2}`, meta: `{"max_versions":4}`, writes: 5, wantOldest: 2, wantKept: []string{"2", "3", "4", "5"}},
		{name: "one", meta: `{"max_versions":1}`, writes: 3, wantOldest: 3, wantKept: []string{"3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "2")
			if tt.config != "" {
				h.write("config", tt.config)
			}
			if tt.meta != "" {
				h.write("metadata/k", tt.meta)
			}
			for i := 1; i <= tt.writes; i++ {
				h.write("data/k", fmt.Sprintf(`{"data":{"v":%d}}`, i))
			}
			md := h.read("metadata/k").Data
			if md["oldest_version"] != tt.wantOldest || md["current_version"] != uint64(tt.writes) {
				t.Errorf("oldest, current = %v, %v; want %d, %d", md["oldest_version"], md["current_version"], tt.wantOldest, tt.writes)
			}
			var kept []string
			for n := 1; n <= tt.writes; n++ {
				s := fmt.Sprint(n)
				if _, ok := md["versions"].(map[string]any)[s]; ok {
					kept = append(kept, s)
				}
				stored := h.has(dataKey("k", uint64(n)))
				resp, err := h.do(logical.ReadOperation, "data/k", `{"version":"`+s+`"}`)
				inKept := len(kept) > 0 && kept[len(kept)-1] == s
				if stored != inKept || (status(resp, err) == 200) != inKept {
					t.Errorf("version %d: stored %v, read status %d; want kept=%v", n, stored, status(resp, err), inKept)
				}
			}
			if diff := cmp.Diff(tt.wantKept, kept); diff != "" {
				t.Errorf("kept versions mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMaxVersionsAppliesOnNextWrite: lowering max_versions trims nothing
// until the next write, as Vault documents.
func TestMaxVersionsAppliesOnNextWrite(t *testing.T) {
	h := newHarness(t, "2")
	for i := 1; i <= 4; i++ {
		h.write("data/k", fmt.Sprintf(`{"data":{"v":%d}}`, i))
	}
	h.write("metadata/k", `{"max_versions":2}`)
	if n := len(h.read("metadata/k").Data["versions"].(map[string]any)); n != 4 {
		t.Fatalf("versions after lowering max_versions = %d, want 4", n)
	}
	h.write("data/k", `{"data":{"v":5}}`)
	md := h.read("metadata/k").Data
	if n := len(md["versions"].(map[string]any)); n != 2 || md["oldest_version"] != uint64(4) {
		t.Errorf("after next write: %d versions, oldest %v; want 2, 4", n, md["oldest_version"])
	}
}

func TestDeleteVersionAfter(t *testing.T) {
	tests := []struct {
		name    string
		config  string
		meta    string
		wantDel time.Duration // 0: no deletion time
	}{
		{name: "none"},
		{name: "mount", config: `{"delete_version_after":"1h"}`, wantDel: time.Hour},
		{name: "mount in seconds", config: `{"delete_version_after":90}`, wantDel: 90 * time.Second},
		{name: "key", meta: `{"delete_version_after":"30m"}`, wantDel: 30 * time.Minute},
		{name: "key shorter than mount", config: `{"delete_version_after":"1h"}`, meta: `{"delete_version_after":"10m"}`, wantDel: 10 * time.Minute},
		{name: "key longer than mount", config: `{"delete_version_after":"1h"}`, meta: `{"delete_version_after":"3h25m19s"}`, wantDel: time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "2")
			if tt.config != "" {
				h.write("config", tt.config)
			}
			if tt.meta != "" {
				h.write("metadata/k", tt.meta)
			}
			w := h.write("data/k", `{"data":{"a":1}}`).Data
			wantTime := ""
			if tt.wantDel > 0 {
				wantTime = formatTime(t0.Add(tt.wantDel))
			}
			if w["deletion_time"] != wantTime {
				t.Fatalf("write deletion_time = %v, want %q", w["deletion_time"], wantTime)
			}
			// Still readable just before, deleted from the deletion time on.
			if tt.wantDel > 0 {
				h.clock.Advance(tt.wantDel - time.Nanosecond)
			}
			h.read("data/k")
			h.clock.Advance(time.Nanosecond)
			resp, err := h.do(logical.ReadOperation, "data/k", "")
			if tt.wantDel == 0 {
				if status(resp, err) != 200 {
					t.Fatalf("read without delete_version_after = status %d", status(resp, err))
				}
				return
			}
			if got := status(resp, err); got != 404 {
				t.Fatalf("read after delete_version_after = status %d, want 404", got)
			}
			if got := resp.Data["metadata"].(map[string]any)["deletion_time"]; got != wantTime {
				t.Errorf("expired version deletion_time = %v, want %q", got, wantTime)
			}
			// An expired version is deleted for patch, and undelete revives it.
			if resp, err := h.do(logical.PatchOperation, "data/k", `{"data":{"b":2}}`); status(resp, err) != 404 {
				t.Errorf("patch expired = status %d, want 404", status(resp, err))
			}
			h.must(logical.UpdateOperation, "undelete/k", `{"versions":[1]}`)
			h.read("data/k")
		})
	}
}

// TestDeleteVersionAfterOnlyNewVersions: changing the setting does not
// touch versions already written.
func TestDeleteVersionAfterOnlyNewVersions(t *testing.T) {
	h := newHarness(t, "2")
	h.write("data/k", `{"data":{"a":1}}`)
	h.write("config", `{"delete_version_after":"1s"}`)
	h.clock.Advance(time.Hour)
	h.must(logical.ReadOperation, "data/k", "")
}
