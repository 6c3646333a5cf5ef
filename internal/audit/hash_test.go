package audit_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coffer-dev/coffer/internal/audit"
	"github.com/google/go-cmp/cmp"
)

type secretString string

type withMarshaler int

func (withMarshaler) MarshalJSON() ([]byte, error) { return []byte(`"marshaled-secret"`), nil }

type failingMarshaler struct{}

func (failingMarshaler) MarshalJSON() ([]byte, error) {
	return nil, errors.New("cannot marshal marshaler-secret")
}

// fullRequest returns a request with a value in every field, built afresh
// on each call so tests can compare against an untouched copy.
func fullRequest() *audit.Request {
	str := "pointed-secret"
	return &audit.Request{
		Time: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
		Auth: &audit.Auth{
			ClientToken:   "hvs.token",
			Accessor:      "accessor",
			DisplayName:   "token-app",
			Policies:      []string{"default", "app"},
			TokenPolicies: []string{"app"},
			Metadata:      map[string]string{"user": "alice"},
			EntityID:      "entity-1",
			TokenType:     "service",
			TokenTTL:      3600,
		},
		Request: &audit.RequestInfo{
			ID:                  "req-1",
			Operation:           "update",
			MountType:           "kv",
			MountAccessor:       "kv_1234",
			ClientToken:         "hvs.token",
			ClientTokenAccessor: "accessor",
			Path:                "secret/data/app",
			RemoteAddress:       "127.0.0.1",
			Headers:             map[string][]string{"X-Custom": {"h1", "h2"}},
			Data: map[string]any{
				"password": "hunter2",
				"empty":    "",
				"n":        json.Number("42"),
				"f":        1.5,
				"i":        7,
				"b":        true,
				"null":     nil,
				"nested": map[string]any{
					"list":  []any{"a", 1, map[string]any{"deep": "deeper"}, []any{"x"}},
					"strs":  []string{"s1"},
					"smap":  map[string]string{"k": "v"},
					"hdrs":  map[string][]string{"k": {"v"}},
					"named": secretString("named"),
				},
				"bytes":     []byte("raw-bytes"),
				"ptr":       &str,
				"struct":    struct{ Field string }{"struct-secret"},
				"marshaler": withMarshaler(1),
				"duration":  time.Duration(5),
			},
		},
		Error: "permission denied",
	}
}

