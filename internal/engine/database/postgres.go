package database

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// querier is what both a connection and a transaction offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// execAll runs statements, each rendered with v, stopping at the first
// error.
func execAll(ctx context.Context, q querier, stmts []string, v templateVars) error {
	for _, s := range stmts {
		if _, err := q.Exec(ctx, render(s, v)); err != nil {
			return err
		}
	}
	return nil
}

// maxConflictRetries bounds the retries of a transaction that lost a
// concurrency conflict.
const maxConflictRetries = 8

// isConflict reports whether err is PostgreSQL aborting a transaction for
// a conflict with a concurrent one, so that running it again can work: a
// serialization failure, a deadlock, or two GRANTs or REVOKEs that
// updated the same catalog row (the ACL of a shared table, schema or
// database), which PostgreSQL reports only as an internal error with the
// message "tuple concurrently updated". Concurrent users of one role hit
// the last one all the time.
func isConflict(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return pe.Code == "40001" || pe.Code == "40P01" || (pe.Code == "XX000" && pe.Message == "tuple concurrently updated")
}

// retryConflicts runs fn, a whole transaction, again while it fails with a
// conflict (see isConflict), after a short random wait that doubles each
// time. fn must be safe to repeat: a transaction that failed was rolled
// back.
func retryConflicts(ctx context.Context, fn func() error) error {
	wait := 5 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || attempt == maxConflictRetries || !isConflict(err) {
			return err
		}
		t := time.NewTimer(wait/2 + rand.N(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// roleExists reports whether a role (user) named name exists.
func roleExists(ctx context.Context, q querier, name string) (bool, error) {
	var exists bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)`, name).Scan(&exists)
	return exists, err
}

// defaultRenew moves a user's password expiry: what renewing does when
// the role has no renew_statements.
func defaultRenew(ctx context.Context, q querier, username, expiration string) error {
	_, err := q.Exec(ctx, "ALTER ROLE "+quoteIdent(username)+" VALID UNTIL "+quoteLiteral(expiration))
	return err
}

// grantedObjects lists, as (kind, name ready for a REVOKE), every object of
// the current database on which the role holds a privilege: tables,
// views and the like, sequences, routines, schemas, and the database.
const grantedObjects = `
WITH r AS (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1)
SELECT CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, format('%I.%I', n.nspname, c.relname)
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace, r
  WHERE EXISTS (SELECT 1 FROM aclexplode(c.relacl) a WHERE a.grantee = r.oid)
UNION ALL
SELECT 'ROUTINE', p.oid::regprocedure::text FROM pg_catalog.pg_proc p, r
  WHERE EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = r.oid)
UNION ALL
SELECT 'SCHEMA', format('%I', n.nspname) FROM pg_catalog.pg_namespace n, r
  WHERE EXISTS (SELECT 1 FROM aclexplode(n.nspacl) a WHERE a.grantee = r.oid)
UNION ALL
SELECT 'DATABASE', format('%I', d.datname) FROM pg_catalog.pg_database d, r
  WHERE d.datname = current_database() AND EXISTS (SELECT 1 FROM aclexplode(d.datacl) a WHERE a.grantee = r.oid)`

// defaultRevoke removes a user: what revoking does when the role has no
// revocation_statements. In one transaction it revokes every privilege
// the user holds in the current database, object by object (so that it
// updates only the ACLs that name the user, and conflicts with concurrent
// revocations as little as possible), then drops the role. Privileges
// granted by someone else than the admin, privileges in other
// databases, or objects the user owns make the DROP fail: the error says
// which, and the lease manager retries.
func defaultRevoke(ctx context.Context, tx pgx.Tx, username string) error {
	rows, err := tx.Query(ctx, grantedObjects, username)
	if err != nil {
		return err
	}
	type object struct{ kind, name string }
	objects, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (object, error) {
		var o object
		err := row.Scan(&o.kind, &o.name)
		return o, err
	})
	if err != nil {
		return err
	}
	u := quoteIdent(username)
	for _, o := range objects {
		if _, err := tx.Exec(ctx, "REVOKE ALL PRIVILEGES ON "+o.kind+" "+o.name+" FROM "+u); err != nil {
			return err
		}
	}
	_, err = tx.Exec(ctx, "DROP ROLE IF EXISTS "+u)
	return err
}
