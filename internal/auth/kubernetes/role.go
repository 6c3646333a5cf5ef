package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/coffer-dev/coffer/internal/auth/cidr"
	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
)

const rolePrefix = "role/"

// Alias name sources, as in Vault.
const (
	aliasUID  = "serviceaccount_uid"
	aliasName = "serviceaccount_name"
)

// role binds service accounts to the shape of the token they get.
type role struct {
	BoundNames      []string      `json:"bound_service_account_names"`
	BoundNamespaces []string      `json:"bound_service_account_namespaces"`
	Audience        string        `json:"audience,omitempty"`
	AliasNameSource string        `json:"alias_name_source"`
	Policies        []string      `json:"token_policies"`
	TTL             time.Duration `json:"token_ttl"`
	MaxTTL          time.Duration `json:"token_max_ttl"`
	Period          time.Duration `json:"token_period"`
	NumUses         int           `json:"token_num_uses"`
	// BoundCIDRs binds the tokens to client addresses (canonical blocks).
	BoundCIDRs []string `json:"token_bound_cidrs,omitempty"`
}

var roleNameRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,127}$`)

// roleFields are the fields a role write accepts; "policies", "ttl",
// "max_ttl" and "period" are Vault's older names of the token_* fields.
var roleFields = []string{
	"bound_service_account_names", "bound_service_account_namespaces", "audience",
	"alias_name_source", "token_policies", "policies", "token_ttl", "ttl",
	"token_max_ttl", "max_ttl", "token_period", "period", "token_num_uses",
	"token_bound_cidrs", "bound_cidrs",
}

func checkRoleName(name string) error {
	if !roleNameRe.MatchString(name) {
		return logical.BadRequest("invalid role name %q: use letters, digits, '_', '.', '@' and '-' (at most 128)", name)
	}
	return nil
}

func (b *Backend) loadRole(ctx context.Context, name string) (*role, error) {
	e, err := b.store.Get(ctx, rolePrefix+name)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes: read role: %w", err)
	}
	var r role
	if err := json.Unmarshal(e.Value, &r); err != nil {
		return nil, fmt.Errorf("kubernetes: decode role: %w", err)
	}
	return &r, nil
}

func (b *Backend) listRoles(ctx context.Context) (*logical.Response, error) {
	names, err := b.store.List(ctx, rolePrefix)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: list roles: %w", err)
	}
	if len(names) == 0 {
		return nil, logical.ErrNotFound
	}
	return &logical.Response{Data: map[string]any{"keys": names}}, nil
}

func (b *Backend) handleRole(ctx context.Context, req *logical.Request, name string) (*logical.Response, error) {
	if err := checkRoleName(name); err != nil {
		return nil, err
	}
	switch req.Operation {
	case logical.ReadOperation:
		r, err := b.loadRole(ctx, name)
		if err != nil {
			return nil, err
		}
		if r == nil {
			return nil, logical.ErrNotFound
		}
		return &logical.Response{Data: r.data()}, nil
	case logical.DeleteOperation:
		if err := b.store.Delete(ctx, rolePrefix+name); err != nil {
			return nil, fmt.Errorf("kubernetes: delete role: %w", err)
		}
		return &logical.Response{Status: 204}, nil
	case logical.CreateOperation, logical.UpdateOperation:
	default:
		return nil, logical.ErrUnsupportedOperation
	}
	b.roleMu.Lock()
	defer b.roleMu.Unlock()
	r, err := b.loadRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		r = &role{AliasNameSource: aliasUID}
	}
	if err := r.update(req.Data); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: encode role: %w", err)
	}
	if err := b.store.Put(ctx, &storage.Entry{Key: rolePrefix + name, Value: raw}); err != nil {
		return nil, fmt.Errorf("kubernetes: write role: %w", err)
	}
	return &logical.Response{Status: 204}, nil
}

func (r *role) data() map[string]any {
	pols := r.Policies
	if pols == nil {
		pols = []string{}
	}
	return map[string]any{
		"bound_service_account_names":      r.BoundNames,
		"bound_service_account_namespaces": r.BoundNamespaces,
		"audience":                         r.Audience,
		"alias_name_source":                r.AliasNameSource,
		"token_policies":                   pols,
		"policies":                         pols,
		"token_ttl":                        logical.FormatSeconds(r.TTL),
		"token_max_ttl":                    logical.FormatSeconds(r.MaxTTL),
		"token_period":                     logical.FormatSeconds(r.Period),
		"token_num_uses":                   r.NumUses,
		"token_bound_cidrs":                append([]string{}, r.BoundCIDRs...),
	}
}

// update applies the fields of a write to r (a new role starts empty) and
// validates the result.
func (r *role) update(d map[string]any) error {
	if err := logical.CheckFields(d, roleFields...); err != nil {
		return err
	}
	pick := func(names ...string) (any, bool) {
		for _, n := range names {
			if v, ok := d[n]; ok {
				return v, true
			}
		}
		return nil, false
	}
	var err error
	if v, ok := d["bound_service_account_names"]; ok {
		if r.BoundNames, err = parseBoundList("bound_service_account_names", v); err != nil {
			return err
		}
	}
	if v, ok := d["bound_service_account_namespaces"]; ok {
		if r.BoundNamespaces, err = parseBoundList("bound_service_account_namespaces", v); err != nil {
			return err
		}
	}
	if v, ok := d["audience"]; ok {
		if r.Audience, err = logical.ParseString("audience", v); err != nil {
			return err
		}
		r.Audience = strings.TrimSpace(r.Audience)
	}
	if v, ok := d["alias_name_source"]; ok {
		s, err := logical.ParseString("alias_name_source", v)
		if err != nil {
			return err
		}
		switch s {
		case "":
			r.AliasNameSource = aliasUID
		case aliasUID, aliasName:
			r.AliasNameSource = s
		default:
			return logical.BadRequest("alias_name_source must be %q or %q", aliasUID, aliasName)
		}
	}
	if v, ok := pick("token_policies", "policies"); ok {
		pols, err := logical.ParseStrings("token_policies", v)
		if err != nil {
			return err
		}
		r.Policies = r.Policies[:0]
		for _, p := range pols {
			p = strings.ToLower(strings.TrimSpace(p))
			if p == "root" {
				return logical.BadRequest("token_policies: a role cannot grant the root policy")
			}
			if p != "" {
				r.Policies = append(r.Policies, p)
			}
		}
	}
	for _, f := range []struct {
		names []string
		dst   *time.Duration
	}{
		{[]string{"token_ttl", "ttl"}, &r.TTL},
		{[]string{"token_max_ttl", "max_ttl"}, &r.MaxTTL},
		{[]string{"token_period", "period"}, &r.Period},
	} {
		if v, ok := pick(f.names...); ok {
			if *f.dst, err = logical.ParseDuration(f.names[0], v); err != nil {
				return err
			}
		}
	}
	if v, ok := d["token_num_uses"]; ok {
		n, err := logical.ParseInt("token_num_uses", v)
		if err != nil {
			return err
		}
		if n < 0 || n > 1<<31-1 {
			return logical.BadRequest("token_num_uses must be zero (unlimited) or a positive number")
		}
		r.NumUses = int(n)
	}
	if v, ok := pick("token_bound_cidrs", "bound_cidrs"); ok {
		list, err := logical.ParseStrings("token_bound_cidrs", v)
		if err != nil {
			return err
		}
		bound, err := cidr.Parse(list)
		if err != nil {
			return logical.BadRequest("token_bound_cidrs: %v", err)
		}
		r.BoundCIDRs = nil
		if len(bound) > 0 {
			r.BoundCIDRs = bound.Strings()
		}
	}
	switch {
	case len(r.BoundNames) == 0:
		return logical.BadRequest("bound_service_account_names must be set (use \"*\" for any)")
	case len(r.BoundNamespaces) == 0:
		return logical.BadRequest("bound_service_account_namespaces must be set (use \"*\" for any)")
	case isStar(r.BoundNames) && isStar(r.BoundNamespaces):
		return logical.BadRequest("bound_service_account_names and bound_service_account_namespaces can not both be set to \"*\"")
	case r.MaxTTL > 0 && r.TTL > r.MaxTTL:
		return logical.BadRequest("token_ttl cannot be greater than token_max_ttl")
	}
	return nil
}

func parseBoundList(field string, v any) ([]string, error) {
	list, err := logical.ParseStrings(field, v)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, logical.BadRequest("%s: empty entry", field)
		}
		if len(s) > 253 {
			return nil, logical.BadRequest("%s: entry longer than 253 characters", field)
		}
		out = append(out, s)
	}
	return out, nil
}

func isStar(list []string) bool { return len(list) == 1 && list[0] == "*" }

// allows reports whether the role binds namespace/name.
func (r *role) allowsNamespace(ns string) bool { return matchAnyGlob(r.BoundNamespaces, ns) }
func (r *role) allowsName(name string) bool    { return matchAnyGlob(r.BoundNames, name) }
