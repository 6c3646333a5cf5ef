package policy

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Operation is what a request asks to do. The values are Vault's operation
// names, the same strings as logical.Operation, so the pipeline can convert
// with Operation(req.Operation).
type Operation string

// Operations and the capability each needs.
const (
	OpCreate Operation = "create" // Create
	OpRead   Operation = "read"   // Read
	OpUpdate Operation = "update" // Update
	OpPatch  Operation = "patch"  // Patch
	OpDelete Operation = "delete" // Delete
	OpList   Operation = "list"   // List
	// OpHelp is always allowed, as in Vault: help text is not a secret.
	OpHelp Operation = "help"
)

// Request is what the ACL needs to know about one request.
type Request struct {
	// Path is the full logical path ("secret/data/app"); leading slashes
	// are ignored. For OpList a trailing "/" is added if missing, as Vault's
	// HTTP layer does; passing it already saves an allocation.
	Path string
	Op   Operation
	// Params is the request data (JSON body, or query for reads), checked
	// against the parameter constraints of the winning rule.
	Params map[string]any
	// RequiresSudo is set for root-protected paths: the winning rule must
	// also grant Sudo.
	RequiresSudo bool
	// WrapTTL is the response-wrapping TTL the request asked for; zero when
	// it asked for none.
	WrapTTL time.Duration
}

// Result is the ACL's answer for one request.
type Result struct {
	Allowed bool
	// IsRoot is set when the root policy allowed the request.
	IsRoot bool
	// Capabilities of the rule that decided (all but Deny for root, zero
	// when no rule matched).
	Capabilities Capability
	// Pattern is the winning rule's pattern; empty when none matched.
	Pattern string
	// Policies are the names of the policies that contributed the winning
	// rule, for audit. Shared with the ACL: do not modify.
	Policies []string
	// DeniedBy says why a request was denied, for logs. It names
	// parameters but never their values.
	DeniedBy string
}

// Reasons for a denial. Constants, so that evaluation does not allocate.
const (
	reasonNoRule      = "no policy rule matches the path"
	reasonDeny        = "denied by a deny rule"
	reasonSudo        = "the path requires the sudo capability"
	reasonUnsupported = "unsupported operation"
	reasonWrapMissing = "the path requires response wrapping"
	reasonWrapMax     = "the response-wrapping TTL is above max_wrapping_ttl"
	reasonWrapMin     = "the response-wrapping TTL is below min_wrapping_ttl"
	reasonWrapBounds  = "the merged min_wrapping_ttl is above max_wrapping_ttl"
	reasonDenyAll     = `all parameters are denied ("*" in denied_parameters)`
)

var rootPolicies = []string{RootName}

// ACL is a compiled set of policies. It is immutable and safe for
// concurrent use.
type ACL struct {
	root  bool
	exact map[string]*rule // patterns without wildcards
	globs node             // radix tree of the other patterns
	rules []*rule          // every rule, sorted by pattern
}

// rule is the merge of every policy rule with one pattern.
type rule struct {
	pattern   string   // as written, without the leading "/"
	lit       string   // pattern without the trailing "*"
	prefix    bool     // pattern ends in "*"
	wildcard  bool     // pattern has "+" segments
	segs      []string // segments of lit, for wildcard rules
	wildcards int      // number of "+" segments
	head      int      // position of the first wildcard (Vault's firstWCOrGlob)

	caps     Capability
	allowed  map[string][]any
	denied   map[string][]any
	required []string
	allowAll bool // allowed has the "*" key
	minWrap  time.Duration
	maxWrap  time.Duration
	policies []string
}

