package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Database is a fresh database owned by its own admin role, which may
// create roles (CREATEROLE) but is not a superuser: what a secrets engine
// is normally given.
type Database struct {
	Server *Server
	// Name is the database's name; Admin and AdminPassword its owner's
	// credentials.
	Name          string
	Admin         string
	AdminPassword string
}

// NewDatabase creates a database and its admin role; both are dropped in
// t.Cleanup.
func (s *Server) NewDatabase(t testing.TB) *Database {
	t.Helper()
	suffix := randomHex(5)
	d := &Database{Server: s, Name: "db_" + suffix, Admin: "admin_" + suffix, AdminPassword: "pw-" + randomHex(12)}
	s.SuperExec(t, "", fmt.Sprintf(`CREATE ROLE %s WITH LOGIN CREATEROLE PASSWORD '%s'`, Ident(d.Admin), d.AdminPassword))
	s.SuperExec(t, "", fmt.Sprintf(`CREATE DATABASE %s OWNER %s`, Ident(d.Name), Ident(d.Admin)))
	t.Cleanup(func() {
		if !s.isRunning() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, s.SuperURL(""))
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, Ident(d.Name)))
		_, _ = c.Exec(ctx, fmt.Sprintf(`DROP ROLE IF EXISTS %s`, Ident(d.Admin)))
	})
	return d
}

func (s *Server) isRunning() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running || !s.managed
}

// AdminURL is the admin's URL for the database.
func (d *Database) AdminURL() string { return d.Server.URL(d.Admin, d.AdminPassword, d.Name) }

// TemplateURL is a connection URL for the database with {{username}} and
// {{password}} placeholders, as a secrets engine's config takes it.
func (d *Database) TemplateURL() string {
	return "postgresql://{{username}}:{{password}}@" + net.JoinHostPort(d.Server.Host, strconv.Itoa(d.Server.Port)) +
		"/" + d.Name + "?sslmode=disable"
}

// Ident quotes a PostgreSQL identifier.
func Ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// Connect opens a connection as usr with password to database db; the
// error is PostgreSQL's (e.g. a refused password).
func (s *Server) Connect(ctx context.Context, usr, password, db string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, s.URL(usr, password, db))
}

// Login connects as usr with password to db, runs query and closes; it
// returns the first column of the first row as text.
func (s *Server) Login(usr, password, db, query string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := s.Connect(ctx, usr, password, db)
	if err != nil {
		return "", err
	}
	defer c.Close(ctx)
	var out string
	if err := c.QueryRow(ctx, query).Scan(&out); err != nil {
		return "", err
	}
	return out, nil
}

// IsAuthFailure reports whether err is PostgreSQL refusing a login
// (invalid password, or a role that does not exist or may not log in).
func IsAuthFailure(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "28P01" || pe.Code == "28000"
	}
	return false
}

// super runs fn on a fresh superuser connection to db.
func (s *Server) super(t testing.TB, db string, fn func(ctx context.Context, c *pgx.Conn) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, s.SuperURL(db))
	if err != nil {
		t.Fatalf("pgtest: connect as superuser: %v", err)
	}
	defer c.Close(ctx)
	if err := fn(ctx, c); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
}

// SuperExec runs sql as the superuser on database db ("postgres" if empty).
func (s *Server) SuperExec(t testing.TB, db, sql string, args ...any) {
	t.Helper()
	s.super(t, db, func(ctx context.Context, c *pgx.Conn) error {
		if _, err := c.Exec(ctx, sql, args...); err != nil {
			return fmt.Errorf("%s: %w", firstWords(sql), err)
		}
		return nil
	})
}

func firstWords(sql string) string {
	f := strings.Fields(sql)
	if len(f) > 3 {
		f = f[:3]
	}
	return strings.Join(f, " ")
}

// SuperQuery runs a query as the superuser on database db ("postgres" if
// empty) and returns the first column of its first row as text.
func (s *Server) SuperQuery(t testing.TB, db, sql string, args ...any) string {
	t.Helper()
	var out string
	s.super(t, db, func(ctx context.Context, c *pgx.Conn) error {
		return c.QueryRow(ctx, sql, args...).Scan(&out)
	})
	return out
}

// Role is a row of pg_roles.
type Role struct {
	Name       string
	CanLogin   bool
	ValidUntil *time.Time
}

// LookupRole returns the role named name, or nil.
func (s *Server) LookupRole(t testing.TB, name string) *Role {
	t.Helper()
	var r *Role
	s.super(t, "", func(ctx context.Context, c *pgx.Conn) error {
		var got Role
		err := c.QueryRow(ctx, `SELECT rolname, rolcanlogin, rolvaliduntil FROM pg_roles WHERE rolname = $1`, name).
			Scan(&got.Name, &got.CanLogin, &got.ValidUntil)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		r = &got
		return nil
	})
	return r
}

// RolesLike returns the names of the roles matching the SQL LIKE pattern.
func (s *Server) RolesLike(t testing.TB, pattern string) []string {
	t.Helper()
	var names []string
	s.super(t, "", func(ctx context.Context, c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT rolname FROM pg_roles WHERE rolname LIKE $1 ORDER BY rolname`, pattern)
		if err != nil {
			return err
		}
		names, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return names
}

// StoredPassword returns the password hash PostgreSQL keeps for role name
// (pg_authid.rolpassword), or "" if it has none.
func (s *Server) StoredPassword(t testing.TB, name string) string {
	t.Helper()
	var pw *string
	s.super(t, "", func(ctx context.Context, c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT rolpassword FROM pg_authid WHERE rolname = $1`, name).Scan(&pw)
	})
	if pw == nil {
		return ""
	}
	return *pw
}
