// Package logical defines the request and response model shared by the
// request pipeline (package core), the system backend, auth methods and
// secrets engines.
//
// A logical request is what remains of an HTTP request once the transport
// has been stripped: an operation, a path relative to the mount, a decoded
// body and the caller's identity. Engines answer with a Response or an
// error; errors are mapped to HTTP statuses in exactly one place
// (package server) with errors.Is/As, never by matching strings.
//
// This package must not import server, core, or any engine.
package logical
