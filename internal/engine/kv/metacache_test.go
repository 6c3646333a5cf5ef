package kv

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coffer-dev/coffer/internal/logical"
)

// Reads served from the metadata cache never go back in time: with one
// writer and several readers on the same secret, each reader sees
// non-decreasing versions, never older than the last write acknowledged
// before its read began, and every kind of change (write, delete,
// undelete, destroy, metadata, delete-metadata) shows at once.
func TestMetaCacheNeverStale(t *testing.T) {
	h := newHarness(t, "2")
	h.write("data/k", `{"data":{"n":0}}`)
	h.read("data/k") // cached now

	var acked atomic.Int64
	acked.Store(1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := int64(0)
			for {
				select {
				case <-stop:
					return
				default:
				}
				floor := acked.Load()
				resp, err := h.b.HandleRequest(t.Context(), &logical.Request{Operation: logical.ReadOperation, MountPath: "data/k", MountPoint: "secret/", Data: map[string]any{}})
				if err != nil {
					errs <- err
					return
				}
				v, _ := resp.Data["metadata"].(map[string]any)["version"].(uint64)
				if int64(v) < floor || int64(v) < last {
					errs <- fmt.Errorf("read version %d after version %d was acknowledged (previous read %d)", v, floor, last)
					return
				}
				last = int64(v)
			}
		}()
	}
	for i := 1; i <= 300; i++ {
		resp := h.write("data/k", fmt.Sprintf(`{"data":{"n":%d}}`, i))
		acked.Store(int64(resp.Data["version"].(uint64)))
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	meta := func() map[string]any {
		t.Helper()
		return h.read("data/k").Data["metadata"].(map[string]any)
	}
	h.must(logical.DeleteOperation, "data/k", "")
	if resp, err := h.do(logical.ReadOperation, "data/k", ""); status(resp, err) != 404 {
		t.Fatalf("read after delete: %d", status(resp, err))
	}
	h.must(logical.UpdateOperation, "undelete/k", `{"versions":[301]}`)
	if m := meta(); m["deletion_time"] != "" {
		t.Fatalf("after undelete: %v", m)
	}
	h.must(logical.UpdateOperation, "metadata/k", `{"custom_metadata":{"owner":"a"}}`)
	if m := meta(); fmt.Sprint(m["custom_metadata"]) != "map[owner:a]" {
		t.Fatalf("custom metadata after metadata write: %v", m["custom_metadata"])
	}
	md := h.must(logical.ReadOperation, "metadata/k", "")
	if b, _ := json.Marshal(md.Data["custom_metadata"]); string(b) != `{"owner":"a"}` {
		t.Fatalf("metadata read: %s", b)
	}
	h.must(logical.UpdateOperation, "destroy/k", `{"versions":[301]}`)
	if resp, err := h.do(logical.ReadOperation, "data/k", ""); status(resp, err) != 404 || resp.Data["metadata"].(map[string]any)["destroyed"] != true {
		t.Fatalf("read after destroy: %d %v", status(resp, err), resp)
	}
	h.must(logical.DeleteOperation, "metadata/k", "")
	if resp, err := h.do(logical.ReadOperation, "data/k", ""); status(resp, err) != 404 || resp != nil && resp.Data["metadata"] != nil {
		t.Fatalf("read after metadata delete: %d %v", status(resp, err), resp)
	}
	// Sealing (Cleanup) drops the cache; reads still work after.
	h.write("data/k", `{"data":{"n":1}}`)
	h.read("data/k")
	h.b.Cleanup(t.Context())
	if h.b.metaCache != nil {
		t.Fatal("Cleanup kept the cache")
	}
	if v := meta()["version"]; v != uint64(1) {
		t.Fatalf("version after re-create = %v", v)
	}
}
