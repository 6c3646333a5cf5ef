// Package sealedsecrets implements the Bitnami Sealed Secrets format
// (bitnami.com/v1alpha1 SealedSecret, kubeseal v0.27.1) so that objects
// sealed by kubeseal open here, and objects sealed here open in the Bitnami
// controller. Facts are in ../shared/REFERENCE.md ("Sealed Secrets") and
// were checked against the real kubeseal and controller (see the interop
// tests); docs/sealed-secrets.md is the user-facing guide.
//
// # Blob format
//
// Every value of spec.encryptedData (and the legacy spec.data) is the
// standard, padded base64 of one blob:
//
//	blob = len(rsaCiphertext) as uint16 big-endian
//	    || rsaCiphertext          RSA-OAEP(SHA-256, MGF1-SHA-256, label) of a
//	                              fresh 32-byte session key
//	    || aesCiphertext || tag   AES-256-GCM under the session key, nonce of
//	                              12 zero bytes, no additional data
//
// The all-zero nonce is safe only because every session key encrypts
// exactly one value. The OAEP label binds the blob to where it may be
// opened (its scope):
//
//	strict          "<namespace>/<name>"
//	namespace-wide  "<namespace>"
//	cluster-wide    ""
//
// A blob names no key: decryption tries every private key the controller
// has, newest first.
//
// # Scope
//
// The scope of a SealedSecret is read from its own metadata.annotations:
// sealedsecrets.bitnami.com/cluster-wide: "true" wins over
// sealedsecrets.bitnami.com/namespace-wide: "true"; otherwise strict. A
// strict SealedSecret renamed or moved opens under no key.
//
// # Security properties
//
//   - Every decryption failure (bad base64, truncated blob, wrong label,
//     wrong key, modified ciphertext) returns the same error, ErrDecrypt,
//     whose message never varies, so the controller's status and its
//     /v1/verify endpoint are not oracles. The individual failures stay
//     reachable with errors.Is/As for debugging, never in Error().
//   - Decrypt never renders spec.template.data; only Unseal does, and only
//     the controller calls it to build the Secret.
//   - Re-encryption keeps the scope the object was opened with, and refuses
//     a template whose annotations claim a wider scope than that.
//   - Key pairs print as [REDACTED]; errors never contain plaintext.
//
// The package depends on k8s.io/api and apimachinery for the object types,
// never on client-go: it talks to no server.
package sealedsecrets
