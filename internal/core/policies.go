package core

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/policy"
	"github.com/coffer-dev/coffer/internal/storage"
)

const policyPrefix = "core/policy/"

// policyStore keeps ACL policies behind the barrier, caches their parsed
// form, and caches compiled ACLs per set of policy names so that a request
// never re-parses or re-compiles anything.
type policyStore struct {
	s storage.Backend

	mu     sync.RWMutex
	parsed map[string]*policy.Policy // by name; nil entry = known absent
	acls   map[string]*policy.ACL    // by sorted, comma-joined names
}

func newPolicyStore(s storage.Backend) *policyStore {
	return &policyStore{s: s, parsed: map[string]*policy.Policy{}, acls: map[string]*policy.ACL{}}
}

// setup writes the default policy on first unseal.
func (ps *policyStore) setup(ctx context.Context) error {
	_, err := ps.s.Get(ctx, policyPrefix+policy.DefaultName)
	if errors.Is(err, storage.ErrNotFound) {
		return ps.s.Put(ctx, &storage.Entry{Key: policyPrefix + policy.DefaultName, Value: []byte(policy.DefaultPolicy)})
	}
	return err
}

func (ps *policyStore) get(ctx context.Context, name string) (*policy.Policy, error) {
	if name == policy.RootName {
		return policy.Root(), nil
	}
	ps.mu.RLock()
	p, ok := ps.parsed[name]
	ps.mu.RUnlock()
	if ok {
		return p, nil
	}
	e, err := ps.s.Get(ctx, policyPrefix+name)
	if errors.Is(err, storage.ErrNotFound) {
		ps.mu.Lock()
		ps.parsed[name] = nil
		ps.mu.Unlock()
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	p, err = policy.Parse(name, string(e.Value))
	if err != nil {
		return nil, fmt.Errorf("stored policy %q does not parse: %w", name, err)
	}
	ps.mu.Lock()
	ps.parsed[name] = p
	ps.mu.Unlock()
	return p, nil
}

// acl returns the compiled ACL for a token's policies. Policies that do not
// exist contribute nothing, as in Vault.
func (ps *policyStore) acl(ctx context.Context, names []string) (*policy.ACL, error) {
	key := strings.Join(names, ",")
	ps.mu.RLock()
	a, ok := ps.acls[key]
	ps.mu.RUnlock()
	if ok {
		return a, nil
	}
	pols := make([]*policy.Policy, 0, len(names))
	for _, n := range names {
		p, err := ps.get(ctx, n)
		if err != nil {
			return nil, err
		}
		if p != nil {
			pols = append(pols, p)
		}
	}
	a, err := policy.NewACL(pols...)
	if err != nil {
		return nil, err
	}
	ps.mu.Lock()
	ps.acls[key] = a
	ps.mu.Unlock()
	return a, nil
}

func (ps *policyStore) invalidate() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.parsed = map[string]*policy.Policy{}
	ps.acls = map[string]*policy.ACL{}
}

func (ps *policyStore) put(ctx context.Context, name, text string) error {
	if name == policy.RootName {
		return logical.BadRequest("cannot update the root policy")
	}
	if _, err := policy.Parse(name, text); err != nil {
		var pe *policy.ParseError
		if errors.As(err, &pe) {
			return logical.BadRequest("failed to parse policy: %s", pe.Error())
		}
		return logical.BadRequest("failed to parse policy")
	}
	if err := ps.s.Put(ctx, &storage.Entry{Key: policyPrefix + name, Value: []byte(text)}); err != nil {
		return err
	}
	ps.invalidate()
	return nil
}

func (ps *policyStore) delete(ctx context.Context, name string) error {
	switch name {
	case policy.RootName:
		return logical.BadRequest("cannot delete the root policy")
	case policy.DefaultName:
		return logical.BadRequest("cannot delete the default policy")
	}
	if err := ps.s.Delete(ctx, policyPrefix+name); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	ps.invalidate()
	return nil
}

func (ps *policyStore) list(ctx context.Context) ([]string, error) {
	names, err := ps.s.List(ctx, policyPrefix)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, n := range names {
		if !strings.HasSuffix(n, "/") {
			out = append(out, n)
		}
	}
	out = append(out, policy.RootName)
	sort.Strings(out)
	return out, nil
}

func (ps *policyStore) text(ctx context.Context, name string) (string, bool, error) {
	if name == policy.RootName {
		return "", true, nil
	}
	e, err := ps.s.Get(ctx, policyPrefix+name)
	if errors.Is(err, storage.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return string(e.Value), true, nil
}

func normalizePolicyName(n string) (string, error) {
	n = strings.ToLower(strings.TrimSpace(n))
	if n == "" || strings.ContainsAny(n, "/\x00") || len(n) > 128 {
		return "", logical.BadRequest("invalid policy name")
	}
	return n, nil
}

// policyText reads the policy body field, plain or base64 as Vault accepts.
func policyText(data map[string]any, field string) (string, error) {
	s, err := logical.ParseString(field, data[field])
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", logical.BadRequest("'%s' parameter not supplied or empty", field)
	}
	if !strings.ContainsAny(s, "{\n \"") {
		if b, err := base64.StdEncoding.DecodeString(s); err == nil && utf8.Valid(b) {
			s = string(b)
		}
	}
	return s, nil
}

