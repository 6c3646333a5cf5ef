package database

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coffer-dev/coffer/internal/logical"
)

// systemMaxTTL is the longest a lease can live (the lease manager's
// default maximum); a role with neither default_ttl nor max_ttl gets
// passwords valid this long, and its lease ends earlier if the mount's or
// the system's maximum says so.
const systemMaxTTL = 32 * 24 * time.Hour

// Keys of a lease's internal data.
const (
	internalUsername = "username"
	internalRole     = "role"
	internalDB       = "db_name"
)

// creds issues a dynamic user of role name: a new username and password,
// created by the role's creation statements in one transaction, under a
// lease that revokes it.
func (b *Backend) creds(ctx context.Context, req *logical.Request, name string) (*logical.Response, error) {
	r, err := b.loadRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.BadRequest("unknown role: %s", name)
	}
	c, err := b.connection(ctx, r.DBName)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, logical.BadRequest("role %q uses the database config %q, which does not exist", name, r.DBName)
	}
	if !allowedRole(c.cfg.AllowedRoles, name) {
		return nil, logical.BadRequest("%q is not an allowed role of database config %q", name, r.DBName)
	}
	display := ""
	if req.Auth != nil {
		display = req.Auth.DisplayName
	}
	username, err := c.tmpl.generate(display, name)
	if err != nil {
		return nil, asClient(err)
	}
	password, err := generatePassword()
	if err != nil {
		return nil, err
	}
	secret, err := passwordSecret(c.cfg.PasswordAuthentication, password)
	if err != nil {
		return nil, err
	}
	valid := r.defaultTTL()
	if valid <= 0 {
		valid = r.maxTTL()
	}
	if valid <= 0 {
		valid = systemMaxTTL
	}
	vars := templateVars{username: username, password: secret, expiration: b.now().Add(valid).Format(expirationLayout)}
	stmts, err := compileStatements("creation_statements", r.CreationStatements)
	if err != nil {
		return nil, err
	}
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	err = retryConflicts(octx, func() error {
		return c.pool.tx(octx, func(tx pgx.Tx) error { return execAll(octx, tx, stmts, vars) })
	})
	if err != nil {
		b.undoCreation(c, r, username, vars)
		return nil, c.fail("creation statements failed", err, password, secret)
	}
	return &logical.Response{
		Data: map[string]any{"username": username, "password": password},
		Secret: &logical.Secret{
			TTL:       r.defaultTTL(),
			MaxTTL:    r.maxTTL(),
			Renewable: true,
			InternalData: map[string]any{
				internalUsername: username,
				internalRole:     name,
				internalDB:       r.DBName,
			},
		},
	}, nil
}

// undoCreation makes sure a failed creation leaves no user behind. The
// creation transaction was rolled back; this also runs the role's
// rollback_statements, and drops the user if it exists anyway (a failure
// after COMMIT reached the server, or statements that commit by
// themselves). Failures are logged: the request has failed already.
func (b *Backend) undoCreation(c *connection, r *dbRole, username string, vars templateVars) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if len(r.RollbackStatements) > 0 {
		stmts, err := compileStatements("rollback_statements", r.RollbackStatements)
		if err == nil {
			err = retryConflicts(ctx, func() error {
				return c.pool.tx(ctx, func(tx pgx.Tx) error { return execAll(ctx, tx, stmts, vars) })
			})
		}
		if err != nil {
			b.log.Warn("database: rollback statements failed", "config", c.name, "username", username,
				"err", redact(err.Error(), c.secrets(vars.password)...))
		}
	}
	err := retryConflicts(ctx, func() error {
		return c.pool.run(ctx, func(conn *pgx.Conn) error {
			exists, err := roleExists(ctx, conn, username)
			if err != nil || !exists {
				return err
			}
			return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return defaultRevoke(ctx, tx, username) })
		})
	})
	if err != nil {
		b.log.Error("database: a user of a failed creation may be left behind; drop it by hand", "config", c.name,
			"username", username, "err", redact(err.Error(), c.secrets(vars.password)...))
	}
}

// leaseTarget is what a lease names: the user, its role and its config.
type leaseTarget struct {
	username, roleName, dbName string
	role                       *dbRole // nil if the role is gone
	conn                       *connection
}

func (b *Backend) leaseTarget(ctx context.Context, l *logical.Lease) (*leaseTarget, error) {
	str := func(k string) string { s, _ := l.InternalData[k].(string); return s }
	t := &leaseTarget{username: str(internalUsername), roleName: str(internalRole), dbName: str(internalDB)}
	if t.username == "" {
		return nil, errors.New("database: the lease names no user")
	}
	if t.roleName != "" {
		r, err := b.loadRole(ctx, t.roleName)
		if err != nil {
			return nil, err
		}
		t.role = r
	}
	if t.dbName == "" && t.role != nil {
		t.dbName = t.role.DBName
	}
	c, err := b.connection(ctx, t.dbName)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("database: config %q no longer exists: remove the user %q by hand, then force-revoke the lease", t.dbName, t.username)
	}
	t.conn = c
	return t, nil
}

// statements returns the role's statements chosen by pick, if the role
// still exists and uses the lease's config.
func (t *leaseTarget) statements(field string, pick func(*dbRole) []string) ([]string, error) {
	if t.role == nil || t.role.DBName != t.dbName {
		return nil, nil
	}
	return compileStatements(field, pick(t.role))
}

// RevokeSecret removes the user of a lease with the role's
// revocation_statements, or the default revocation. A user that is
// already gone is revoked: it is idempotent. It implements
// logical.SecretBackend.
func (b *Backend) RevokeSecret(ctx context.Context, l *logical.Lease) error {
	t, err := b.leaseTarget(ctx, l)
	if err != nil {
		return err
	}
	stmts, err := t.statements("revocation_statements", func(r *dbRole) []string { return r.RevocationStatements })
	if err != nil {
		return err
	}
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	err = retryConflicts(octx, func() error {
		return t.conn.pool.run(octx, func(conn *pgx.Conn) error {
			exists, err := roleExists(octx, conn, t.username)
			if err != nil || !exists {
				return err
			}
			return pgx.BeginFunc(octx, conn, func(tx pgx.Tx) error {
				if len(stmts) == 0 {
					return defaultRevoke(octx, tx, t.username)
				}
				return execAll(octx, tx, stmts, templateVars{username: t.username})
			})
		})
	})
	if err != nil {
		return t.conn.fail(fmt.Sprintf("revoke user %q", t.username), err)
	}
	return nil
}

// RenewSecret moves the user's password expiry to newExpire with the
// role's renew_statements, or ALTER ROLE ... VALID UNTIL. It implements
// logical.SecretBackend.
func (b *Backend) RenewSecret(ctx context.Context, l *logical.Lease, newExpire time.Time) error {
	t, err := b.leaseTarget(ctx, l)
	if err != nil {
		return err
	}
	stmts, err := t.statements("renew_statements", func(r *dbRole) []string { return r.RenewStatements })
	if err != nil {
		return err
	}
	exp := newExpire.UTC().Format(expirationLayout)
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	err = t.conn.pool.tx(octx, func(tx pgx.Tx) error {
		if len(stmts) == 0 {
			return defaultRenew(octx, tx, t.username, exp)
		}
		return execAll(octx, tx, stmts, templateVars{username: t.username, expiration: exp})
	})
	if err != nil {
		return t.conn.fail(fmt.Sprintf("renew user %q", t.username), err)
	}
	return nil
}
