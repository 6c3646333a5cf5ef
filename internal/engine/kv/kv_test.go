package kv_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/coffer-dev/coffer/internal/engine/kv"
	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage/inmem"
)

// mount builds a KV engine through its Factory, as core does.
func mount(t *testing.T, version string) logical.Backend {
	t.Helper()
	b, err := kv.Factory(context.Background(), &logical.BackendConfig{
		Storage:    inmem.New(),
		MountPoint: "secret/",
		Options:    map[string]string{"version": version},
	})
	if err != nil {
		t.Fatalf("Factory(version %q) = %v", version, err)
	}
	return b
}

// call routes one request like core: POST/PUT become create or update
// through the ExistenceChecker.
func call(t *testing.T, b logical.Backend, op logical.Operation, path, body string) (*logical.Response, error) {
	t.Helper()
	data := map[string]any{}
	if body != "" {
		dec := json.NewDecoder(bytes.NewReader([]byte(body)))
		dec.UseNumber()
		if err := dec.Decode(&data); err != nil {
			t.Fatalf("body %q: %v", body, err)
		}
	}
	req := &logical.Request{Operation: op, MountPoint: "secret/", MountPath: path, Data: data}
	if op == logical.PatchOperation {
		req.ContentType = "application/merge-patch+json"
	}
	if op == logical.UpdateOperation {
		exists, err := b.(logical.ExistenceChecker).Exists(context.Background(), req)
		if err != nil {
			t.Fatalf("Exists(%q) = %v", path, err)
		}
		if !exists {
			req.Operation = logical.CreateOperation
		}
	}
	return b.HandleRequest(context.Background(), req)
}

func mustCall(t *testing.T, b logical.Backend, op logical.Operation, path, body string) map[string]any {
	t.Helper()
	resp, err := call(t, b, op, path, body)
	if err != nil {
		t.Fatalf("%s %s = %v", op, path, err)
	}
	if resp == nil {
		return nil
	}
	if resp.Status >= 400 {
		t.Fatalf("%s %s = status %d", op, path, resp.Status)
	}
	return resp.Data
}

// TestVaultWalkthrough replays the usage section of Vault's KV v2
// documentation through the public API of the engine.
func TestVaultWalkthrough(t *testing.T) {
	b := mount(t, "2")
	version := func(d map[string]any) any { return d["version"] }

	w := mustCall(t, b, logical.UpdateOperation, "data/my-secret", `{"data":{"foo":"a","bar":"b"}}`)
	if version(w) != uint64(1) || w["deletion_time"] != "" || w["destroyed"] != false {
		t.Fatalf("first put = %v", w)
	}
	w = mustCall(t, b, logical.UpdateOperation, "data/my-secret", `{"options":{"cas":1},"data":{"foo":"aa","bar":"bb"}}`)
	if version(w) != uint64(2) {
		t.Fatalf("put -cas=1 = %v", w)
	}
	w = mustCall(t, b, logical.PatchOperation, "data/my-secret", `{"options":{"cas":2},"data":{"bar":"bbb"}}`)
	if version(w) != uint64(3) {
		t.Fatalf("patch -cas=2 = %v", w)
	}
	got := mustCall(t, b, logical.ReadOperation, "data/my-secret", "")["data"]
	if diff := cmp.Diff(map[string]any{"foo": "aa", "bar": "bbb"}, got); diff != "" {
		t.Errorf("get after patch mismatch (-want +got):\n%s", diff)
	}
	got = mustCall(t, b, logical.ReadOperation, "data/my-secret", `{"version":"1"}`)["data"]
	if diff := cmp.Diff(map[string]any{"foo": "a", "bar": "b"}, got); diff != "" {
		t.Errorf("get -version=1 mismatch (-want +got):\n%s", diff)
	}

	// kv delete, then the client sees a 404 that still has metadata.
	mustCall(t, b, logical.DeleteOperation, "data/my-secret", "")
	resp, err := call(t, b, logical.ReadOperation, "data/my-secret", "")
	if err != nil || resp.Status != 404 || resp.Data["data"] != nil || resp.Data["metadata"].(map[string]any)["deletion_time"] == "" {
		t.Fatalf("get after delete = %v, %v; want 404 with metadata", resp, err)
	}
	mustCall(t, b, logical.UpdateOperation, "undelete/my-secret", `{"versions":["3"]}`)
	mustCall(t, b, logical.ReadOperation, "data/my-secret", "")
	mustCall(t, b, logical.UpdateOperation, "destroy/my-secret", `{"versions":[2]}`)

	// Max versions apply on the next write; delete_version_after to new versions.
	mustCall(t, b, logical.UpdateOperation, "metadata/my-secret", `{"max_versions":2,"delete_version_after":"3h25m19s"}`)
	w = mustCall(t, b, logical.UpdateOperation, "data/my-secret", `{"data":{"my-value":"newer-s3cr3t"}}`)
	if version(w) != uint64(4) || w["deletion_time"] == "" {
		t.Errorf("put after metadata put = %v, want version 4 with a deletion_time", w)
	}
	md := mustCall(t, b, logical.ReadOperation, "metadata/my-secret", "")
	if md["current_version"] != uint64(4) || md["oldest_version"] != uint64(3) || md["max_versions"] != 2 || md["delete_version_after"] != "3h25m19s" {
		t.Errorf("metadata get = %v", md)
	}
	if n := len(md["versions"].(map[string]any)); n != 2 {
		t.Errorf("metadata get: %d versions, want 2", n)
	}

	keys := mustCall(t, b, logical.ListOperation, "metadata/", "")["keys"]
	if diff := cmp.Diff([]string{"my-secret"}, keys); diff != "" {
		t.Errorf("list mismatch (-want +got):\n%s", diff)
	}
	mustCall(t, b, logical.DeleteOperation, "metadata/my-secret", "")
	if _, err := call(t, b, logical.ReadOperation, "data/my-secret", ""); !errors.Is(err, logical.ErrNotFound) {
		t.Errorf("get after metadata delete = %v, want logical.ErrNotFound", err)
	}
	if _, err := call(t, b, logical.ListOperation, "metadata/", ""); !errors.Is(err, logical.ErrNotFound) {
		t.Errorf("list of an empty mount = %v, want logical.ErrNotFound", err)
	}
}

// TestTuneToVersion2 upgrades a version 1 mount through OptionsUpdater.
func TestTuneToVersion2(t *testing.T) {
	b := mount(t, "1")
	mustCall(t, b, logical.UpdateOperation, "team/app", `{"token":"t0k3n"}`)
	u, ok := b.(logical.OptionsUpdater)
	if !ok {
		t.Fatalf("the KV backend does not implement logical.OptionsUpdater")
	}
	if err := u.UpdateOptions(map[string]string{"version": "2"}); err != nil {
		t.Fatalf("UpdateOptions(version 2) = %v", err)
	}
	got := mustCall(t, b, logical.ReadOperation, "data/team/app", "")
	if diff := cmp.Diff(map[string]any{"token": "t0k3n"}, got["data"]); diff != "" {
		t.Errorf("value after upgrade mismatch (-want +got):\n%s", diff)
	}
	var ire *logical.InvalidRequestError
	if err := u.UpdateOptions(map[string]string{"version": "1"}); !errors.As(err, &ire) {
		t.Errorf("UpdateOptions(version 1) on a version 2 mount = %v, want a 400", err)
	}
}
