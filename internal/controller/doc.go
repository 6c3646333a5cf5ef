// Package controller is the skeleton of `coffer controller`: it builds the
// controller-runtime manager every reconciler plugs into (Kubernetes
// client configuration, leader election, health and readiness probes,
// the Prometheus metrics endpoint, structured logs) and runs it.
//
// Reconcilers live in their own packages (sealedsecret, secretsync,
// rollout) and each exposes a Setup(mgr manager.Manager, ...) error that
// registers its controllers, runnables and checks; internal/cli/
// controller.go wires them together. Nothing here knows about any one
// reconciler.
//
// # Reading Secrets
//
// The manager's client never reads Secrets from its cache: Get and List
// of Secrets go to the API server. Caching Secrets would need list and
// watch of every Secret in the cluster (RBAC that reads them all) and
// would keep every value in the controller's memory. A reconciler that
// truly needs to watch Secrets sets that up itself, and documents the
// RBAC it needs.
//
// # Logs
//
// Logs are structured (JSON or text, through log/slog) and carry object
// names, never Secret values: reconcilers log errors whose messages are
// built to contain no plaintext.
package controller
