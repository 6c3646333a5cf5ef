package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/coffer-dev/coffer/internal/logical"
)

// recorder is an honest Handler: it records the logical request and
// answers with whatever the test sets.
type recorder struct {
	got  *logical.Request
	resp *logical.Response
	err  error
}

func (r *recorder) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	r.got = req
	return r.resp, r.err
}

func do(t *testing.T, h http.Handler, method, path, body string, hdr map[string]string) (*http.Response, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	res := w.Result()
	var m map[string]any
	raw, _ := io.ReadAll(res.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %v", method, path, raw, err)
		}
	}
	return res, m
}

func TestRequestTranslation(t *testing.T) {
	tests := []struct {
		name, method, path, body string
		hdr                      map[string]string
		wantOp                   logical.Operation
		wantPath, wantToken      string
		wantData                 map[string]any
	}{
		{"get", "GET", "/v1/secret/data/a?version=2", "", map[string]string{"X-Vault-Token": "t1"}, logical.ReadOperation, "secret/data/a", "t1", map[string]any{"version": "2"}},
		{"list method", "LIST", "/v1/secret/metadata/a", "", nil, logical.ListOperation, "secret/metadata/a/", "", map[string]any{}},
		{"get list=true", "GET", "/v1/secret/metadata/?list=true", "", nil, logical.ListOperation, "secret/metadata/", "", map[string]any{}},
		{"post", "POST", "/v1/secret/data/a", `{"data":{"k":"v"}}`, map[string]string{"Authorization": "Bearer t2"}, logical.UpdateOperation, "secret/data/a", "t2", map[string]any{"data": map[string]any{"k": "v"}}},
		{"null body", "PUT", "/v1/transit/keys/k", `null`, nil, logical.UpdateOperation, "transit/keys/k", "", map[string]any{}},
		{"put", "PUT", "/v1/sys/unseal", `{"key":"abc"}`, nil, logical.UpdateOperation, "sys/unseal", "", map[string]any{"key": "abc"}},
		{"delete", "DELETE", "/v1/secret/data/a", "", nil, logical.DeleteOperation, "secret/data/a", "", map[string]any{}},
		{"patch", "PATCH", "/v1/secret/data/a", `{"data":{}}`, map[string]string{"Content-Type": "application/merge-patch+json"}, logical.PatchOperation, "secret/data/a", "", map[string]any{"data": map[string]any{}}},
		{"root namespace", "GET", "/v1/sys/mounts", "", map[string]string{"X-Vault-Namespace": "root/"}, logical.ReadOperation, "sys/mounts", "", map[string]any{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{resp: &logical.Response{Data: map[string]any{"ok": true}}}
			res, _ := do(t, New(rec, Options{}), tc.method, tc.path, tc.body, tc.hdr)
			if res.StatusCode != 200 {
				t.Fatalf("%s %s = %d, want 200", tc.method, tc.path, res.StatusCode)
			}
			got := rec.got
			if got.Operation != tc.wantOp || got.Path != tc.wantPath || got.ClientToken != tc.wantToken {
				t.Errorf("request = (%s, %q, %q), want (%s, %q, %q)", got.Operation, got.Path, got.ClientToken, tc.wantOp, tc.wantPath, tc.wantToken)
			}
			if diff := cmp.Diff(tc.wantData, got.Data); diff != "" {
				t.Errorf("data mismatch (-want +got):\n%s", diff)
			}
			if got.Headers.Get("X-Vault-Token") != "" || got.Headers.Get("Authorization") != "" {
				t.Errorf("credentials leaked into request headers: %v", got.Headers)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100)
	tests := []struct {
		name, method, path, body string
		hdr                      map[string]string
		wantStatus               int
		wantErr                  string
	}{
		{"too large", "PUT", "/v1/sys/init", `{"x":"` + strings.Repeat("a", 2000) + `"}`, nil, 413, "request body too large"},
		{"deep nesting", "PUT", "/v1/secret/data/a", deep, nil, 400, "nesting deeper"},
		{"not json", "PUT", "/v1/secret/data/a", `{"a":`, nil, 400, "failed to parse JSON"},
		{"string body", "PUT", "/v1/secret/data/a", `"x"`, nil, 400, "must be a JSON object"},
		{"array body", "PUT", "/v1/secret/data/a", `[1,2]`, nil, 400, "must be a JSON object"},
		{"trailing data", "PUT", "/v1/secret/data/a", `{"a":1} {"b":2}`, nil, 400, "trailing data"},
		{"dotdot", "GET", "/v1/secret/data/a/../b", "", nil, 400, `".." segment`},
		{"empty segment", "GET", "/v1/secret/data//b", "", nil, 400, "empty segment"},
		{"control char", "GET", "/v1/secret/data/a%01b", "", nil, 400, "control character"},
		{"namespace", "GET", "/v1/sys/mounts", "", map[string]string{"X-Vault-Namespace": "team-a"}, 400, "namespaces are not supported"},
		{"bad method", "OPTIONS", "/v1/sys/mounts", "", nil, 405, "unsupported operation"},
		{"not v1", "GET", "/v2/sys/mounts", "", nil, 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{resp: &logical.Response{}}
			res, body := do(t, New(rec, Options{MaxRequestSize: 1024}), tc.method, tc.path, tc.body, tc.hdr)
			if res.StatusCode != tc.wantStatus {
				t.Fatalf("%s %s = %d, want %d (%v)", tc.method, tc.path, res.StatusCode, tc.wantStatus, body)
			}
			if rec.got != nil {
				t.Errorf("handler was called for a refused request")
			}
			errs, _ := body["errors"].([]any)
			if tc.wantErr == "" {
				if len(errs) != 0 {
					t.Errorf("errors = %v, want []", errs)
				}
				return
			}
			if len(errs) != 1 || !strings.Contains(errs[0].(string), tc.wantErr) {
				t.Errorf("errors = %v, want one containing %q", errs, tc.wantErr)
			}
		})
	}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		err        error
		wantStatus int
		wantErrs   []any
	}{
		{logical.ErrPermissionDenied, 403, []any{"permission denied"}},
		{logical.ErrSealed, 503, []any{"Coffer is sealed"}},
		{logical.ErrNotFound, 404, []any{}},
		{logical.BadRequest("bad %s", "thing"), 400, []any{"bad thing"}},
		{&logical.CodedError{Status: 409, Msg: "conflict"}, 409, []any{"conflict"}},
		{logical.ErrRateLimited, 429, []any{"rate limit exceeded; try again later"}},
		{io.ErrUnexpectedEOF, 500, []any{"internal error"}},
	}
	for _, tc := range tests {
		t.Run(tc.err.Error(), func(t *testing.T) {
			rec := &recorder{err: tc.err}
			res, body := do(t, New(rec, Options{}), "GET", "/v1/x/y", "", nil)
			if res.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d", res.StatusCode, tc.wantStatus)
			}
			if diff := cmp.Diff(map[string]any{"errors": tc.wantErrs}, body); diff != "" {
				t.Errorf("body mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResponseShapes(t *testing.T) {
	t.Run("envelope", func(t *testing.T) {
		rec := &recorder{resp: &logical.Response{Data: map[string]any{"k": "v"}, Warnings: []string{"w"}}}
		_, body := do(t, New(rec, Options{}), "GET", "/v1/a/b", "", nil)
		for _, k := range []string{"request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info", "warnings", "auth", "mount_type"} {
			if _, ok := body[k]; !ok {
				t.Errorf("envelope lacks %q: %v", k, body)
			}
		}
		if body["request_id"] == "" {
			t.Errorf("request_id is empty")
		}
	})
	t.Run("top level copy", func(t *testing.T) {
		rec := &recorder{resp: &logical.Response{TopLevel: true, Data: map[string]any{"secret/": "x"}}}
		_, body := do(t, New(rec, Options{}), "GET", "/v1/sys/mounts", "", nil)
		if body["secret/"] != "x" {
			t.Errorf("data not copied to top level: %v", body)
		}
	})
	t.Run("no envelope", func(t *testing.T) {
		rec := &recorder{resp: &logical.Response{NoEnvelope: true, Status: 501, Data: map[string]any{"initialized": false}}}
		res, body := do(t, New(rec, Options{}), "GET", "/v1/sys/health", "", nil)
		if res.StatusCode != 501 || len(body) != 1 || body["initialized"] != false {
			t.Errorf("got %d %v, want 501 {initialized:false}", res.StatusCode, body)
		}
	})
	t.Run("204", func(t *testing.T) {
		rec := &recorder{resp: &logical.Response{Status: 204}}
		res, body := do(t, New(rec, Options{}), "PUT", "/v1/sys/seal", "", nil)
		if res.StatusCode != 204 || body != nil {
			t.Errorf("got %d %v, want 204 with no body", res.StatusCode, body)
		}
	})
	t.Run("204 with warnings becomes 200", func(t *testing.T) {
		rec := &recorder{resp: &logical.Response{Status: 204, Warnings: []string{"careful"}}}
		res, _ := do(t, New(rec, Options{}), "PUT", "/v1/sys/x", "", nil)
		if res.StatusCode != 200 {
			t.Errorf("status = %d, want 200", res.StatusCode)
		}
	})
	t.Run("head has no body", func(t *testing.T) {
		rec := &recorder{resp: &logical.Response{NoEnvelope: true, Status: 503, Data: map[string]any{"sealed": true}}}
		res, body := do(t, New(rec, Options{}), "HEAD", "/v1/sys/health", "", nil)
		if res.StatusCode != 503 || body != nil {
			t.Errorf("got %d %v, want 503 and no body", res.StatusCode, body)
		}
	})
}

func FuzzDecodeBody(f *testing.F) {
	f.Add([]byte(`{"data":{"a":[1,2,{"b":null}]}}`))
	f.Add([]byte(`{"a":"\"{["}`))
	f.Add([]byte(strings.Repeat("[", 70)))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := decodeBody(body)
		if err == nil && m == nil && len(strings.TrimSpace(string(body))) > 0 {
			t.Fatalf("decodeBody(%q) = nil, nil for a non-empty body", body)
		}
	})
}

func TestLoginRateLimit(t *testing.T) {
	rec := &recorder{resp: &logical.Response{Data: map[string]any{}}}
	s := New(rec, Options{LoginRate: 1, LoginBurst: 3})
	codes := []int{}
	for i := 0; i < 6; i++ {
		res, _ := do(t, s, "POST", "/v1/auth/userpass/login/alice", `{"password":"x"}`, nil)
		codes = append(codes, res.StatusCode)
	}
	if diff := cmp.Diff([]int{200, 200, 200, 429, 429, 429}, codes); diff != "" {
		t.Errorf("login statuses (-want +got):\n%s", diff)
	}
	// Other paths are not limited.
	for i := 0; i < 5; i++ {
		if res, _ := do(t, s, "GET", "/v1/secret/data/a", "", nil); res.StatusCode != 200 {
			t.Fatalf("non-login request limited: %d", res.StatusCode)
		}
	}
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"auth/userpass/login/alice", true}, {"auth/approle/login", true}, {"auth/team/userpass/login/bob", true},
		{"auth/token/lookup-self", false}, {"auth/userpass/users/alice", false}, {"secret/login", false},
	} {
		if got := isLoginPath(tc.path); got != tc.want {
			t.Errorf("isLoginPath(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

// A request the client cancels is not a server error: it is logged at
// debug level (status 499), while a cancellation the client did not cause
// stays a 500 logged as an error.
func TestClientCancelIsNotAnError(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	started := make(chan struct{})
	h := New(handlerFunc(func(ctx context.Context, req *logical.Request) (*logical.Response, error) {
		close(started)
		<-ctx.Done()
		return nil, fmt.Errorf("read storage: %w", ctx.Err())
	}), Options{Logger: log})
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest("GET", "/v1/secret/data/x", nil).WithContext(ctx)
	w := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { defer close(done); h.ServeHTTP(w, req) }()
	<-started
	cancel()
	<-done
	if w.Code != statusClientClosedRequest {
		t.Errorf("status = %d, want %d", w.Code, statusClientClosedRequest)
	}
	if strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "request canceled by the client") {
		t.Errorf("logs:\n%s", logs.String())
	}

	logs.Reset()
	res, _ := do(t, New(&recorder{err: fmt.Errorf("x: %w", context.Canceled)}, Options{Logger: log}), "GET", "/v1/x/y", "", nil)
	if res.StatusCode != 500 || !strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("a cancellation the client did not cause: status %d, logs:\n%s", res.StatusCode, logs.String())
	}
}

type handlerFunc func(context.Context, *logical.Request) (*logical.Response, error)

func (f handlerFunc) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	return f(ctx, req)
}
