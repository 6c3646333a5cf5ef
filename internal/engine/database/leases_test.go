package database_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coffer-dev/coffer/internal/pgtest"
)

// TestTokenRevokeRevokesLeases: revoking the token that read the
// credentials drops the user.
func TestTokenRevokeRevokesLeases(t *testing.T) {
	t.Parallel()
	s := newSetup(t, pgtest.Shared(t))
	s.cli.ok("write", "database/roles/app", "db_name=pg", "creation_statements="+seedCreation, "default_ttl=1h")
	tok := strings.TrimSpace(s.cli.ok("token", "create", "-policy=root", "-field=token"))
	child := &setup{pg: s.pg, db: s.db, srv: s.srv, cli: s.cli.withToken(tok)}
	var users []string
	for i := 0; i < 3; i++ {
		u, p, _ := child.creds(t, "app")
		if _, err := s.pg.Login(u, p, s.db.Name, "SELECT 1"); err != nil {
			t.Fatalf("login as %q: %v", u, err)
		}
		users = append(users, u)
	}
	s.cli.ok("token", "revoke", tok)
	for _, u := range users {
		if r := s.pg.LookupRole(t, u); r != nil {
			t.Errorf("role %q survived the revocation of its token", u)
		}
	}
}

// TestExpiryDropsUser: a lease that expires drops its user within a
// second of its expiry (the target).
func TestExpiryDropsUser(t *testing.T) {
	t.Parallel()
	s := newSetup(t, pgtest.Shared(t))
	s.cli.ok("write", "database/roles/short", "db_name=pg", "creation_statements="+seedCreation,
		"revocation_statements="+seedRevocation, "default_ttl=2s", "max_ttl=10s")
	u, p, lease := s.creds(t, "short")
	look := jsonOut(t, s.cli.ok("lease", "lookup", "-format=json", lease))
	expStr, _ := look["data"].(map[string]any)["expire_time"].(string)
	exp, err := time.Parse(time.RFC3339Nano, expStr)
	if err != nil {
		t.Fatalf("expire_time %q: %v", expStr, err)
	}
	if _, err := s.pg.Login(u, p, s.db.Name, "SELECT 1"); err != nil {
		t.Fatalf("login before expiry: %v", err)
	}
	if !waitFor(15*time.Second, func() bool { return s.pg.LookupRole(t, u) == nil }) {
		t.Fatalf("role %q still exists 15s after its lease expired", u)
	}
	if late := time.Since(exp); late > time.Second {
		t.Errorf("role dropped %v after the lease's expiry, want within 1s", late)
	}
	if _, err := s.pg.Login(u, p, s.db.Name, "SELECT 1"); !pgtest.IsAuthFailure(err) {
		t.Fatalf("login after expiry = %v, want refused", err)
	}
	if r := s.cli.run("lease", "lookup", lease); r.code == 0 {
		t.Fatalf("lease still there after expiry: %s", r.stdout)
	}
}

