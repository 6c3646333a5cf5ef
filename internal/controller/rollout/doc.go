// Package rollout restarts workloads when the Secrets they use change.
//
// A Deployment, StatefulSet or DaemonSet opts in with the annotation
// coffer.dev/rollout-on-secret-change: "true" (every Secret its pod
// template references through env, envFrom, secret volumes and projected
// volumes) or a comma-separated list of Secret names. The controller sets
// the pod-template annotation coffer.dev/secret-hash to a digest of those
// Secrets' data; when any of them changes, from any source, the digest
// changes and Kubernetes rolls the pods.
//
// The digest is SHA-256 over the Secrets' names, keys and values in a
// length-prefixed canonical order, truncated to 128 bits. It reveals
// nothing usable about the values, but like any digest it confirms a
// guess of a whole low-entropy Secret, so it is only as private as the
// workload's pod template.
//
// Secrets are watched as metadata only and read uncached when a digest is
// computed, so the controller never holds the cluster's Secret data in
// memory. Workloads are indexed by the Secrets they reference, so a Secret
// event touches only its dependants.
package rollout
