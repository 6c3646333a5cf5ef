// Package kubernetes is the "kubernetes" auth method: a pod logs in with
// its service account token and receives a Coffer token carrying the
// policies of a role bound to that service account.
//
// Login is decided by the Kubernetes API server, never by this package
// alone: the token is sent to the TokenReview API
// (authentication.k8s.io/v1) with the role's audience, and only a review
// that says "authenticated", names a service account
// (system:serviceaccount:<namespace>:<name>) matching the role's bound
// namespaces and names (globs allowed), and grants the role's audience, is
// accepted. The JWT's claims are read without verification only to refuse
// obviously unbound tokens before the review and to cross-check the
// reviewed identity; when pem_keys is configured the signature is also
// verified locally first.
//
// The reviewer credential is, in order: the configured token_reviewer_jwt;
// the server's own pod token, re-read from disk every minute so a rotated
// projected token keeps working; or the logging-in token itself. Neither the
// reviewer credential nor the client's JWT ever appears in an error, a log
// line or a read of the config.
//
// This package must not import core, server or any engine.
package kubernetes
