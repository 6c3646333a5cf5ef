package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-dev/coffer/internal/cli"
	"github.com/coffer-dev/coffer/internal/coffertest"
)

type result struct {
	code           int
	stdout, stderr string
}

// run runs the CLI in-process against addr with token, as a user would.
func run(t *testing.T, home, addr, token, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cli.Env{
		Getenv: func(k string) string {
			switch k {
			case "COFFER_ADDR":
				return addr
			case "COFFER_TOKEN":
				return token
			}
			return ""
		},
		Stdin:   strings.NewReader(stdin),
		Stdout:  &out,
		Stderr:  &errb,
		HomeDir: func() (string, error) { return home, nil },
	}
	err := cli.RunEnv(context.Background(), env, args)
	return result{code: cli.ExitCode(err), stdout: out.String(), stderr: errb.String()}
}

func TestCLI(t *testing.T) {
	srv := coffertest.StartDev(t)
	home := t.TempDir()
	tok := srv.RootToken
	r := func(stdin string, args ...string) result {
		t.Helper()
		return run(t, home, srv.Addr, tok, stdin, args...)
	}
	expect := func(res result, code int, stdoutHas string) {
		t.Helper()
		if res.code != code || !strings.Contains(res.stdout, stdoutHas) {
			t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and stdout containing %q", res.code, res.stdout, res.stderr, code, stdoutHas)
		}
	}

	expect(r("", "version"), 0, "Coffer v")
	expect(r("", "status"), 0, "Sealed           false")
	res := r("", "status", "-format=json")
	var st map[string]any
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil || st["sealed"] != false {
		t.Fatalf("status -format=json = %q (%v)", res.stdout, err)
	}

	// kv
	expect(r("", "kv", "put", "secret/app", "user=alice", "pass=s3cret"), 0, "version")
	expect(r("", "kv", "get", "-field=pass", "secret/app"), 0, "s3cret")
	expect(r("", "kv", "get", "-mount=secret", "app"), 0, "=== Data ===")
	expect(r("new\n", "kv", "patch", "secret/app", "pass=-"), 0, "version")
	expect(r("", "kv", "get", "-field=pass", "secret/app"), 0, "new")
	expect(r("", "kv", "get", "-version=1", "-field=pass", "secret/app"), 0, "s3cret")
	expect(r("", "kv", "put", "-cas=1", "secret/app", "x=y"), 1, "")
	expect(r("", "kv", "list", "secret/"), 0, "app")
	expect(r("", "kv", "delete", "secret/app"), 0, "Success")
	res = r("", "kv", "get", "secret/app")
	if res.code != 2 || !strings.Contains(res.stderr, "deleted") {
		t.Fatalf("kv get of a deleted secret: %+v", res)
	}
	expect(r("", "kv", "undelete", "-versions=2", "secret/app"), 0, "Success")
	expect(r("", "kv", "destroy", "-versions=1", "secret/app"), 0, "Success")
	expect(r("", "kv", "metadata", "put", "-max-versions=3", "-custom-metadata=owner=team", "secret/app"), 0, "Success")
	expect(r("", "kv", "metadata", "get", "secret/app"), 0, "max_versions")
	expect(r("", "kv", "metadata", "delete", "secret/app"), 0, "Success")
	res = r("", "kv", "get", "secret/app")
	if res.code != 2 || !strings.Contains(res.stderr, "No value found") {
		t.Fatalf("kv get after metadata delete: %+v", res)
	}
	valueFile := filepath.Join(t.TempDir(), "v.txt")
	if err := os.WriteFile(valueFile, []byte("from-file"), 0o600); err != nil {
		t.Fatal(err)
	}
	expect(r("", "kv", "put", "secret/f", "v=@"+valueFile), 0, "version")
	expect(r("", "kv", "get", "-field=v", "secret/f"), 0, "from-file")

	// secrets engines and the generic commands
	expect(r("", "secrets", "enable", "-path=kv1", "-version=1", "kv"), 0, "Success")
	expect(r("", "secrets", "list"), 0, "kv1/")
	expect(r("", "write", "kv1/a", "k=v"), 0, "Success")
	expect(r("", "read", "-field=k", "kv1/a"), 0, "v")
	expect(r("", "list", "kv1"), 0, "a")
	expect(r(`{"k":"json"}`, "write", "kv1/b", "-"), 0, "Success")
	expect(r("", "read", "-format=json", "kv1/b"), 0, `"json"`)
	expect(r("", "delete", "kv1/a"), 0, "Success")
	res = r("", "read", "kv1/a")
	if res.code != 2 {
		t.Fatalf("read of a deleted path: %+v", res)
	}
	expect(r("", "secrets", "tune", "-options=version=2", "kv1"), 0, "Success")

	// auth methods are tuned the same way
	expect(r("", "auth", "enable", "-path=people", "userpass"), 0, "Success")
	expect(r("", "auth", "tune", "-default-lease-ttl=30m", "-max-lease-ttl=2h", "-description=staff", "-options=lockout_threshold=7", "people"), 0, "Tuned the auth method at: people/")
	tuned := r("", "read", "-format=json", "sys/auth/people/tune")
	if tuned.code != 0 || !strings.Contains(tuned.stdout, `"default_lease_ttl": 1800`) || !strings.Contains(tuned.stdout, `"max_lease_ttl": 7200`) ||
		!strings.Contains(tuned.stdout, `"lockout_threshold": "7"`) {
		t.Fatalf("auth tune did not take: %+v", tuned)
	}
	if res := r("", "auth", "tune", "-options=argon2_memory=1", "people"); res.code != 1 || !strings.Contains(res.stderr, "argon2_memory") {
		t.Fatalf("auth tune with a bad option: %+v", res)
	}
	if res := r("", "auth", "tune", "people"); res.code == 0 || !strings.Contains(res.stderr, "nothing to tune") {
		t.Fatalf("auth tune without flags: %+v", res)
	}

	// transit through the generic commands, as in the README
	expect(r("", "secrets", "enable", "transit"), 0, "Success")
	expect(r("", "write", "-f", "transit/keys/app"), 0, "aes256-gcm96")
	ct := r("", "write", "-field=ciphertext", "transit/encrypt/app", "plaintext=aGVsbG8=")
	if ct.code != 0 || !strings.HasPrefix(ct.stdout, "vault:v1:") {
		t.Fatalf("transit encrypt: %+v", ct)
	}
	expect(r("", "write", "-field=plaintext", "transit/decrypt/app", "ciphertext="+strings.TrimSpace(ct.stdout)), 0, "aGVsbG8=")
	expect(r("", "kv", "get", "-field=k", "kv1/b"), 0, "json")
	expect(r("", "secrets", "disable", "kv1"), 0, "Success")

	// policies and tokens
	polFile := filepath.Join(t.TempDir(), "p.hcl")
	if err := os.WriteFile(polFile, []byte(`path "secret/data/*" {capabilities=["read"]}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	expect(r("", "policy", "fmt", polFile), 0, "Success")
	if b, _ := os.ReadFile(polFile); !strings.Contains(string(b), `capabilities = ["read"]`) {
		t.Fatalf("policy fmt output: %s", b)
	}
	expect(r("", "policy", "write", "reader", polFile), 0, "Success")
	expect(r("", "policy", "list"), 0, "reader")
	expect(r("", "policy", "read", "reader"), 0, "secret/data/*")
	bad := filepath.Join(t.TempDir(), "bad.hcl")
	if err := os.WriteFile(bad, []byte("path \"a\" {\n  capabilities = [\"raed\"]\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res = r("", "policy", "write", "bad", bad)
	if res.code != 1 || !strings.Contains(res.stderr, "line 2") {
		t.Fatalf("policy write of a bad policy: %+v", res)
	}
	res = r("", "token", "create", "-policy=reader", "-ttl=1h", "-field=token")
	child := strings.TrimSpace(res.stdout)
	if res.code != 0 || !strings.HasPrefix(child, "cfr.") {
		t.Fatalf("token create: %+v", res)
	}
	expect(run(t, home, srv.Addr, child, "", "token", "lookup"), 0, "reader")
	expect(run(t, home, srv.Addr, child, "", "token", "capabilities", "secret/data/x"), 0, "read")
	expect(r("", "token", "renew", "-increment=2h", child), 0, "token_duration")
	expect(r("", "token", "revoke", child), 0, "Success")
	res = run(t, home, srv.Addr, child, "", "token", "lookup")
	if res.code != 1 || !strings.Contains(res.stderr, "permission denied") {
		t.Fatalf("lookup with a revoked token: %+v", res)
	}

	// login stores the token with mode 0600
	expect(run(t, home, srv.Addr, "", "", "login", tok), 0, "Success")
	fi, err := os.Stat(filepath.Join(home, ".coffer-token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, %v", fi, err)
	}
	expect(run(t, home, srv.Addr, "", "", "token", "lookup"), 0, "root")

	// audit
	auditDir := t.TempDir()
	_ = auditDir
	expect(r("", "audit", "list"), 0, "No audit devices")

	// operator: seal, status exits 2, unseal from stdin
	expect(r("", "operator", "key-status"), 0, "Key Term")
	expect(r("", "operator", "rotate"), 0, "Success! Rotated key")
	expect(r("", "operator", "seal"), 0, "Success")
	res = r("", "status")
	if res.code != 2 {
		t.Fatalf("status while sealed exit = %d, want 2", res.code)
	}
	expect(r(srv.UnsealKey+"\n", "operator", "unseal"), 0, "Sealed           false")
}

func TestCLIUsageAndErrors(t *testing.T) {
	home := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"unknown flag", []string{"kv", "get", "-nope", "a"}, 2, "unknown flag"},
		{"missing argument", []string{"kv", "get"}, 2, "accepts 1 arg"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"bad format", []string{"status", "-format=xml"}, 2, "invalid -format"},
		{"bad key=value", []string{"write", "a/b", "novalue"}, 2, "key=value"},
		{"write without data", []string{"write", "transit/keys/k"}, 2, "-force"},
		{"unreachable server", []string{"status"}, 1, "cannot reach"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, home, "http://127.0.0.1:1", "", "", tc.args...)
			if res.code != tc.code || !strings.Contains(res.stderr, tc.err) || !strings.Contains(res.stderr, "coffer: error:") {
				t.Fatalf("coffer %v = exit %d, stderr %q; want exit %d with %q", tc.args, res.code, res.stderr, tc.code, tc.err)
			}
		})
	}
	res := run(t, home, "", "", "", "completion", "bash")
	if res.code != 0 || !strings.Contains(res.stdout, "bash completion") {
		t.Fatalf("completion bash: exit %d, %q", res.code, res.stderr)
	}
}

func TestGenerateSealKey(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "keys", "unseal.key")
	res := run(t, dir, "", "", "", "operator", "generate-seal-key", "-out="+key)
	if res.code != 0 {
		t.Fatalf("generate-seal-key: %+v", res)
	}
	fi, err := os.Stat(key)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", fi, err)
	}
	if res := run(t, dir, "", "", "", "operator", "generate-seal-key", "-out="+key); res.code != 1 || !strings.Contains(res.stderr, "refusing to overwrite") {
		t.Fatalf("second generate-seal-key: %+v", res)
	}
	// A server refuses a key file others can read.
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "c.hcl")
	if err := os.WriteFile(cfg, []byte("seal \"static\" { key_file = \""+key+"\" }\nlistener \"tcp\" { tls_disable = true }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res = run(t, dir, "", "", "", "server", "-config="+cfg, "-storage-path="+filepath.Join(dir, "s.db"), "-address=127.0.0.1:0")
	if res.code != 1 || !strings.Contains(res.stderr, "must not be readable by group or others") {
		t.Fatalf("server with a 0644 key file: %+v", res)
	}
}
