// Package kmsplugin implements `coffer kms-plugin`: the Kubernetes KMS v2
// gRPC API (k8s.io/kms apis/v2) served on a unix socket, so that
// kube-apiserver wraps the DEK seeds it encrypts Secrets with under a key
// it never sees.
//
// The key-encryption key (KEK) is either a Coffer transit key, used over
// Coffer's HTTP API (Transit: the key stays behind Coffer's barrier; the
// ciphertext is transit's `vault:v<N>:…` string), or a local 32-byte key
// file (LocalKey, for clusters that want the plugin alone). docs/kms.md
// specifies the key_id and ciphertext formats.
//
// Security properties:
//   - key_ids name the key and version (and, for transit, the version's
//     creation time, so a re-created key never reuses one); they hold no
//     secret. Decrypt refuses key_ids it did not issue, ciphertexts that do
//     not match their key_id or fail authentication, and annotations it did
//     not write or that exceed the KMS v2 limits.
//   - Status is healthy only when an encrypt/decrypt round trip works.
//   - Requests to Coffer time out (fail fast when it is sealed or away) and
//     recover by themselves; the token is renewed, and replaced when
//     renewal fails.
//   - Logs and metrics carry methods, codes, request uids and key_ids:
//     never plaintext, ciphertext or tokens. A panic becomes codes.Internal.
//   - The socket is created 0600 (in a 0700 directory when the plugin
//     creates it); an existing path is replaced only if it is a dead
//     socket.
//
// This package must not import the server's packages (core, barrier,
// engines): it talks to Coffer only over HTTP, like any client.
package kmsplugin
