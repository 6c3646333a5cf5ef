package core

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/coffer-dev/coffer/internal/auth/cidr"
	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/policy"
	"github.com/coffer-dev/coffer/internal/token"
)

type handlerFunc func(c *Core, ctx context.Context, req *logical.Request) (*logical.Response, error)

// unauthenticated endpoints: answered whatever the seal state, never
// audited, no token needed.
var unauthenticated = map[string]handlerFunc{
	"sys/init":        (*Core).handleInit,
	"sys/seal-status": (*Core).handleSealStatus,
	"sys/unseal":      (*Core).handleUnseal,
	"sys/health":      (*Core).handleHealth,
	"sys/leader":      (*Core).handleLeader,
}

// IsUnauthenticated reports whether path is served without a token.
func IsUnauthenticated(path string) bool {
	_, ok := unauthenticated[path]
	return ok
}

// systemSudoPaths are the sys/ paths that need the sudo capability, as in
// Vault ("*" suffix: prefix match).
var systemSudoPaths = []string{
	"auth/*", "audit", "audit/*", "audit-hash/*", "rotate", "seal",
	"leases/revoke-prefix/*", "leases/revoke-force/*", "leases/lookup/*",
	"revoke-prefix/*", "revoke-force/*", "leases",
}

func matchAny(patterns []string, p string) bool {
	for _, pat := range patterns {
		if pre, ok := strings.CutSuffix(pat, "*"); ok {
			if strings.HasPrefix(p, pre) {
				return true
			}
		} else if p == pat || p == pat+"/" {
			return true
		}
	}
	return false
}

// route is where a request goes once its path is resolved.
type route struct {
	backend         logical.Backend
	entry           *MountEntry // nil for sys/ and auth/token/
	unauthenticated bool        // a login path
	sudo            bool
	uiMounts        bool // sys/internal/ui/mounts: authorized by mount access
}

// HandleRequest runs req through the pipeline.
func (c *Core) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	req.Path = strings.TrimPrefix(req.Path, "/")
	if h, ok := unauthenticated[req.Path]; ok {
		return h(c, ctx, req)
	}
	c.stateLock.RLock()
	if c.sealed.Load() {
		c.stateLock.RUnlock()
		return nil, logical.ErrSealed
	}
	resp, err, sealAfter := c.handleLocked(ctx, req)
	c.stateLock.RUnlock()
	if sealAfter {
		c.Seal()
	}
	return resp, err
}

func (c *Core) resolve(req *logical.Request) (*route, error) {
	if rest, ok := strings.CutPrefix(req.Path, "sys/"); ok {
		req.MountPoint, req.MountPath, req.MountType = "sys/", rest, "system"
		return &route{
			backend:  systemBackend{c},
			sudo:     matchAny(systemSudoPaths, rest),
			uiMounts: rest == "internal/ui/mounts" || strings.HasPrefix(rest, "internal/ui/mounts/"),
		}, nil
	}
	if rest, ok := strings.CutPrefix(req.Path, "auth/token/"); ok {
		req.MountPoint, req.MountPath, req.MountType = "auth/token/", rest, "token"
		return &route{backend: c.tokenBackend, sudo: matchAny(token.SudoPaths(), rest)}, nil
	}
	var e *MountEntry
	if rest, ok := strings.CutPrefix(req.Path, "auth/"); ok {
		if e = c.auths.match(rest); e != nil {
			req.MountPoint = "auth/" + e.Path
		}
	} else if e = c.mounts.match(req.Path); e != nil {
		req.MountPoint = e.Path
	}
	if e == nil {
		return nil, &logical.CodedError{Status: 404, Msg: fmt.Sprintf("no handler for route %q. route entry not found.", req.Path)}
	}
	req.MountType = e.Type
	req.MountPath = strings.TrimPrefix(req.Path, req.MountPoint)
	rt := &route{backend: e.backend, entry: e}
	if ps, ok := e.backend.(logical.PathSpecialist); ok {
		rt.unauthenticated = matchAny(ps.UnauthenticatedPaths(), req.MountPath)
		rt.sudo = matchAny(ps.SudoPaths(), req.MountPath)
	}
	return rt, nil
}

