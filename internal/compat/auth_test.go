package compat

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/coffer-dev/coffer/internal/coffertest"
)

// authFixture is a dev server with KV data and a policy that reads only
// secret/data/app/*.
func authFixture(t *testing.T) (*coffertest.Server, *vault.Client) {
	t.Helper()
	srv := coffertest.StartDev(t)
	root := newClient(t, srv.Addr, srv.RootToken)
	ctx := context.Background()
	for path, v := range map[string]string{"app/db": "allowed", "other/x": "denied"} {
		if _, err := root.KVv2("secret").Put(ctx, path, map[string]any{"v": v}); err != nil {
			t.Fatalf("put %s: %v", path, err)
		}
	}
	if err := root.Sys().PutPolicy("app-read", `path "secret/data/app/*" { capabilities = ["read"] }`); err != nil {
		t.Fatalf("PutPolicy: %v", err)
	}
	return srv, root
}

// checkAppToken uses a login token against the policy-restricted KV paths:
// the allowed read works, the others are refused.
func checkAppToken(t *testing.T, addr, tok string) {
	t.Helper()
	c := newClient(t, addr, tok)
	ctx := context.Background()
	s, err := c.KVv2("secret").Get(ctx, "app/db")
	if err != nil || s.Data["v"] != "allowed" {
		t.Fatalf("read secret/app/db with the login token = %v, %v", s, err)
	}
	_, err = c.KVv2("secret").Get(ctx, "other/x")
	wantStatus(t, err, 403, "permission denied")
	_, err = c.KVv2("secret").Put(ctx, "app/db", map[string]any{"v": "overwritten"})
	wantStatus(t, err, 403, "permission denied")
}

func TestUserpass(t *testing.T) {
	srv, root := authFixture(t)
	if err := root.Sys().EnableAuthWithOptions("userpass", &vault.EnableAuthOptions{Type: "userpass", Description: "people"}); err != nil {
		t.Fatalf("EnableAuthWithOptions: %v", err)
	}
	auths, err := root.Sys().ListAuth()
	if err != nil || auths["userpass/"] == nil || auths["userpass/"].Type != "userpass" {
		t.Fatalf("ListAuth = %v, %v", auths, err)
	}

	l := root.Logical()
	if _, err := l.Write("auth/userpass/users/alice", map[string]any{
		"password": "correct horse", "token_policies": "app-read", "token_ttl": "1h", "token_max_ttl": "24h",
	}); err != nil {
		t.Fatalf("create user: %v", err)
	}
	u, err := l.Read("auth/userpass/users/alice")
	if err != nil || u == nil {
		t.Fatalf("read user = %v, %v", u, err)
	}
	if _, ok := u.Data["password"]; ok || asList(u.Data["token_policies"])[0] != "app-read" || u.Data["token_ttl"].(interface{ String() string }).String() != "3600" {
		t.Fatalf("read user = %v", u.Data)
	}
	list, err := l.List("auth/userpass/users")
	if err != nil || strings.Join(asList(list.Data["keys"]), ",") != "alice" {
		t.Fatalf("list users = %v, %v", list, err)
	}

	// Login: the official client's way.
	anon := newClient(t, srv.Addr, "")
	sec, err := anon.Logical().Write("auth/userpass/login/alice", map[string]any{"password": "correct horse"})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	a := sec.Auth
	if !strings.HasPrefix(a.ClientToken, "cfr.") || a.Accessor == "" || a.LeaseDuration != 3600 || !a.Renewable ||
		strings.Join(a.Policies, ",") != "app-read,default" || strings.Join(a.TokenPolicies, ",") != "app-read,default" ||
		a.Metadata["username"] != "alice" {
		t.Fatalf("login auth = %+v", a)
	}
	checkAppToken(t, srv.Addr, a.ClientToken)

	// The login token looks as Vault's does, and renews.
	uc := newClient(t, srv.Addr, a.ClientToken)
	self, err := uc.Auth().Token().LookupSelf()
	if err != nil || self.Data["display_name"] != "userpass-alice" || self.Data["path"] != "auth/userpass/login/alice" {
		t.Fatalf("lookup-self = %v, %v", self, err)
	}
	r, err := uc.Auth().Token().RenewSelf(7200)
	if err != nil || r.Auth.LeaseDuration != 7200 {
		t.Fatalf("RenewSelf(7200) = %+v, %v", r, err)
	}
	r, err = root.Auth().Token().Renew(a.ClientToken, 600)
	if err != nil || r.Auth.LeaseDuration != 600 {
		t.Fatalf("Renew(login token, 600) = %+v, %v", r, err)
	}

	// Wrong password and unknown user: the same 400, byte for byte.
	_, err = anon.Logical().Write("auth/userpass/login/alice", map[string]any{"password": "wrong"})
	wantStatus(t, err, 400, "invalid username or password")
	_, err = anon.Logical().Write("auth/userpass/login/nobody", map[string]any{"password": "wrong"})
	wantStatus(t, err, 400, "invalid username or password")
	wrong := rawLogin(t, srv.Addr, "alice", "wrong")
	unknown := rawLogin(t, srv.Addr, "nobody", "wrong")
	if wrong != unknown || wrong != `{"errors":["invalid username or password"]}` {
		t.Fatalf("bodies differ: wrong password %q, unknown user %q", wrong, unknown)
	}

	// Password change, then delete.
	if _, err := l.Write("auth/userpass/users/alice/password", map[string]any{"password": "new one"}); err != nil {
		t.Fatalf("change password: %v", err)
	}
	if _, err := anon.Logical().Write("auth/userpass/login/alice", map[string]any{"password": "new one"}); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
	if _, err := l.Delete("auth/userpass/users/alice"); err != nil {
		t.Fatalf("delete user: %v", err)
	}
	_, err = anon.Logical().Write("auth/userpass/login/alice", map[string]any{"password": "new one"})
	wantStatus(t, err, 400, "invalid username or password")
}

