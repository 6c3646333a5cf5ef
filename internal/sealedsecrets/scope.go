package sealedsecrets

import "fmt"

// Annotations Bitnami defines, on SealedSecrets and on the Secrets and
// templates they carry.
const (
	annotationPrefix = "sealedsecrets.bitnami.com/"
	// AnnotationClusterWide "true": sealed for any name in any namespace.
	AnnotationClusterWide = annotationPrefix + "cluster-wide"
	// AnnotationNamespaceWide "true": sealed for any name in its namespace.
	AnnotationNamespaceWide = annotationPrefix + "namespace-wide"
	// AnnotationManaged "true" on an existing Secret lets the controller
	// take it over.
	AnnotationManaged = annotationPrefix + "managed"
	// AnnotationPatch "true" on the Secret (or its template): merge the
	// unsealed data, labels and annotations into it instead of replacing.
	AnnotationPatch = annotationPrefix + "patch"
	// AnnotationSkipSetOwnerReferences "true" in the template: the Secret
	// gets no owner reference (it outlives the SealedSecret).
	AnnotationSkipSetOwnerReferences = annotationPrefix + "skip-set-owner-references"
)

// Scope says where a sealed value may be opened: it selects the OAEP label.
type Scope int

// Scopes, narrowest first (the order matters: a greater Scope is wider).
const (
	ScopeStrict Scope = iota
	ScopeNamespaceWide
	ScopeClusterWide
)

// String returns the kubeseal --scope spelling.
func (s Scope) String() string {
	switch s {
	case ScopeStrict:
		return "strict"
	case ScopeNamespaceWide:
		return "namespace-wide"
	case ScopeClusterWide:
		return "cluster-wide"
	default:
		return fmt.Sprintf("Scope(%d)", int(s))
	}
}

// ParseScope parses a kubeseal --scope value; "" is strict.
func ParseScope(s string) (Scope, error) {
	switch s {
	case "", "strict":
		return ScopeStrict, nil
	case "namespace-wide":
		return ScopeNamespaceWide, nil
	case "cluster-wide":
		return ScopeClusterWide, nil
	default:
		return 0, fmt.Errorf("invalid scope %q: must be one of strict, namespace-wide, cluster-wide", s)
	}
}

// ScopeOf reads the scope annotations; cluster-wide wins over
// namespace-wide, and only the exact value "true" counts.
func ScopeOf(annotations map[string]string) Scope {
	if annotations[AnnotationClusterWide] == "true" {
		return ScopeClusterWide
	}
	if annotations[AnnotationNamespaceWide] == "true" {
		return ScopeNamespaceWide
	}
	return ScopeStrict
}

// SetScope returns annotations (a new map when nil) with the scope
// annotations set for s and the others removed.
func SetScope(annotations map[string]string, s Scope) map[string]string {
	if annotations == nil {
		annotations = map[string]string{}
	}
	delete(annotations, AnnotationClusterWide)
	delete(annotations, AnnotationNamespaceWide)
	switch s {
	case ScopeNamespaceWide:
		annotations[AnnotationNamespaceWide] = "true"
	case ScopeClusterWide:
		annotations[AnnotationClusterWide] = "true"
	}
	return annotations
}

// Label is the OAEP label for a value sealed for namespace/name in scope s.
func Label(namespace, name string, s Scope) []byte {
	switch s {
	case ScopeClusterWide:
		return []byte{}
	case ScopeNamespaceWide:
		return []byte(namespace)
	default:
		return []byte(namespace + "/" + name)
	}
}
