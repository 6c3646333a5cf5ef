package database_test

import (
	"strings"
	"testing"
	"time"

	"github.com/coffer-dev/coffer/internal/coffertest"
	"github.com/coffer-dev/coffer/internal/pgtest"
)

// TestSeedCommands runs the four commands of docs/database.md through the
// CLI, then uses the user they return, renews and revokes its lease.
func TestSeedCommands(t *testing.T) {
	t.Parallel()
	pg := pgtest.Shared(t)
	db := pg.NewDatabase(t)
	srv := coffertest.StartDev(t)
	c := newCLI(t, srv)

	c.ok("secrets", "enable", "database")
	c.ok("write", "database/config/my-postgres", "plugin_name=postgresql-database-plugin",
		"allowed_roles=my-app-role",
		"connection_url="+db.TemplateURL(),
		"username="+db.Admin, "password="+db.AdminPassword)
	c.ok("write", "database/roles/my-app-role", "db_name=my-postgres",
		"creation_statements="+seedCreation,
		"revocation_statements="+seedRevocation, "default_ttl=1h", "max_ttl=24h")
	before := time.Now()
	out := c.ok("read", "database/creds/my-app-role")

	tbl := table(t, out)
	username, password, leaseID := tbl["username"], tbl["password"], tbl["lease_id"]
	if !strings.HasPrefix(leaseID, "database/creds/my-app-role/") {
		t.Fatalf("lease_id = %q, want database/creds/my-app-role/...", leaseID)
	}
	if tbl["lease_duration"] != "1h" || tbl["lease_renewable"] != "true" {
		t.Fatalf("lease_duration = %q, lease_renewable = %q; want 1h, true", tbl["lease_duration"], tbl["lease_renewable"])
	}
	// Vault's default username: v-<display 8>-<role 8>-<random 20>-<unix
	// time>; the root token's display name is "root", and "my-app-role"
	// cut at 8 is "my-app-r".
	rest, ok := strings.CutPrefix(username, "v-root-my-app-r-")
	if parts := strings.Split(rest, "-"); !ok || len(parts) != 2 || len(parts[0]) != 20 || len(parts[1]) < 10 {
		t.Fatalf("username = %q, want v-root-my-app-r-<20 random>-<unix time>", username)
	}
	if len(password) != 20 {
		t.Fatalf("password has %d characters, want 20", len(password))
	}

	got, err := pg.Login(username, password, db.Name, "SELECT current_user")
	if err != nil || got != username {
		t.Fatalf("login as the new user: %q, %v", got, err)
	}
	if _, err := pg.Login(username, password+"x", db.Name, "SELECT 1"); !pgtest.IsAuthFailure(err) {
		t.Fatalf("login with a wrong password = %v, want refused", err)
	}
	r := pg.LookupRole(t, username)
	if r == nil || r.ValidUntil == nil {
		t.Fatalf("pg_roles row of %q = %+v, want a VALID UNTIL", username, r)
	}
	if d := r.ValidUntil.Sub(before.Add(time.Hour)); d < -2*time.Second || d > time.Minute {
		t.Fatalf("VALID UNTIL = %v, want about an hour after %v", r.ValidUntil, before)
	}

	// Renew moves VALID UNTIL.
	c.ok("lease", "renew", "-increment=5h", leaseID)
	r = pg.LookupRole(t, username)
	if d := r.ValidUntil.Sub(time.Now().Add(5 * time.Hour)); d < -time.Minute || d > time.Minute {
		t.Fatalf("VALID UNTIL after renewing by 5h = %v, want about %v", r.ValidUntil, time.Now().Add(5*time.Hour))
	}

	// Lookup shows the lease; revoke removes the user.
	if !strings.Contains(c.ok("lease", "lookup", leaseID), "expire_time") {
		t.Fatalf("lease lookup shows no expire_time")
	}
	c.ok("lease", "revoke", leaseID)
	if r := pg.LookupRole(t, username); r != nil {
		t.Fatalf("role %q still in pg_roles after revoke: %+v", username, r)
	}
	if _, err := pg.Login(username, password, db.Name, "SELECT 1"); !pgtest.IsAuthFailure(err) {
		t.Fatalf("login after revoke = %v, want refused", err)
	}
	// Revoking again is not an error (the lease is gone).
	c.ok("lease", "revoke", leaseID)

	// Read back: no password anywhere.
	cfg := c.ok("read", "-format=json", "database/config/my-postgres")
	if strings.Contains(cfg, db.AdminPassword) || strings.Contains(cfg, `"password":`) {
		t.Fatalf("config read shows the password:\n%s", cfg)
	}
	if !strings.Contains(cfg, "{{password}}") {
		t.Fatalf("config read lost the URL template:\n%s", cfg)
	}
	role := jsonOut(t, c.ok("read", "-format=json", "database/roles/my-app-role"))
	data := role["data"].(map[string]any)
	if data["default_ttl"] != float64(3600) || data["max_ttl"] != float64(86400) || data["db_name"] != "my-postgres" {
		t.Fatalf("role read = %v", data)
	}
	if st, _ := data["creation_statements"].([]any); len(st) != 1 || st[0] != seedCreation {
		t.Fatalf("creation_statements read back = %v, want [%q]", data["creation_statements"], seedCreation)
	}
	if !strings.Contains(c.ok("list", "database/roles"), "my-app-role") || !strings.Contains(c.ok("list", "database/config"), "my-postgres") {
		t.Fatalf("list does not show the role or the config")
	}
}
