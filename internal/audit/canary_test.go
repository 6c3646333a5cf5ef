package audit_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/coffer-dev/coffer/internal/audit"
)

// TestCanariesNeverReachTheLog logs 1,000 request/response pairs whose every
// sensitive field carries a unique canary, then searches the raw file for
// the canaries in the clear, hex and base64. All canaries share a random
// prefix, so searching for the prefix's encodings finds any canary, whole or
// partial, in one pass.
func TestCanariesNeverReachTheLog(t *testing.T) {
	prefix := "CANARY" + strings.ToUpper(hex.EncodeToString(randomBytes(t, 6)))
	salt := newSalt(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	d := openDevice(t, path, audit.FileOptions{Salt: salt})

	var canaries []string
	canary := func(kind string, i int) string {
		c := fmt.Sprintf("%s-%s-%04d-%s", prefix, kind, i, hex.EncodeToString(randomBytes(t, 4)))
		canaries = append(canaries, c)
		return c
	}
	ctx := context.Background()
	for i := range 1000 {
		token, accessor := canary("token", i), canary("accessor", i)
		auth := &audit.Auth{
			ClientToken: token, Accessor: accessor, DisplayName: "token",
			Policies: []string{"default"}, Metadata: map[string]string{"role": canary("meta", i)},
		}
		req := &audit.RequestInfo{
			ID: fmt.Sprintf("req-%d", i), Operation: "update", Path: "secret/data/app",
			ClientToken: token, ClientTokenAccessor: accessor,
			Headers: map[string][]string{"X-Vault-Token": {token}, "X-Other": {canary("reqheader", i)}},
			Data: map[string]any{
				"data": map[string]any{
					"password": canary("password", i),
					"list":     []any{canary("listitem", i), 42, true},
					"deep":     map[string]any{"deeper": []any{map[string]any{"x": canary("deep", i)}}},
				},
				"bytes": []byte(canary("bytes", i)),
			},
		}
		if err := d.LogRequest(ctx, &audit.Request{Auth: auth, Request: req}); err != nil {
			t.Fatal(err)
		}
		resp := &audit.ResponseInfo{
			Data:   map[string]any{"value": canary("respvalue", i), "nested": []any{[]any{canary("respnested", i)}}},
			Secret: &audit.Secret{LeaseID: "secret/creds/" + canary("lease", i)},
			Auth: &audit.Auth{
				ClientToken: canary("issuedtoken", i), Accessor: canary("issuedaccessor", i),
				Metadata: map[string]string{"k": canary("issuedmeta", i)},
			},
			Headers: map[string][]string{"X-Resp": {canary("respheader", i)}},
		}
		if err := d.LogResponse(ctx, &audit.Response{Auth: auth, Request: req, Response: resp}); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	log := mustRead(t, path)

	for name, pattern := range encodings(prefix) {
		if n := bytes.Count(log, []byte(pattern)); n != 0 {
			t.Errorf("log contains the canary prefix %s (%q) %d times", name, pattern, n)
		}
	}
	// And every canary was logged, hashed.
	hashes := map[string]bool{}
	for _, h := range regexp.MustCompile(`hmac-sha256:[0-9a-f]{64}`).FindAll(log, -1) {
		hashes[string(h)] = true
	}
	missing := 0
	for _, c := range canaries {
		if !hashes[salt.Hash(c)] && !hashes[salt.Hash(base64.StdEncoding.EncodeToString([]byte(c)))] &&
			!hashes[salt.Hash("secret/creds/"+c)] {
			if missing++; missing <= 5 {
				t.Errorf("canary %s was not logged hashed", c)
			}
		}
	}
	if missing > 5 {
		t.Errorf("... and %d more canaries not logged hashed", missing-5)
	}
	verifyOK(t, path, 2001)
}

// encodings returns the forms in which s would show up in a log: as is, in
// hex, and in base64 at each of the three alignments it can start at.
func encodings(s string) map[string]string {
	out := map[string]string{
		"in the clear":  s,
		"in lower case": strings.ToLower(s),
		"in lower hex":  hex.EncodeToString([]byte(s)),
		"in upper hex":  strings.ToUpper(hex.EncodeToString([]byte(s))),
	}
	toURL := strings.NewReplacer("+", "-", "/", "_")
	for skip := range 3 {
		// After skip unknown bytes, the characters that depend on s alone
		// run from the first group boundary inside s to the last complete
		// group.
		enc := base64.StdEncoding.EncodeToString(append(make([]byte, skip), s...))
		start, end := []int{0, 2, 3}[skip], (skip+len(s))/3*4
		out[fmt.Sprintf("in base64 at offset %d", skip)] = enc[start:end]
		out[fmt.Sprintf("in URL base64 at offset %d", skip)] = toURL.Replace(enc[start:end])
	}
	return out
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// The encodings helper must itself find a leaked canary.
func TestEncodingsFindLeaks(t *testing.T) {
	prefix := "CANARYABCDEF012345"
	secret := prefix + "-password-0001-deadbeef"
	for _, pre := range []string{"", "x", "xy", "xyz"} {
		leaks := map[string]string{
			"raw":        pre + secret,
			"hex":        hex.EncodeToString([]byte(pre + secret)),
			"base64":     base64.StdEncoding.EncodeToString([]byte(pre + secret)),
			"url base64": base64.URLEncoding.EncodeToString([]byte(pre + secret)),
		}
		for kind, leak := range leaks {
			found := false
			for _, pattern := range encodings(prefix) {
				if pattern != "" && strings.Contains(leak, pattern) {
					found = true
				}
			}
			if !found {
				t.Errorf("encodings(%q) misses a %s leak after %d bytes", prefix, kind, len(pre))
			}
		}
	}
}
