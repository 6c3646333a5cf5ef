// Package approle is the "approle" auth method: a machine logs in with a
// role_id (which role) and a secret_id (a credential issued for that role)
// and receives a token with the role's token_policies and token shape
// (tokenparams).
//
// Secret IDs are random UUIDs from crypto/rand, returned once and never
// stored: the mount keeps HMAC-SHA256(key, secret ID) under a 32-byte key
// generated per mount and kept in its storage (behind the barrier). A
// lookup hashes the presented secret ID and fetches by hash; the stored
// hash is then compared in constant time. Role IDs are indexed the same
// way. Each secret ID has an accessor (a second UUID) to list, look up and
// destroy it without knowing it.
//
// A secret ID may expire (secret_id_ttl / ttl) and may be limited to a
// number of uses (secret_id_num_uses / num_uses): the check and the
// decrement happen under a lock per secret ID, so of concurrent logins
// with a secret ID that has n uses left exactly n succeed; the last use
// deletes it. Logins may be bound to client addresses (the role's
// secret_id_bound_cidrs and a secret ID's cidr_list, which must lie inside
// the role's), checked against the request's remote address; an address
// that cannot be parsed is refused. Expired secret IDs are refused at
// login and removed by tidy/secret-id, which also runs by itself every few
// minutes.
//
// A wrong secret ID and an unknown role ID get the same 400 "invalid role
// or secret ID". Secret IDs never appear in a log line, an error or a read.
//
// This package must not import core, server or any engine.
package approle
