// Package fileenc reads and writes files in the SOPS v3 format: the values
// of a YAML, JSON, dotenv, INI or binary file are encrypted one by one and
// the structure stays readable. Files are interchangeable with sops 3.x in
// both directions (checked against sops v3.13.3; docs/sops.md has the
// facts, including where they differ from ../shared/REFERENCE.md).
//
// # Format
//
// A file has one random 32-byte data key. Each selected value becomes
// ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]: AES-256-GCM with a random
// 32-byte IV, the tag stored apart, standard padded base64; the additional
// data is the keys of the value's path each followed by ":" (list indices
// are not part of it), and comments use their container's path (":" at
// the top level). Selectors (suffix, key regex, comment regex) decide which
// values are encrypted and are stored in the metadata. The MAC is SHA-512
// over the plaintext of every non-comment value in document order (with
// mac_only_encrypted: SHA-256("sops") first, then only encrypted values),
// encrypted with the data key and lastmodified as additional data. The
// data key is encrypted to master keys: age X25519 recipients (armored age
// files) and transit keys of a Vault-compatible server (hc_vault). With
// several key groups the data key is split with Shamir's scheme in the
// HashiCorp share format (internal/shamir's), one share per group.
//
// Every format is parsed into yaml.Node trees (tree.go explains why), so
// one walker encrypts, decrypts and hashes YAML, JSON, dotenv and INI alike,
// and YAML keeps its comments and key order.
//
// # Security
//
// Opening a file authenticates every value and the MAC before returning
// anything; a failure names the value's path, never its content. Values
// the selectors mark as encrypted must be encrypted (a clear-text value
// slipped in fails), and the type tag is checked against the plaintext
// (sops' format does not authenticate it). Parsers of file content are
// strict (duplicate keys, non-string keys, oversized alias expansion and
// excessive nesting are errors) and fuzzed. Randomness comes from
// crypto/rand only. Re-encrypting an edited file reuses the ciphertext of
// unchanged values (same path, type and plaintext), each at most once, so
// diffs stay small without revealing that two values are equal.
//
// This package imports internal/shamir and no other Coffer package; the
// CLI (internal/cli/file*.go) supplies identities, tokens and files.
package fileenc
