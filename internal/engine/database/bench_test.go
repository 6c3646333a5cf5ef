package database_test

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/coffer-dev/coffer/internal/coffertest"
	"github.com/coffer-dev/coffer/internal/pgtest"
)

// benchWorkers is the number of concurrent clients.
const benchWorkers = 16

// benchEnv is a dev server with the engine mounted on a durable
// PostgreSQL (fsync on, as in production).
type benchEnv struct {
	pg   *pgtest.Server
	db   *pgtest.Database
	addr string
	root *vault.Client
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	pg := pgtest.Start(b, pgtest.Options{Durable: true})
	db := pg.NewDatabase(b)
	srv := coffertest.StartDev(b)
	root := vaultClient(b, srv.Addr, srv.RootToken)
	if err := root.Sys().Mount("database", &vault.MountInput{Type: "database"}); err != nil {
		b.Fatal(err)
	}
	return &benchEnv{pg: pg, db: db, addr: srv.Addr, root: root}
}

// config writes config name with max_open_connections and a role of the
// same name; revocation "" means the default revocation.
func (e *benchEnv) config(b *testing.B, name string, maxOpen int, revocation string) {
	b.Helper()
	mustWrite(b, e.root, "database/config/"+name, map[string]any{
		"plugin_name": "postgresql-database-plugin", "allowed_roles": "*", "connection_url": e.db.TemplateURL(),
		"username": e.db.Admin, "password": e.db.AdminPassword, "max_open_connections": maxOpen,
	})
	role := map[string]any{"db_name": name, "creation_statements": seedCreation, "default_ttl": "1h"}
	if revocation != "" {
		role["revocation_statements"] = revocation
	}
	mustWrite(b, e.root, "database/roles/"+name, role)
}

// parallel runs fn b.N times over benchWorkers goroutines, each with its
// own client.
func (e *benchEnv) parallel(b *testing.B, fn func(c *vault.Client, i int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, benchWorkers)
	for w := 0; w < benchWorkers; w++ {
		c := vaultClient(b, e.addr, e.root.Token())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if err := fn(c, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// BenchmarkCreds measures dynamic credentials issued per second through
// the whole server (HTTP, token, ACL, engine, PostgreSQL transaction with
// CREATE ROLE and GRANT, lease persisted) with 16 concurrent clients.
func BenchmarkCreds(b *testing.B) {
	e := newBenchEnv(b)
	for _, maxOpen := range []int{4, 16} {
		name := fmt.Sprintf("open%d", maxOpen)
		e.config(b, name, maxOpen, seedRevocation)
		b.Run(fmt.Sprintf("max_open_connections=%d", maxOpen), func(b *testing.B) {
			b.ResetTimer()
			e.parallel(b, func(c *vault.Client, _ int) error {
				s, err := c.Logical().Read("database/creds/" + name)
				if err == nil && (s == nil || s.LeaseID == "") {
					err = fmt.Errorf("no lease")
				}
				return err
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creds/s")
			b.StopTimer()
			if err := e.root.Sys().RevokePrefix("database/creds/" + name); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkRevoke measures leases revoked per second (sys/leases/revoke,
// each dropping its user) with 16 concurrent clients, with the seed's
// DROP ROLE and with the default revocation.
func BenchmarkRevoke(b *testing.B) {
	e := newBenchEnv(b)
	for _, tc := range []struct{ name, revocation string }{{"drop_role", seedRevocation}, {"default_revocation", ""}} {
		e.config(b, tc.name, 16, tc.revocation)
		b.Run(tc.name, func(b *testing.B) {
			b.StopTimer()
			leases := make([]string, b.N)
			e.parallel(b, func(c *vault.Client, i int) error {
				s, err := c.Logical().Read("database/creds/" + tc.name)
				if err != nil {
					return err
				}
				leases[i] = s.LeaseID
				return nil
			})
			runtime.GC()
			b.StartTimer()
			e.parallel(b, func(c *vault.Client, i int) error { return c.Sys().Revoke(leases[i]) })
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "revokes/s")
			if left := e.pg.RolesLike(b, "v-root-"+tc.name[:8]+"-%"); len(left) != 0 {
				b.Fatalf("%d users left after revoking every lease", len(left))
			}
		})
	}
}
