package database_test

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/coffer-dev/coffer/internal/coffertest"
	"github.com/coffer-dev/coffer/internal/pgtest"
)

// TestBadSQLLeavesNoUser: a creation that fails in any statement answers
// 400 with PostgreSQL's error, with the password redacted, and leaves no
// user behind, although the first statement had created it.
func TestBadSQLLeavesNoUser(t *testing.T) {
	t.Parallel()
	pg := pgtest.Shared(t)
	s := newSetup(t, pg, "username_template=badsql-{{.RoleName}}-{{random 10}}")
	cases := []struct {
		role, creation, wantErr string
	}{
		{"typo", `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}'; GRANT SELEC ON ALL TABLES IN SCHEMA public TO "{{name}}";`,
			`unrecognized privilege type "selec"`},
		{"missing", `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}'; GRANT SELECT ON no_such_table TO "{{name}}";`,
			`relation "no_such_table" does not exist`},
		// The error points at the password itself: it must be redacted
		// (checked below).
		{"unquoted", `CREATE ROLE "{{name}}" WITH LOGIN; ALTER ROLE "{{name}}" PASSWORD {{password}} x;`,
			`at or near "`},
	}
	for _, tc := range cases {
		t.Run(tc.role, func(t *testing.T) {
			s.cli.ok("write", "database/roles/"+tc.role, "db_name=pg", "creation_statements="+tc.creation)
			stderr := s.cli.fail("read", "database/creds/"+tc.role)
			if !strings.Contains(stderr, "400") || !strings.Contains(stderr, tc.wantErr) {
				t.Fatalf("creds/%s: %s; want a 400 with %q", tc.role, stderr, tc.wantErr)
			}
			// PostgreSQL quotes the token it stopped at, which for
			// "unquoted" is the password or a piece of it: anything of 4
			// or more bytes must have been redacted.
			_, near, _ := strings.Cut(stderr, `at or near "`)
			if tok, _, _ := strings.Cut(near, `"`); tc.role == "unquoted" && tok != "[REDACTED]" && len(tok) >= 4 {
				t.Fatalf("creds/%s: the error quotes %q, a piece of the password", tc.role, tok)
			}
			if left := pg.RolesLike(t, "badsql-"+tc.role+"-%"); len(left) != 0 {
				t.Fatalf("failed creation left roles %v", left)
			}
		})
	}
	// A rollback_statements runs after a failure.
	pg.SuperExec(t, s.db.Name, fmt.Sprintf(`CREATE TABLE public.rollbacks (name text); ALTER TABLE public.rollbacks OWNER TO %s`, pgtest.Ident(s.db.Admin)))
	s.cli.ok("write", "database/roles/rb", "db_name=pg",
		"creation_statements="+`CREATE ROLE "{{name}}"; SELECT 1/0;`,
		"rollback_statements="+`INSERT INTO public.rollbacks VALUES ('{{name}}')`)
	if stderr := s.cli.fail("read", "database/creds/rb"); !strings.Contains(stderr, "division by zero") {
		t.Fatalf("creds/rb: %s", stderr)
	}
	var n string
	n, err := pg.Login(s.db.Admin, s.db.AdminPassword, s.db.Name, "SELECT count(*)::text FROM public.rollbacks WHERE name LIKE 'badsql-rb-%'")
	if err != nil || n != "1" {
		t.Fatalf("rollback statements ran %s times (%v), want 1", n, err)
	}
}

