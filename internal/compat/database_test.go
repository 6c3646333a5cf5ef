package compat

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/coffer-dev/coffer/internal/coffertest"
	"github.com/coffer-dev/coffer/internal/pgtest"
)

// TestDatabaseEngine drives the database engine with the official Vault
// client against a real PostgreSQL: config, roles, creds, renew, revoke,
// revoke-prefix, static roles.
func TestDatabaseEngine(t *testing.T) {
	pg := pgtest.Shared(t)
	db := pg.NewDatabase(t)
	srv := coffertest.StartDev(t)
	c := newClient(t, srv.Addr, srv.RootToken)

	if err := c.Sys().Mount("database", &vault.MountInput{Type: "database"}); err != nil {
		t.Fatalf("Mount: %v", err)
	}
	_, err := c.Logical().Write("database/config/my-postgres", map[string]any{
		"plugin_name":    "postgresql-database-plugin",
		"allowed_roles":  []string{"my-app-role", "static-app"},
		"connection_url": db.TemplateURL(),
		"username":       db.Admin,
		"password":       db.AdminPassword,
	})
	if err != nil {
		t.Fatalf("write config: %v", err)
	}
	cfg, err := c.Logical().Read("database/config/my-postgres")
	if err != nil || cfg == nil {
		t.Fatalf("read config: %v %v", cfg, err)
	}
	details, _ := cfg.Data["connection_details"].(map[string]any)
	if _, has := details["password"]; has || details["username"] != db.Admin || cfg.Data["plugin_name"] != "postgresql-database-plugin" {
		t.Fatalf("config = %v", cfg.Data)
	}
	if raw, _ := json.Marshal(cfg.Data); strings.Contains(string(raw), db.AdminPassword) {
		t.Fatalf("config read shows the admin password")
	}

	_, err = c.Logical().Write("database/roles/my-app-role", map[string]any{
		"db_name": "my-postgres",
		"creation_statements": []string{
			`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
			`GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO "{{name}}";`,
		},
		"revocation_statements": []string{`DROP ROLE IF EXISTS "{{name}}";`},
		"default_ttl":           "1h",
		"max_ttl":               "24h",
	})
	if err != nil {
		t.Fatalf("write role: %v", err)
	}
	roles, err := c.Logical().List("database/roles")
	if err != nil || roles == nil || fmt.Sprint(roles.Data["keys"]) != "[my-app-role]" {
		t.Fatalf("list roles: %v %v", roles, err)
	}

	creds := func() (user, pass string, s *vault.Secret) {
		t.Helper()
		s, err := c.Logical().Read("database/creds/my-app-role")
		if err != nil || s == nil {
			t.Fatalf("read creds: %v %v", s, err)
		}
		user, _ = s.Data["username"].(string)
		pass, _ = s.Data["password"].(string)
		if user == "" || pass == "" || !s.Renewable || s.LeaseDuration != 3600 ||
			!strings.HasPrefix(s.LeaseID, "database/creds/my-app-role/") {
			t.Fatalf("creds = %+v", s)
		}
		if _, err := pg.Login(user, pass, db.Name, "SELECT 1"); err != nil {
			t.Fatalf("login with issued creds: %v", err)
		}
		return user, pass, s
	}
	user, _, s := creds()

	renewed, err := c.Sys().Renew(s.LeaseID, 7200)
	if err != nil || renewed.LeaseDuration < 7190 || renewed.LeaseDuration > 7200 || renewed.LeaseID != s.LeaseID {
		t.Fatalf("Renew: %+v %v", renewed, err)
	}
	if r := pg.LookupRole(t, user); r == nil || r.ValidUntil == nil || r.ValidUntil.Sub(time.Now().Add(2*time.Hour)).Abs() > time.Minute {
		t.Fatalf("VALID UNTIL after renewing by 2h: %+v", r)
	}
	// Beyond max_ttl: capped.
	capped, err := c.Sys().Renew(s.LeaseID, 100*3600)
	if err != nil || capped.LeaseDuration > 24*3600 || len(capped.Warnings) == 0 {
		t.Fatalf("Renew beyond max_ttl: %+v %v", capped, err)
	}
	if err := c.Sys().Revoke(s.LeaseID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if r := pg.LookupRole(t, user); r != nil {
		t.Fatalf("role %q survived Revoke", user)
	}

	u1, _, _ := creds()
	u2, _, _ := creds()
	if err := c.Sys().RevokePrefix("database/creds/my-app-role"); err != nil {
		t.Fatalf("RevokePrefix: %v", err)
	}
	for _, u := range []string{u1, u2} {
		if r := pg.LookupRole(t, u); r != nil {
			t.Fatalf("role %q survived RevokePrefix", u)
		}
	}

	_, err = c.Logical().Read("database/creds/nope")
	wantStatus(t, err, 400, "unknown role: nope")

	// Static role.
	user = fmt.Sprintf("compat_static_%d", time.Now().UnixNano()%1e12)
	pg.SuperExec(t, "", fmt.Sprintf(`CREATE ROLE %s WITH LOGIN PASSWORD 'initial-pw'`, pgtest.Ident(user)))
	t.Cleanup(func() { pg.SuperExec(t, "", "DROP ROLE IF EXISTS "+pgtest.Ident(user)) })
	if _, err := c.Logical().Write("database/static-roles/static-app", map[string]any{
		"db_name": "my-postgres", "username": user, "rotation_period": 86400,
	}); err != nil {
		t.Fatalf("write static role: %v", err)
	}
	sc, err := c.Logical().Read("database/static-creds/static-app")
	if err != nil || sc == nil || sc.Data["username"] != user {
		t.Fatalf("static-creds: %v %v", sc, err)
	}
	pw1, _ := sc.Data["password"].(string)
	if _, err := pg.Login(user, pw1, db.Name, "SELECT 1"); err != nil {
		t.Fatalf("login with static-creds: %v", err)
	}
	if _, err := c.Logical().Write("database/rotate-role/static-app", nil); err != nil {
		t.Fatalf("rotate-role: %v", err)
	}
	sc, _ = c.Logical().Read("database/static-creds/static-app")
	if pw2, _ := sc.Data["password"].(string); pw2 == pw1 || pw2 == "" {
		t.Fatalf("rotate-role did not change the password")
	}
	if _, err := pg.Login(user, pw1, db.Name, "SELECT 1"); !pgtest.IsAuthFailure(err) {
		t.Fatalf("old static password after rotate-role = %v, want refused", err)
	}

	// rotate-root through the client.
	if _, err := c.Logical().Write("database/rotate-root/my-postgres", nil); err != nil {
		t.Fatalf("rotate-root: %v", err)
	}
	if _, err := pg.Login(db.Admin, db.AdminPassword, db.Name, "SELECT 1"); !pgtest.IsAuthFailure(err) {
		t.Fatalf("old admin password after rotate-root = %v, want refused", err)
	}
	creds()
	if err := c.Sys().RevokePrefix("database/creds/"); err != nil {
		t.Fatalf("RevokePrefix: %v", err)
	}
}
