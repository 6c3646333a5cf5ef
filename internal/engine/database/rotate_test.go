package database_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coffer-dev/coffer/internal/pgtest"
)

// TestRotateRoot: after rotate-root the admin's old password is refused
// by PostgreSQL, nothing shows the new one, and the engine still works,
// also after its connections are reset.
func TestRotateRoot(t *testing.T) {
	t.Parallel()
	pg := pgtest.Shared(t)
	s := newSetup(t, pg)
	s.cli.ok("write", "database/roles/app", "db_name=pg", "creation_statements="+seedCreation, "default_ttl=1h")
	s.creds(t, "app") // the pool holds a connection made with the old password

	s.cli.ok("write", "-f", "database/rotate-root/pg")
	if _, err := pg.Login(s.db.Admin, s.db.AdminPassword, s.db.Name, "SELECT 1"); !pgtest.IsAuthFailure(err) {
		t.Fatalf("admin login with the old password after rotate-root = %v, want refused", err)
	}
	u, p, lease := s.creds(t, "app")
	if _, err := pg.Login(u, p, s.db.Name, "SELECT 1"); err != nil {
		t.Fatalf("creds after rotate-root do not work: %v", err)
	}
	s.cli.ok("write", "-f", "database/reset/pg")
	s.cli.ok("lease", "revoke", lease)
	if pg.LookupRole(t, u) != nil {
		t.Fatalf("revoke after rotate-root and reset left %q", u)
	}
	out := s.cli.ok("read", "-format=json", "database/config/pg")
	if strings.Contains(out, `"password":`) || strings.Contains(out, s.db.AdminPassword) {
		t.Fatalf("config read after rotate-root:\n%s", out)
	}
	// A second rotation works from the first one's password.
	s.cli.ok("write", "-f", "database/rotate-root/pg")
	s.creds(t, "app")

	// Custom root_rotation_statements, and a rotation that fails keeps
	// the working password.
	s.cli.ok("write", "database/config/pg", "root_rotation_statements=ALTER ROLE \"{{username}}\" WITH PASSWORD '{{password}}' CONNECTION LIMIT 50")
	s.cli.ok("write", "-f", "database/rotate-root/pg")
	if got := pg.SuperQuery(t, "", "SELECT rolconnlimit::text FROM pg_roles WHERE rolname = $1", s.db.Admin); got != "50" {
		t.Fatalf("custom root rotation statement not run: connection limit %q, want 50", got)
	}
	s.cli.ok("write", "database/config/pg", "root_rotation_statements=ALTER ROLE nobody_here PASSWORD '{{password}}'")
	if stderr := s.cli.fail("write", "-f", "database/rotate-root/pg"); !strings.Contains(stderr, "does not exist") {
		t.Fatalf("failing rotate-root: %s", stderr)
	}
	s.cli.ok("write", "-f", "database/reset/pg")
	s.creds(t, "app")
	if stderr := s.cli.fail("write", "-f", "database/rotate-root/none"); !strings.Contains(stderr, "unknown database config") {
		t.Fatalf("rotate-root of a missing config: %s", stderr)
	}
}

// TestStaticRole: registering a static role rotates the user's password
// at once; rotate-role changes it again; the old one stops working each
// time; and the scheduler rotates it when its period is up.
func TestStaticRole(t *testing.T) {
	t.Parallel()
	pg := pgtest.Shared(t)
	s := newSetup(t, pg)
	user := fmt.Sprintf("static_%d", time.Now().UnixNano()%1e12)
	const initial = "initial-Pa55word"
	pg.SuperExec(t, "", fmt.Sprintf(`CREATE ROLE %s WITH LOGIN PASSWORD '%s'`, pgtest.Ident(user), initial))
	t.Cleanup(func() { pg.SuperExec(t, "", "DROP ROLE IF EXISTS "+pgtest.Ident(user)) })
	if _, err := pg.Login(user, initial, s.db.Name, "SELECT 1"); err != nil {
		t.Fatalf("initial login: %v", err)
	}

	s.cli.ok("write", "database/static-roles/app", "db_name=pg", "username="+user, "rotation_period=1h")
	if _, err := pg.Login(user, initial, s.db.Name, "SELECT 1"); !pgtest.IsAuthFailure(err) {
		t.Fatalf("initial password after registering the static role = %v, want refused", err)
	}
	creds := func() (string, map[string]any) {
		t.Helper()
		data := jsonOut(t, s.cli.ok("read", "-format=json", "database/static-creds/app"))["data"].(map[string]any)
		pw, _ := data["password"].(string)
		if data["username"] != user || pw == "" {
			t.Fatalf("static-creds = %v", data)
		}
		if _, err := pg.Login(user, pw, s.db.Name, "SELECT 1"); err != nil {
			t.Fatalf("login with static-creds: %v", err)
		}
		return pw, data
	}
	pw1, data := creds()
	if ttl := data["ttl"].(float64); ttl < 3500 || ttl > 3600 || data["rotation_period"] != float64(3600) {
		t.Fatalf("static-creds ttl = %v, rotation_period = %v; want about 3600", ttl, data["rotation_period"])
	}
	if _, err := time.Parse(time.RFC3339Nano, data["last_vault_rotation"].(string)); err != nil {
		t.Fatalf("last_vault_rotation %v: %v", data["last_vault_rotation"], err)
	}
	role := jsonOut(t, s.cli.ok("read", "-format=json", "database/static-roles/app"))["data"].(map[string]any)
	if _, has := role["password"]; has || role["username"] != user {
		t.Fatalf("static role read = %v", role)
	}

	s.cli.ok("write", "-f", "database/rotate-role/app")
	pw2, _ := creds()
	if pw2 == pw1 {
		t.Fatalf("rotate-role kept the password")
	}
	if _, err := pg.Login(user, pw1, s.db.Name, "SELECT 1"); !pgtest.IsAuthFailure(err) {
		t.Fatalf("old password after rotate-role = %v, want refused", err)
	}

	// Two static roles cannot own the same user.
	if stderr := s.cli.fail("write", "database/static-roles/twin", "db_name=pg", "username="+user, "rotation_period=1h"); !strings.Contains(stderr, "already managed") {
		t.Fatalf("second static role for the same user: %s", stderr)
	}

	// On schedule: the core runs RotateDue about every 10 s.
	s.cli.ok("write", "database/static-roles/app", "rotation_period=5s")
	var pw3 string
	if !waitFor(40*time.Second, func() bool {
		data := jsonOut(t, s.cli.ok("read", "-format=json", "database/static-creds/app"))["data"].(map[string]any)
		pw3, _ = data["password"].(string)
		return pw3 != pw2
	}) {
		t.Fatalf("password not rotated on schedule within 40s")
	}
	if _, err := pg.Login(user, pw2, s.db.Name, "SELECT 1"); !pgtest.IsAuthFailure(err) {
		t.Fatalf("password before the scheduled rotation still works: %v", err)
	}
	// The scheduled password may have been rotated again since; the
	// current one works.
	creds()
	s.cli.ok("delete", "database/static-roles/app")
	if r := s.cli.run("read", "database/static-creds/app"); r.code == 0 {
		t.Fatalf("static-creds of a deleted role: %s", r.stdout)
	}
}
