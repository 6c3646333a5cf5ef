// Package pgtest runs throwaway PostgreSQL servers for tests.
//
// A server is a fresh cluster made by initdb in a temporary directory and
// started with pg_ctl on a free loopback port, with password (SCRAM-SHA-256)
// authentication over TCP, so that tests can check that a wrong or old
// password is refused. The binaries come from COFFER_PG_BIN_DIR, or
// /usr/lib/postgresql/15/bin, or the PATH. PostgreSQL refuses to run as
// root: when the test runs as root, every server command runs as the
// `postgres` user through runuser, and the cluster directory belongs to it.
//
// Shared returns one server per test binary (started on first use, stopped
// by Main, which the package's TestMain calls); Start returns a dedicated
// server that the test may stop and start again (outage tests), stopped in
// t.Cleanup. With COFFER_TEST_PG_URL set (a superuser URL), Shared uses
// that server instead of starting one.
//
// When no PostgreSQL can be run, tests are skipped through
// coffertest.RequireIntegration (a failure in CI).
//
// It is imported only by tests.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coffer-dev/coffer/internal/coffertest"
)

// EnvURL names the variable holding the superuser URL of an existing server.
const EnvURL = "COFFER_TEST_PG_URL"

// EnvBinDir names the variable holding the directory of the server binaries.
const EnvBinDir = "COFFER_PG_BIN_DIR"

const defaultBinDir = "/usr/lib/postgresql/15/bin"

// superUser is the superuser initdb creates.
const superUser = "postgres"

// Options shape a dedicated server.
type Options struct {
	// Durable keeps PostgreSQL's crash-safety settings (fsync,
	// synchronous_commit, full_page_writes). By default they are off, which
	// makes tests faster; benchmarks that measure commits turn them on.
	Durable bool
}

// Server is a running (or stopped) PostgreSQL server.
type Server struct {
	// Host and Port locate the server (Host is 127.0.0.1 for servers
	// started here).
	Host string
	Port int
	// Password is the superuser's password.
	Password string

	superURL string
	managed  bool // started here: can be stopped, restarted and its log read

	dir     string // cluster base directory (data/, log, socket)
	bin     string
	runAs   string // "postgres" when running as root, else ""
	durable bool

	mu      sync.Mutex
	running bool
}

// SuperURL is the superuser's URL for database db ("postgres" if empty).
func (s *Server) SuperURL(db string) string {
	if db == "" {
		db = "postgres"
	}
	u, err := url.Parse(s.superURL)
	if err != nil {
		panic("pgtest: bad superuser URL")
	}
	u.Path = "/" + db
	return u.String()
}

// URL returns a connection URL for user and password on database db.
func (s *Server) URL(usr, password, db string) string {
	u := &url.URL{Scheme: "postgresql", User: url.UserPassword(usr, password),
		Host: net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// Managed reports whether the server was started here (so it can be
// stopped and restarted, and its log read).
func (s *Server) Managed() bool { return s.managed }

var (
	sharedMu     sync.Mutex
	shared       *Server
	sharedErr    error
	sharedSkip   string
	mainIsActive bool
)

// Main runs a package's tests and then stops the shared server. Call it
// from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func Main(m *testing.M) int {
	sharedMu.Lock()
	mainIsActive = true
	sharedMu.Unlock()
	code := m.Run()
	sharedMu.Lock()
	s := shared
	shared = nil
	sharedMu.Unlock()
	if s != nil && s.managed {
		s.destroy()
	}
	return code
}

// Shared returns the server shared by every test of the binary. Without
// Main in the package's TestMain it behaves like Start.
func Shared(t testing.TB) *Server {
	t.Helper()
	if u := os.Getenv(EnvURL); u != "" {
		sharedMu.Lock()
		defer sharedMu.Unlock()
		if shared == nil {
			s, err := external(u)
			if err != nil {
				t.Fatalf("pgtest: %s: %v", EnvURL, err)
			}
			shared = s
		}
		return shared
	}
	sharedMu.Lock()
	active := mainIsActive
	sharedMu.Unlock()
	if !active {
		return Start(t, Options{})
	}
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil && sharedSkip == "" {
		if reason := missing(); reason != "" {
			sharedSkip = reason
		} else {
			shared, sharedErr = start(Options{})
		}
	}
	if sharedSkip != "" {
		coffertest.RequireIntegration(t, sharedSkip)
	}
	if sharedErr != nil {
		t.Fatalf("pgtest: start the shared PostgreSQL: %v", sharedErr)
	}
	return shared
}

// Start starts a dedicated server, stopped and removed in t.Cleanup.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if reason := missing(); reason != "" {
		coffertest.RequireIntegration(t, reason)
	}
	s, err := start(opts)
	if err != nil {
		t.Fatalf("pgtest: start PostgreSQL: %v", err)
	}
	t.Cleanup(s.destroy)
	return s
}