// handleLocked is the pipeline proper, run under the state read lock.
// sealAfter asks the caller to seal once the lock is released (sys/seal).
func (c *Core) handleLocked(ctx context.Context, req *logical.Request) (resp *logical.Response, err error, sealAfter bool) {
	rt, err := c.resolve(req)
	if err != nil {
		return nil, err, false
	}
	var te *token.Entry
	if !rt.unauthenticated {
		te, err = c.authenticate(ctx, req)
		if err != nil {
			if aerr := c.auditRequest(ctx, req, "permission denied"); aerr != nil {
				return nil, aerr, false
			}
			return nil, err, false
		}
	}
	// Create or update: decided by whether the target exists.
	if req.Operation == logical.UpdateOperation {
		if ec, ok := rt.backend.(logical.ExistenceChecker); ok {
			exists, err := ec.Exists(ctx, req)
			if err != nil {
				return nil, err, false
			}
			if !exists {
				req.Operation = logical.CreateOperation
			}
		}
	}
	if te != nil {
		if err := c.authorize(ctx, req, rt, te); err != nil {
			if aerr := c.auditRequest(ctx, req, "permission denied"); aerr != nil {
				return nil, aerr, false
			}
			return nil, err, false
		}
	}
	if err := c.auditRequest(ctx, req, ""); err != nil {
		return nil, err, false
	}
	exhausted := false
	if te != nil && te.NumUses > 0 {
		exhausted, err = c.tokens.Use(ctx, te)
		if errors.Is(err, token.ErrNotFound) {
			return nil, logical.ErrPermissionDenied, false
		}
		if err != nil {
			return nil, c.errorInternal("count token use", err), false
		}
	}
	if req.Path == "sys/seal" {
		if req.Operation != logical.UpdateOperation && req.Operation != logical.CreateOperation {
			return nil, logical.ErrUnsupportedOperation, false
		}
		resp = &logical.Response{Status: 204}
		if err := c.auditResponse(ctx, req, resp, nil); err != nil {
			return nil, err, false
		}
		return resp, nil, true
	}
	resp, err = rt.backend.HandleRequest(ctx, req)
	if err == nil && rt.unauthenticated && resp != nil && resp.Auth != nil && resp.Auth.ClientToken == "" {
		err = c.issueLoginToken(ctx, req, rt, resp.Auth)
	}
	if err == nil && resp != nil && resp.Secret != nil && resp.Secret.LeaseID == "" && te != nil {
		err = c.registerLease(ctx, req, rt, resp, te)
	}
	if aerr := c.auditResponse(ctx, req, resp, err); aerr != nil {
		// Fail closed: nothing leaves that was not recorded. A token a
		// login just issued is revoked again.
		if resp != nil && resp.Auth != nil && resp.Auth.ClientToken != "" && rt.unauthenticated {
			_ = c.tokens.Revoke(ctx, resp.Auth.ClientToken)
		}
		return nil, aerr, false
	}
	if exhausted {
		if rerr := c.tokens.RevokeHash(ctx, te.Hash); rerr != nil {
			c.log.Error("revoke token after its last use", "err", rerr)
		}
	}
	return resp, err, false
}

