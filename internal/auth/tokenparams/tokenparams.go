// Package tokenparams parses the token_* parameters that Vault's auth
// methods share (token_policies, token_ttl, token_max_ttl, token_period,
// token_num_uses, token_type, ...), keeps them on a user or role, and turns
// them into the logical.Auth of a login.
//
// Only what the token store can honour is accepted. Tokens are always
// service tokens carrying the default policy, so token_type "batch" and
// token_no_default_policy=true are refused with a 400 rather than silently
// ignored; their neutral values (as Terraform and other tools send them)
// are accepted. token_bound_cidrs binds the issued tokens to client
// addresses. The older names Vault still takes (policies, ttl, max_ttl,
// period, bound_cidrs) are accepted too; a token_* field wins over its
// older name.
//
// This package must not import core, server or any engine.
package tokenparams

import (
	"strings"
	"time"

	"github.com/coffer-dev/coffer/internal/auth/cidr"
	"github.com/coffer-dev/coffer/internal/logical"
)

// maxNumUses bounds token_num_uses.
const maxNumUses = 1<<31 - 1

// Params are the token parameters of a user or role. The zero value means
// "use the mount's and the system's defaults".
type Params struct {
	Policies       []string      `json:"token_policies"`
	TTL            time.Duration `json:"token_ttl"`
	MaxTTL         time.Duration `json:"token_max_ttl"`
	ExplicitMaxTTL time.Duration `json:"token_explicit_max_ttl"`
	Period         time.Duration `json:"token_period"`
	NumUses        int           `json:"token_num_uses"`
	// BoundCIDRs binds the tokens to client addresses (canonical blocks).
	BoundCIDRs []string `json:"token_bound_cidrs,omitempty"`
	// Legacy records that the policies were last set through the older
	// "policies" name, so reads show that name too, as Vault does.
	Legacy bool `json:"legacy_policies,omitempty"`
}

// Fields are the request fields Update understands.
var Fields = []string{
	"token_policies", "policies", "token_ttl", "ttl", "token_max_ttl", "max_ttl",
	"token_explicit_max_ttl", "token_period", "period", "token_num_uses", "token_type",
	"token_no_default_policy", "token_bound_cidrs", "bound_cidrs",
}

// pick returns the first of names present in d.
func pick(d map[string]any, names ...string) (string, any, bool) {
	for _, n := range names {
		if v, ok := d[n]; ok {
			return n, v, true
		}
	}
	return "", nil, false
}

// ParsePolicies reads a policy list: lower-cased, trimmed, de-duplicated,
// without "root" (which no login may grant).
func ParsePolicies(field string, v any) ([]string, error) {
	list, err := logical.ParseStrings(field, v)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(list))
	seen := map[string]bool{}
	for _, p := range list {
		p = strings.ToLower(strings.TrimSpace(p))
		if p == "" || seen[p] {
			continue
		}
		if p == "root" {
			return nil, logical.BadRequest("%s: an auth method cannot grant the root policy", field)
		}
		if len(p) > 128 || strings.ContainsAny(p, "/\x00") {
			return nil, logical.BadRequest("%s: invalid policy name %q", field, p)
		}
		seen[p] = true
		out = append(out, p)
	}
	return out, nil
}

