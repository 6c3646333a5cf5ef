package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is coffer.dev/v1alpha1.
var GroupVersion = schema.GroupVersion{Group: "coffer.dev", Version: "v1alpha1"}

// AddToScheme registers the types of this package.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &SecretSync{}, &SecretSyncList{}, &ClusterSecretSync{}, &ClusterSecretSyncList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// Annotations and labels the controllers read and write.
const (
	// ForceSyncAnnotation: a new value makes the controller sync now.
	ForceSyncAnnotation = "coffer.dev/force-sync"
	// ManagedByAnnotation names the SecretSync that writes a Secret created
	// with creationPolicy Orphan (Owner uses an owner reference).
	ManagedByAnnotation = "coffer.dev/secretsync"
	// AllowMergeAnnotation ("true") on an existing Secret lets a SecretSync
	// with creationPolicy Merge write keys into it.
	AllowMergeAnnotation = "coffer.dev/allow-merge"
	// ClusterSecretSyncLabel marks the SecretSyncs a ClusterSecretSync made.
	ClusterSecretSyncLabel = "coffer.dev/cluster-secret-sync"
)

// CreationPolicy says whether and how the target Secret is created.
type CreationPolicy string

const (
	// CreationOwner creates the Secret with an owner reference to the
	// SecretSync, so Kubernetes deletes it with the SecretSync. Default.
	CreationOwner CreationPolicy = "Owner"
	// CreationOrphan creates the Secret without an owner reference; it
	// stays when the SecretSync is deleted.
	CreationOrphan CreationPolicy = "Orphan"
	// CreationMerge writes the synced keys into an existing Secret that
	// carries coffer.dev/allow-merge: "true"; it never creates one.
	CreationMerge CreationPolicy = "Merge"
	// CreationNone writes nothing: the SecretSync only checks that the
	// source can be read.
	CreationNone CreationPolicy = "None"
)

// DeletionPolicy says what happens to the target Secret when the source
// secret is deleted in Coffer.
type DeletionPolicy string

const (
	// DeletionRetain keeps the last synced Secret. Default.
	DeletionRetain DeletionPolicy = "Retain"
	// DeletionDelete deletes the target Secret (Owner and Orphan only).
	DeletionDelete DeletionPolicy = "Delete"
)

// Condition type and reasons.
const (
	ConditionReady      = "Ready"
	ReasonSynced        = "SecretSynced"
	ReasonSyncedError   = "SecretSyncedError"
	ReasonSecretDeleted = "SecretDeleted"
)

// SecretSync keeps a Secret in its namespace in step with a secret in
// Coffer.
type SecretSync struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SecretSyncSpec   `json:"spec"`
	Status SecretSyncStatus `json:"status,omitempty"`
}

// SecretSyncList is a list of SecretSyncs.
type SecretSyncList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SecretSync `json:"items"`
}

// SecretSyncSpec is what to sync, from where, as whom, and into what.
type SecretSyncSpec struct {
	Coffer CofferRef `json:"coffer"`
	Source Source    `json:"source"`
	// RefreshInterval between reads of a KV source (default 1h; 0 syncs
	// once, and again only when the spec or force-sync annotation
	// changes). Database sources follow their lease instead.
	RefreshInterval *metav1.Duration `json:"refreshInterval,omitempty"`
	Target          Target           `json:"target,omitempty"`
}

// CofferRef says which server to use and how to log in to it.
type CofferRef struct {
	// Address of the Coffer server; empty means the controller's default.
	// Only addresses the controller allows are accepted.
	Address string     `json:"address,omitempty"`
	Auth    CofferAuth `json:"auth"`
}

// CofferAuth holds the login method. Only Kubernetes auth exists: the
// controller logs in as a service account of the SecretSync's own
// namespace, so a SecretSync reads only what that account's role allows.
type CofferAuth struct {
	Kubernetes *KubernetesAuth `json:"kubernetes,omitempty"`
}

// KubernetesAuth logs in through Coffer's kubernetes auth method with a
// short-lived token of ServiceAccountName (TokenRequest API).
type KubernetesAuth struct {
	// MountPath of the auth method (default "kubernetes").
	MountPath string `json:"mountPath,omitempty"`
	Role      string `json:"role"`
	// ServiceAccountName in the SecretSync's namespace.
	ServiceAccountName string `json:"serviceAccountName"`
	// Audiences of the requested token; they must include the role's
	// audience. Empty: the API server's default audience.
	Audiences []string `json:"audiences,omitempty"`
}

// Source is one of KV or Database.
type Source struct {
	KV       *KVSource       `json:"kv,omitempty"`
	Database *DatabaseSource `json:"database,omitempty"`
}

// KVSource reads a KV version 2 secret.
type KVSource struct {
	// Mount of the KV v2 engine, e.g. "secret".
	Mount string `json:"mount"`
	// Path of the secret below the mount, e.g. "app/db".
	Path string `json:"path"`
	// Version to read; 0 or absent reads the latest.
	Version int64 `json:"version,omitempty"`
	// Keys selects properties; empty copies every key of the secret.
	Keys []KeySelector `json:"keys,omitempty"`
}

