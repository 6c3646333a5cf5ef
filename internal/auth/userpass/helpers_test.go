package userpass

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
	"github.com/coffer-dev/coffer/internal/storage/inmem"
)

// fastOptions are the cheapest parameters a mount accepts, for tests that
// do not measure time.
var fastOptions = map[string]string{optMemory: "19456", optIterations: "2", optParallelism: "1"}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness drives one backend through HandleRequest as the pipeline does.
type harness struct {
	t     testing.TB
	b     *Backend
	store storage.Backend
	clock *clock
}

func newHarness(t testing.TB, opts map[string]string) *harness {
	t.Helper()
	return newHarnessOn(t, inmem.New(), opts, &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)})
}

// newHarnessOn builds a backend over existing storage, as a restart does.
func newHarnessOn(t testing.TB, s storage.Backend, opts map[string]string, c *clock) *harness {
	t.Helper()
	be, err := Factory(context.Background(), &logical.BackendConfig{Storage: s, MountPoint: "auth/userpass/", Options: opts})
	if err != nil {
		t.Fatalf("Factory: %v", err)
	}
	b := be.(*Backend)
	b.now = c.now
	return &harness{t: t, b: b, store: s, clock: c}
}

func (h *harness) do(op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	h.t.Helper()
	if data == nil {
		data = map[string]any{}
	}
	req := &logical.Request{Operation: op, Path: "auth/userpass/" + path, MountPoint: "auth/userpass/", MountPath: path,
		Data: data, RemoteAddr: "127.0.0.1:50000"}
	if op == logical.UpdateOperation {
		exists, err := h.b.Exists(context.Background(), req)
		if err != nil {
			return nil, err
		}
		if !exists {
			req.Operation = logical.CreateOperation
		}
	}
	return h.b.HandleRequest(context.Background(), req)
}

func (h *harness) mustDo(op logical.Operation, path string, data map[string]any) *logical.Response {
	h.t.Helper()
	resp, err := h.do(op, path, data)
	if err != nil {
		h.t.Fatalf("%s %s: %v", op, path, err)
	}
	return resp
}

func (h *harness) login(name, pw string) (*logical.Response, error) {
	h.t.Helper()
	return h.do(logical.UpdateOperation, "login/"+name, map[string]any{"password": pw})
}

// wantStatus checks that err maps to HTTP status code (as package server
// maps it) with message msg ("" for any).
func wantStatus(t testing.TB, err error, code int, msg string) {
	t.Helper()
	var ce *logical.CodedError
	var ire *logical.InvalidRequestError
	got := 0
	switch {
	case err == nil:
		got = 200
	case errors.As(err, &ce):
		got = ce.Status
	case errors.As(err, &ire):
		got = 400
	case errors.Is(err, logical.ErrPermissionDenied):
		got = 403
	case errors.Is(err, logical.ErrNotFound), errors.Is(err, logical.ErrUnsupportedPath):
		got = 404
	case errors.Is(err, logical.ErrUnsupportedOperation):
		got = 405
	default:
		got = 500
	}
	if got != code {
		t.Fatalf("error %v maps to %d, want %d", err, got, code)
	}
	if msg != "" && (err == nil || err.Error() != msg) {
		t.Fatalf("error = %v, want %q", err, msg)
	}
}
