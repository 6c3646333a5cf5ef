package audit_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coffer-dev/coffer/internal/audit"
)

var update = flag.Bool("update", false, "rewrite testdata/valid.log and testdata/salt.hex")

// cleanLog returns the lines of a fresh log: a genesis line and 10 pairs.
func cleanLog(t testing.TB) [][]byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	d := openDevice(t, path, audit.FileOptions{})
	logPairs(t, d, 10)
	d.Close()
	return readLines(t, path)
}

func TestVerifyDetectsTampering(t *testing.T) {
	clean := cleanLog(t)
	n := len(clean) // 21
	edit := func(i int, f func([]byte) []byte) [][]byte {
		out := slices.Clone(clean)
		out[i-1] = f(slices.Clone(clean[i-1]))
		return out
	}
	del := func(i int) [][]byte { return slices.Delete(slices.Clone(clean), i-1, i) }
	swap := func(i int) [][]byte {
		out := slices.Clone(clean)
		out[i-1], out[i] = out[i], out[i-1]
		return out
	}
	replace := func(old, new string) func([]byte) []byte {
		return func(b []byte) []byte { return bytes.Replace(b, []byte(old), []byte(new), 1) }
	}
	flipHashDigit := func(b []byte) []byte { // inside data, not the chain fields
		i := bytes.Index(b, []byte(`"password":"hmac-sha256:`)) + len(`"password":"hmac-sha256:`)
		b[i] = "01"[boolInt(b[i] == '0')]
		return b
	}
	editPrevHash := func(b []byte) []byte {
		i := bytes.LastIndex(b, []byte(`"prev_hash":"`)) + len(`"prev_hash":"`)
		b[i] = "01"[boolInt(b[i] == '0')]
		return b
	}

	tests := []struct {
		name     string
		lines    [][]byte
		wantLine int // 0: verifies
	}{
		{"clean", clean, 0},
		{"edited data value", edit(5, flipHashDigit), 5},
		{"edited path", edit(8, replace(`"path":"secret/data/app"`, `"path":"secret/data/apq"`)), 8},
		{"edited genesis time", edit(1, replace(`"time":"2`, `"time":"1`)), 1},
		{"edited prev_hash", edit(5, editPrevHash), 5},
		{"edited seq", edit(7, replace(`"seq":6,`, `"seq":60,`)), 7},
		{"deleted line", del(5), 5},
		{"deleted first line", del(1), 1},
		{"deleted second line", del(2), 2},
		{"reordered pair", swap(5), 5},
		{"reordered genesis", swap(1), 1},
		{"duplicated line", slices.Insert(slices.Clone(clean), 5, clean[4]), 6},
		{"blank line", slices.Insert(slices.Clone(clean), 4, []byte("\n")), 5},
		{"truncated last line", edit(n, func(b []byte) []byte { return b[:len(b)/2] }), n},
		{"missing final newline", edit(n, func(b []byte) []byte { return b[:len(b)-1] }), n},
		{"edited last line seq", edit(n, replace(`"seq":20,`, `"seq":21,`)), n},
		{"CRLF line endings", edit(1, replace("}\n", "}\r\n")), 1},
		{"not JSON", edit(3, func([]byte) []byte { return []byte("hello\n") }), 3},
		{"empty", nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := audit.Verify(bytes.NewReader(bytes.Join(tt.lines, nil)))
			if tt.wantLine == 0 {
				if err != nil || res.Lines != n {
					t.Fatalf("Verify(%s) = %+v, %v, want %d lines and no error", tt.name, res, err, n)
				}
				return
			}
			var ce *audit.ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("Verify(%s) error = %v, want a *ChainError", tt.name, err)
			}
			if ce.Line != tt.wantLine {
				t.Errorf("Verify(%s) = %v, want a ChainError at line %d", tt.name, err, tt.wantLine)
			}
			if res.Lines != ce.Line-1 {
				t.Errorf("Verify(%s).Lines = %d, want %d (the lines before the broken one)", tt.name, res.Lines, ce.Line-1)
			}
		})
	}
}

// Lines cut from the end leave a shorter, valid chain: only a copy of the
// last hash kept elsewhere reveals them. This test documents that limit.
func TestVerifyTailRemovalNeedsAnAnchor(t *testing.T) {
	clean := cleanLog(t)
	full, err := audit.Verify(bytes.NewReader(bytes.Join(clean, nil)))
	if err != nil {
		t.Fatal(err)
	}
	cut, err := audit.Verify(bytes.NewReader(bytes.Join(clean[:len(clean)-2], nil)))
	if err != nil {
		t.Fatalf("Verify(log without its last 2 lines) = %v; the chain alone cannot tell", err)
	}
	if cut.LastHash == full.LastHash {
		t.Error("LastHash did not change when lines were removed from the end")
	}
}

func TestVerifyResultString(t *testing.T) {
	res, err := audit.Verify(bytes.NewReader(bytes.Join(cleanLog(t), nil)))
	if err != nil {
		t.Fatal(err)
	}
	s := res.String()
	for _, want := range []string{"21 lines verified", "seq 0 to 20", "new chain", res.LastHash} {
		if !strings.Contains(s, want) {
			t.Errorf("VerifyResult.String() = %q, want it to mention %q", s, want)
		}
	}
}