// TestRoleNotAllowed: a role the config's allowed_roles does not name
// gets a 400 and no user.
func TestRoleNotAllowed(t *testing.T) {
	t.Parallel()
	pg := pgtest.Shared(t)
	db := pg.NewDatabase(t)
	c := newCLI(t, coffertest.StartDev(t))
	c.ok("secrets", "enable", "database")
	c.ok("write", "database/config/pg", "plugin_name=postgresql-database-plugin", "allowed_roles=app-*,other",
		"connection_url="+db.TemplateURL(), "username="+db.Admin, "password="+db.AdminPassword,
		"username_template=notallowed-{{.RoleName}}-{{random 8}}")
	for _, role := range []string{"app-1", "other", "intruder"} {
		c.ok("write", "database/roles/"+role, "db_name=pg", "creation_statements="+seedCreation)
	}
	c.ok("read", "database/creds/app-1")
	c.ok("read", "database/creds/other")
	stderr := c.fail("read", "database/creds/intruder")
	if !strings.Contains(stderr, "400") || !strings.Contains(stderr, `"intruder" is not an allowed role`) {
		t.Fatalf("creds of a role not allowed: %s", stderr)
	}
	if left := pg.RolesLike(t, "notallowed-intruder-%"); len(left) != 0 {
		t.Fatalf("roles created for a refused role: %v", left)
	}
	if stderr := c.fail("write", "database/static-roles/intruder", "db_name=pg", "username=nobody", "rotation_period=1h"); !strings.Contains(stderr, "not an allowed role") {
		t.Fatalf("static role not allowed: %s", stderr)
	}
}

// TestUnreachableDatabase: with verify_connection (the default), a config
// for a database that does not answer is refused with the driver's
// reason and no password; without it, the config is saved and creds fail
// with 502.
func TestUnreachableDatabase(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := coffertest.StartDev(t)
	c := newCLI(t, srv)
	c.ok("secrets", "enable", "database")
	const secret = "Sup3r-s3cret-admin-pw"
	url := fmt.Sprintf("postgresql://{{username}}:{{password}}@127.0.0.1:%d/db?sslmode=disable", port)
	literal := fmt.Sprintf("postgresql://admin:%s@127.0.0.1:%d/db?sslmode=disable", secret, port)
	for _, u := range []string{url, literal} {
		stderr := c.fail("write", "database/config/down", "plugin_name=postgresql-database-plugin", "allowed_roles=*",
			"connection_url="+u, "username=admin", "password="+secret)
		if !strings.Contains(stderr, "400") || !strings.Contains(stderr, "error verifying connection") || !strings.Contains(stderr, "connection refused") {
			t.Fatalf("config for an unreachable database: %s; want a 400 with the reason", stderr)
		}
		if strings.Contains(stderr, secret) {
			t.Fatalf("error shows the password: %s", stderr)
		}
	}
	if r := c.run("read", "database/config/down"); r.code == 0 {
		t.Fatalf("a refused config was saved: %s", r.stdout)
	}
	c.ok("write", "database/config/down", "plugin_name=postgresql-database-plugin", "allowed_roles=*",
		"connection_url="+literal, "username=admin", "password="+secret, "verify_connection=false")
	out := c.ok("read", "-format=json", "database/config/down")
	if strings.Contains(out, secret) || !strings.Contains(out, "admin:*****@") {
		t.Fatalf("config read with a literal URL password:\n%s", out)
	}
	c.ok("write", "database/roles/app", "db_name=down", "creation_statements="+seedCreation)
	stderr := c.fail("read", "database/creds/app")
	if !strings.Contains(stderr, "502") || !strings.Contains(stderr, "connection refused") || strings.Contains(stderr, secret) {
		t.Fatalf("creds on an unreachable database: %s; want a 502 with the reason and no password", stderr)
	}
	for _, o := range []string{srv.Stdout.String(), srv.Stderr.String()} {
		if strings.Contains(o, secret) {
			t.Fatalf("server output shows the password")
		}
	}
}

