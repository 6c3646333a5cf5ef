// Package audit records every audited request and response as one JSON line
// per event, in the shape of Vault's audit log, and checks such logs for
// tampering.
//
// A Device receives Request and Response records; FileDevice writes them to an
// append-only file and Broker fans them out to every enabled device. The
// line format is specified in docs/audit-format.md.
//
// Security properties:
//
//   - Secrets never reach a log in the clear. Before a record is written,
//     every token, accessor, lease id and every string under data, metadata
//     and headers is replaced by "hmac-sha256:<hex>", keyed by a per-device
//     Salt (see HashRequest for the exact list of fields left readable).
//     Anyone holding the salt, or access to sys/audit-hash, can test whether
//     a known value appears in a log; nobody can read values back.
//   - Auditing fails closed: Broker reports success only if at least one
//     device recorded the event, and FileDevice returns an error for any
//     write that did not fully reach the file.
//   - Each line carries its sequence number and the SHA-256 of the previous
//     line, so Verify detects an edited, deleted, inserted or reordered line
//     and a truncated tail. The chain is not keyed: it proves a log is
//     internally consistent, not who wrote it; someone able to rewrite the
//     file can rewrite the chain from the edit onwards. Anchor the last hash
//     elsewhere (a second device, a log shipper) to detect that.
//
// This package is a library: it must not import net/http handlers, the
// storage backends or the barrier. Callers persist a device's Salt (for
// example in barrier-encrypted storage) so that hashes stay stable across
// restarts.
package audit