// authenticate resolves the request's token. Every failure is the same
// "permission denied", whatever its cause.
func (c *Core) authenticate(ctx context.Context, req *logical.Request) (*token.Entry, error) {
	if req.ClientToken == "" {
		return nil, logical.ErrPermissionDenied
	}
	te, err := c.tokens.Lookup(ctx, req.ClientToken)
	if errors.Is(err, token.ErrNotFound) {
		return nil, logical.ErrPermissionDenied
	}
	if err != nil {
		return nil, c.errorInternal("look up token", err)
	}
	if len(te.BoundCIDRs) > 0 {
		bound, err := cidr.Parse(te.BoundCIDRs)
		if err != nil {
			return nil, c.errorInternal("token bound_cidrs", err)
		}
		if !bound.AllowsRemote(req.RemoteAddr) {
			c.log.Debug("token refused outside its bound CIDRs", "accessor", te.Accessor, "remote_addr", req.RemoteAddr)
			return nil, logical.ErrPermissionDenied
		}
	}
	req.Auth = &logical.Auth{
		ClientToken: te.ID, Accessor: te.Accessor, Policies: te.Policies, TokenPolicies: te.Policies,
		Metadata: te.Meta, DisplayName: te.DisplayName, TokenType: te.Type, Orphan: te.Orphan,
		TTL: time.Until(te.ExpireTime),
	}
	if te.ExpireTime.IsZero() {
		req.Auth.TTL = 0
	}
	return te, nil
}

// authorize evaluates the token's ACL for the request.
func (c *Core) authorize(ctx context.Context, req *logical.Request, rt *route, te *token.Entry) error {
	acl, err := c.policies.acl(ctx, te.Policies)
	if err != nil {
		return c.errorInternal("compile acl", err)
	}
	if rt.uiMounts {
		p := strings.TrimPrefix(strings.TrimPrefix(req.MountPath, "internal/ui/mounts"), "/")
		if p == "" {
			return nil // the listing is filtered by access
		}
		e := c.mounts.match(p)
		if e == nil || !acl.HasMountAccess(e.Path) {
			return logical.ErrPermissionDenied
		}
		return nil
	}
	res := acl.Allowed(policy.Request{
		Path:         req.Path,
		Op:           policy.Operation(req.Operation),
		Params:       req.Data,
		RequiresSudo: rt.sudo,
	})
	if !res.Allowed {
		c.log.Debug("request denied", "path", req.Path, "op", req.Operation, "reason", res.DeniedBy)
		return logical.ErrPermissionDenied
	}
	return nil
}