// rawLogin posts a userpass login and returns the body as sent.
func rawLogin(t *testing.T, addr, user, pw string) string {
	t.Helper()
	resp, err := http.Post(addr+"/v1/auth/userpass/login/"+user, "application/json", strings.NewReader(`{"password":"`+pw+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 {
		t.Fatalf("login %s: status %d %s", user, resp.StatusCode, b)
	}
	return strings.TrimSpace(string(b))
}

// TestUserpassLockoutAcrossRestart: 5 failures lock the user, the right
// password is refused with the same answer, and the lock survives a
// restart of a bbolt-backed server.
func TestUserpassLockoutAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, nil)
	c := newClient(t, srv.Addr, "")
	init, err := c.Sys().Init(&vault.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	c.SetToken(init.RootToken)
	if _, err := c.Sys().Unseal(init.KeysB64[0]); err != nil {
		t.Fatalf("unseal: %v", err)
	}
	if err := c.Sys().EnableAuthWithOptions("userpass", &vault.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatalf("enable userpass: %v", err)
	}
	if _, err := c.Logical().Write("auth/userpass/users/bob", map[string]any{"password": "right"}); err != nil {
		t.Fatalf("create user: %v", err)
	}
	anon := newClient(t, srv.Addr, "")
	for i := 0; i < 5; i++ {
		_, err := anon.Logical().Write("auth/userpass/login/bob", map[string]any{"password": "wrong-pw-canary"})
		wantStatus(t, err, 400, "invalid username or password")
	}
	_, err = anon.Logical().Write("auth/userpass/login/bob", map[string]any{"password": "right"})
	wantStatus(t, err, 400, "invalid username or password")
	// The lock is logged (at warn), the passwords are not.
	logs := srv.Stdout.String() + srv.Stderr.String()
	if !strings.Contains(logs, "user locked out") || !strings.Contains(logs, "bob") {
		t.Fatalf("no lockout log line in:\n%s", logs)
	}
	if strings.Contains(logs, "wrong-pw-canary") || strings.Contains(logs, `"right"`) {
		t.Fatalf("the server log contains a password:\n%s", logs)
	}
	srv.Stop()

	srv = startServer(t, dir, nil)
	c = newClient(t, srv.Addr, init.RootToken)
	if _, err := c.Sys().Unseal(init.KeysB64[0]); err != nil {
		t.Fatalf("unseal after restart: %v", err)
	}
	anon = newClient(t, srv.Addr, "")
	_, err = anon.Logical().Write("auth/userpass/login/bob", map[string]any{"password": "right"})
	wantStatus(t, err, 400, "invalid username or password")
	// An administrator's password reset lifts the lock.
	if _, err := c.Logical().Write("auth/userpass/users/bob/password", map[string]any{"password": "reset"}); err != nil {
		t.Fatalf("reset password: %v", err)
	}
	if _, err := anon.Logical().Write("auth/userpass/login/bob", map[string]any{"password": "reset"}); err != nil {
		t.Fatalf("login after the reset: %v", err)
	}
}

func TestAppRole(t *testing.T) {
	srv, root := authFixture(t)
	if err := root.Sys().EnableAuthWithOptions("approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatalf("EnableAuthWithOptions: %v", err)
	}
	l := root.Logical()
	if _, err := l.Write("auth/approle/role/app", map[string]any{
		"token_policies": []string{"app-read"}, "token_ttl": "20m", "secret_id_num_uses": 2, "secret_id_ttl": "1h",
	}); err != nil {
		t.Fatalf("create role: %v", err)
	}
	role, err := l.Read("auth/approle/role/app")
	if err != nil || role.Data["bind_secret_id"] != true || strings.Join(asList(role.Data["token_policies"]), ",") != "app-read" {
		t.Fatalf("read role = %v, %v", role, err)
	}
	if _, ok := role.Data["role_id"]; ok {
		t.Fatalf("role read shows role_id: %v", role.Data)
	}
	rid, err := l.Read("auth/approle/role/app/role-id")
	if err != nil {
		t.Fatalf("read role-id: %v", err)
	}
	roleID := rid.Data["role_id"].(string)
	gen, err := l.Write("auth/approle/role/app/secret-id", map[string]any{"metadata": `{"team":"blue"}`})
	if err != nil {
		t.Fatalf("generate secret-id: %v", err)
	}
	sid, acc := gen.Data["secret_id"].(string), gen.Data["secret_id_accessor"].(string)
	if len(sid) != 36 || len(acc) != 36 || gen.Data["secret_id_ttl"].(interface{ String() string }).String() != "3600" ||
		gen.Data["secret_id_num_uses"].(interface{ String() string }).String() != "2" {
		t.Fatalf("secret-id = %v", gen.Data)
	}
	keys, err := l.List("auth/approle/role/app/secret-id")
	if err != nil || strings.Join(asList(keys.Data["keys"]), ",") != acc {
		t.Fatalf("list secret-id = %v, %v", keys, err)
	}

	anon := newClient(t, srv.Addr, "")
	login := func(roleID, sid string) (*vault.Secret, error) {
		return anon.Logical().Write("auth/approle/login", map[string]any{"role_id": roleID, "secret_id": sid})
	}
	sec, err := login(roleID, sid)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	a := sec.Auth
	if !strings.HasPrefix(a.ClientToken, "cfr.") || a.LeaseDuration != 1200 || strings.Join(a.Policies, ",") != "app-read,default" ||
		a.Metadata["role_name"] != "app" || a.Metadata["team"] != "blue" {
		t.Fatalf("login auth = %+v", a)
	}
	checkAppToken(t, srv.Addr, a.ClientToken)
	r, err := newClient(t, srv.Addr, a.ClientToken).Auth().Token().RenewSelf(1800)
	if err != nil || r.Auth.LeaseDuration != 1800 {
		t.Fatalf("RenewSelf(1800) = %+v, %v", r, err)
	}

	look, err := l.Write("auth/approle/role/app/secret-id/lookup", map[string]any{"secret_id": sid})
	if err != nil || look.Data["secret_id_accessor"] != acc || look.Data["secret_id_num_uses"].(interface{ String() string }).String() != "1" {
		t.Fatalf("lookup = %v, %v", look, err)
	}
	// Second use spends it; the third is refused like an unknown role.
	if _, err := login(roleID, sid); err != nil {
		t.Fatalf("second login: %v", err)
	}
	_, err = login(roleID, sid)
	wantStatus(t, err, 400, "invalid role or secret ID")
	_, err = login("no-such-role-id", sid)
	wantStatus(t, err, 400, "invalid role or secret ID")

	// An expired secret ID.
	short, err := l.Write("auth/approle/role/app/secret-id", map[string]any{"ttl": "1s"})
	if err != nil {
		t.Fatalf("generate short secret-id: %v", err)
	}
	time.Sleep(1100 * time.Millisecond)
	_, err = login(roleID, short.Data["secret_id"].(string))
	wantStatus(t, err, 400, "invalid role or secret ID")

	// Two concurrent logins with a 1-use secret ID: exactly one succeeds.
	one, err := l.Write("auth/approle/role/app/secret-id", map[string]any{"num_uses": 1})
	if err != nil {
		t.Fatalf("generate 1-use secret-id: %v", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = login(roleID, one.Data["secret_id"].(string))
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("concurrent logins with a 1-use secret ID: %v, %v; want exactly one success", errs[0], errs[1])
	}

	// Destroy by accessor; tidy.
	more, err := l.Write("auth/approle/role/app/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Write("auth/approle/role/app/secret-id-accessor/destroy", map[string]any{"secret_id_accessor": more.Data["secret_id_accessor"]}); err != nil {
		t.Fatalf("destroy by accessor: %v", err)
	}
	_, err = login(roleID, more.Data["secret_id"].(string))
	wantStatus(t, err, 400, "invalid role or secret ID")
	if _, err := l.Write("auth/approle/tidy/secret-id", nil); err != nil {
		t.Fatalf("tidy: %v", err)
	}

	// CIDR bindings are checked against the caller's address (127.0.0.1).
	if _, err := l.Write("auth/approle/role/remote", map[string]any{"secret_id_bound_cidrs": "10.0.0.0/8", "token_policies": "app-read"}); err != nil {
		t.Fatal(err)
	}
	rrid, _ := l.Read("auth/approle/role/remote/role-id")
	rsid, err := l.Write("auth/approle/role/remote/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = login(rrid.Data["role_id"].(string), rsid.Data["secret_id"].(string))
	wantStatus(t, err, 400, "source address unauthorized by CIDR restrictions on the role")
	if _, err := l.Write("auth/approle/role/local", map[string]any{"secret_id_bound_cidrs": "127.0.0.1/32"}); err != nil {
		t.Fatal(err)
	}
	lrid, _ := l.Read("auth/approle/role/local/role-id")
	lsid, _ := l.Write("auth/approle/role/local/secret-id", map[string]any{"cidr_list": "127.0.0.1"})
	if _, err := login(lrid.Data["role_id"].(string), lsid.Data["secret_id"].(string)); err != nil {
		t.Fatalf("login from inside the bound CIDR: %v", err)
	}

	roles, err := l.List("auth/approle/role")
	if err != nil || strings.Join(asList(roles.Data["keys"]), ",") != "app,local,remote" {
		t.Fatalf("list roles = %v, %v", roles, err)
	}
}
