package kv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
	"github.com/coffer-dev/coffer/internal/storage/inmem"
)

// t0 is the fake clock's start; its nanoseconds show in rendered times.
var t0 = time.Date(2018, 3, 22, 2, 24, 6, 945319214, time.UTC)

const t0s = "2018-03-22T02:24:06.945319214Z"

// fakeClock is a settable clock shared by a backend and its test.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// harness drives one backend through HandleRequest as the pipeline does.
type harness struct {
	t     testing.TB
	b     *Backend
	store storage.Backend
	clock *fakeClock
}

func newHarness(t testing.TB, version string) *harness {
	t.Helper()
	return newHarnessOn(t, inmem.New(), version)
}

func newHarnessOn(t testing.TB, store storage.Backend, version string) *harness {
	t.Helper()
	clock := &fakeClock{now: t0}
	b, err := New(context.Background(), &logical.BackendConfig{
		Storage:    store,
		MountPoint: "secret/",
		Options:    map[string]string{"version": version},
	})
	if err != nil {
		t.Fatalf("New(version %q) = %v", version, err)
	}
	b.now = clock.Now
	return &harness{t: t, b: b, store: store, clock: clock}
}

// body decodes a JSON request body the way the HTTP layer does.
func body(t testing.TB, s string) map[string]any {
	t.Helper()
	if s == "" {
		return map[string]any{}
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("body(%q): %v", s, err)
	}
	return m
}

// do sends one request; an update on a missing target becomes a create,
// as the pipeline decides with Exists.
func (h *harness) do(op logical.Operation, path, data string) (*logical.Response, error) {
	h.t.Helper()
	req := &logical.Request{Operation: op, MountPath: path, Data: body(h.t, data), MountPoint: "secret/"}
	if op == logical.PatchOperation {
		req.ContentType = "application/merge-patch+json"
	}
	return h.send(req)
}

func (h *harness) send(req *logical.Request) (*logical.Response, error) {
	h.t.Helper()
	ctx := context.Background()
	if req.Operation == logical.UpdateOperation {
		ok, err := h.b.Exists(ctx, req)
		if err != nil {
			h.t.Fatalf("Exists(%q) = %v", req.MountPath, err)
		}
		if !ok {
			req.Operation = logical.CreateOperation
		}
	}
	return h.b.HandleRequest(ctx, req)
}

// must sends a request that has to succeed.
func (h *harness) must(op logical.Operation, path, data string) *logical.Response {
	h.t.Helper()
	resp, err := h.do(op, path, data)
	if err != nil {
		h.t.Fatalf("%s %s = %v", op, path, err)
	}
	if resp != nil && resp.Status >= 400 {
		h.t.Fatalf("%s %s = status %d", op, path, resp.Status)
	}
	return resp
}

func (h *harness) write(path, data string) *logical.Response {
	h.t.Helper()
	return h.must(logical.UpdateOperation, path, data)
}

func (h *harness) read(path string) *logical.Response {
	h.t.Helper()
	return h.must(logical.ReadOperation, path, "")
}

// status maps a handler outcome to the HTTP status the server would send.
func status(resp *logical.Response, err error) int {
	var ire *logical.InvalidRequestError
	var ce *logical.CodedError
	switch {
	case err == nil && resp != nil && resp.Status != 0:
		return resp.Status
	case err == nil && resp == nil:
		return 204
	case err == nil:
		return 200
	case errors.As(err, &ce):
		return ce.Status
	case errors.As(err, &ire):
		return 400
	case errors.Is(err, logical.ErrNotFound), errors.Is(err, logical.ErrUnsupportedPath):
		return 404
	case errors.Is(err, logical.ErrUnsupportedOperation):
		return 405
	default:
		return 500
	}
}

// errText is the client-visible message of err, or "".
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// allKeys walks every key stored in s, in lexical order.
func allKeys(t testing.TB, s storage.Backend) []string {
	t.Helper()
	var walk func(prefix string) []string
	walk = func(prefix string) []string {
		names, err := s.List(context.Background(), prefix)
		if err != nil {
			t.Fatalf("List(%q) = %v", prefix, err)
		}
		var out []string
		for _, n := range names {
			if n[len(n)-1] == '/' {
				out = append(out, walk(prefix+n)...)
				continue
			}
			out = append(out, prefix+n)
		}
		return out
	}
	return walk("")
}

func hasKey(t testing.TB, s storage.Backend, key string) bool {
	t.Helper()
	_, err := s.Get(context.Background(), key)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get(%q) = %v", key, err)
	}
	return err == nil
}

func (h *harness) keys() []string      { h.t.Helper(); return allKeys(h.t, h.store) }
func (h *harness) has(key string) bool { h.t.Helper(); return hasKey(h.t, h.store, key) }