// NewACL compiles policies into an ACL. If the root policy (see Root) is
// among them the ACL allows everything. Rules with the same pattern, within
// a policy or across policies, merge as in Vault: capabilities union, a
// deny wins and drops everything else, parameter constraints merge, and the
// lower of two wrapping TTLs is kept.
func NewACL(policies ...*Policy) (*ACL, error) {
	a := &ACL{exact: make(map[string]*rule)}
	byPattern := make(map[string]*rule)
	for _, p := range policies {
		if p == nil {
			return nil, fmt.Errorf("compile acl: nil policy")
		}
		if p.root {
			a.root = true
			continue
		}
		for _, pr := range p.Rules {
			pattern, msg := checkPattern(pr.Pattern)
			if msg != "" {
				return nil, fmt.Errorf("compile acl: policy %q: path %q: %s", p.Name, pr.Pattern, msg)
			}
			r := byPattern[pattern]
			if r == nil {
				r = newRule(pattern)
				byPattern[pattern] = r
			}
			r.merge(p.Name, &pr)
		}
	}
	for _, r := range byPattern {
		a.rules = append(a.rules, r)
	}
	sort.Slice(a.rules, func(i, j int) bool { return a.rules[i].pattern < a.rules[j].pattern })
	for _, r := range a.rules {
		_, r.allowAll = r.allowed["*"]
		if !r.prefix && !r.wildcard {
			a.exact[r.pattern] = r
			continue
		}
		a.globs.insert(r.lit[:r.head], r)
	}
	a.globs.finish()
	return a, nil
}

func newRule(pattern string) *rule {
	r := &rule{pattern: pattern, lit: pattern}
	if lit, ok := strings.CutSuffix(pattern, "*"); ok {
		r.lit, r.prefix = lit, true
	}
	r.head = len(r.lit)
	for seg := range strings.SplitSeq(r.lit, "/") {
		if seg != "+" {
			continue
		}
		if !r.wildcard {
			// Vault measures from the first "+" anywhere in the pattern,
			// even a literal one inside an earlier segment ("c++/+/x").
			r.head = strings.IndexByte(r.lit, '+')
		}
		r.wildcard = true
		r.wildcards++
	}
	if r.wildcard {
		r.segs = strings.Split(r.lit, "/")
	}
	return r
}

func (r *rule) merge(policy string, pr *Rule) {
	if !slices.Contains(r.policies, policy) {
		r.policies = append(r.policies, policy)
	}
	if r.caps&Deny != 0 {
		return
	}
	if pr.Capabilities&Deny != 0 {
		r.caps = Deny
		r.allowed, r.denied, r.required = nil, nil, nil
		r.minWrap, r.maxWrap = 0, 0
		return
	}
	r.caps |= pr.Capabilities
	if pr.MaxWrappingTTL > 0 && (r.maxWrap == 0 || pr.MaxWrappingTTL < r.maxWrap) {
		r.maxWrap = pr.MaxWrappingTTL
	}
	if pr.MinWrappingTTL > 0 && (r.minWrap == 0 || pr.MinWrappingTTL < r.minWrap) {
		r.minWrap = pr.MinWrappingTTL
	}
	r.allowed = mergeParams(r.allowed, pr.AllowedParameters)
	r.denied = mergeParams(r.denied, pr.DeniedParameters)
	for _, name := range pr.RequiredParameters {
		if name = strings.ToLower(name); !slices.Contains(r.required, name) {
			r.required = append(r.required, name)
		}
	}
}

// mergeParams merges src into dst as Vault does: an empty list (any value)
// absorbs the other side; otherwise the value lists are concatenated. Note
// that this makes a rule with allowed_parameters restrict the same pattern
// in a policy that had none: that is Vault's behaviour.
func mergeParams(dst, src map[string][]any) map[string][]any {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = make(map[string][]any, len(src))
	}
	for k, v := range src {
		k = strings.ToLower(k)
		old, ok := dst[k]
		if len(v) == 0 || (ok && len(old) == 0) {
			dst[k] = []any{}
			continue
		}
		dst[k] = append(slices.Clip(old), v...)
	}
	return dst
}

// Root reports whether the ACL holds the root policy.
func (a *ACL) Root() bool { return a.root }

// Allowed decides one request. The order of checks is Vault's: find the
// winning rule (see match), then deny, the operation's capability, sudo,
// wrapping TTLs and parameters.
func (a *ACL) Allowed(req Request) Result {
	if a.root {
		return Result{Allowed: true, IsRoot: true, Capabilities: allCapabilities, Policies: rootPolicies}
	}
	need, reasonMissing := opCapability(req.Op)
	if req.Op == OpHelp {
		return Result{Allowed: true}
	}
	if need == 0 {
		return Result{DeniedBy: reasonUnsupported}
	}
	path := strings.TrimLeft(req.Path, "/")
	list := req.Op == OpList
	if list && !strings.HasSuffix(path, "/") {
		path += "/"
	}
	r := a.match(path, list)
	if r == nil {
		return Result{DeniedBy: reasonNoRule}
	}
	res := Result{Capabilities: r.caps, Pattern: r.pattern, Policies: r.policies}
	switch {
	case r.caps&Deny != 0:
		res.DeniedBy = reasonDeny
	case r.caps&need == 0:
		res.DeniedBy = reasonMissing
	case req.RequiresSudo && r.caps&Sudo == 0:
		res.DeniedBy = reasonSudo
	default:
		res.DeniedBy = r.checkWrapping(req.WrapTTL)
		if res.DeniedBy == "" && needsParamCheck(req.Op) {
			res.DeniedBy = r.checkParams(req.Params)
		}
	}
	res.Allowed = res.DeniedBy == ""
	return res
}

