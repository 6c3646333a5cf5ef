package kv

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
	"github.com/coffer-dev/coffer/internal/storage/inmem"
)

func TestUpgradeV1ToV2(t *testing.T) {
	h := newHarness(t, "1")
	values := map[string]string{
		"app/db":          `{"password":"s3cret","port":5432}`,
		"app/cache/redis": `{"url":"redis://x"}`,
		"top":             `{"a":{"b":[1,2]}}`,
	}
	for p, v := range values {
		h.must(logical.UpdateOperation, p, v)
	}
	h.write("config-like", `{"not":"config"}`)
	values["config-like"] = `{"not":"config"}`

	if err := h.b.UpdateOptions(map[string]string{"version": "2"}); err != nil {
		t.Fatalf("UpdateOptions(version 2) = %v", err)
	}
	for p, v := range values {
		resp := h.read("data/" + p)
		if diff := cmp.Diff(decodeJSON(t, v), any(resp.Data["data"])); diff != "" {
			t.Errorf("data/%s after upgrade mismatch (-want +got):\n%s", p, diff)
		}
		if got := resp.Data["metadata"].(map[string]any)["version"]; got != uint64(1) {
			t.Errorf("data/%s after upgrade: version %v, want 1", p, got)
		}
	}
	for _, k := range h.keys() {
		if strings.HasPrefix(k, v1Prefix) {
			t.Errorf("after upgrade, version 1 key %s is still stored", k)
		}
	}
	resp := h.must(logical.ListOperation, "metadata/app/", "")
	if diff := cmp.Diff([]string{"cache/", "db"}, resp.Data["keys"]); diff != "" {
		t.Errorf("list after upgrade mismatch (-want +got):\n%s", diff)
	}
	// Version 1 paths are gone from the API.
	if resp, err := h.do(logical.ReadOperation, "app/db", ""); status(resp, err) != 404 {
		t.Errorf("read of a version 1 path after upgrade = status %d, want 404", status(resp, err))
	}

	for _, tt := range []struct {
		name    string
		version string
		want    int
	}{
		{"same version", "2", 0},
		{"unset", "", 0},
		{"downgrade", "1", 400},
		{"unknown", "3", 400},
	} {
		err := h.b.UpdateOptions(map[string]string{"version": tt.version})
		if got := status(nil, err); (tt.want == 0 && err != nil) || (tt.want != 0 && got != tt.want) {
			t.Errorf("UpdateOptions(%s: %q) = %v, want status %d", tt.name, tt.version, err, tt.want)
		}
	}
	if h.b.version != 2 {
		t.Errorf("version after refused downgrade = %d, want 2", h.b.version)
	}
}

// TestUpgradeResumes: a crash in the middle of an upgrade leaves some
// values in each layout; building the mount as version 2 finishes it.
func TestUpgradeResumes(t *testing.T) {
	store := inmem.New()
	v1 := newHarnessOn(t, store, "1")
	v1.must(logical.UpdateOperation, "a", `{"x":"1"}`)
	v1.must(logical.UpdateOperation, "b/c", `{"y":"2"}`)
	// Simulate a partial upgrade: "a" was migrated, "b/c" was not.
	if err := v1.b.upgradeOne(context.Background(), "a"); err != nil {
		t.Fatalf("upgradeOne(a) = %v", err)
	}

	h := newHarnessOn(t, store, "2")
	for p, want := range map[string]string{"a": `{"x":"1"}`, "b/c": `{"y":"2"}`} {
		if diff := cmp.Diff(decodeJSON(t, want), any(h.read("data/" + p).Data["data"])); diff != "" {
			t.Errorf("data/%s after resumed upgrade mismatch (-want +got):\n%s", p, diff)
		}
	}
	if got := h.read("metadata/a").Data["current_version"]; got != uint64(1) {
		t.Errorf("data/a current_version = %v, want 1 (migrated once)", got)
	}
}

func TestUpgradeCorruptValue(t *testing.T) {
	store := inmem.New()
	h := newHarnessOn(t, store, "1")
	h.must(logical.UpdateOperation, "a", `{"x":"1"}`)
	h.must(logical.UpdateOperation, "z", `{"x":"1"}`)
	if err := store.Put(context.Background(), &storage.Entry{Key: v1Key("m"), Value: []byte("[1,2]")}); err != nil {
		t.Fatal(err)
	}
	before := allKeys(t, store)
	if err := h.b.UpdateOptions(map[string]string{"version": "2"}); err == nil {
		t.Fatalf("UpdateOptions over a corrupt value succeeded")
	}
	if h.b.version != 1 {
		t.Errorf("version after failed upgrade = %d, want 1", h.b.version)
	}
	if diff := cmp.Diff(before, allKeys(t, store)); diff != "" {
		t.Errorf("refused upgrade moved values (-want +got):\n%s", diff)
	}
	h.read("a")
}

// failingStore fails every Batch, to show that a failed write changes
// nothing.
type failingStore struct{ storage.Backend }

var errInjected = errors.New("injected batch failure")

func (failingStore) Batch(context.Context, []storage.Op) error { return errInjected }

func TestWriteIsAtomic(t *testing.T) {
	store := inmem.New()
	h := newHarnessOn(t, store, "2")
	h.write("metadata/k", `{"max_versions":1}`)
	h.write("data/k", `{"data":{"v":1}}`)
	before := allKeys(t, store)

	b, err := New(context.Background(), &logical.BackendConfig{Storage: failingStore{store}, Options: map[string]string{"version": "2"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		op         logical.Operation
		path, body string
	}{
		{logical.UpdateOperation, "data/k", `{"data":{"v":2}}`},
		{logical.UpdateOperation, "destroy/k", `{"versions":[1]}`},
		{logical.DeleteOperation, "metadata/k", ``},
	} {
		_, err := b.HandleRequest(context.Background(), &logical.Request{Operation: tt.op, MountPath: tt.path, Data: body(t, tt.body)})
		if !errors.Is(err, errInjected) {
			t.Errorf("%s %s on a failing store = %v, want the storage error", tt.op, tt.path, err)
		}
	}
	if diff := cmp.Diff(before, allKeys(t, store)); diff != "" {
		t.Errorf("failed writes changed storage (-want +got):\n%s", diff)
	}
	if got := h.read("data/k").Data["data"]; !cmp.Equal(got, map[string]any{"v": json.Number("1")}) {
		t.Errorf("data after failed writes = %v", got)
	}
}

// TestStorageLayout pins the documented storage layout.
func TestStorageLayout(t *testing.T) {
	h := newHarness(t, "2")
	h.write("config", `{"max_versions":2}`)
	h.write("data/app/db", `{"data":{"a":1}}`)
	h.write("data/app/db", `{"data":{"a":2}}`)
	h.write("data/app/db", `{"data":{"a":3}}`)
	want := []string{
		"v2/config",
		// sha256("app/db")
		"v2/data/24c7bc697ada89620c4e484dc0e7b25faa4f72349ef6a6d850824c9c1baa4852/2",
		"v2/data/24c7bc697ada89620c4e484dc0e7b25faa4f72349ef6a6d850824c9c1baa4852/3",
		"v2/meta/app/db",
	}
	if diff := cmp.Diff(want, h.keys()); diff != "" {
		t.Errorf("storage keys mismatch (-want +got):\n%s", diff)
	}
	raw, _ := h.store.Get(context.Background(), dataKey("app/db", 3))
	if string(raw.Value) != `{"a":3}` {
		t.Errorf("stored version 3 = %s, want the data object alone", raw.Value)
	}
}
