package kubernetes

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseJWTClaims(t *testing.T) {
	legacy := map[string]any{
		"iss":                                    "kubernetes/serviceaccount",
		"sub":                                    "system:serviceaccount:team-a:app",
		"kubernetes.io/serviceaccount/namespace": "team-a",
		"kubernetes.io/serviceaccount/service-account.name": "app",
		"kubernetes.io/serviceaccount/service-account.uid":  "uid-1",
	}
	tests := []struct {
		name   string
		claims map[string]any
		want   claims
	}{
		{"projected", projectedClaims("team-a", "app", "uid-2"), claims{
			Issuer: "https://kubernetes.default.svc", Subject: "system:serviceaccount:team-a:app",
			Audience: []string{"https://kubernetes.default.svc"}, Expiry: time.Unix(4102444800, 0),
			NotBefore: time.Unix(1700000000, 0), Namespace: "team-a", Name: "app", UID: "uid-2",
		}},
		{"legacy", legacy, claims{
			Issuer: "kubernetes/serviceaccount", Subject: "system:serviceaccount:team-a:app",
			Namespace: "team-a", Name: "app", UID: "uid-1",
		}},
		{"single audience", map[string]any{"aud": "coffer"}, claims{Audience: []string{"coffer"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := parseJWT(makeJWT(t, "RS256", nil, tc.claims))
			if err != nil {
				t.Fatalf("parseJWT: %v", err)
			}
			if diff := cmp.Diff(tc.want, tok.claims); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseJWTRejects(t *testing.T) {
	good := makeJWT(t, "RS256", nil, projectedClaims("a", "b", "c"))
	parts := strings.Split(good, ".")
	tests := []struct {
		name, in string
	}{
		{"empty", ""},
		{"two parts", parts[0] + "." + parts[1]},
		{"four parts", good + ".x"},
		{"bad base64 header", "!!!." + parts[1] + "." + parts[2]},
		{"bad base64 payload", parts[0] + ".@@." + parts[2]},
		{"payload not json", parts[0] + ".bm90IGpzb24." + parts[2]},
		{"header without alg", "e30." + parts[1] + "." + parts[2]},
		{"too long", parts[0] + "." + strings.Repeat("A", maxJWTLen) + "." + parts[2]},
		{"aud a number", parts[0] + ".eyJhdWQiOjF9." + parts[2]},
		{"exp a string", parts[0] + ".eyJleHAiOiJ4In0." + parts[2]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseJWT(tc.in)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("parseJWT(%q) = %v, want a *ParseError", tc.name, err)
			}
			if tc.in != "" && strings.Contains(err.Error(), tc.in) {
				t.Errorf("error quotes the token: %v", err)
			}
		})
	}
}

func pemPublic(t *testing.T, k crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestVerifyWithPEMKeys(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := parsePublicKeys([]string{pemPublic(t, &rk.PublicKey), pemPublic(t, &ek.PublicKey)})
	if err != nil {
		t.Fatalf("parsePublicKeys: %v", err)
	}
	now := time.Unix(1800000000, 0)
	expired := projectedClaims("a", "b", "c")
	expired["exp"] = 1700000001
	tests := []struct {
		name string
		tok  string
		ok   bool
	}{
		{"rsa", makeJWT(t, "RS256", rk, projectedClaims("a", "b", "c")), true},
		{"ecdsa", makeJWT(t, "ES256", ek, projectedClaims("a", "b", "c")), true},
		{"unknown key", makeJWT(t, "ES256", other, projectedClaims("a", "b", "c")), false},
		{"junk signature", makeJWT(t, "RS256", nil, projectedClaims("a", "b", "c")), false},
		{"alg none", makeJWT(t, "none", nil, projectedClaims("a", "b", "c")), false},
		{"rsa key labelled ES256", makeJWT(t, "ES256", rk, projectedClaims("a", "b", "c")), false},
		{"expired", makeJWT(t, "RS256", rk, expired), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := parseJWT(tc.tok)
			if err != nil {
				t.Fatalf("parseJWT: %v", err)
			}
			err = tok.verify(keys, now)
			if (err == nil) != tc.ok {
				t.Errorf("verify = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestParsePublicKeysRejects(t *testing.T) {
	for _, in := range []string{"", "not pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
		"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"} {
		if _, err := parsePublicKeys([]string{in}); err == nil {
			t.Errorf("parsePublicKeys(%q) = nil error, want one", in)
		}
	}
}

func FuzzParseJWT(f *testing.F) {
	f.Add(makeJWT(f, "RS256", nil, projectedClaims("team-a", "app", "u")))
	f.Add(makeJWT(f, "ES256", nil, map[string]any{"kubernetes.io/serviceaccount/namespace": "x", "aud": "a"}))
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjEuNWUxMH0.c2ln")
	f.Add("a.b.c")
	f.Add("..")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := parseJWT(s)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("parseJWT error %T is not a *ParseError", err)
			}
			return
		}
		// Verification with no keys must fail closed, never panic.
		if tok.verify(nil, time.Now()) == nil {
			t.Fatal("verify with no keys succeeded")
		}
	})
}
