package database_test

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coffer-dev/coffer/internal/coffertest"
	"github.com/coffer-dev/coffer/internal/engine/database"
	"github.com/coffer-dev/coffer/internal/pgtest"
)

// TestSCRAMVerifierMatchesPostgres checks the engine's SCRAM-SHA-256
// verifier against the one PostgreSQL computes itself for the same
// password and salt.
func TestSCRAMVerifierMatchesPostgres(t *testing.T) {
	t.Parallel()
	pg := pgtest.Shared(t)
	user := fmt.Sprintf("scram_ref_%d", time.Now().UnixNano()%1e12)
	for _, password := range []string{"pencil", "A1a-x9ZzQ0-qwertyuio", "with space and 'quote'"} {
		pg.SuperExec(t, "", fmt.Sprintf(`SET password_encryption = 'scram-sha-256'; DROP ROLE IF EXISTS %[1]s; CREATE ROLE %[1]s PASSWORD %[2]s`,
			pgtest.Ident(user), "'"+strings.ReplaceAll(password, "'", "''")+"'"))
		stored := pg.StoredPassword(t, user)
		// SCRAM-SHA-256$<iterations>:<salt>$<stored key>:<server key>
		head, _, ok := strings.Cut(strings.TrimPrefix(stored, "SCRAM-SHA-256$"), "$")
		iterStr, saltB64, ok2 := strings.Cut(head, ":")
		if !ok || !ok2 {
			t.Fatalf("PostgreSQL stored %q", stored)
		}
		iter, _ := strconv.Atoi(iterStr)
		salt, err := base64.StdEncoding.DecodeString(saltB64)
		if err != nil {
			t.Fatal(err)
		}
		got, err := database.ScramVerifierWith(password, salt, iter)
		if err != nil || got != stored {
			t.Fatalf("ScramVerifierWith(%q) = %q, %v; PostgreSQL computed %q", password, got, err, stored)
		}
	}
	pg.SuperExec(t, "", "DROP ROLE IF EXISTS "+pgtest.Ident(user))
}

// TestSCRAMPasswordsNeverReachTheServer: with
// password_authentication=scram-sha-256 the users' passwords never
// appear in PostgreSQL's statement log (while with the default they do,
// which shows the log is on), yet they log in.
func TestSCRAMPasswordsNeverReachTheServer(t *testing.T) {
	t.Parallel()
	pg := pgtest.Shared(t)
	if !pg.Managed() {
		t.Skip("needs a PostgreSQL whose log the test can read")
	}
	db := pg.NewDatabase(t)
	pg.SuperExec(t, "", fmt.Sprintf(`ALTER ROLE %s SET log_statement = 'all'`, pgtest.Ident(db.Admin)))
	c := newCLI(t, coffertest.StartDev(t))
	c.ok("secrets", "enable", "database")
	for _, auth := range []string{"scram-sha-256", "password"} {
		c.ok("write", "database/config/"+auth, "plugin_name=postgresql-database-plugin", "allowed_roles=*",
			"connection_url="+db.TemplateURL(), "username="+db.Admin, "password="+db.AdminPassword,
			"password_authentication="+auth)
		c.ok("write", "database/roles/r-"+auth, "db_name="+auth, "creation_statements="+seedCreation)
	}
	s := &setup{pg: pg, db: db, cli: c}
	u1, p1, _ := s.creds(t, "r-scram-sha-256")
	u2, p2, _ := s.creds(t, "r-password")
	for _, up := range [][2]string{{u1, p1}, {u2, p2}} {
		if _, err := pg.Login(up[0], up[1], db.Name, "SELECT 1"); err != nil {
			t.Fatalf("login as %s: %v", up[0], err)
		}
	}
	if stored := pg.StoredPassword(t, u1); !strings.HasPrefix(stored, "SCRAM-SHA-256$4096:") {
		t.Fatalf("stored password of the SCRAM user = %q", stored)
	}

	// A static role and rotate-root in SCRAM mode.
	user := fmt.Sprintf("scram_static_%d", time.Now().UnixNano()%1e12)
	pg.SuperExec(t, "", fmt.Sprintf(`CREATE ROLE %s WITH LOGIN`, pgtest.Ident(user)))
	t.Cleanup(func() { pg.SuperExec(t, "", "DROP ROLE IF EXISTS "+pgtest.Ident(user)) })
	c.ok("write", "database/static-roles/st", "db_name=scram-sha-256", "username="+user, "rotation_period=1h")
	sp := jsonOut(t, c.ok("read", "-format=json", "database/static-creds/st"))["data"].(map[string]any)["password"].(string)
	if _, err := pg.Login(user, sp, db.Name, "SELECT 1"); err != nil {
		t.Fatalf("static role login in SCRAM mode: %v", err)
	}
	c.ok("write", "-f", "database/rotate-root/scram-sha-256")
	if _, err := pg.Login(db.Admin, db.AdminPassword, db.Name, "SELECT 1"); !pgtest.IsAuthFailure(err) {
		t.Fatalf("old admin password after rotate-root = %v", err)
	}
	s.creds(t, "r-scram-sha-256")

	// Wait until the server has logged the statements of the plain run.
	var log string
	if !waitFor(10*time.Second, func() bool { log = pg.Log(t); return strings.Contains(log, p2) }) {
		t.Fatalf("the plaintext password of password mode is not in the statement log: the check below would prove nothing")
	}
	if !strings.Contains(log, "SCRAM-SHA-256$4096:") {
		t.Fatalf("no SCRAM verifier in the statement log")
	}
	if strings.Contains(log, p1) || strings.Contains(log, sp) {
		t.Fatalf("a SCRAM-mode password reached PostgreSQL's log")
	}
}
