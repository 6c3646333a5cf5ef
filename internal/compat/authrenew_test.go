package compat

import (
	"testing"

	vault "github.com/hashicorp/vault/api"
)

// Renewing a login token asks the auth method that issued it, as Vault
// does: the token renews while its user or role stands as it was, and not
// once the user or role is deleted or its policies changed. A refused
// renewal leaves the token as it was.
func TestRenewConsultsTheAuthMethod(t *testing.T) {
	srv, root := authFixture(t)
	l := root.Logical()
	for _, m := range []string{"userpass", "approle"} {
		if err := root.Sys().EnableAuthWithOptions(m, &vault.EnableAuthOptions{Type: m}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Write("auth/userpass/users/alice", map[string]any{"password": "pw", "token_policies": "app-read", "token_ttl": "10m"}); err != nil {
		t.Fatal(err)
	}
	s, err := newClient(t, srv.Addr, "").Logical().Write("auth/userpass/login/alice", map[string]any{"password": "pw"})
	if err != nil {
		t.Fatal(err)
	}
	alice := newClient(t, srv.Addr, s.Auth.ClientToken)
	if _, err := alice.Auth().Token().RenewSelf(600); err != nil {
		t.Fatalf("renew while the user stands: %v", err)
	}
	if _, err := l.Write("auth/userpass/users/alice", map[string]any{"token_policies": "app-read,other"}); err != nil {
		t.Fatal(err)
	}
	_, err = alice.Auth().Token().RenewSelf(600)
	wantStatus(t, err, 400, "policies have changed, not renewing")
	_, err = root.Auth().Token().RenewAccessor(s.Auth.Accessor, 600)
	wantStatus(t, err, 400, "policies have changed, not renewing")
	if _, err := l.Write("auth/userpass/users/alice", map[string]any{"token_policies": "app-read"}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Auth().Token().RenewSelf(600); err != nil {
		t.Fatalf("renew with the policies back: %v", err)
	}
	if _, err := l.Delete("auth/userpass/users/alice"); err != nil {
		t.Fatal(err)
	}
	_, err = alice.Auth().Token().RenewSelf(600)
	wantStatus(t, err, 400, `user "alice" no longer exists: not renewing`)
	// The token itself is untouched: it still works until it expires.
	checkAppToken(t, srv.Addr, s.Auth.ClientToken)

	if _, err := l.Write("auth/approle/role/ci", map[string]any{"token_policies": "app-read"}); err != nil {
		t.Fatal(err)
	}
	rid, _ := l.Read("auth/approle/role/ci/role-id")
	sid, _ := l.Write("auth/approle/role/ci/secret-id", nil)
	s, err = newClient(t, srv.Addr, "").Logical().Write("auth/approle/login", map[string]any{"role_id": rid.Data["role_id"], "secret_id": sid.Data["secret_id"]})
	if err != nil {
		t.Fatal(err)
	}
	ci := newClient(t, srv.Addr, s.Auth.ClientToken)
	if _, err := ci.Auth().Token().RenewSelf(600); err != nil {
		t.Fatalf("renew while the role stands: %v", err)
	}
	if _, err := l.Delete("auth/approle/role/ci"); err != nil {
		t.Fatal(err)
	}
	_, err = ci.Auth().Token().RenewSelf(600)
	wantStatus(t, err, 400, `role "ci" does not exist during renewal`)

	// Tokens of the token store renew as before.
	child, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"app-read"}, TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newClient(t, srv.Addr, child.Auth.ClientToken).Auth().Token().RenewSelf(600); err != nil {
		t.Fatalf("renew a created token: %v", err)
	}
}
