// Package userpass is the "userpass" auth method: users with a password
// log in at login/<name> and receive a token carrying the user's
// token_policies and token shape (tokenparams).
//
// Passwords are never stored. Each user keeps an argon2id hash (RFC 9106)
// with a per-user random 16-byte salt, encoded with its cost parameters in
// the PHC string format ($argon2id$v=19$m=...,t=...,p=...$salt$key; see
// DecodeHash and docs/auth.md), so the mount's parameters can be raised
// later: a user whose hash has older parameters gets a new hash at the
// next successful login. Keys are compared in constant time.
//
// Every failed login answers the same 400 "invalid username or password",
// whatever the cause. Logging in as an unknown user costs what a known one
// does: the password is hashed against a dummy hash made at mount time with
// the same parameters, and the lockout bookkeeping does the same storage
// reads and writes (on a fixed padding key). Concurrent hashes are bounded
// per mount so a flood of logins queues instead of exhausting memory.
//
// Lockout (Vault's user lockout): lockout_threshold failed logins (default
// 5), none more than lockout_counter_reset apart (default 15m), lock the
// user for lockout_duration (default 15m). A locked user is refused even
// with the right password, with the same answer as any failure; the lock
// is logged, never the password. Logins in flight count against the
// threshold, so parallel guesses cannot overshoot it: beyond it, logins are
// refused like failures (a right password refused so is not counted as a
// failure). The lockout state is
// kept in the mount's storage (behind the barrier), so it survives a
// restart; setting a new password or deleting the user clears it.
//
// This package must not import core, server or any engine.
package userpass