// KeySelector copies one property of the source secret to one key of the
// target Secret.
type KeySelector struct {
	SecretKey string `json:"secretKey"`
	// Property of the source secret; a dotted path reaches into nested
	// objects ("db.password").
	Property string `json:"property"`
}

// DatabaseSource issues dynamic credentials from a database secrets
// engine (GET <mount>/creds/<role>). The lease is renewed, and new
// credentials are issued at about two thirds of their lifetime.
type DatabaseSource struct {
	// Mount of the database engine (default "database").
	Mount string `json:"mount,omitempty"`
	Role  string `json:"role"`
}

// Target describes the Secret written.
type Target struct {
	// Name of the Secret (default: the SecretSync's name).
	Name string `json:"name,omitempty"`
	// Type of the Secret (default Opaque). kubernetes.io/service-account-token
	// is refused.
	Type        corev1.SecretType `json:"type,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Template renders the Secret's data with Go templates over the
	// fetched values.
	Template       *Template      `json:"template,omitempty"`
	CreationPolicy CreationPolicy `json:"creationPolicy,omitempty"`
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// Template renders target keys from the fetched values.
type Template struct {
	// Data maps a Secret key to a Go template; "." is the map of fetched
	// values ({{ .password }}, {{ index . "db-user" }}).
	Data map[string]string `json:"data,omitempty"`
	// MergePolicy Replace (default) writes only the templated keys; Merge
	// also keeps the fetched keys.
	MergePolicy string `json:"mergePolicy,omitempty"`
}

// SecretSyncStatus reports the last sync.
type SecretSyncStatus struct {
	ObservedGeneration int64              `json:"observedGeneration,omitempty"`
	Conditions         []metav1.Condition `json:"conditions,omitempty"`
	// RefreshTime is when the source was last read successfully.
	RefreshTime *metav1.Time `json:"refreshTime,omitempty"`
	// SyncedResourceVersion of the target Secret after the last write; a
	// different one means someone else changed it.
	SyncedResourceVersion string `json:"syncedResourceVersion,omitempty"`
	// SourceVersion is the KV version last synced.
	SourceVersion int64 `json:"sourceVersion,omitempty"`
	// ForceSyncRequest is the last coffer.dev/force-sync value handled.
	ForceSyncRequest string `json:"forceSyncRequest,omitempty"`
	// Lease of the dynamic credentials in the target Secret.
	Lease *LeaseStatus `json:"lease,omitempty"`
}

// LeaseStatus tracks the lease of dynamic credentials.
type LeaseStatus struct {
	ID        string `json:"id"`
	Renewable bool   `json:"renewable,omitempty"`
	// DurationSeconds is the lease's TTL when it was issued.
	DurationSeconds int64 `json:"durationSeconds,omitempty"`
	// IssueTime of the credentials.
	IssueTime metav1.Time `json:"issueTime"`
	// ExpireTime is when the credentials stop working: the lease's end or
	// the end of the Coffer token that issued them, whichever is first.
	ExpireTime metav1.Time `json:"expireTime"`
	// TokenExpireTime is when the Coffer token that issued the lease
	// expires (its leases are revoked with it).
	TokenExpireTime *metav1.Time `json:"tokenExpireTime,omitempty"`
	// RenewTime is when the controller next renews or replaces them.
	RenewTime metav1.Time `json:"renewTime"`
}

// ClusterSecretSync stamps a SecretSync into each selected namespace.
// Each SecretSync logs in with its own namespace's service account.
type ClusterSecretSync struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ClusterSecretSyncSpec   `json:"spec"`
	Status ClusterSecretSyncStatus `json:"status,omitempty"`
}

// ClusterSecretSyncList is a list of ClusterSecretSyncs.
type ClusterSecretSyncList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterSecretSync `json:"items"`
}

// ClusterSecretSyncSpec selects namespaces and the SecretSync to create
// in each.
type ClusterSecretSyncSpec struct {
	// Namespaces lists namespaces by name.
	Namespaces []string `json:"namespaces,omitempty"`
	// NamespaceSelector selects namespaces by label; the union with
	// Namespaces is used.
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// SecretSyncName names the SecretSyncs created (default: the
	// ClusterSecretSync's name).
	SecretSyncName string `json:"secretSyncName,omitempty"`
	// SecretSyncSpec is the spec of each SecretSync.
	SecretSyncSpec SecretSyncSpec `json:"secretSyncSpec"`
}

// ClusterSecretSyncStatus reports the namespaces served.
type ClusterSecretSyncStatus struct {
	ObservedGeneration int64              `json:"observedGeneration,omitempty"`
	Conditions         []metav1.Condition `json:"conditions,omitempty"`
	// ProvisionedNamespaces hold a SecretSync made by this object.
	ProvisionedNamespaces []string `json:"provisionedNamespaces,omitempty"`
	// FailedNamespaces could not be served, or their SecretSync is not
	// Ready.
	FailedNamespaces []NamespaceFailure `json:"failedNamespaces,omitempty"`
}

// NamespaceFailure says why one namespace is not in sync.
type NamespaceFailure struct {
	Namespace string `json:"namespace"`
	Reason    string `json:"reason"`
}
