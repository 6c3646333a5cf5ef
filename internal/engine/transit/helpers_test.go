package transit

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage/inmem"
)

// t0 is the fake clock's start.
var t0 = time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)

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
	store *inmem.Backend
	clock *fakeClock
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	return newHarnessOn(t, inmem.New())
}

func newHarnessOn(t testing.TB, store *inmem.Backend) *harness {
	t.Helper()
	b, err := New(context.Background(), &logical.BackendConfig{Storage: store, MountPoint: "transit/"})
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	clock := &fakeClock{now: t0}
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

// do sends one request. An update becomes a create when Exists says the
// target is absent, as the pipeline decides; noCreate keeps it an update,
// as for a token without the create capability.
func (h *harness) do(op logical.Operation, path, data string) (*logical.Response, error) {
	h.t.Helper()
	return h.send(&logical.Request{Operation: op, MountPath: path, Data: body(h.t, data), MountPoint: "transit/"}, false)
}

func (h *harness) send(req *logical.Request, noCreate bool) (*logical.Response, error) {
	h.t.Helper()
	ctx := context.Background()
	if req.Operation == logical.UpdateOperation && !noCreate {
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

// must sends a request that has to succeed with status 200 or 204.
func (h *harness) must(op logical.Operation, path, data string) *logical.Response {
	h.t.Helper()
	resp, err := h.do(op, path, data)
	if code := status(resp, err); code != http.StatusOK && code != http.StatusNoContent {
		h.t.Fatalf("%s %s %s = status %d (%v)", op, path, data, code, err)
	}
	return resp
}

// write is a POST that has to succeed; it returns the response data.
func (h *harness) write(path, data string) map[string]any {
	h.t.Helper()
	resp := h.must(logical.UpdateOperation, path, data)
	if resp == nil {
		return nil
	}
	return resp.Data
}

// fail sends a request that has to fail with status and message.
func (h *harness) fail(op logical.Operation, path, data string, wantStatus int, wantMsg string) {
	h.t.Helper()
	resp, err := h.do(op, path, data)
	if code := status(resp, err); code != wantStatus {
		h.t.Fatalf("%s %s %s = status %d (%v), want %d", op, path, data, code, err, wantStatus)
	}
	if wantMsg != "" && errMsg(err) != wantMsg {
		h.t.Fatalf("%s %s %s: error = %q, want %q", op, path, data, errMsg(err), wantMsg)
	}
}

// status mirrors the server's mapping of a handler's result to a status.
func status(resp *logical.Response, err error) int {
	var ire *logical.InvalidRequestError
	var ce *logical.CodedError
	switch {
	case err == nil && resp == nil:
		return http.StatusNoContent
	case err == nil && resp.Status != 0:
		return resp.Status
	case err == nil:
		return http.StatusOK
	case errors.As(err, &ce):
		return ce.Status
	case errors.As(err, &ire):
		return http.StatusBadRequest
	case errors.Is(err, logical.ErrNotFound), errors.Is(err, logical.ErrUnsupportedPath):
		return http.StatusNotFound
	case errors.Is(err, logical.ErrUnsupportedOperation):
		return http.StatusMethodNotAllowed
	default:
		return http.StatusInternalServerError
	}
}

// errMsg is the message a client would see for a 4xx.
func errMsg(err error) string {
	var ire *logical.InvalidRequestError
	if errors.As(err, &ire) {
		return ire.Msg
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func unb64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("base64 %q: %v", s, err)
	}
	return b
}

// jsonBody renders v as a request body.
func jsonBody(t testing.TB, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// encrypt encrypts plaintext with key (created on the fly if absent).
func (h *harness) encrypt(key, plaintext, extra string) string {
	h.t.Helper()
	data := h.write("encrypt/"+key, `{"plaintext":"`+b64(plaintext)+`"`+extra+`}`)
	ct, _ := data["ciphertext"].(string)
	if ct == "" {
		h.t.Fatalf("encrypt/%s: no ciphertext in %v", key, data)
	}
	return ct
}

// decrypt decrypts ciphertext with key and returns the plaintext.
func (h *harness) decrypt(key, ciphertext, extra string) string {
	h.t.Helper()
	data := h.write("decrypt/"+key, `{"ciphertext":"`+ciphertext+`"`+extra+`}`)
	pt, ok := data["plaintext"].(string)
	if !ok {
		h.t.Fatalf("decrypt/%s: no plaintext in %v", key, data)
	}
	return string(unb64(h.t, pt))
}

// stored reads the raw storage entry of key name.
func (h *harness) stored(name string) *storedKey {
	h.t.Helper()
	e, err := h.store.Get(context.Background(), policyKey(name))
	if err != nil {
		h.t.Fatalf("Get(%q) = %v", policyKey(name), err)
	}
	var s storedKey
	if err := json.Unmarshal(e.Value, &s); err != nil {
		h.t.Fatalf("stored key %q: %v", name, err)
	}
	return &s
}