func TestVerifyFileErrors(t *testing.T) {
	if _, err := audit.VerifyFile(filepath.Join(t.TempDir(), "missing.log")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("VerifyFile(missing) error = %v, want ErrNotExist", err)
	}
}

// The testdata log is a test vector for docs/audit-format.md: it must keep
// verifying, and its hashes must be those of the documented plaintexts under
// testdata/salt.hex.
func TestTestdataLog(t *testing.T) {
	const logPath, saltPath = "testdata/valid.log", "testdata/salt.hex"
	if *update {
		writeTestdata(t, logPath, saltPath)
	}
	keyHex, err := os.ReadFile(saltPath)
	if err != nil {
		t.Fatal(err)
	}
	salt := mustSalt(t, strings.TrimSpace(string(keyHex)))
	res := verifyOK(t, logPath, 5)
	if !res.NewChain() {
		t.Error("testdata log does not start a new chain")
	}
	log := mustRead(t, logPath)
	for _, plain := range testdataPlaintexts {
		if bytes.Contains(log, []byte(plain)) {
			t.Errorf("testdata log contains %q in the clear", plain)
		}
		if !bytes.Contains(log, []byte(salt.Hash(plain))) {
			t.Errorf("testdata log lacks Hash(%q) = %s", plain, salt.Hash(plain))
		}
	}
}

// testdataPlaintexts are the secret values in testdata/valid.log.
var testdataPlaintexts = []string{"cfr.EXAMPLE0000000000000000000000000", "EXAMPLEaccessor00000000", "s3cr3t-password", "secret/creds/app/EXAMPLElease"}

func writeTestdata(t *testing.T, logPath, saltPath string) {
	salt := mustSalt(t, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	os.Remove(logPath)
	d, err := audit.OpenFile(logPath, audit.FileOptions{Salt: salt})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tok, acc, pw, lease := testdataPlaintexts[0], testdataPlaintexts[1], testdataPlaintexts[2], testdataPlaintexts[3]
	auth := &audit.Auth{ClientToken: tok, Accessor: acc, DisplayName: "token", Policies: []string{"app"}, TokenPolicies: []string{"app"}, TokenType: "service", TokenTTL: 2764800}
	put := &audit.RequestInfo{ID: "6f1c0e2a-0000-4000-8000-000000000001", Operation: "update", MountType: "kv", ClientToken: tok, ClientTokenAccessor: acc, Path: "secret/data/app", RemoteAddress: "127.0.0.1", Data: map[string]any{"data": map[string]any{"password": pw, "port": 5432}}}
	get := &audit.RequestInfo{ID: "6f1c0e2a-0000-4000-8000-000000000002", Operation: "read", MountType: "database", ClientToken: tok, ClientTokenAccessor: acc, Path: "database/creds/app", RemoteAddress: "127.0.0.1"}
	ctx := context.Background()
	steps := []error{
		d.LogRequest(ctx, &audit.Request{Auth: auth, Request: put}),
		d.LogResponse(ctx, &audit.Response{Auth: auth, Request: put, Response: &audit.ResponseInfo{MountType: "kv", Data: map[string]any{"version": 1}}}),
		d.LogRequest(ctx, &audit.Request{Auth: auth, Request: get}),
		d.LogResponse(ctx, &audit.Response{Auth: auth, Request: get, Response: &audit.ResponseInfo{MountType: "database", Secret: &audit.Secret{LeaseID: lease}, Data: map[string]any{"username": "v-app-x1", "password": pw}}}),
	}
	if err := errors.Join(steps...); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(saltPath, []byte(hex.EncodeToString(salt.Bytes())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func FuzzVerify(f *testing.F) {
	valid, err := os.ReadFile("testdata/valid.log")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(bytes.ReplaceAll(valid, []byte("\n"), []byte("\r\n")))
	f.Add([]byte{})
	f.Add([]byte("\n"))
	f.Add([]byte(`{"type":"genesis","format":"coffer-audit/1","seq":0,"prev_hash":"` + audit.GenesisHash + `"}` + "\n"))
	f.Add([]byte(`{"seq":null,"prev_hash":null}` + "\n" + `[]` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := audit.Verify(bytes.NewReader(data))
		if res == nil {
			t.Fatal("Verify returned a nil result")
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		var ce *audit.ChainError
		switch {
		case err == nil:
			if res.Lines < 1 || res.Lines > lines {
				t.Fatalf("Verify succeeded with Lines = %d for %d lines", res.Lines, lines)
			}
		case errors.As(err, &ce):
			if ce.Line < 1 || ce.Line > lines || res.Lines != ce.Line-1 {
				t.Fatalf("ChainError at line %d with %d lines verified, input has %d lines", ce.Line, res.Lines, lines)
			}
		default:
			t.Fatalf("Verify(bytes) returned a non-chain error: %v", err)
		}
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
