package database_test

import (
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coffer-dev/coffer/internal/pgtest"
)

// BenchmarkMassExpiry measures how fast Coffer works off a mass expiry:
// N dynamic PostgreSQL users (default 10,000; COFFER_BENCH_LEASES) are
// issued with one short TTL, the server is stopped until every lease has
// expired, and started again; the benchmark then watches pg_roles and
// reports how long after the restart half, 99% and all of the users were
// dropped (the p50, p99 and maximum lateness of the revocations the
// server controls). It runs once with one revocation worker (the old
// sequential expiry) and once with the default 16 (COFFER_BENCH_WORKERS
// runs one count only), against the same durable PostgreSQL (fsync on).
//
//	go test -run '^$' -bench BenchmarkMassExpiry -benchtime 1x -timeout 60m ./internal/engine/database/
func BenchmarkMassExpiry(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("COFFER_BENCH_LEASES")); err == nil && v > 0 {
		n = v
	}
	pg := pgtest.Start(b, pgtest.Options{Durable: true})
	counts := []int{1, 16}
	if v, err := strconv.Atoi(os.Getenv("COFFER_BENCH_WORKERS")); err == nil && v > 0 {
		counts = []int{v}
	}
	for b.Loop() {
		for _, workers := range counts {
			r := massExpiry(b, pg, n, workers)
			b.Logf("%d leases, %2d workers: issued in %v; after restart: first revoked in %v, 50%% in %v, 99%% in %v, all in %v (%.0f revocations/s after the first)",
				n, workers, r.issue.Round(time.Millisecond), r.first.Round(time.Millisecond), r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond),
				r.all.Round(time.Millisecond), float64(n)/(r.all-r.first).Seconds())
			w := strconv.Itoa(workers) + "w-"
			b.ReportMetric(r.p50.Seconds(), w+"p50-s")
			b.ReportMetric(r.p99.Seconds(), w+"p99-s")
			b.ReportMetric(r.all.Seconds(), w+"all-s")
		}
	}
}

type massExpiryResult struct{ issue, first, p50, p99, all time.Duration }

func massExpiry(b *testing.B, pg *pgtest.Server, n, workers int) massExpiryResult {
	b.Helper()
	db := pg.NewDatabase(b)
	rs, c := startRestartable(b, map[string]string{"COFFER_LEASE_REVOCATION_WORKERS": strconv.Itoa(workers)})
	srv := rs.srv
	prefix := "mx" + db.Name[len("db_"):]
	mustWrite(b, c, "database/config/pg", map[string]any{
		"plugin_name": "postgresql-database-plugin", "allowed_roles": "*", "connection_url": db.TemplateURL(),
		"username": db.Admin, "password": db.AdminPassword, "max_open_connections": 16,
		"username_template": prefix + "-{{random 16}}",
	})
	mustWrite(b, c, "database/roles/app", map[string]any{"db_name": "pg", "creation_statements": seedCreation,
		"revocation_statements": seedRevocation, "default_ttl": 86400})

	// Every lease must outlive the issuing of all of them (they then all
	// expire while the server is down): the TTL is twice the issuing time,
	// estimated on 2% of the users, plus 10 s.
	const clients = 16
	issue := func(count int) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for w := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				wc := vaultClient(b, srv.Addr, rs.token)
				for i := w; i < count; i += clients {
					if s, err := wc.Logical().Read("database/creds/app"); err != nil || s == nil || s.LeaseID == "" {
						b.Errorf("creds: %v", err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if b.Failed() {
			b.FailNow()
		}
		return time.Since(start)
	}
	calib := max(n/50, 50)
	est := issue(calib) * time.Duration(n) / time.Duration(calib)
	if err := c.Sys().RevokePrefix("database/creds/app"); err != nil {
		b.Fatal(err)
	}
	ttl := (2*est + 10*time.Second).Truncate(time.Second)
	mustWrite(b, c, "database/roles/app", map[string]any{"db_name": "pg", "creation_statements": seedCreation,
		"revocation_statements": seedRevocation, "default_ttl": int(ttl / time.Second)})
	first := time.Now()
	took := issue(n)
	if time.Since(first) > ttl-time.Second {
		b.Fatalf("issuing took %v, longer than the TTL %v", took, ttl)
	}
	if got := len(pg.RolesLike(b, prefix+"-%")); got != n {
		b.Fatalf("%d users in PostgreSQL, want %d", got, n)
	}
	srv.Stop()
	time.Sleep(time.Until(time.Now().Add(ttl - time.Since(first) + time.Second)))

	restart := time.Now()
	rs.restart(b)
	srv = rs.srv
	var r massExpiryResult
	r.issue = took
	for {
		left := len(pg.RolesLike(b, prefix+"-%"))
		since := time.Since(restart)
		if r.first == 0 && left < n {
			r.first = since
		}
		if r.p50 == 0 && left <= n/2 {
			r.p50 = since
		}
		if r.p99 == 0 && left <= n/100 {
			r.p99 = since
		}
		if left == 0 {
			r.all = since
			break
		}
		if since > 20*time.Minute {
			b.Fatalf("%d of %d users left 20 minutes after the restart", left, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.Stop()
	return r
}
