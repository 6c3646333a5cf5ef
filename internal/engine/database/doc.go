// Package database is the database secrets engine with the HTTP API of
// Vault's "database" engine and its PostgreSQL plugin
// (plugin_name=postgresql-database-plugin), talking to PostgreSQL through
// pgx. docs/database.md is the user-facing reference.
//
// # Paths
//
//	config/<name>        a connection: URL template, admin credentials,
//	                     allowed_roles, pool limits, password_authentication
//	reset/<name>         close the connection's pool
//	rotate-root/<name>   give the admin a new password only Coffer knows
//	roles/<name>         a dynamic role: statements and TTLs
//	creds/<name>         a new user of a dynamic role, under a lease
//	static-roles/<name>  an existing user whose password Coffer rotates
//	static-creds/<name>  that user's current password
//	rotate-role/<name>   rotate a static role's password now
//
// # Dynamic credentials
//
// creds renders a username from the config's username_template and a
// 20-character password, and runs the role's creation_statements, with
// {{name}}/{{username}}, {{password}} and {{expiration}} substituted, in
// one transaction. If any statement fails the transaction is rolled back,
// the rollback_statements run, and a user that exists anyway is dropped:
// a failed request leaves no user behind, and answers 400 with
// PostgreSQL's error. The response carries a logical.Secret whose
// internal data (username, role, db_name) lets the lease manager renew
// (renew_statements, or ALTER ROLE ... VALID UNTIL) and revoke
// (revocation_statements, or the default revocation that revokes the
// user's privileges in the database object by object and drops it)
// later. Revocation of a user that no
// longer exists succeeds, so the lease manager may retry it freely.
//
// # Secrets
//
// Passwords, the admin's included, live only in the mount's storage view
// (behind the barrier) and in the responses that hand them out. Every
// error built from a driver or server message has the admin password, a
// pending one, a password written in the connection URL, and the
// password of the operation at hand replaced by [REDACTED], in all the
// forms a connection string may give them (see redact); reads mask a
// literal URL password. Nothing is logged with a password or a URL.
//
// Statement templates are substituted as text (PostgreSQL's utility
// statements take no parameters), so every substituted value comes from
// an alphabet that can end neither a quoted name, a string, a dollar-quoted
// body nor a statement: usernames are [A-Za-z0-9_.@-] (checked after the
// template renders them, and for static roles when written), passwords
// [A-Za-z0-9-], SCRAM verifiers base64 and "$:". SQL the engine writes
// itself quotes identifiers and literals.
//
// With password_authentication=scram-sha-256, {{password}} is the
// password's SCRAM-SHA-256 verifier, computed here (PBKDF2-HMAC-SHA-256,
// 4096 iterations, 16-byte random salt), which PostgreSQL stores as is: the
// plaintext never reaches the server or its logs.
//
// # Root rotation
//
// rotate-root stores the new admin password as pending, runs the
// rotation statements, then makes it the password. If the write after
// the ALTER fails, or the process dies there, the next connection that
// has its password refused tries the pending one and promotes it, so the
// only copy of the admin password is never lost.
//
// # Static roles
//
// Creating a static role rotates its user's password at once. Backend
// implements logical.Rotator: the core calls RotateDue about every ten
// seconds while unsealed, and it rotates each role whose rotation_period
// has elapsed, or whose rotation_schedule (five-field cron, UTC) has
// come, within its rotation_window if it has one.
//
// # Connections
//
// Each config has its own pool of pgx connections (max_open_connections,
// max_idle_connections, max_connection_lifetime), opened on first use and
// closed when the config changes, is deleted or reset, after a root
// rotation, and by Cleanup, meant to be called on unmount and seal.
// Idle connections are closed after a minute whatever happens, so a pool
// whose backend was dropped without Cleanup lets its connections go.
//
// A default revocation and the creation statements of concurrent users of
// one role update the same catalog rows (the ACLs of shared tables), which
// PostgreSQL refuses with "tuple concurrently updated": such transactions,
// and serialization failures and deadlocks, are retried a few times
// (retryConflicts).
//
// # Storage layout
//
// Keys are relative to the mount's storage view, which the barrier
// encrypts:
//
//	config/<name>        dbConfig (JSON), with the admin password
//	role/<name>          dbRole (JSON)
//	static-role/<name>   staticRole (JSON), with the current password
//
// # Imports
//
// This package depends on logical and storage (plus pgx and the standard
// library); it must not import core, server, barrier, lease or any
// storage implementation.
package database