func TestHashRequest(t *testing.T) {
	s := newSalt(t)
	h := s.Hash
	got, err := audit.HashRequest(s, fullRequest())
	if err != nil {
		t.Fatal(err)
	}
	want := fullRequest()
	want.Auth.ClientToken = h("hvs.token")
	want.Auth.Accessor = h("accessor")
	want.Auth.Metadata = map[string]string{"user": h("alice")}
	want.Request.ClientToken = h("hvs.token")
	want.Request.ClientTokenAccessor = h("accessor")
	want.Request.Headers = map[string][]string{"X-Custom": {h("h1"), h("h2")}}
	want.Request.Namespace.ID = "root"
	// Data comes back as the JSON that is logged.
	num := func(s string) json.Number { return json.Number(s) }
	want.Request.Data = map[string]any{
		"password": h("hunter2"),
		"empty":    h(""),
		"n":        num("42"),
		"f":        num("1.5"),
		"i":        num("7"),
		"b":        true,
		"null":     nil,
		"nested": map[string]any{
			"list":  []any{h("a"), num("1"), map[string]any{"deep": h("deeper")}, []any{h("x")}},
			"strs":  []any{h("s1")},
			"smap":  map[string]any{"k": h("v")},
			"hdrs":  map[string]any{"k": []any{h("v")}},
			"named": h("named"),
		},
		// Types without a JSON meaning of their own go through their
		// JSON encoding.
		"bytes":     h("cmF3LWJ5dGVz"), // base64 of "raw-bytes"
		"ptr":       h("pointed-secret"),
		"struct":    map[string]any{"Field": h("struct-secret")},
		"marshaler": h("marshaled-secret"),
		"duration":  num("5"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("HashRequest(full request) mismatch (-want +got):\n%s", diff)
	}
}

func TestHashResponse(t *testing.T) {
	s := newSalt(t)
	h := s.Hash
	mk := func() *audit.Response {
		return &audit.Response{
			Auth:    &audit.Auth{ClientToken: "caller", Policies: []string{"p"}},
			Request: &audit.RequestInfo{Path: "auth/token/create", Data: map[string]any{"ttl": "1h"}},
			Response: &audit.ResponseInfo{
				MountType: "token",
				Data:      map[string]any{"value": "resp-secret", "count": 2},
				Secret:    &audit.Secret{LeaseID: "secret/creds/abc"},
				Auth: &audit.Auth{
					ClientToken: "issued", Accessor: "issued-acc",
					Metadata: map[string]string{"m": "meta"}, Policies: []string{"p"},
				},
				Warnings: []string{"a warning"},
				Headers:  map[string][]string{"X-R": {"rh"}},
			},
		}
	}
	got, err := audit.HashResponse(s, mk())
	if err != nil {
		t.Fatal(err)
	}
	want := mk()
	want.Auth.ClientToken = h("caller")
	want.Request.Namespace.ID = "root"
	want.Request.Data["ttl"] = h("1h")
	want.Response.Data = map[string]any{"value": h("resp-secret"), "count": json.Number("2")}
	want.Response.Secret.LeaseID = h("secret/creds/abc")
	want.Response.Auth.ClientToken = h("issued")
	want.Response.Auth.Accessor = h("issued-acc")
	want.Response.Auth.Metadata = map[string]string{"m": h("meta")}
	want.Response.Headers = map[string][]string{"X-R": {h("rh")}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("HashResponse mismatch (-want +got):\n%s", diff)
	}
}

func TestHashDoesNotMutate(t *testing.T) {
	s := newSalt(t)
	in := fullRequest()
	out, err := audit.HashRequest(s, in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fullRequest(), in); diff != "" {
		t.Fatalf("HashRequest modified its input (-before +after):\n%s", diff)
	}
	// The copy shares nothing mutable with the input.
	out.Auth.Policies[0] = "changed"
	out.Auth.Metadata["user"] = "changed"
	out.Request.Headers["X-Custom"][0] = "changed"
	out.Request.Data["password"] = "changed"
	out.Request.Data["nested"].(map[string]any)["list"].([]any)[0] = "changed"
	out.Request.Data["nested"].(map[string]any)["strs"].([]any)[0] = "changed"
	out.Request.Data["nested"].(map[string]any)["smap"].(map[string]any)["k"] = "changed"
	if diff := cmp.Diff(fullRequest(), in); diff != "" {
		t.Errorf("modifying HashRequest's result modified its input (-before +after):\n%s", diff)
	}

	resp := &audit.Response{Response: &audit.ResponseInfo{Warnings: []string{"w"}, Data: map[string]any{"k": "v"}}}
	hr, err := audit.HashResponse(s, resp)
	if err != nil {
		t.Fatal(err)
	}
	hr.Response.Warnings[0] = "changed"
	if resp.Response.Warnings[0] != "w" || resp.Response.Data["k"] != "v" {
		t.Error("HashResponse shares state with its input")
	}
}

// Every string under data ends up hashed, whatever the nesting, as checked
// on the JSON a device would write.
func TestHashLeavesNoStringUnderData(t *testing.T) {
	s := newSalt(t)
	out, err := audit.HashRequest(s, fullRequest())
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(out.Request.Data)
	if err != nil {
		t.Fatal(err)
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case string:
			if !strings.HasPrefix(v, "hmac-sha256:") {
				t.Errorf("data%s = %q, want a hash", path, v)
			}
		case map[string]any:
			for k, e := range v {
				walk(path+"."+k, e)
			}
		case []any:
			for _, e := range v {
				walk(path+"[]", e)
			}
		}
	}
	walk("", generic)
}

func TestHashErrors(t *testing.T) {
	s := newSalt(t)
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	tests := []struct {
		name string
		data map[string]any
	}{
		{"unencodable type", map[string]any{"c": make(chan int)}},
		{"failing marshaler", map[string]any{"m": failingMarshaler{}}},
		{"cyclic map", cyclic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := audit.HashRequest(s, &audit.Request{Request: &audit.RequestInfo{Data: tt.data}})
			if err == nil {
				t.Fatal("HashRequest succeeded, want an error")
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("HashRequest error %q quotes the value", err)
			}
		})
	}
}
