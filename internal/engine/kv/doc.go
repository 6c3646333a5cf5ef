// Package kv is the KV secrets engine, versions 1 and 2, with the HTTP API
// of Vault's "kv" engine.
//
// A mount is built by Factory with Options["version"] "1" (the default) or
// "2". Version 1 keeps one value per path. Version 2 keeps up to
// max_versions versions of each secret with per-key metadata, soft delete,
// undelete, destroy, check-and-set, JSON merge patch and subkeys. A version
// 1 mount is upgraded in place by tuning it to version 2 (UpdateOptions);
// every existing value becomes version 1 of its secret. Downgrades are
// refused.
//
// # Storage layout
//
// All keys are relative to the mount's private storage view and hold
// plaintext JSON (the barrier below encrypts them):
//
//	v1/<path>                       version 1 value: a JSON object
//	v2/config                       mount settings: {max_versions, cas_required, delete_version_after}
//	v2/meta/<path>                  key metadata and the state of every kept version
//	v2/data/<sha256(path)>/<n>      data of version n: a JSON object
//
// The two layouts never overlap, so an upgrade interrupted by a crash is
// finished when the mount is next built as version 2. Secrets are listed
// from the v2/meta/ keys (storage.Backend.List gives folders a trailing
// "/"). Version data is keyed by a hash of the path so that its keys have a
// fixed length and the version number can never be confused with a path
// segment. A write stores the new version, the updated metadata and the
// removal of versions beyond max_versions in one storage Batch, so a crash
// leaves either the old or the new state.
//
// # Concurrency
//
// Requests on one secret are serialised by a striped lock keyed by a hash of
// the path (readers share it), which makes check-and-set race free: of N
// concurrent writes with the same cas, exactly one succeeds. An upgrade
// holds the whole mount exclusively.
//
// # Time
//
// Times are UTC and render as RFC 3339 with nanoseconds, as Vault does; an
// unset deletion_time is "". delete_version_after stamps each new version
// with deletion_time = created_time + the effective duration; a version
// whose deletion_time has passed reads as deleted. Nothing runs in the
// background.
//
// Paths are checked again here (empty segments, "." and "..", control
// characters, invalid UTF-8, over-long paths) even though the HTTP layer
// refuses most of them, so that no caller can address storage outside the
// layout above.
//
// This package depends on logical and storage only; it must not import core,
// server, barrier or any storage implementation.
package kv