// handlePolicies serves sys/policies/acl[/:name] (modern=true) and
// sys/policy[/:name].
func (c *Core) handlePolicies(ctx context.Context, req *logical.Request, modern bool, rest string) (*logical.Response, error) {
	rest = strings.Trim(rest, "/")
	if rest == "" {
		if req.Operation != logical.ListOperation && req.Operation != logical.ReadOperation {
			return nil, logical.ErrUnsupportedOperation
		}
		if modern && req.Operation == logical.ReadOperation {
			return nil, logical.ErrUnsupportedOperation
		}
		names, err := c.policies.list(ctx)
		if err != nil {
			return nil, c.errorInternal("list policies", err)
		}
		if modern {
			return &logical.Response{Data: map[string]any{"keys": names}}, nil
		}
		return &logical.Response{Data: map[string]any{"keys": names, "policies": names}, TopLevel: true}, nil
	}
	name, err := normalizePolicyName(rest)
	if err != nil {
		return nil, err
	}
	switch req.Operation {
	case logical.ReadOperation:
		text, ok, err := c.policies.text(ctx, name)
		if err != nil {
			return nil, c.errorInternal("read policy", err)
		}
		if !ok {
			return nil, logical.ErrNotFound
		}
		if modern {
			return &logical.Response{Data: map[string]any{"name": name, "policy": text}}, nil
		}
		return &logical.Response{Data: map[string]any{"name": name, "rules": text}, TopLevel: true}, nil
	case logical.CreateOperation, logical.UpdateOperation:
		field := "policy"
		if !modern && req.Data["policy"] == nil && req.Data["rules"] != nil {
			field = "rules"
		}
		if err := logical.CheckFields(req.Data, "policy", "rules", "name"); err != nil {
			return nil, err
		}
		text, err := policyText(req.Data, field)
		if err != nil {
			return nil, err
		}
		if err := c.policies.put(ctx, name, text); err != nil {
			var ire *logical.InvalidRequestError
			if errors.As(err, &ire) {
				return nil, err
			}
			return nil, c.errorInternal("store policy", err)
		}
		return &logical.Response{Status: 204}, nil
	case logical.DeleteOperation:
		if err := c.policies.delete(ctx, name); err != nil {
			var ire *logical.InvalidRequestError
			if errors.As(err, &ire) {
				return nil, err
			}
			return nil, c.errorInternal("delete policy", err)
		}
		return &logical.Response{Status: 204}, nil
	}
	return nil, logical.ErrUnsupportedOperation
}

// handleCapabilities serves sys/capabilities, sys/capabilities-self and
// sys/capabilities-accessor.
func (c *Core) handleCapabilities(ctx context.Context, req *logical.Request, kind string) (*logical.Response, error) {
	if req.Operation != logical.UpdateOperation && req.Operation != logical.CreateOperation {
		return nil, logical.ErrUnsupportedOperation
	}
	paths, err := logical.ParseStrings("paths", req.Data["paths"])
	if err != nil {
		return nil, err
	}
	if p, err := logical.ParseString("path", req.Data["path"]); err != nil {
		return nil, err
	} else if p != "" {
		paths = append(paths, p)
	}
	if len(paths) == 0 {
		return nil, logical.BadRequest("paths must be supplied")
	}
	var pols []string
	switch kind {
	case "self":
		pols = req.Auth.Policies
		if t, _ := req.Data["token"].(string); t != "" && t != req.ClientToken {
			te, err := c.tokens.Lookup(ctx, t)
			if err != nil {
				return nil, logical.BadRequest("invalid token")
			}
			pols = te.Policies
		}
	case "token":
		t, err := logical.ParseString("token", req.Data["token"])
		if err != nil {
			return nil, err
		}
		if t == "" {
			return nil, logical.BadRequest("missing token")
		}
		te, err := c.tokens.Lookup(ctx, t)
		if err != nil {
			return nil, logical.BadRequest("invalid token")
		}
		pols = te.Policies
	case "accessor":
		a, err := logical.ParseString("accessor", req.Data["accessor"])
		if err != nil {
			return nil, err
		}
		te, err := c.tokens.LookupAccessor(ctx, a)
		if err != nil {
			return nil, logical.BadRequest("invalid accessor")
		}
		pols = te.Policies
	}
	acl, err := c.policies.acl(ctx, pols)
	if err != nil {
		return nil, c.errorInternal("compile acl", err)
	}
	d := map[string]any{}
	var all []string
	for _, p := range paths {
		caps := acl.Capabilities(strings.TrimPrefix(p, "/"))
		d[p] = caps
		all = append(all, caps...)
	}
	if len(paths) == 1 {
		d["capabilities"] = d[paths[0]]
	} else {
		d["capabilities"] = dedupe(all)
	}
	return &logical.Response{Data: d, TopLevel: true}, nil
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	sort.Strings(out)
	return out
}
