package compat

import (
	"testing"

	vault "github.com/hashicorp/vault/api"
)

// Disabling an auth method revokes every token it issued, and their child
// tokens, as Vault does; tokens of other methods keep working, and
// enabling a method at the same path again does not bring them back.
func TestDisableAuthRevokesItsTokens(t *testing.T) {
	srv, root := authFixture(t)
	l := root.Logical()
	if err := root.Sys().PutPolicy("child", `path "auth/token/create" { capabilities = ["update"] }`); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"people", "robots"} {
		if err := root.Sys().EnableAuthWithOptions(p, &vault.EnableAuthOptions{Type: "userpass"}); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Write("auth/"+p+"/users/u", map[string]any{"password": "pw", "token_policies": "app-read,child"}); err != nil {
			t.Fatal(err)
		}
	}
	login := func(mount string) string {
		t.Helper()
		s, err := newClient(t, srv.Addr, "").Logical().Write("auth/"+mount+"/login/u", map[string]any{"password": "pw"})
		if err != nil {
			t.Fatalf("login at %s: %v", mount, err)
		}
		return s.Auth.ClientToken
	}
	person, robot := login("people"), login("robots")
	child, err := newClient(t, srv.Addr, person).Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"app-read"}})
	if err != nil {
		t.Fatalf("child token: %v", err)
	}
	for _, tok := range []string{person, child.Auth.ClientToken, robot} {
		checkAppToken(t, srv.Addr, tok)
	}

	if err := root.Sys().DisableAuth("people"); err != nil {
		t.Fatalf("disable: %v", err)
	}
	for name, tok := range map[string]string{"login token": person, "its child": child.Auth.ClientToken} {
		_, err := newClient(t, srv.Addr, tok).Auth().Token().LookupSelf()
		wantStatus(t, err, 403, "permission denied")
		if _, err := root.Auth().Token().Lookup(tok); err == nil {
			t.Errorf("%s of the disabled method still exists", name)
		}
	}
	checkAppToken(t, srv.Addr, robot)

	if err := root.Sys().EnableAuthWithOptions("people", &vault.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatal(err)
	}
	_, err = newClient(t, srv.Addr, person).Auth().Token().LookupSelf()
	wantStatus(t, err, 403, "permission denied")
}
