// Package secretsync is the SecretSync controller of `coffer controller`:
// it copies secrets from Coffer (a KV version 2 secret, or dynamic
// database credentials) into Kubernetes Secrets and keeps them fresh, and
// the ClusterSecretSync controller stamps SecretSyncs into many
// namespaces. The API types are in package v1alpha1; docs/kubernetes.md
// is the user reference.
//
// # Security
//
// The controller has no Coffer credential of its own. For each SecretSync
// it asks the TokenRequest API for a short-lived token of a service
// account of the SecretSync's own namespace, logs in to Coffer's
// kubernetes auth method with it, and keeps the resulting Coffer token in
// memory only, per (namespace, service account, role). A SecretSync can
// therefore read only what the role bound to its namespace's account
// allows. Service-account tokens are sent only to the controller's Coffer
// address or to addresses the operator allowed.
//
// Secrets are watched as metadata only and read uncached, so Secret data
// never sits in the controller's cache. Status messages, events and logs
// name paths and reasons, never values; template errors have the fetched
// values redacted. Tenant-written templates are restricted so their cost
// stays linear (see checkTemplate), and rendered data is capped at 1 MiB.
// The controller never writes service-account-token Secrets, never takes
// over a Secret it does not manage, and merges only into Secrets that opt
// in.
//
// This package must not import the server's packages.
package secretsync
