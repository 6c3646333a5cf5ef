package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-dev/coffer/internal/coffertest"
)

// TestLoginMethods drives `coffer login -method=userpass|approle` end to end
// against a dev server, as an operator and then a user would.
func TestLoginMethods(t *testing.T) {
	srv := coffertest.StartDev(t)
	admin := t.TempDir()
	asRoot := func(stdin string, args ...string) result {
		t.Helper()
		return run(t, admin, srv.Addr, srv.RootToken, stdin, args...)
	}
	must := func(res result) result {
		t.Helper()
		if res.code != 0 {
			t.Fatalf("exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
		}
		return res
	}
	must(asRoot("", "auth", "enable", "userpass"))
	must(asRoot("", "auth", "enable", "approle"))
	must(asRoot("", "auth", "enable", "-path=people", "-options=lockout_threshold=3", "userpass"))
	must(asRoot(`path "secret/data/app/*" { capabilities = ["read"] }`, "policy", "write", "app-read", "-"))
	must(asRoot("", "kv", "put", "secret/app/db", "v=allowed"))
	must(asRoot("", "kv", "put", "secret/other/x", "v=denied"))
	must(asRoot("", "write", "auth/userpass/users/alice", "password=s3cret pass", "token_policies=app-read", "token_ttl=1h"))

	// A user logs in; the token is stored and used by later commands.
	home := t.TempDir()
	user := func(stdin string, args ...string) result {
		t.Helper()
		return run(t, home, srv.Addr, "", stdin, args...)
	}
	res := must(user("", "login", "-method=userpass", "username=alice", "password=s3cret pass"))
	if !strings.Contains(res.stdout, "Success! You are now authenticated") || !strings.Contains(res.stdout, "token_meta_username") ||
		!strings.Contains(res.stdout, "app-read") {
		t.Fatalf("login output:\n%s", res.stdout)
	}
	stored := readToken(t, home)
	if !strings.HasPrefix(stored, "cfr.") || strings.Contains(res.stderr, "s3cret") {
		t.Fatalf("stored token %q, stderr %q", stored, res.stderr)
	}
	if res := user("", "kv", "get", "-field=v", "secret/app/db"); res.code != 0 || strings.TrimSpace(res.stdout) != "allowed" {
		t.Fatalf("kv get with the stored login token: %+v", res)
	}
	if res := user("", "kv", "get", "secret/other/x"); res.code == 0 || !strings.Contains(res.stderr, "permission denied") {
		t.Fatalf("kv get outside the policy: %+v", res)
	}
	res = must(user("", "token", "lookup", "-format=json"))
	var look map[string]any
	if err := json.Unmarshal([]byte(res.stdout), &look); err != nil {
		t.Fatalf("token lookup -format=json: %v\n%s", err, res.stdout)
	}
	if d, _ := look["data"].(map[string]any); d["display_name"] != "userpass-alice" {
		t.Fatalf("token lookup = %v", look)
	}

	// Password from standard input (not a terminal here).
	other := t.TempDir()
	res = run(t, other, srv.Addr, "", "s3cret pass\n", "login", "-method=userpass", "username=alice")
	if res.code != 0 || !strings.Contains(res.stderr, "Password") || readToken(t, other) == "" {
		t.Fatalf("login with the password on stdin: %+v", res)
	}
	// A password read from stdin keeps its surrounding spaces.
	must(asRoot("", "write", "auth/userpass/users/carol", "password= spaced "))
	must(run(t, t.TempDir(), srv.Addr, "", " spaced \r\n", "login", "-method=userpass", "username=carol"))
	if res := run(t, t.TempDir(), srv.Addr, "", "spaced\n", "login", "-method=userpass", "username=carol"); res.code != 1 {
		t.Fatalf("login with the trimmed password: %+v", res)
	}
	// -no-store -field=token prints the token alone and stores nothing.
	fresh := t.TempDir()
	res = run(t, fresh, srv.Addr, "", "", "login", "-method=userpass", "-no-store", "-field=token", "username=alice", "password=s3cret pass")
	if res.code != 0 || !strings.HasPrefix(strings.TrimSpace(res.stdout), "cfr.") || strings.Count(res.stdout, "\n") != 1 {
		t.Fatalf("login -no-store -field=token: %+v", res)
	}
	if _, err := os.Stat(filepath.Join(fresh, ".coffer-token")); !os.IsNotExist(err) {
		t.Fatalf("-no-store stored a token (stat: %v)", err)
	}
	// -format=json prints the whole answer.
	res = run(t, fresh, srv.Addr, "", "", "login", "-method=userpass", "-no-store", "-format=json", "username=alice", "password=s3cret pass")
	var body map[string]any
	if err := json.Unmarshal([]byte(res.stdout), &body); err != nil || body["auth"].(map[string]any)["client_token"] == "" {
		t.Fatalf("login -format=json: %v\n%s", err, res.stdout)
	}

	// Failures.
	res = user("", "login", "-method=userpass", "username=alice", "password=wrong")
	if res.code != 1 || !strings.Contains(res.stderr, "invalid username or password") {
		t.Fatalf("wrong password: %+v", res)
	}
	for _, args := range [][]string{
		{"login", "-method=userpass", "password=x"},
		{"login", "-method=userpass", "username=a/b", "password=x"},
		{"login", "-method=userpass", "username=alice", "passwd=x"},
		{"login", "-method=approle", "secret_id=x"},
		{"login", "-method=ldap", "username=alice"},
	} {
		if res := user("", args...); res.code != 2 {
			t.Errorf("coffer %v: exit %d, want 2 (usage); stderr %q", args, res.code, res.stderr)
		}
	}

	// Another userpass mount, chosen with -path.
	must(asRoot("", "write", "auth/people/users/bob", "password=bobpw"))
	must(run(t, t.TempDir(), srv.Addr, "", "", "login", "-method=userpass", "-path=people", "username=bob", "password=bobpw"))
	// That mount locks after 3 failures (-options at enable) ...
	bob := func(pw string) result {
		return run(t, t.TempDir(), srv.Addr, "", "", "login", "-method=userpass", "-path=people", "username=bob", "password="+pw)
	}
	for i := 0; i < 3; i++ {
		bob("wrong")
	}
	if res := bob("bobpw"); res.code != 1 || !strings.Contains(res.stderr, "invalid username or password") {
		t.Fatalf("bob after 3 failures: %+v", res)
	}
	// ... until tuned not to lock at all.
	must(asRoot(`{"options":{"disable_lockout":"true"}}`, "write", "sys/auth/people/tune", "-"))
	must(bob("bobpw"))
	if res := asRoot(`{"options":{"argon2_memory":"1"}}`, "write", "sys/auth/people/tune", "-"); res.code != 1 || !strings.Contains(res.stderr, "argon2_memory") {
		t.Fatalf("tune with a too-small argon2_memory: %+v", res)
	}

	// AppRole: role, role_id, secret_id, login.
	must(asRoot("", "write", "auth/approle/role/ci", "token_policies=app-read", "secret_id_num_uses=1"))
	roleID := strings.TrimSpace(must(asRoot("", "read", "-field=role_id", "auth/approle/role/ci/role-id")).stdout)
	secretID := strings.TrimSpace(must(asRoot("", "write", "-f", "-field=secret_id", "auth/approle/role/ci/secret-id")).stdout)
	if len(roleID) != 36 || len(secretID) != 36 {
		t.Fatalf("role_id %q, secret_id %q", roleID, secretID)
	}
	ci := t.TempDir()
	res = must(run(t, ci, srv.Addr, "", secretID+"\n", "login", "-method=approle", "role_id="+roleID, "secret_id=-"))
	if !strings.Contains(res.stdout, "token_meta_role_name") {
		t.Fatalf("approle login output:\n%s", res.stdout)
	}
	if res := run(t, ci, srv.Addr, "", "", "kv", "get", "-field=v", "secret/app/db"); res.code != 0 || strings.TrimSpace(res.stdout) != "allowed" {
		t.Fatalf("kv get with the approle token: %+v", res)
	}
	// The secret ID had one use.
	res = run(t, t.TempDir(), srv.Addr, "", "", "login", "-method=approle", "role_id="+roleID, "secret_id="+secretID)
	if res.code != 1 || !strings.Contains(res.stderr, "invalid role or secret ID") {
		t.Fatalf("second approle login with a 1-use secret ID: %+v", res)
	}
}

func readToken(t *testing.T, home string) string {
	t.Helper()
	p := filepath.Join(home, ".coffer-token")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatalf("token file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
