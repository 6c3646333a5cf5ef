// Package v1alpha1 holds the coffer.dev/v1alpha1 API: SecretSync
// (namespaced) and ClusterSecretSync (cluster-scoped). Their CRDs are
// deploy/crds/coffer.dev_secretsyncs.yaml and
// deploy/crds/coffer.dev_clustersecretsyncs.yaml; the deep-copy methods
// are written by hand in deepcopy.go, and a test checks them against the
// types by reflection.
//
// This package must not import the controllers.
package v1alpha1
