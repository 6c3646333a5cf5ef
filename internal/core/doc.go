// Package core is Coffer's request pipeline and seal state machine.
//
// A Core owns the storage backend, the barrier above it, the seal (Shamir
// or static key) and, once unsealed, the token store and the mounted
// backends. Every request goes through HandleRequest:
//
//	sealed?  -> 503 (except the unauthenticated sys endpoints)
//	token    -> resolve (missing/unknown/expired: 403 "permission denied")
//	ACL      -> evaluate (path, operation)
//	audit    -> record the request (fail closed)
//	route    -> longest-prefix match on the mount table
//	audit    -> record the response
//
// Core knows nothing about HTTP (package server translates) and never sees
// storage bytes in plaintext except through the barrier. It must not import
// server, cli, or any Kubernetes package.
package core
