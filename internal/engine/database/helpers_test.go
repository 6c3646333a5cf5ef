package database_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/coffer-dev/coffer/internal/cli"
	"github.com/coffer-dev/coffer/internal/coffertest"
	"github.com/coffer-dev/coffer/internal/engine/database"
	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/pgtest"
	"github.com/coffer-dev/coffer/internal/storage/inmem"
)

// TestMain shares one PostgreSQL between the package's tests.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// The seed statements of docs/database.md.
const (
	seedCreation   = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO "{{name}}";`
	seedRevocation = `DROP ROLE IF EXISTS "{{name}}";`
)

// result is the outcome of one CLI run.
type result struct {
	code           int
	stdout, stderr string
}

// cliRunner runs the coffer CLI in-process against a server, as a user
// would.
type cliRunner struct {
	t     testing.TB
	addr  string
	token string
	home  string
}

func newCLI(t testing.TB, srv *coffertest.Server) *cliRunner {
	return &cliRunner{t: t, addr: srv.Addr, token: srv.RootToken, home: t.TempDir()}
}

func (c *cliRunner) withToken(tok string) *cliRunner {
	cp := *c
	cp.token = tok
	return &cp
}

func (c *cliRunner) run(args ...string) result {
	c.t.Helper()
	var out, errb bytes.Buffer
	env := &cli.Env{
		Getenv: func(k string) string {
			switch k {
			case "COFFER_ADDR":
				return c.addr
			case "COFFER_TOKEN":
				return c.token
			}
			return ""
		},
		Stdin:   strings.NewReader(""),
		Stdout:  &out,
		Stderr:  &errb,
		HomeDir: func() (string, error) { return c.home, nil },
	}
	err := cli.RunEnv(context.Background(), env, args)
	return result{code: cli.ExitCode(err), stdout: out.String(), stderr: errb.String()}
}

// ok runs a command that must succeed and returns its stdout.
func (c *cliRunner) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("coffer %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fail runs a command that must fail and returns its stderr.
func (c *cliRunner) fail(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code == 0 {
		c.t.Fatalf("coffer %s succeeded, want a failure\nstdout: %s", strings.Join(args, " "), r.stdout)
	}
	return r.stderr
}

// table parses the key/value table the CLI prints.
func table(t testing.TB, out string) map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "Key") {
		t.Fatalf("not a key/value table:\n%s", out)
	}
	m := map[string]string{}
	for _, l := range lines[2:] {
		k, v, _ := strings.Cut(l, " ")
		m[k] = strings.TrimSpace(v)
	}
	return m
}

// jsonOut parses -format=json output.
func jsonOut(t testing.TB, out string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	return m
}

// setup is a dev server with the database engine mounted and a config
// for a fresh database.
type setup struct {
	pg  *pgtest.Server
	db  *pgtest.Database
	srv *coffertest.Server
	cli *cliRunner
}

// newSetup mounts the engine and writes database/config/pg for db, with
// allowed_roles="*" and the extra config arguments.
func newSetup(t *testing.T, pg *pgtest.Server, extra ...string) *setup {
	t.Helper()
	s := &setup{pg: pg, db: pg.NewDatabase(t), srv: coffertest.StartDev(t)}
	s.cli = newCLI(t, s.srv)
	s.cli.ok("secrets", "enable", "database")
	args := append([]string{"write", "database/config/pg", "plugin_name=postgresql-database-plugin", "allowed_roles=*",
		"connection_url=" + s.db.TemplateURL(), "username=" + s.db.Admin, "password=" + s.db.AdminPassword}, extra...)
	s.cli.ok(args...)
	return s
}

// creds reads database/creds/role as JSON and returns the username,
// password and lease id.
func (s *setup) creds(t testing.TB, role string) (username, password, leaseID string) {
	t.Helper()
	m := jsonOut(t, s.cli.ok("read", "-format=json", "database/creds/"+role))
	data, _ := m["data"].(map[string]any)
	username, _ = data["username"].(string)
	password, _ = data["password"].(string)
	leaseID, _ = m["lease_id"].(string)
	if username == "" || password == "" || leaseID == "" {
		t.Fatalf("creds/%s = %v", role, m)
	}
	return username, password, leaseID
}

// waitFor polls cond every 50 ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// engine drives a Backend directly, as the pipeline does.
type engine struct {
	t testing.TB
	b *database.Backend
}

func newEngine(t testing.TB) *engine {
	t.Helper()
	b, err := database.New(context.Background(), &logical.BackendConfig{Storage: inmem.New(), MountPoint: "database/"})
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	t.Cleanup(func() { b.Cleanup(context.Background()) })
	return &engine{t: t, b: b}
}

func (e *engine) do(op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	e.t.Helper()
	if data == nil {
		data = map[string]any{}
	}
	req := &logical.Request{Operation: op, MountPath: path, MountPoint: "database/", Path: "database/" + path, Data: data,
		Auth: &logical.Auth{DisplayName: "token"}}
	ctx := context.Background()
	if op == logical.UpdateOperation {
		ok, err := e.b.Exists(ctx, req)
		if err != nil {
			e.t.Fatalf("Exists(%q) = %v", path, err)
		}
		if !ok {
			req.Operation = logical.CreateOperation
		}
	}
	return e.b.HandleRequest(ctx, req)
}

func (e *engine) must(op logical.Operation, path string, data map[string]any) *logical.Response {
	e.t.Helper()
	resp, err := e.do(op, path, data)
	if err != nil {
		e.t.Fatalf("%s %s = %v", op, path, err)
	}
	return resp
}

// status mirrors the server's mapping of errors to statuses.
func status(err error) int {
	var ire *logical.InvalidRequestError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &ire):
		return http.StatusBadRequest
	case errors.Is(err, logical.ErrNotFound), errors.Is(err, logical.ErrUnsupportedPath):
		return http.StatusNotFound
	case errors.Is(err, logical.ErrUnsupportedOperation):
		return http.StatusMethodNotAllowed
	case errors.Is(err, logical.ErrUpstream):
		return http.StatusBadGateway
	default:
		return http.StatusInternalServerError
	}
}

// configData is a config body for db with allowed_roles "*".
func configData(db *pgtest.Database, extra map[string]any) map[string]any {
	d := map[string]any{
		"plugin_name": "postgresql-database-plugin", "allowed_roles": "*", "connection_url": db.TemplateURL(),
		"username": db.Admin, "password": db.AdminPassword,
	}
	for k, v := range extra {
		d[k] = v
	}
	return d
}

// restartable is a `coffer server` on bbolt with a static seal, so that it
// can be stopped and started again on the same data (and unseals itself),
// initialised, with the database engine mounted.
type restartable struct {
	srv   *coffertest.Server
	env   map[string]string
	args  []string
	token string // root token
}

// startRestartable starts one; extraEnv adds server environment.
func startRestartable(tb testing.TB, extraEnv map[string]string) (*restartable, *vault.Client) {
	tb.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		tb.Fatal(err)
	}
	env := map[string]string{"COFFER_SEAL_TYPE": "static", "COFFER_SEAL_KEY": base64.StdEncoding.EncodeToString(key)}
	maps.Copy(env, extraEnv)
	r := &restartable{env: env, args: []string{"server", "-tls-disable", "-address=127.0.0.1:0",
		"-storage-path=" + filepath.Join(tb.TempDir(), "coffer.db"), "-log-level=warn"}}
	r.srv = coffertest.Start(tb, r.env, r.args...)
	c := vaultClient(tb, r.srv.Addr, "")
	res, err := c.Sys().Init(&vault.InitRequest{RecoveryShares: 1, RecoveryThreshold: 1})
	if err != nil {
		tb.Fatalf("init: %v", err)
	}
	r.token = res.RootToken
	c.SetToken(r.token)
	if err := c.Sys().Mount("database", &vault.MountInput{Type: "database"}); err != nil {
		tb.Fatalf("mount: %v", err)
	}
	return r, c
}

// restart starts the server again on the same data (after srv.Stop).
func (r *restartable) restart(tb testing.TB) {
	tb.Helper()
	r.srv = coffertest.Start(tb, r.env, r.args...)
}
