package database_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/pgtest"
)

// adminSessions counts the sessions the database's admin holds.
func adminSessions(t testing.TB, pg *pgtest.Server, db *pgtest.Database) int {
	t.Helper()
	n, err := strconv.Atoi(pg.SuperQuery(t, "", `SELECT count(*)::text FROM pg_stat_activity WHERE usename = $1`, db.Admin))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPoolLimitsAndCleanup: max_open_connections bounds the sessions the
// engine opens under load; Cleanup, reset and a config change close them.
func TestPoolLimitsAndCleanup(t *testing.T) {
	t.Parallel()
	pg := pgtest.Shared(t)
	db := pg.NewDatabase(t)
	e := newEngine(t)
	e.must(logical.UpdateOperation, "config/pg", configData(db, map[string]any{"max_open_connections": "2"}))
	e.must(logical.UpdateOperation, "roles/slow", map[string]any{"db_name": "pg",
		"creation_statements": `CREATE ROLE "{{name}}" LOGIN PASSWORD '{{password}}'; SELECT pg_sleep(0.2);`})

	var mu sync.Mutex
	var secrets []*logical.Secret
	done := make(chan struct{})
	peak := 0
	go func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			n := adminSessions(t, pg, db)
			mu.Lock()
			peak = max(peak, n)
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.do(logical.ReadOperation, "creds/slow", nil)
			if err != nil {
				t.Errorf("creds: %v", err)
				return
			}
			mu.Lock()
			secrets = append(secrets, resp.Secret)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(done)
	mu.Lock()
	if peak < 1 || peak > 2 {
		t.Errorf("peak admin sessions = %d, want 1 or 2 (max_open_connections=2)", peak)
	}
	mu.Unlock()
	for _, s := range secrets {
		if err := e.b.RevokeSecret(context.Background(), &logical.Lease{InternalData: s.InternalData}); err != nil {
			t.Errorf("RevokeSecret: %v", err)
		}
	}
	if n := adminSessions(t, pg, db); n == 0 || n > 2 {
		t.Fatalf("idle admin sessions = %d, want 1 or 2", n)
	}
	e.b.Cleanup(context.Background())
	if !waitFor(5*time.Second, func() bool { return adminSessions(t, pg, db) == 0 }) {
		t.Fatalf("sessions left open after Cleanup: %d", adminSessions(t, pg, db))
	}

	// The engine reconnects after Cleanup; reset and config writes close.
	e.must(logical.UpdateOperation, "roles/fast", map[string]any{"db_name": "pg", "creation_statements": seedCreation})
	resp := e.must(logical.ReadOperation, "creds/fast", nil)
	if adminSessions(t, pg, db) == 0 {
		t.Fatalf("no session after creds")
	}
	e.must(logical.UpdateOperation, "reset/pg", nil)
	if !waitFor(5*time.Second, func() bool { return adminSessions(t, pg, db) == 0 }) {
		t.Fatalf("sessions left open after reset")
	}
	if err := e.b.RevokeSecret(context.Background(), &logical.Lease{InternalData: resp.Secret.InternalData}); err != nil {
		t.Fatalf("RevokeSecret after reset: %v", err)
	}
	e.must(logical.UpdateOperation, "config/pg", map[string]any{"max_open_connections": "1"})
	if !waitFor(5*time.Second, func() bool { return adminSessions(t, pg, db) == 0 }) {
		t.Fatalf("sessions left open after a config change")
	}
}

// TestRenewSetsValidUntil: renewing sets VALID UNTIL to the lease's new
// expiry, to the second, whatever the time zone of the expiry given.
func TestRenewSetsValidUntil(t *testing.T) {
	t.Parallel()
	pg := pgtest.Shared(t)
	db := pg.NewDatabase(t)
	e := newEngine(t)
	e.must(logical.UpdateOperation, "config/pg", configData(db, nil))
	e.must(logical.UpdateOperation, "roles/r", map[string]any{"db_name": "pg", "creation_statements": seedCreation,
		"default_ttl": "90s"})
	before := time.Now().Truncate(time.Second)
	resp := e.must(logical.ReadOperation, "creds/r", nil)
	u := resp.Data["username"].(string)
	r := pg.LookupRole(t, u)
	if r == nil || r.ValidUntil == nil || r.ValidUntil.Before(before.Add(90*time.Second)) || r.ValidUntil.After(time.Now().Add(91*time.Second)) {
		t.Fatalf("VALID UNTIL after creds with default_ttl=90s = %+v", r)
	}
	if resp.Secret.TTL != 90*time.Second || !resp.Secret.Renewable || resp.Secret.InternalData["db_name"] != "pg" {
		t.Fatalf("secret = %+v", resp.Secret)
	}
	tokyo := time.FixedZone("JST", 9*3600)
	exp := time.Date(2031, 3, 4, 5, 6, 7, 0, tokyo)
	lease := &logical.Lease{InternalData: resp.Secret.InternalData}
	if err := e.b.RenewSecret(context.Background(), lease, exp); err != nil {
		t.Fatalf("RenewSecret: %v", err)
	}
	if r := pg.LookupRole(t, u); r == nil || r.ValidUntil == nil || !r.ValidUntil.Equal(exp) {
		t.Fatalf("VALID UNTIL after renew = %+v, want %v", r, exp)
	}
	// Custom renew statements get {{expiration}}.
	e.must(logical.UpdateOperation, "roles/r", map[string]any{
		"renew_statements": `ALTER ROLE "{{name}}" VALID UNTIL '{{expiration}}' CONNECTION LIMIT 3`})
	exp2 := exp.Add(time.Hour)
	if err := e.b.RenewSecret(context.Background(), lease, exp2); err != nil {
		t.Fatalf("RenewSecret with renew_statements: %v", err)
	}
	if got := pg.SuperQuery(t, "", `SELECT rolconnlimit::text FROM pg_roles WHERE rolname = $1`, u); got != "3" {
		t.Fatalf("renew_statements not run: connection limit %s", got)
	}
	if err := e.b.RevokeSecret(context.Background(), lease); err != nil {
		t.Fatalf("RevokeSecret: %v", err)
	}
	if err := e.b.RevokeSecret(context.Background(), lease); err != nil {
		t.Fatalf("second RevokeSecret = %v, want nil (idempotent)", err)
	}
	if err := e.b.RenewSecret(context.Background(), lease, exp2); status(err) != 400 {
		t.Fatalf("RenewSecret of a revoked user = %v, want a 400", err)
	}
	// A lease whose config is gone cannot be revoked, and says why.
	resp = e.must(logical.ReadOperation, "creds/r", nil)
	e.must(logical.DeleteOperation, "config/pg", nil)
	err := e.b.RevokeSecret(context.Background(), &logical.Lease{InternalData: resp.Secret.InternalData})
	if err == nil {
		t.Fatalf("RevokeSecret with the config deleted succeeded")
	}
	pg.SuperExec(t, "", "DROP ROLE "+pgtest.Ident(resp.Data["username"].(string)))
}

// TestConcurrentGrants: users of one role granted the same table, issued
// and revoked 16 at a time, all succeed: PostgreSQL's "tuple concurrently
// updated" conflicts between their GRANTs and REVOKEs are retried.
func TestConcurrentGrants(t *testing.T) {
	t.Parallel()
	pg := pgtest.Shared(t)
	db := pg.NewDatabase(t)
	pg.SuperExec(t, db.Name, `CREATE TABLE public.shared (id int); ALTER TABLE public.shared OWNER TO `+pgtest.Ident(db.Admin))
	e := newEngine(t)
	e.must(logical.UpdateOperation, "config/pg", configData(db, map[string]any{"max_open_connections": "16"}))
	e.must(logical.UpdateOperation, "roles/r", map[string]any{"db_name": "pg", "creation_statements": `CREATE ROLE "{{name}}" LOGIN PASSWORD '{{password}}';
		GRANT SELECT, INSERT ON public.shared TO "{{name}}"; GRANT USAGE ON SCHEMA public TO "{{name}}"`})
	const n = 48
	secrets := make([]*logical.Secret, n)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				resp, err := e.do(logical.ReadOperation, "creds/r", nil)
				if err != nil {
					t.Errorf("creds: %v", err)
					return
				}
				secrets[i] = resp.Secret
			}
		}(w)
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				if err := e.b.RevokeSecret(context.Background(), &logical.Lease{InternalData: secrets[i].InternalData}); err != nil {
					t.Errorf("RevokeSecret: %v", err)
				}
			}
		}(w)
	}
	wg.Wait()
	for _, s := range secrets {
		if u := s.InternalData["username"].(string); pg.LookupRole(t, u) != nil {
			t.Fatalf("role %q left", u)
		}
	}
}
