package compat

import (
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/coffer-dev/coffer/internal/coffertest"
)

func TestTokens(t *testing.T) {
	srv := coffertest.StartDev(t)
	root := newClient(t, srv.Addr, srv.RootToken)
	ta := root.Auth().Token()

	// lookup-self of the root token.
	s, err := ta.LookupSelf()
	if err != nil {
		t.Fatalf("LookupSelf: %v", err)
	}
	if pols, _ := s.TokenPolicies(); len(pols) != 1 || pols[0] != "root" {
		t.Fatalf("root policies = %v", pols)
	}

	if err := root.Sys().PutPolicy("reader", `path "secret/data/*" { capabilities = ["read"] }`); err != nil {
		t.Fatalf("PutPolicy: %v", err)
	}
	child, err := ta.Create(&vault.TokenCreateRequest{Policies: []string{"reader"}, TTL: "1h", DisplayName: "app", Metadata: map[string]string{"team": "a"}})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	a := child.Auth
	if !strings.HasPrefix(a.ClientToken, "cfr.") || a.Accessor == "" || a.LeaseDuration != 3600 || !a.Renewable {
		t.Fatalf("Create() auth = %+v", a)
	}
	if got := strings.Join(a.Policies, ","); got != "default,reader" {
		t.Fatalf("policies = %q, want default,reader", got)
	}

	cc := newClient(t, srv.Addr, a.ClientToken)
	self, err := cc.Auth().Token().LookupSelf()
	if err != nil {
		t.Fatalf("child LookupSelf: %v", err)
	}
	if self.Data["display_name"] != "token-app" || self.Data["orphan"] != false || self.Data["path"] != "auth/token/create" {
		t.Fatalf("child lookup-self = %v", self.Data)
	}
	if ttl, _ := self.TokenTTL(); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("child ttl = %v", ttl)
	}

	// The child cannot do what its policies do not allow, and cannot mint a
	// token with more policies than it has.
	_, err = cc.Logical().Write("secret/data/x", map[string]any{"data": map[string]any{"a": "b"}})
	wantStatus(t, err, 403, "permission denied")
	_, err = cc.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"admin"}})
	wantStatus(t, err, 403, "permission denied") // no create capability on auth/token/create

	// lookup, lookup-accessor, renew.
	if l, err := ta.Lookup(a.ClientToken); err != nil || l.Data["accessor"] != a.Accessor {
		t.Fatalf("Lookup = %v, %v", l, err)
	}
	if l, err := ta.LookupAccessor(a.Accessor); err != nil || l.Data["id"] != "" || l.Data["display_name"] != "token-app" {
		t.Fatalf("LookupAccessor = %v, %v", l, err)
	}
	r, err := cc.Auth().Token().RenewSelf(7200)
	if err != nil || r.Auth.LeaseDuration != 7200 {
		t.Fatalf("RenewSelf(7200) = %+v, %v", r, err)
	}

	// Revoking a parent revokes its children.
	parent, err := ta.Create(&vault.TokenCreateRequest{Policies: []string{"reader"}})
	if err != nil {
		t.Fatal(err)
	}
	pc := newClient(t, srv.Addr, parent.Auth.ClientToken)
	if err := root.Sys().PutPolicy("minter", `path "auth/token/create" { capabilities = ["update"] }`); err != nil {
		t.Fatal(err)
	}
	parent2, err := ta.Create(&vault.TokenCreateRequest{Policies: []string{"reader", "minter"}})
	if err != nil {
		t.Fatal(err)
	}
	p2 := newClient(t, srv.Addr, parent2.Auth.ClientToken)
	kid, err := p2.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"reader"}})
	if err != nil {
		t.Fatalf("child token by a minter: %v", err)
	}
	_, err = p2.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"admin"}})
	wantStatus(t, err, 400, "subset")
	if err := ta.RevokeTree(parent2.Auth.ClientToken); err != nil {
		t.Fatalf("RevokeTree: %v", err)
	}
	kc := newClient(t, srv.Addr, kid.Auth.ClientToken)
	_, err = kc.Auth().Token().LookupSelf()
	wantStatus(t, err, 403, "permission denied")

	// revoke-self, then the token is gone.
	if err := pc.Auth().Token().RevokeSelf(""); err != nil {
		t.Fatalf("RevokeSelf: %v", err)
	}
	_, err = pc.Auth().Token().LookupSelf()
	wantStatus(t, err, 403, "permission denied")

	// revoke-accessor
	if err := ta.RevokeAccessor(a.Accessor); err != nil {
		t.Fatalf("RevokeAccessor: %v", err)
	}
	_, err = cc.Auth().Token().LookupSelf()
	wantStatus(t, err, 403, "permission denied")

	// num_uses: the token works exactly N times.
	once, err := ta.Create(&vault.TokenCreateRequest{Policies: []string{"reader"}, NumUses: 2})
	if err != nil {
		t.Fatal(err)
	}
	oc := newClient(t, srv.Addr, once.Auth.ClientToken)
	for i := 0; i < 2; i++ {
		if _, err := oc.Auth().Token().LookupSelf(); err != nil {
			t.Fatalf("use %d of 2: %v", i+1, err)
		}
	}
	_, err = oc.Auth().Token().LookupSelf()
	wantStatus(t, err, 403, "permission denied")

	// Same answer for missing, malformed and unknown tokens.
	for _, tok := range []string{"", "garbage", "cfr.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", strings.Repeat("x", 300)} {
		c := newClient(t, srv.Addr, tok)
		if tok == "" {
			c.ClearToken()
		}
		_, err := c.Logical().Read("secret/data/x")
		wantStatus(t, err, 403, "permission denied")
	}

	// Expiry: a 1s token is refused once expired.
	short, err := ta.Create(&vault.TokenCreateRequest{Policies: []string{"reader"}, TTL: "1s"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	_, err = newClient(t, srv.Addr, short.Auth.ClientToken).Auth().Token().LookupSelf()
	wantStatus(t, err, 403, "permission denied")

	// Orphans survive their parent's revocation.
	orphan, err := ta.CreateOrphan(&vault.TokenCreateRequest{Policies: []string{"reader"}})
	if err != nil || !orphan.Auth.Orphan {
		t.Fatalf("CreateOrphan = %+v, %v", orphan, err)
	}
}

func TestPoliciesAndCapabilities(t *testing.T) {
	srv := coffertest.StartDev(t)
	root := newClient(t, srv.Addr, srv.RootToken)
	sys := root.Sys()
	pol := `path "secret/data/app/*" { capabilities = ["create", "read", "update"] }
path "secret/data/app/locked" { capabilities = ["deny"] }
path "secret/metadata/+/" { capabilities = ["list"] }`
	if err := sys.PutPolicy("app", pol); err != nil {
		t.Fatalf("PutPolicy: %v", err)
	}
	got, err := sys.GetPolicy("app")
	if err != nil || got != pol {
		t.Fatalf("GetPolicy = %q, %v", got, err)
	}
	names, err := sys.ListPolicies()
	if err != nil || strings.Join(names, ",") != "app,default,root" {
		t.Fatalf("ListPolicies = %v, %v", names, err)
	}
	// Syntax errors name the line.
	err = sys.PutPolicy("bad", "path \"a\" {\n  capabilities = [\"raed\"]\n}\n")
	wantStatus(t, err, 400, "line 2")
	wantStatus(t, sys.PutPolicy("root", `path "x" { capabilities = ["read"] }`), 400, "root")
	wantStatus(t, sys.DeletePolicy("default"), 400, "default")

	tok, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"app"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want string
	}{
		{"secret/data/app/db", "create,read,update"},
		{"secret/data/app/locked", "deny"},
		{"secret/data/other", "deny"},
		{"secret/metadata/app/", "list"},
	}
	for _, tc := range tests {
		caps, err := sys.Capabilities(tok.Auth.ClientToken, tc.path)
		if err != nil {
			t.Fatalf("Capabilities(%s): %v", tc.path, err)
		}
		if got := strings.Join(caps, ","); got != tc.want {
			t.Errorf("Capabilities(%s) = %s, want %s", tc.path, got, tc.want)
		}
	}
	tc := newClient(t, srv.Addr, tok.Auth.ClientToken)
	caps, err := tc.Sys().CapabilitiesSelf("secret/data/app/db")
	if err != nil || strings.Join(caps, ",") != "create,read,update" {
		t.Fatalf("CapabilitiesSelf = %v, %v", caps, err)
	}
	// Legacy sys/policy.
	resp, err := root.Logical().Read("sys/policy/app")
	if err != nil || resp.Data["rules"] != pol {
		t.Fatalf("sys/policy/app = %v, %v", resp, err)
	}
	if err := sys.DeletePolicy("app"); err != nil {
		t.Fatalf("DeletePolicy: %v", err)
	}
	caps, err = sys.Capabilities(tok.Auth.ClientToken, "secret/data/app/db")
	if err != nil || strings.Join(caps, ",") != "deny" {
		t.Fatalf("Capabilities after delete = %v, %v", caps, err)
	}
}
