// Package policy parses and evaluates Vault-compatible ACL policies.
//
// A policy is a list of path rules written in HCL or JSON:
//
//	path "secret/data/app/*" {
//	  capabilities = ["create", "read", "update", "patch", "delete", "list"]
//	}
//
// Parse turns policy text into a *Policy; NewACL compiles a set of policies
// into an *ACL that answers, for one request, whether it may proceed. The
// compiled ACL is immutable and safe for concurrent use: build it once per
// token policy set (and cache it), then call Allowed per request.
//
// Security properties: evaluation is deny by default; a rule with the deny
// capability denies everything on the paths it wins; parsing is strict
// (unknown attributes, unknown capabilities and misplaced globs are errors,
// never ignored), so a typo cannot silently widen or narrow access. The
// semantics follow Vault's ACL (vault/acl.go) and its policy documentation;
// where Coffer deliberately differs, the code says so next to the rule.
//
// This package is pure: it must not import net/http, storage, or any other
// Coffer package. The request pipeline maps its own requests to Request.
package policy