// issueLoginToken turns the Auth of a successful login into a token.
func (c *Core) issueLoginToken(ctx context.Context, req *logical.Request, rt *route, a *logical.Auth) error {
	pols := map[string]bool{"default": true}
	for _, p := range a.Policies {
		if p == "root" {
			return c.errorInternal("issue login token", errors.New("an auth method tried to grant the root policy"))
		}
		pols[strings.ToLower(p)] = true
	}
	names := make([]string, 0, len(pols))
	for p := range pols {
		names = append(names, p)
	}
	sortStrings(names)
	ttl := a.TTL
	maxTTL := token.MaxTTL
	if rt.entry != nil && rt.entry.Config.MaxLeaseTTL > 0 {
		maxTTL = time.Duration(rt.entry.Config.MaxLeaseTTL) * time.Second
	}
	if ttl == 0 {
		ttl = token.DefaultTTL
		if rt.entry != nil && rt.entry.Config.DefaultLeaseTTL > 0 {
			ttl = time.Duration(rt.entry.Config.DefaultLeaseTTL) * time.Second
		}
	}
	if a.MaxTTL > 0 && a.MaxTTL < maxTTL {
		maxTTL = a.MaxTTL
	}
	if a.Period == 0 && ttl > maxTTL {
		ttl = maxTTL
	}
	display := req.MountType
	if a.Alias != "" {
		display += "-" + a.Alias
	} else if a.DisplayName != "" {
		display += "-" + a.DisplayName
	}
	e, err := c.tokens.Create(ctx, &token.Entry{
		Policies:       names,
		Meta:           a.Metadata,
		DisplayName:    display,
		Path:           req.Path,
		TTL:            ttl,
		ExplicitMaxTTL: a.MaxTTL,
		Period:         a.Period,
		NumUses:        a.NumUses,
		Renewable:      true,
		Orphan:         true,
		BoundCIDRs:     a.BoundCIDRs,
	})
	if err != nil {
		return c.errorInternal("issue login token", err)
	}
	a.ClientToken = e.ID
	a.Accessor = e.Accessor
	a.Policies = names
	a.TokenPolicies = names
	a.TTL = ttl
	a.Renewable = true
	a.TokenType = "service"
	a.Orphan = true
	if a.Metadata == nil {
		a.Metadata = map[string]string{}
	}
	return nil
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// systemBackend serves sys/ (other than the unauthenticated endpoints).
type systemBackend struct{ c *Core }

func (s systemBackend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	c, rest := s.c, req.MountPath
	switch {
	case rest == "rotate":
		if req.Operation != logical.UpdateOperation && req.Operation != logical.CreateOperation {
			return nil, logical.ErrUnsupportedOperation
		}
		if _, err := c.RotateKeyring(ctx); err != nil {
			return nil, err
		}
		return &logical.Response{Status: 204}, nil
	case rest == "key-status":
		if req.Operation != logical.ReadOperation {
			return nil, logical.ErrUnsupportedOperation
		}
		info, err := c.barrier.KeyStatus()
		if err != nil {
			return nil, c.errorInternal("key status", err)
		}
		return &logical.Response{TopLevel: true, Data: map[string]any{
			"term":         info.Term,
			"install_time": info.InstallTime.UTC().Format(time.RFC3339Nano),
			"encryptions":  info.Encryptions,
		}}, nil
	case rest == "mounts" || strings.HasPrefix(rest, "mounts/"):
		return c.handleMounts(ctx, req, false, strings.TrimPrefix(rest, "mounts"))
	case rest == "auth" || strings.HasPrefix(rest, "auth/"):
		return c.handleMounts(ctx, req, true, strings.TrimPrefix(rest, "auth"))
	case rest == "internal/ui/mounts" || strings.HasPrefix(rest, "internal/ui/mounts/"):
		return c.handleUIMount(ctx, req, strings.TrimPrefix(rest, "internal/ui/mounts"))
	case rest == "policies/acl" || strings.HasPrefix(rest, "policies/acl/"):
		return c.handlePolicies(ctx, req, true, strings.TrimPrefix(rest, "policies/acl"))
	case rest == "policy" || strings.HasPrefix(rest, "policy/"):
		return c.handlePolicies(ctx, req, false, strings.TrimPrefix(rest, "policy"))
	case rest == "capabilities":
		return c.handleCapabilities(ctx, req, "token")
	case rest == "capabilities-self":
		return c.handleCapabilities(ctx, req, "self")
	case rest == "capabilities-accessor":
		return c.handleCapabilities(ctx, req, "accessor")
	case rest == "audit" || strings.HasPrefix(rest, "audit/"):
		return c.handleAudit(ctx, req, strings.TrimPrefix(rest, "audit"))
	case strings.HasPrefix(rest, "audit-hash/"):
		return c.handleAuditHash(ctx, req, strings.TrimPrefix(rest, "audit-hash/"))
	case rest == "metrics":
		return c.handleMetrics(ctx, req)
	case rest == "leases" || strings.HasPrefix(rest, "leases/"):
		return c.handleLeases(ctx, req, strings.TrimPrefix(strings.TrimPrefix(rest, "leases"), "/"))
	case rest == "renew" || strings.HasPrefix(rest, "renew/") || rest == "revoke" || strings.HasPrefix(rest, "revoke/") ||
		strings.HasPrefix(rest, "revoke-prefix/") || strings.HasPrefix(rest, "revoke-force/"):
		return c.handleLeases(ctx, req, rest)
	}
	return nil, logical.ErrUnsupportedPath
}

// decodeData decodes a request body map into dst, refusing unknown fields
// and wrong types with a 400 that names the field.
func decodeData(data map[string]any, dst any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return logical.BadRequest("invalid request body")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return logical.BadRequest("field %q has the wrong type (want %s)", te.Field, te.Type)
		}
		msg := err.Error()
		if strings.HasPrefix(msg, "json: unknown field ") {
			return logical.BadRequest("unknown field %s", strings.TrimPrefix(msg, "json: unknown field "))
		}
		return logical.BadRequest("invalid request body")
	}
	return nil
}
