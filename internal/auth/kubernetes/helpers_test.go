package kubernetes

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage/inmem"
)

// harness drives one backend through HandleRequest as the pipeline does.
type harness struct {
	t testing.TB
	b *Backend
}

func newHarness(t testing.TB, lf LocalFiles) *harness {
	t.Helper()
	be, err := NewFactory(lf)(context.Background(), &logical.BackendConfig{Storage: inmem.New(), MountPoint: "auth/kubernetes/"})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, b: be.(*Backend)}
}

func (h *harness) do(op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	h.t.Helper()
	req := &logical.Request{Operation: op, Path: "auth/kubernetes/" + path, MountPoint: "auth/kubernetes/", MountPath: path, Data: data}
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

// wantStatus checks that err maps to HTTP status code.
func wantStatus(t testing.TB, err error, code int) {
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
	case errors.Is(err, logical.ErrUpstream):
		got = 502
	default:
		got = 500
	}
	if got != code {
		t.Fatalf("error %v maps to %d, want %d", err, got, code)
	}
}

// makeJWT builds a compact JWS with claims, signed by key (nil: a junk
// signature).
func makeJWT(t testing.TB, alg string, key crypto.Signer, claims map[string]any) string {
	t.Helper()
	hb, _ := json.Marshal(map[string]any{"alg": alg, "kid": "k1"})
	pb, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	in := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(pb)
	sig := []byte("junk-signature")
	if key != nil {
		d := sha256.Sum256([]byte(in))
		switch k := key.(type) {
		case *rsa.PrivateKey:
			sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, d[:])
		case *ecdsa.PrivateKey:
			var r, s []byte
			rr, ss, e := ecdsa.Sign(rand.Reader, k, d[:])
			err = e
			if e == nil {
				r, s = make([]byte, 32), make([]byte, 32)
				rr.FillBytes(r)
				ss.FillBytes(s)
				sig = append(r, s...)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func projectedClaims(ns, name, uid string) map[string]any {
	return map[string]any{
		"iss": "https://kubernetes.default.svc",
		"sub": "system:serviceaccount:" + ns + ":" + name,
		"aud": []string{"https://kubernetes.default.svc"},
		"exp": 4102444800, "nbf": 1700000000, "iat": 1700000000,
		"kubernetes.io": map[string]any{
			"namespace":      ns,
			"serviceaccount": map[string]any{"name": name, "uid": uid},
		},
	}
}
