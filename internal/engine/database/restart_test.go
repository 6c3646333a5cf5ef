package database_test

import (
	"sync"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/coffer-dev/coffer/internal/pgtest"
)

func vaultClient(t testing.TB, addr, token string) *vault.Client {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address = addr
	cfg.MaxRetries = 0
	c, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

// TestLeasesAcrossRestart issues 1,000 users with short leases, stops
// the server while they live, lets half of them expire while it is down,
// and starts it again: the expired ones are revoked at once, the others
// when they expire, and no user is left in PostgreSQL.
func TestLeasesAcrossRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("issues 1,000 users and waits for their leases (about a minute)")
	}
	t.Parallel()
	const perRole, workers = 500, 16
	pg := pgtest.Shared(t)
	db := pg.NewDatabase(t)
	rs, c := startRestartable(t, nil)
	srv := rs.srv
	prefix := "r1k" + db.Name[len("db_"):]
	mustWrite(t, c, "database/config/pg", map[string]any{
		"plugin_name": "postgresql-database-plugin", "allowed_roles": "*", "connection_url": db.TemplateURL(),
		"username": db.Admin, "password": db.AdminPassword, "max_open_connections": 8,
		"username_template": prefix + "-{{.RoleName}}-{{random 12}}",
	})
	// Calibrate: the short leases must all be issued before the first
	// of them expires, however slow the machine is today.
	mustWrite(t, c, "database/roles/calib", map[string]any{"db_name": "pg", "creation_statements": seedCreation,
		"revocation_statements": seedRevocation, "default_ttl": 3600})
	calStart := time.Now()
	var cwg sync.WaitGroup
	for w := 0; w < workers; w++ {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			wc := vaultClient(t, srv.Addr, rs.token)
			for i := 0; i < 4; i++ {
				if _, err := wc.Logical().Read("database/creds/calib"); err != nil {
					t.Errorf("creds/calib: %v", err)
					return
				}
			}
		}()
	}
	cwg.Wait()
	if err := c.Sys().RevokePrefix("database/creds/calib"); err != nil {
		t.Fatal(err)
	}
	estimate := time.Since(calStart) * time.Duration(2*perRole) / time.Duration(4*workers)
	short := (2*estimate + 8*time.Second).Truncate(time.Second)
	ttls := map[string]time.Duration{"short": short, "long": short + 14*time.Second}
	t.Logf("estimated issuing time %v; TTLs %v and %v", estimate.Round(time.Millisecond), ttls["short"], ttls["long"])
	for role, ttl := range ttls {
		mustWrite(t, c, "database/roles/"+role, map[string]any{"db_name": "pg", "creation_statements": seedCreation,
			"revocation_statements": seedRevocation, "default_ttl": int(ttl / time.Second)})
	}

	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	lastIssued := map[string]time.Time{}
	firstIssued := map[string]time.Time{}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			wc := vaultClient(t, srv.Addr, rs.token)
			for i := w; i < 2*perRole; i += workers {
				role := "short"
				if i%2 == 1 {
					role = "long"
				}
				s, err := wc.Logical().Read("database/creds/" + role)
				if err != nil || s == nil || s.LeaseID == "" {
					t.Errorf("creds/%s: %v %v", role, s, err)
					return
				}
				mu.Lock()
				lastIssued[role] = time.Now()
				if firstIssued[role].IsZero() {
					firstIssued[role] = lastIssued[role]
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("issued %d users in %v", 2*perRole, time.Since(start).Round(time.Millisecond))
	if time.Now().After(firstIssued["short"].Add(ttls["short"] - 2*time.Second)) {
		t.Fatalf("issuing took %v, much longer than calibrated: the first leases are about to expire", time.Since(start))
	}
	if n := len(pg.RolesLike(t, prefix+"-%")); n != 2*perRole {
		t.Fatalf("%d users in PostgreSQL, want %d", n, 2*perRole)
	}
	shortEnd := lastIssued["short"].Add(ttls["short"])
	longEnd := lastIssued["long"].Add(ttls["long"])

	srv.Stop()
	time.Sleep(time.Until(shortEnd.Add(500 * time.Millisecond)))
	if n := len(pg.RolesLike(t, prefix+"-short-%")); n != perRole {
		t.Fatalf("%d short users left while the server was down, want %d (nothing revokes them then)", n, perRole)
	}
	restart := time.Now()
	rs.restart(t)
	srv = rs.srv
	if !waitFor(30*time.Second, func() bool { return len(pg.RolesLike(t, prefix+"-short-%")) == 0 }) {
		t.Fatalf("users whose leases expired during the downtime survived the restart")
	}
	t.Logf("the %d leases that expired during the downtime were revoked %v after the restart", perRole, time.Since(restart).Round(time.Millisecond))
	if time.Now().Before(longEnd.Add(-time.Second)) && len(pg.RolesLike(t, prefix+"-long-%")) == 0 {
		t.Fatalf("users revoked before their leases expired")
	}
	if !waitFor(time.Until(longEnd)+30*time.Second, func() bool { return len(pg.RolesLike(t, prefix+"-long-%")) == 0 }) {
		t.Fatalf("%d users left after their leases expired", len(pg.RolesLike(t, prefix+"-long-%")))
	}
	lag := time.Since(longEnd)
	t.Logf("the last lease expired at %v; its user was gone %v later", longEnd.Format(time.StampMilli), lag.Round(time.Millisecond))
	if lag > 2*time.Second {
		t.Errorf("users dropped %v after the last lease expired, want within 2s", lag)
	}
	c = vaultClient(t, srv.Addr, rs.token)
	count, err := c.Logical().Read("sys/leases/count")
	if err != nil || count.Data["lease_count"] == nil {
		t.Fatalf("sys/leases/count: %v %v", count, err)
	}
	if n := count.Data["lease_count"]; n.(interface{ String() string }).String() != "0" {
		t.Fatalf("lease_count after every expiry = %v, want 0", n)
	}
	if left := pg.RolesLike(t, prefix+"-%"); len(left) != 0 {
		t.Fatalf("orphan users: %d", len(left))
	}
}

func mustWrite(t testing.TB, c *vault.Client, path string, data map[string]any) {
	t.Helper()
	if _, err := c.Logical().Write(path, data); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}
