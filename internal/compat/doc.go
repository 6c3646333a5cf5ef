// Package compat holds the compatibility suite: tests that drive a real
// coffer server, started through the real `coffer server` command on a
// loopback listener, with the official Vault Go client
// (github.com/hashicorp/vault/api) and with raw HTTP, and check that every
// answer is the one a Vault client expects. It has no non-test code.
package compat