// TestRevocationWhileDatabaseDown stops PostgreSQL under a lease: the
// revocation fails and is retried until PostgreSQL is back; a lease whose
// retries run out is marked irrevocable and listed, and revoking it by
// hand once the database is back removes the user.
func TestRevocationWhileDatabaseDown(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the lease manager's backoff (about 35 s)")
	}
	t.Parallel()
	pg := pgtest.Start(t, pgtest.Options{})
	s := newSetup(t, pg)
	s.cli.ok("write", "database/roles/app", "db_name=pg", "creation_statements="+seedCreation, "default_ttl=1h")

	// 1. Stopped, then started again: the retry revokes.
	u1, _, lease1 := s.creds(t, "app")
	pg.Stop(t)
	stderr := s.cli.fail("lease", "revoke", lease1)
	if strings.Contains(stderr, s.db.AdminPassword) {
		t.Fatalf("revoke error shows the admin password: %s", stderr)
	}
	look := jsonOut(t, s.cli.ok("lease", "lookup", "-format=json", lease1))["data"].(map[string]any)
	if look["revocation_attempts"] != float64(1) {
		t.Fatalf("lease after a failed revocation = %v, want revocation_attempts 1", look)
	}
	if msg, _ := look["error"].(string); msg == "" || strings.Contains(msg, s.db.AdminPassword) {
		t.Fatalf("lease error = %q, want the reason without the password", msg)
	}
	pg.Resume(t)
	if !waitFor(20*time.Second, func() bool { return s.cli.run("lease", "lookup", lease1).code != 0 }) {
		t.Fatalf("lease not revoked by its retry once PostgreSQL was back")
	}
	if r := pg.LookupRole(t, u1); r != nil {
		t.Fatalf("role %q survived the retried revocation", u1)
	}

	// 2. Stopped for good: retries run out, the lease is irrevocable.
	u2, _, lease2 := s.creds(t, "app")
	pg.Stop(t)
	s.cli.fail("lease", "revoke", lease2)
	var listed map[string]any
	ok := waitFor(60*time.Second, func() bool {
		m := jsonOut(t, s.cli.ok("read", "-format=json", "sys/leases"))
		leases, _ := m["data"].(map[string]any)["leases"].([]any)
		for _, l := range leases {
			if e := l.(map[string]any); e["lease_id"] == lease2 && e["irrevocable"] == true {
				listed = e
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("lease %s not listed as irrevocable by sys/leases", lease2)
	}
	raw, _ := json.Marshal(listed)
	if strings.Contains(string(raw), s.db.AdminPassword) || listed["error"] == "" {
		t.Fatalf("irrevocable lease entry = %s", raw)
	}
	pg.Resume(t)
	if r := pg.LookupRole(t, u2); r == nil {
		t.Fatalf("role %q vanished although its revocation never succeeded", u2)
	}
	s.cli.ok("lease", "revoke", lease2)
	if r := pg.LookupRole(t, u2); r != nil {
		t.Fatalf("role %q survived a manual revoke once PostgreSQL was back", u2)
	}
	m := jsonOut(t, s.cli.ok("read", "-format=json", "sys/leases"))
	if n := m["data"].(map[string]any)["lease_count"]; n != float64(0) {
		t.Fatalf("irrevocable leases left: %v", n)
	}
	for _, out := range []string{s.srv.Stdout.String(), s.srv.Stderr.String()} {
		if strings.Contains(out, s.db.AdminPassword) {
			t.Fatalf("server output shows the admin password")
		}
	}
}

// TestDefaultRevocation: a role without revocation_statements gets the
// default revocation, which removes a user that holds privileges; the
// seed's plain DROP ROLE cannot, and the failure is reported, not hidden.
func TestDefaultRevocation(t *testing.T) {
	t.Parallel()
	pg := pgtest.Shared(t)
	s := newSetup(t, pg)
	pg.SuperExec(t, s.db.Name, fmt.Sprintf(`CREATE SCHEMA app AUTHORIZATION %s`, pgtest.Ident(s.db.Admin)))
	pg.SuperExec(t, s.db.Name, fmt.Sprintf(`CREATE TABLE public.items (id int); INSERT INTO public.items VALUES (42);
		CREATE TABLE app.things (id int); CREATE SEQUENCE app.seq;
		ALTER TABLE public.items OWNER TO %[1]s; ALTER TABLE app.things OWNER TO %[1]s; ALTER SEQUENCE app.seq OWNER TO %[1]s`,
		pgtest.Ident(s.db.Admin)))
	creation := `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';
		GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";
		GRANT USAGE ON SCHEMA app TO "{{name}}"; GRANT SELECT, INSERT ON app.things TO "{{name}}";
		GRANT USAGE ON SEQUENCE app.seq TO "{{name}}";`
	s.cli.ok("write", "database/roles/reader", "db_name=pg", "creation_statements="+creation, "default_ttl=1h")
	u, p, lease := s.creds(t, "reader")
	if got, err := pg.Login(u, p, s.db.Name, "SELECT id::text FROM public.items"); err != nil || got != "42" {
		t.Fatalf("SELECT as the new user = %q, %v", got, err)
	}
	s.cli.ok("lease", "revoke", lease)
	if r := pg.LookupRole(t, u); r != nil {
		t.Fatalf("default revocation left role %q", u)
	}

	s.cli.ok("write", "database/roles/seed", "db_name=pg", "creation_statements="+seedCreation,
		"revocation_statements="+seedRevocation, "default_ttl=1h")
	u2, _, lease2 := s.creds(t, "seed")
	stderr := s.cli.fail("lease", "revoke", lease2)
	if !strings.Contains(stderr, "cannot be dropped") {
		t.Fatalf("revoke with a DROP ROLE that cannot work: %s, want PostgreSQL's reason", stderr)
	}
	if pg.LookupRole(t, u2) == nil {
		t.Fatalf("role %q gone although its revocation failed", u2)
	}
	if s.cli.run("lease", "lookup", lease2).code != 0 {
		t.Fatalf("lease dropped although its revocation failed")
	}
	// Fixing the role's statements lets the retry (here: a manual revoke) work.
	s.cli.ok("write", "database/roles/seed", "revocation_statements="+
		`REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{{name}}"; DROP ROLE "{{name}}";`)
	s.cli.ok("lease", "revoke", lease2)
	if r := pg.LookupRole(t, u2); r != nil {
		t.Fatalf("role %q survived the fixed revocation", u2)
	}
}

// TestRevokeIsIdempotent: a user removed behind the engine's back is
// revoked without error.
func TestRevokeIsIdempotent(t *testing.T) {
	t.Parallel()
	pg := pgtest.Shared(t)
	s := newSetup(t, pg)
	s.cli.ok("write", "database/roles/app", "db_name=pg", "creation_statements="+seedCreation,
		"revocation_statements="+`REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{{name}}"; DROP ROLE "{{name}}";`, "default_ttl=1h")
	u, _, lease := s.creds(t, "app")
	pg.SuperExec(t, "", "DROP ROLE "+pgtest.Ident(u))
	s.cli.ok("lease", "revoke", lease)
	if s.cli.run("lease", "lookup", lease).code == 0 {
		t.Fatalf("lease still there")
	}
}
