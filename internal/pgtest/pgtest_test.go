package pgtest_test

import (
	"os"
	"testing"

	"github.com/coffer-dev/coffer/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestShared checks the harness itself: the admin logs in with its
// password, a wrong password is refused (authentication is real), and the
// shared server is the same for every caller.
func TestShared(t *testing.T) {
	s := pgtest.Shared(t)
	if s2 := pgtest.Shared(t); s2 != s {
		t.Fatalf("Shared() returned two servers")
	}
	d := s.NewDatabase(t)
	got, err := s.Login(d.Admin, d.AdminPassword, d.Name, "SELECT current_database()")
	if err != nil || got != d.Name {
		t.Fatalf("Login(admin) = %q, %v; want %q", got, err, d.Name)
	}
	if _, err := s.Login(d.Admin, "wrong", d.Name, "SELECT 1"); !pgtest.IsAuthFailure(err) {
		t.Fatalf("Login(admin, wrong password) = %v, want an authentication failure", err)
	}
	if r := s.LookupRole(t, d.Admin); r == nil || !r.CanLogin {
		t.Fatalf("LookupRole(%q) = %+v", d.Admin, r)
	}
	if r := s.LookupRole(t, "no-such-role"); r != nil {
		t.Fatalf("LookupRole(no-such-role) = %+v, want nil", r)
	}
}

// TestStopResume stops a dedicated server and starts it again.
func TestStopResume(t *testing.T) {
	if os.Getenv(pgtest.EnvURL) != "" {
		t.Skip("uses a dedicated server")
	}
	s := pgtest.Start(t, pgtest.Options{})
	d := s.NewDatabase(t)
	s.Stop(t)
	if _, err := s.Login(d.Admin, d.AdminPassword, d.Name, "SELECT 1"); err == nil {
		t.Fatalf("Login on a stopped server succeeded")
	}
	s.Resume(t)
	if got, err := s.Login(d.Admin, d.AdminPassword, d.Name, "SELECT 'ok'"); err != nil || got != "ok" {
		t.Fatalf("Login after Resume = %q, %v", got, err)
	}
}
