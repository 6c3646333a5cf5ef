package compat

import (
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"
)

// token_bound_cidrs, through the Vault client against a real server (the
// client connects from 127.0.0.1): a token bound elsewhere is refused
// with 403 on every request, one bound to the caller's address works,
// and lookups show the binding. For approle, a secret ID may narrow the
// role's binding, never widen it.
func TestTokenBoundCIDRs(t *testing.T) {
	srv, root := authFixture(t)
	l := root.Logical()
	if err := root.Sys().EnableAuthWithOptions("userpass", &vault.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().EnableAuthWithOptions("approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	for user, cidrs := range map[string]string{"here": "127.0.0.0/8", "away": "10.0.0.0/8,192.168.0.0/16"} {
		if _, err := l.Write("auth/userpass/users/"+user, map[string]any{"password": "pw-" + user, "token_policies": "app-read", "token_bound_cidrs": cidrs}); err != nil {
			t.Fatal(err)
		}
	}
	u, err := l.Read("auth/userpass/users/away")
	if err != nil || strings.Join(asList(u.Data["token_bound_cidrs"]), ",") != "10.0.0.0/8,192.168.0.0/16" {
		t.Fatalf("read user: %v, %v", u, err)
	}
	login := func(user string) *vault.Secret {
		t.Helper()
		s, err := newClient(t, srv.Addr, "").Logical().Write("auth/userpass/login/"+user, map[string]any{"password": "pw-" + user})
		if err != nil {
			t.Fatalf("login %s: %v", user, err)
		}
		return s
	}
	checkAppToken(t, srv.Addr, login("here").Auth.ClientToken)

	away := login("away").Auth
	c := newClient(t, srv.Addr, away.ClientToken)
	_, err = c.KVv2("secret").Get(t.Context(), "app/db")
	wantStatus(t, err, 403, "permission denied")
	_, err = c.Auth().Token().LookupSelf()
	wantStatus(t, err, 403, "permission denied")
	_, err = c.Auth().Token().RenewSelf(3600)
	wantStatus(t, err, 403, "permission denied")
	look, err := root.Auth().Token().LookupAccessor(away.Accessor)
	if err != nil || strings.Join(asList(look.Data["bound_cidrs"]), ",") != "10.0.0.0/8,192.168.0.0/16" {
		t.Fatalf("lookup-accessor of the bound token: %v, %v", look, err)
	}

	// approle: the role binds its tokens to 127.0.0.0/8; a secret ID may
	// narrow that to 127.0.0.1/32 but not widen it to 10.0.0.0/8.
	if _, err := l.Write("auth/approle/role/app", map[string]any{"token_policies": "app-read", "token_bound_cidrs": "127.0.0.0/8"}); err != nil {
		t.Fatal(err)
	}
	rid, _ := l.Read("auth/approle/role/app/role-id")
	_, err = l.Write("auth/approle/role/app/secret-id", map[string]any{"token_bound_cidrs": "10.0.0.0/8"})
	wantStatus(t, err, 400, "token_bound_cidrs must lie within the role's token_bound_cidrs [127.0.0.0/8]")
	sid, err := l.Write("auth/approle/role/app/secret-id", map[string]any{"token_bound_cidrs": "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	lookSID, err := l.Write("auth/approle/role/app/secret-id/lookup", map[string]any{"secret_id": sid.Data["secret_id"]})
	if err != nil || strings.Join(asList(lookSID.Data["token_bound_cidrs"]), ",") != "127.0.0.1/32" {
		t.Fatalf("secret-id lookup: %v, %v", lookSID, err)
	}
	s, err := newClient(t, srv.Addr, "").Logical().Write("auth/approle/login", map[string]any{"role_id": rid.Data["role_id"], "secret_id": sid.Data["secret_id"]})
	if err != nil {
		t.Fatal(err)
	}
	checkAppToken(t, srv.Addr, s.Auth.ClientToken)
	look, err = root.Auth().Token().LookupAccessor(s.Auth.Accessor)
	if err != nil || strings.Join(asList(look.Data["bound_cidrs"]), ",") != "127.0.0.1/32" {
		t.Fatalf("lookup of the approle token: %v, %v", look, err)
	}
}