func external(raw string) (*Server, error) {
	cfg, err := pgx.ParseConfig(raw)
	if err != nil {
		return nil, errors.New("not a PostgreSQL URL")
	}
	return &Server{Host: cfg.Host, Port: int(cfg.Port), Password: cfg.Password, superURL: raw, running: true}, nil
}

func binDir() string {
	if d := os.Getenv(EnvBinDir); d != "" {
		return d
	}
	if _, err := os.Stat(filepath.Join(defaultBinDir, "initdb")); err == nil {
		return defaultBinDir
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return defaultBinDir
}

// missing returns why no server can be started here, or "".
func missing() string {
	bin := binDir()
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			return fmt.Sprintf("PostgreSQL server binaries not found in %s (set %s or %s)", bin, EnvBinDir, EnvURL)
		}
	}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			return "running as root and there is no postgres user to run PostgreSQL as"
		}
		if _, err := exec.LookPath("runuser"); err != nil {
			return "running as root and runuser is missing"
		}
	}
	return ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func start(opts Options) (*Server, error) {
	s := &Server{Host: "127.0.0.1", managed: true, bin: binDir(), durable: opts.Durable, Password: "pg-" + randomHex(12)}
	if os.Geteuid() == 0 {
		s.runAs = "postgres"
	}
	dir, err := os.MkdirTemp("", "coffer-pg-")
	if err != nil {
		return nil, err
	}
	s.dir = dir
	if err := s.chown(dir); err != nil {
		s.destroy()
		return nil, err
	}
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.Password+"\n"), 0o600); err != nil {
		s.destroy()
		return nil, err
	}
	if err := s.chown(pwfile); err != nil {
		s.destroy()
		return nil, err
	}
	out, err := s.run(2*time.Minute, "initdb", "-D", s.dataDir(), "-U", superUser, "--pwfile="+pwfile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions")
	_ = os.Remove(pwfile)
	if err != nil {
		s.destroy()
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if s.Port, err = freePort(); err != nil {
			s.destroy()
			return nil, err
		}
		if lastErr = s.startServer(); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		s.destroy()
		return nil, lastErr
	}
	s.superURL = s.URL(superUser, s.Password, "postgres")
	return s, nil
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }

// LogPath is the server's log file (managed servers only).
func (s *Server) LogPath() string { return filepath.Join(s.dir, "server.log") }

func (s *Server) chown(path string) error {
	if s.runAs == "" {
		return nil
	}
	u, err := user.Lookup(s.runAs)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(path, uid, gid)
}

// run runs a server binary, as the postgres user when needed.
func (s *Server) run(timeout time.Duration, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	bin := filepath.Join(s.bin, name)
	var cmd *exec.Cmd
	if s.runAs != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", s.runAs, "--", bin}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, bin, args...)
	}
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGTZ=UTC")
	return cmd.CombinedOutput()
}

func (s *Server) startServer() error {
	settings := []string{
		"-c listen_addresses=127.0.0.1",
		"-p " + strconv.Itoa(s.Port),
		"-c unix_socket_directories=" + s.dir,
		"-c max_connections=300",
		"-c log_min_messages=warning",
	}
	if !s.durable {
		settings = append(settings, "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off")
	}
	out, err := s.run(2*time.Minute, "pg_ctl", "-D", s.dataDir(), "-l", s.LogPath(), "-w", "-t", "60",
		"-o", strings.Join(settings, " "), "start")
	if err != nil {
		log, _ := os.ReadFile(s.LogPath())
		return fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, tail(string(log), 2000))
	}
	s.mu.Lock()
	s.running = true
	s.mu.Unlock()
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Stop shuts the server down (fast mode: sessions are cut). It can be
// started again with Resume. Managed servers only.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if !s.managed {
		t.Fatalf("pgtest: Stop on a server not started here")
	}
	out, err := s.run(time.Minute, "pg_ctl", "-D", s.dataDir(), "-m", "fast", "-w", "stop")
	if err != nil {
		t.Fatalf("pgtest: pg_ctl stop: %v\n%s", err, out)
	}
	s.mu.Lock()
	s.running = false
	s.mu.Unlock()
}

// Resume starts a stopped server again on the same port.
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	if !s.managed {
		t.Fatalf("pgtest: Resume on a server not started here")
	}
	if err := s.startServer(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
}

// Log returns the server's log so far. Managed servers only.
func (s *Server) Log(t testing.TB) string {
	t.Helper()
	if !s.managed {
		t.Fatalf("pgtest: Log on a server not started here")
	}
	b, err := os.ReadFile(s.LogPath())
	if err != nil {
		t.Fatalf("pgtest: read log: %v", err)
	}
	return string(b)
}

// destroy stops the server if it runs and removes its directory.
func (s *Server) destroy() {
	if !s.managed || s.dir == "" {
		return
	}
	s.mu.Lock()
	running := s.running
	s.running = false
	s.mu.Unlock()
	if running {
		_, _ = s.run(time.Minute, "pg_ctl", "-D", s.dataDir(), "-m", "immediate", "-w", "stop")
	}
	_ = os.RemoveAll(s.dir)
}