// Update applies the token fields present in d to p and validates the
// result. Fields of d that are not token fields are ignored: the caller
// checks for unknown fields.
func (p *Params) Update(d map[string]any) error {
	next := *p
	if name, v, ok := pick(d, "token_policies", "policies"); ok {
		pols, err := ParsePolicies(name, v)
		if err != nil {
			return err
		}
		next.Policies = pols
		next.Legacy = name == "policies"
	}
	for _, f := range []struct {
		names []string
		dst   *time.Duration
	}{
		{[]string{"token_ttl", "ttl"}, &next.TTL},
		{[]string{"token_max_ttl", "max_ttl"}, &next.MaxTTL},
		{[]string{"token_explicit_max_ttl"}, &next.ExplicitMaxTTL},
		{[]string{"token_period", "period"}, &next.Period},
	} {
		if name, v, ok := pick(d, f.names...); ok {
			dur, err := logical.ParseDuration(name, v)
			if err != nil {
				return err
			}
			*f.dst = dur
		}
	}
	if v, ok := d["token_num_uses"]; ok {
		n, err := logical.ParseInt("token_num_uses", v)
		if err != nil {
			return err
		}
		if n < 0 || n > maxNumUses {
			return logical.BadRequest("token_num_uses must be zero (unlimited) or a positive number")
		}
		next.NumUses = int(n)
	}
	if v, ok := d["token_type"]; ok {
		s, err := logical.ParseString("token_type", v)
		if err != nil {
			return err
		}
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "", "default", "service", "default-service":
		default:
			return logical.BadRequest("token_type %q is not supported: Coffer issues service tokens only", s)
		}
	}
	if v, ok := d["token_no_default_policy"]; ok {
		b, err := logical.ParseBool("token_no_default_policy", v)
		if err != nil {
			return err
		}
		if b {
			return logical.BadRequest("token_no_default_policy is not supported: login tokens always carry the default policy")
		}
	}
	if name, v, ok := pick(d, "token_bound_cidrs", "bound_cidrs"); ok {
		list, err := logical.ParseStrings(name, v)
		if err != nil {
			return err
		}
		bound, err := cidr.Parse(list)
		if err != nil {
			return logical.BadRequest("%s: %v", name, err)
		}
		next.BoundCIDRs = nil
		if len(bound) > 0 {
			next.BoundCIDRs = bound.Strings()
		}
	}
	if next.MaxTTL > 0 && next.TTL > next.MaxTTL {
		return logical.BadRequest("token_ttl cannot be greater than token_max_ttl")
	}
	if next.ExplicitMaxTTL > 0 && next.TTL > next.ExplicitMaxTTL {
		return logical.BadRequest("token_ttl cannot be greater than token_explicit_max_ttl")
	}
	*p = next
	return nil
}

// Data writes the token fields of a read response into m, in Vault's
// shape.
func (p *Params) Data(m map[string]any) {
	pols := p.Policies
	if pols == nil {
		pols = []string{}
	}
	m["token_policies"] = pols
	m["token_ttl"] = logical.FormatSeconds(p.TTL)
	m["token_max_ttl"] = logical.FormatSeconds(p.MaxTTL)
	m["token_explicit_max_ttl"] = logical.FormatSeconds(p.ExplicitMaxTTL)
	m["token_period"] = logical.FormatSeconds(p.Period)
	m["token_num_uses"] = p.NumUses
	m["token_type"] = "default"
	m["token_no_default_policy"] = false
	m["token_bound_cidrs"] = []string{}
	if len(p.BoundCIDRs) > 0 {
		m["token_bound_cidrs"] = append([]string(nil), p.BoundCIDRs...)
	}
	if p.Legacy {
		m["policies"] = pols
	}
}

// Auth fills the token shape of a login's Auth: policies, TTL, the
// tighter of the max TTLs, period and number of uses. The core adds the
// default policy and issues the token.
func (p *Params) Auth(a *logical.Auth) {
	a.Policies = append([]string(nil), p.Policies...)
	a.TokenPolicies = append([]string(nil), p.Policies...)
	a.TTL = p.TTL
	a.MaxTTL = p.MaxTTL
	if p.ExplicitMaxTTL > 0 && (a.MaxTTL == 0 || p.ExplicitMaxTTL < a.MaxTTL) {
		a.MaxTTL = p.ExplicitMaxTTL
	}
	a.Period = p.Period
	if p.Period > 0 {
		// A periodic token lives one period at a time, as in Vault.
		a.TTL = p.Period
	}
	a.NumUses = p.NumUses
	a.Renewable = true
	a.BoundCIDRs = append([]string(nil), p.BoundCIDRs...)
}

// EquivalentPolicies reports whether two policy lists grant the same
// policies, ignoring order, duplicates and "default" (every login token
// carries it). Auth methods use it at renewal: a token whose user or role
// has other policies now is not renewed, as in Vault.
func EquivalentPolicies(a, b []string) bool {
	set := func(l []string) map[string]bool {
		m := map[string]bool{}
		for _, p := range l {
			if p != "default" {
				m[p] = true
			}
		}
		return m
	}
	sa, sb := set(a), set(b)
	if len(sa) != len(sb) {
		return false
	}
	for p := range sa {
		if !sb[p] {
			return false
		}
	}
	return true
}
