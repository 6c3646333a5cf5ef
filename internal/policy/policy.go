package policy

import (
	"fmt"
	"strings"
	"time"
)

// Policy is one parsed policy document.
type Policy struct {
	// Name is the normalized (trimmed, lower-case) policy name.
	Name string
	// Raw is the text the policy was parsed from, kept for sys/policy reads.
	Raw string
	// Rules are the path rules in source order. The same pattern may appear
	// more than once; NewACL merges such rules as it merges across policies.
	Rules []Rule

	root bool // only Root sets it: a hand-built Policy named "root" is not root
}

// Rule is one `path "<pattern>" { ... }` block.
type Rule struct {
	// Pattern is the path pattern without its leading "/": an exact path, a
	// prefix ending in "*", and/or with "+" segments.
	Pattern string
	// Capabilities granted by the rule; the legacy `policy = "..."` field is
	// already folded in. A rule holding Deny holds nothing else.
	Capabilities Capability
	// AllowedParameters and DeniedParameters map lower-cased parameter names
	// to values; an empty (non-nil) list means any value. Values are string,
	// float64, bool, nil, []any or map[string]any. Nil when not set.
	AllowedParameters map[string][]any
	DeniedParameters  map[string][]any
	// RequiredParameters are lower-cased parameter names.
	RequiredParameters []string
	// MinWrappingTTL and MaxWrappingTTL bound the response-wrapping TTL a
	// request must ask for; zero means unset.
	MinWrappingTTL time.Duration
	MaxWrappingTTL time.Duration
	// Line is the line of the path block in the source, for messages.
	Line int
}

// Names of the built-in policies.
const (
	RootName    = "root"
	DefaultName = "default"
)

// DefaultPolicy is the text of the built-in "default" policy: token
// self-service. It follows Vault's default policy (vault/policy_store.go),
// minus the rules for features Coffer does not have: templated identity
// paths, control groups and the OIDC provider. Operators may rewrite it;
// Coffer never overwrites their version.
const DefaultPolicy = `# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
  capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
  capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
  capabilities = ["update"]
}

# Allow a token to look up its resultant ACL from all policies (for UIs)
path "sys/internal/ui/resultant-acl" {
  capabilities = ["read"]
}

# Allow a token to renew a lease via lease_id in the request body; old path
# for old clients, new path for newer
path "sys/renew" {
  capabilities = ["update"]
}
path "sys/leases/renew" {
  capabilities = ["update"]
}

# Allow looking up lease properties. This requires knowing the lease ID ahead
# of time and does not divulge any sensitive information.
path "sys/leases/lookup" {
  capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
  capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a given
# response-wrapping token
path "sys/wrapping/lookup" {
  capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token
path "sys/wrapping/unwrap" {
  capabilities = ["update"]
}

# Allow general purpose tools
path "sys/tools/hash" {
  capabilities = ["update"]
}
path "sys/tools/hash/*" {
  capabilities = ["update"]
}
`

// Default returns the built-in default policy, freshly parsed from
// DefaultPolicy.
func Default() *Policy {
	p, err := Parse(DefaultName, DefaultPolicy)
	if err != nil {
		panic(fmt.Sprintf("policy: built-in default policy does not parse: %v", err))
	}
	return p
}

// Root returns the built-in root policy. An ACL holding it allows every
// operation on every path; it is the only way to obtain such an ACL.
func Root() *Policy { return &Policy{Name: RootName, root: true} }

// IsRoot reports whether p is the built-in root policy.
func (p *Policy) IsRoot() bool { return p != nil && p.root }

// NormalizeName returns the canonical form of a policy name, as Vault stores
// it: trimmed and lower-case.
func NormalizeName(name string) string { return strings.ToLower(strings.TrimSpace(name)) }
