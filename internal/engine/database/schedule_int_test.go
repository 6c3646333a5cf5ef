package database_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/pgtest"
)

// TestRotateDue drives the scheduler with chosen times: a role rotates
// when its period is up and not before; a scheduled role rotates within
// its window and skips a window it missed.
func TestRotateDue(t *testing.T) {
	t.Parallel()
	pg := pgtest.Shared(t)
	db := pg.NewDatabase(t)
	e := newEngine(t)
	e.must(logical.UpdateOperation, "config/pg", configData(db, nil))
	users := make([]string, 2)
	for i := range users {
		users[i] = fmt.Sprintf("due_%d_%d", i, time.Now().UnixNano()%1e12)
		pg.SuperExec(t, "", fmt.Sprintf(`CREATE ROLE %s WITH LOGIN`, pgtest.Ident(users[i])))
		u := users[i]
		t.Cleanup(func() { pg.SuperExec(t, "", "DROP ROLE IF EXISTS "+pgtest.Ident(u)) })
	}
	password := func(role string) string {
		t.Helper()
		return e.must(logical.ReadOperation, "static-creds/"+role, nil).Data["password"].(string)
	}
	ctx := context.Background()

	e.must(logical.UpdateOperation, "static-roles/periodic", map[string]any{"db_name": "pg", "username": users[0], "rotation_period": "1h"})
	p0 := password("periodic")
	now := time.Now()
	if n, err := e.b.RotateDue(ctx, now.Add(30*time.Minute)); err != nil || n != 0 {
		t.Fatalf("RotateDue(+30m) = %d, %v; want 0", n, err)
	}
	if n, err := e.b.RotateDue(ctx, now.Add(61*time.Minute)); err != nil || n != 1 {
		t.Fatalf("RotateDue(+61m) = %d, %v; want 1", n, err)
	}
	p1 := password("periodic")
	if p1 == p0 {
		t.Fatalf("password not rotated")
	}
	if _, err := pg.Login(users[0], p1, db.Name, "SELECT 1"); err != nil {
		t.Fatalf("login with the rotated password: %v", err)
	}
	if n, _ := e.b.RotateDue(ctx, now.Add(61*time.Minute)); n != 0 {
		t.Fatalf("a second RotateDue at the same time rotated %d", n)
	}

	// Every day at 03:00 UTC, within a 1h window.
	e.must(logical.UpdateOperation, "static-roles/nightly", map[string]any{"db_name": "pg", "username": users[1],
		"rotation_schedule": "0 3 * * *", "rotation_window": "1h"})
	s := e.must(logical.ReadOperation, "static-creds/nightly", nil).Data
	if s["rotation_schedule"] != "0 3 * * *" || s["rotation_window"] != int64(3600) {
		t.Fatalf("static-creds of a scheduled role = %v", s)
	}
	n0 := password("nightly")
	next := time.Date(now.Year(), now.Month(), now.Day(), 3, 0, 0, 0, time.UTC)
	if !next.After(now) {
		next = next.AddDate(0, 0, 1)
	}
	// (The periodic role may rotate too at these times: look at the
	// nightly role's password only.)
	if _, err := e.b.RotateDue(ctx, next.Add(-time.Minute)); err != nil || password("nightly") != n0 {
		t.Fatalf("scheduled role rotated before its time (%v)", err)
	}
	if _, err := e.b.RotateDue(ctx, next.Add(10*time.Minute)); err != nil {
		t.Fatalf("RotateDue inside the window = %v", err)
	}
	n1 := password("nightly")
	if n1 == n0 {
		t.Fatalf("scheduled rotation kept the password")
	}
	// The next night's window is missed entirely: no late rotation (the
	// periodic role may rotate meanwhile).
	if _, err := e.b.RotateDue(ctx, next.AddDate(0, 0, 1).Add(2*time.Hour)); err != nil {
		t.Fatalf("RotateDue after a missed window = %v", err)
	}
	if password("nightly") != n1 {
		t.Fatalf("a missed window rotated anyway")
	}
	if _, err := e.b.RotateDue(ctx, next.AddDate(0, 0, 2).Add(5*time.Minute)); err != nil {
		t.Fatalf("RotateDue in the following window = %v", err)
	}
	if password("nightly") == n1 {
		t.Fatalf("no rotation in the following window")
	}

	// A failing rotation is reported and retried.
	pg.SuperExec(t, "", fmt.Sprintf(`ALTER ROLE %s RENAME TO %s`, pgtest.Ident(users[0]), pgtest.Ident(users[0]+"_x")))
	t.Cleanup(func() { pg.SuperExec(t, "", "DROP ROLE IF EXISTS "+pgtest.Ident(users[0]+"_x")) })
	later := next.AddDate(0, 0, 3)
	if _, err := e.b.RotateDue(ctx, later); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("RotateDue with the user gone = %v; want PostgreSQL's error", err)
	}
	pg.SuperExec(t, "", fmt.Sprintf(`ALTER ROLE %s RENAME TO %s`, pgtest.Ident(users[0]+"_x"), pgtest.Ident(users[0])))
	if n, err := e.b.RotateDue(ctx, later.Add(time.Second)); err != nil || n < 1 {
		t.Fatalf("RotateDue once the user is back = %d, %v", n, err)
	}
}

// TestCreationStatementForms: statements as a list, several per element,
// and a DO block whose body holds semicolons.
func TestCreationStatementForms(t *testing.T) {
	t.Parallel()
	pg := pgtest.Shared(t)
	db := pg.NewDatabase(t)
	e := newEngine(t)
	e.must(logical.UpdateOperation, "config/pg", configData(db, nil))
	e.must(logical.UpdateOperation, "roles/forms", map[string]any{"db_name": "pg", "default_ttl": "1h",
		"creation_statements": []any{
			`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`,
			"DO $$\nBEGIN\n  EXECUTE 'ALTER ROLE \"{{name}}\" CONNECTION LIMIT 7';\n  EXECUTE 'COMMENT ON ROLE \"{{name}}\" IS ''made; by coffer''';\nEND\n$$;",
			"SELECT 1; SELECT 2",
		}})
	resp := e.must(logical.ReadOperation, "creds/forms", nil)
	u := resp.Data["username"].(string)
	if got := pg.SuperQuery(t, "", `SELECT rolconnlimit::text || '/' || shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1`, u); got != "7/made; by coffer" {
		t.Fatalf("DO block effect = %q", got)
	}
	if err := e.b.RevokeSecret(context.Background(), &logical.Lease{InternalData: resp.Secret.InternalData}); err != nil {
		t.Fatalf("RevokeSecret: %v", err)
	}
}