// TestConfigValidation: what a config, role or static role write refuses.
func TestConfigValidation(t *testing.T) {
	t.Parallel()
	c := newCLI(t, coffertest.StartDev(t))
	c.ok("secrets", "enable", "database")
	base := []string{"write", "database/config/x", "allowed_roles=*", "verify_connection=false",
		"connection_url=postgresql://{{username}}:{{password}}@127.0.0.1:1/db", "username=u", "password=p"}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"mysql plugin", []string{"plugin_name=mysql-database-plugin"}, `unsupported plugin_name "mysql-database-plugin"`},
		{"no plugin", nil, "plugin_name is required"},
		{"unknown field", []string{"plugin_name=postgresql-database-plugin", "colour=blue"}, `unknown field "colour"`},
		{"bad auth", []string{"plugin_name=postgresql-database-plugin", "password_authentication=md5"}, "password_authentication must be"},
		{"bad template", []string{"plugin_name=postgresql-database-plugin", "username_template={{ .Nope"}, "username_template"},
		{"range template", []string{"plugin_name=postgresql-database-plugin", "username_template={{range 100000000}}x{{end}}"}, "only actions, if and with"},
		{"password policy", []string{"plugin_name=postgresql-database-plugin", "password_policy=strong"}, "password_policy is not supported"},
		{"bad url", []string{"plugin_name=postgresql-database-plugin", "connection_url=postgresql://[::1"}, "connection_url: cannot be parsed"},
		{"unterminated", []string{"plugin_name=postgresql-database-plugin", "root_rotation_statements=ALTER ROLE 'x"}, "unterminated quoted string"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stderr := c.fail(append(append([]string{}, base...), tc.args...)...)
			if !strings.Contains(stderr, "400") || !strings.Contains(stderr, tc.want) {
				t.Fatalf("stderr = %s, want a 400 with %q", stderr, tc.want)
			}
		})
	}
	c.ok(append(append([]string{}, base...), "plugin_name=postgresql-database-plugin")...)
	roleCases := []struct {
		name string
		args []string
		want string
	}{
		{"no db", []string{"creation_statements=SELECT 1"}, "db_name is required"},
		{"no creation", []string{"db_name=x"}, "creation_statements are required"},
		{"ttl over max", []string{"db_name=x", "creation_statements=SELECT 1", "default_ttl=2h", "max_ttl=1h"}, "default_ttl cannot be greater than max_ttl"},
		{"unterminated", []string{"db_name=x", "creation_statements=CREATE ROLE \"{{name}}"}, "creation_statements: unterminated quoted identifier"},
		{"bad ttl", []string{"db_name=x", "creation_statements=SELECT 1", "default_ttl=soon"}, "default_ttl"},
	}
	for _, tc := range roleCases {
		t.Run("role "+tc.name, func(t *testing.T) {
			stderr := c.fail(append([]string{"write", "database/roles/r"}, tc.args...)...)
			if !strings.Contains(stderr, "400") || !strings.Contains(stderr, tc.want) {
				t.Fatalf("stderr = %s, want a 400 with %q", stderr, tc.want)
			}
		})
	}
	staticCases := []struct {
		name string
		args []string
		want string
	}{
		{"no period", []string{"db_name=x", "username=u"}, "one of rotation_period or rotation_schedule is required"},
		{"short period", []string{"db_name=x", "username=u", "rotation_period=1s"}, "rotation_period must be 5s or more"},
		{"both", []string{"db_name=x", "username=u", "rotation_period=1h", "rotation_schedule=0 * * * *"}, "mutually exclusive"},
		{"bad schedule", []string{"db_name=x", "username=u", "rotation_schedule=0 0 30 2 *"}, "never fires"},
		{"window alone", []string{"db_name=x", "username=u", "rotation_period=1h", "rotation_window=2h"}, "rotation_window goes only with rotation_schedule"},
		{"quote in name", []string{"db_name=x", "username=a\"b", "rotation_period=1h"}, "username: only letters"},
		{"no config", []string{"db_name=nope", "username=u", "rotation_period=1h"}, `"nope", which does not exist`},
	}
	for _, tc := range staticCases {
		t.Run("static "+tc.name, func(t *testing.T) {
			stderr := c.fail(append([]string{"write", "database/static-roles/s"}, tc.args...)...)
			if !strings.Contains(stderr, "400") || !strings.Contains(stderr, tc.want) {
				t.Fatalf("stderr = %s, want a 400 with %q", stderr, tc.want)
			}
		})
	}
	if stderr := c.fail("read", "database/creds/none"); !strings.Contains(stderr, "unknown role: none") {
		t.Fatalf("creds of a missing role: %s", stderr)
	}
	if r := c.run("read", "database/roles/none"); r.code != 2 {
		t.Fatalf("read of a missing role: exit %d, want 2 (not found)", r.code)
	}
}