func opCapability(op Operation) (Capability, string) {
	switch op {
	case OpCreate:
		return Create, `missing the "create" capability`
	case OpRead:
		return Read, `missing the "read" capability`
	case OpUpdate:
		return Update, `missing the "update" capability`
	case OpPatch:
		return Patch, `missing the "patch" capability`
	case OpDelete:
		return Delete, `missing the "delete" capability`
	case OpList:
		return List, `missing the "list" capability`
	}
	return 0, reasonUnsupported
}

// needsParamCheck lists the operations whose data Vault checks against
// parameter constraints. Vault includes read: a GET's query parameters are
// request data too.
func needsParamCheck(op Operation) bool {
	return op == OpRead || op == OpCreate || op == OpUpdate || op == OpPatch
}

// match finds the rule that decides path, in Vault's order: an exact rule
// beats any glob; for a list, the path without its trailing "/" is tried
// against exact rules and then globs before the path itself is tried
// against globs (Vault 1.15+, so "secret/+/dir" and "secret/dir" both
// grant listing "secret/x/dir/").
func (a *ACL) match(path string, list bool) *rule {
	if r := a.exact[path]; r != nil {
		return r
	}
	if list {
		trimmed := strings.TrimSuffix(path, "/")
		if r := a.exact[trimmed]; r != nil {
			return r
		}
		if len(trimmed) < len(path) {
			if r := a.globs.match(trimmed, 0); r != nil {
				return r
			}
		}
	}
	return a.globs.match(path, 0)
}

func (r *rule) checkWrapping(ttl time.Duration) string {
	switch {
	case r.maxWrap > 0 && ttl == 0, r.minWrap > 0 && ttl == 0:
		return reasonWrapMissing
	case r.maxWrap > 0 && ttl > r.maxWrap:
		return reasonWrapMax
	case r.minWrap > 0 && ttl < r.minWrap:
		return reasonWrapMin
	case r.minWrap > 0 && r.maxWrap > 0 && r.maxWrap < r.minWrap:
		return reasonWrapBounds
	}
	return ""
}

// Capabilities returns the capabilities the ACL grants on path, sorted, as
// sys/capabilities reports them: ["root"] for root, ["deny"] when nothing
// (or a deny) applies. Like Vault, it matches path as a list request would,
// so "secret/dir/" also reports rules written as "secret/dir".
func (a *ACL) Capabilities(path string) []string {
	if a.root {
		return []string{"root"}
	}
	r := a.match(strings.TrimLeft(path, "/"), true)
	if r == nil || r.caps&Deny != 0 || r.caps == 0 {
		return []string{"deny"}
	}
	names := r.caps.Names()
	sort.Strings(names)
	return names
}

// HasMountAccess reports whether the ACL grants anything at or below the
// mount path ("secret/"), as Vault checks for sys/internal/ui/mounts/<path>:
// any non-deny capability on the mount itself, on an exact or prefix rule
// below it, or on a "+" rule whose leading segments match the mount's.
func (a *ACL) HasMountAccess(mount string) bool {
	if a.root {
		return true
	}
	m := strings.TrimLeft(mount, "/")
	if !strings.HasSuffix(m, "/") {
		m += "/"
	}
	if caps := a.Capabilities(m); caps[0] != "deny" {
		return true
	}
	segs := strings.Split(strings.TrimSuffix(m, "/"), "/")
	for _, r := range a.rules {
		if r.caps&Deny != 0 || r.caps == 0 {
			continue
		}
		if r.wildcard {
			if r.coversMount(segs) {
				return true
			}
		} else if strings.HasPrefix(r.lit, m) {
			return true
		}
	}
	return false
}
