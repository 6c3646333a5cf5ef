package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/coffer-dev/coffer/internal/lease"
	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/token"
)

// SecretBackend implements lease.Resolver: the backend of the mount that
// serves path, if it issues leased secrets.
func (c *Core) SecretBackend(path string) (logical.SecretBackend, error) {
	var e *MountEntry
	if rest, ok := strings.CutPrefix(path, "auth/"); ok {
		e = c.auths.match(rest)
	} else {
		e = c.mounts.match(path)
	}
	if e == nil {
		return nil, lease.ErrNoBackend
	}
	sb, ok := e.backend.(logical.SecretBackend)
	if !ok {
		return nil, lease.ErrNoBackend
	}
	return sb, nil
}

// registerLease gives a response's secret its lease.
func (c *Core) registerLease(ctx context.Context, req *logical.Request, rt *route, resp *logical.Response, te *token.Entry) error {
	var def, max time.Duration
	if rt.entry != nil {
		def = time.Duration(rt.entry.Config.DefaultLeaseTTL) * time.Second
		max = time.Duration(rt.entry.Config.MaxLeaseTTL) * time.Second
	}
	if err := c.leases.Register(ctx, req.Path, te.Hash, resp.Secret, def, max); err != nil {
		// The backend already issued the secret: take it back.
		if sb, ok := rt.backend.(logical.SecretBackend); ok {
			l := &logical.Lease{Path: req.Path, InternalData: resp.Secret.InternalData}
			if rerr := sb.RevokeSecret(ctx, l); rerr != nil {
				c.log.Error("revoke a secret whose lease could not be stored", "path", req.Path, "err", rerr)
			}
		}
		return c.errorInternal("store lease", err)
	}
	return nil
}

func leaseErr(c *Core, op string, err error) error {
	switch {
	case errors.Is(err, lease.ErrNotFound):
		return logical.BadRequest("invalid lease ID")
	case errors.Is(err, lease.ErrBadLeaseID):
		return logical.BadRequest("invalid lease ID")
	case errors.Is(err, lease.ErrNotRenewable):
		return logical.BadRequest("lease is not renewable")
	case errors.Is(err, lease.ErrNoBackend):
		return logical.BadRequest("no secrets engine serves this lease any more; use revoke-force")
	}
	var ire *logical.InvalidRequestError
	if errors.As(err, &ire) {
		return err
	}
	c.log.Error("lease operation failed", "op", op, "err", err)
	return fmt.Errorf("%w: %s: the secret's backend failed; see the server log", logical.ErrUpstream, op)
}

func leaseIDField(req *logical.Request, rest, verb string) (string, error) {
	id, err := logical.ParseString("lease_id", req.Data["lease_id"])
	if err != nil {
		return "", err
	}
	if id == "" {
		id = strings.TrimPrefix(rest, verb+"/")
		if id == rest {
			id = ""
		}
	}
	if id == "" {
		return "", logical.BadRequest("missing lease_id")
	}
	return id, nil
}

// handleLeases serves sys/leases/... and the legacy sys/renew, sys/revoke,
// sys/revoke-prefix and sys/revoke-force.
func (c *Core) handleLeases(ctx context.Context, req *logical.Request, rest string) (*logical.Response, error) {
	write := req.Operation == logical.UpdateOperation || req.Operation == logical.CreateOperation
	switch {
	case (rest == "renew" || strings.HasPrefix(rest, "renew/")) && write:
		id, err := leaseIDField(req, rest, "renew")
		if err != nil {
			return nil, err
		}
		inc, err := logical.ParseDuration("increment", req.Data["increment"])
		if err != nil {
			return nil, err
		}
		e, capped, err := c.leases.Renew(ctx, id, inc)
		if err != nil {
			return nil, leaseErr(c, "renew", err)
		}
		resp := &logical.Response{Secret: &logical.Secret{LeaseID: e.ID, TTL: time.Until(e.ExpireTime).Round(time.Second), Renewable: e.Renewable}}
		if capped {
			resp.Warnings = []string{"TTL of the lease was capped by its maximum TTL"}
		}
		return resp, nil
	case (rest == "revoke" || strings.HasPrefix(rest, "revoke/")) && write:
		id, err := leaseIDField(req, rest, "revoke")
		if err != nil {
			return nil, err
		}
		if err := c.leases.Revoke(ctx, id, false); err != nil && !errors.Is(err, lease.ErrNotFound) {
			return nil, leaseErr(c, "revoke", err)
		}
		return &logical.Response{Status: 204}, nil
	case (strings.HasPrefix(rest, "revoke-prefix/") || strings.HasPrefix(rest, "revoke-force/")) && write:
		force := strings.HasPrefix(rest, "revoke-force/")
		prefix := strings.TrimPrefix(strings.TrimPrefix(rest, "revoke-prefix/"), "revoke-force/")
		if prefix == "" {
			return nil, logical.BadRequest("missing prefix")
		}
		n, err := c.leases.RevokePrefix(ctx, prefix, force)
		if err != nil {
			return nil, leaseErr(c, "revoke-prefix", err)
		}
		c.log.Info("leases revoked by prefix", "prefix", prefix, "count", n, "force", force)
		return &logical.Response{Status: 204}, nil
	case rest == "lookup" && write:
		id, err := leaseIDField(req, rest, "lookup")
		if err != nil {
			return nil, err
		}
		e, err := c.leases.Lookup(ctx, id)
		if err != nil {
			return nil, leaseErr(c, "lookup", err)
		}
		return &logical.Response{Data: leaseData(e)}, nil
	case strings.HasPrefix(rest, "lookup/") && req.Operation == logical.ListOperation:
		keys, err := c.leases.List(ctx, strings.TrimPrefix(rest, "lookup/"))
		if err != nil {
			return nil, c.errorInternal("list leases", err)
		}
		if len(keys) == 0 {
			return nil, logical.ErrNotFound
		}
		return &logical.Response{Data: map[string]any{"keys": keys}}, nil
	case rest == "tidy" && write:
		n, err := c.leases.Tidy(ctx)
		if err != nil {
			return nil, c.errorInternal("tidy leases", err)
		}
		return &logical.Response{Data: map[string]any{"index_entries_removed": n}}, nil
	case rest == "count" && req.Operation == logical.ReadOperation:
		total, irr, err := c.leases.Count(ctx)
		if err != nil {
			return nil, c.errorInternal("count leases", err)
		}
		return &logical.Response{Data: map[string]any{"lease_count": total, "irrevocable_count": irr}}, nil
	case rest == "" && req.Operation == logical.ReadOperation:
		list, err := c.leases.Irrevocable(ctx)
		if err != nil {
			return nil, c.errorInternal("list irrevocable leases", err)
		}
		out := make([]any, 0, len(list))
		for _, e := range list {
			d := leaseData(e)
			d["lease_id"] = e.ID
			out = append(out, d)
		}
		return &logical.Response{Data: map[string]any{"leases": out, "lease_count": len(out)}}, nil
	}
	return nil, logical.ErrUnsupportedPath
}

func leaseData(e *lease.Entry) map[string]any {
	var last any
	if !e.LastRenewal.IsZero() {
		last = e.LastRenewal.Format(time.RFC3339Nano)
	}
	ttl := int64(time.Until(e.ExpireTime).Round(time.Second) / time.Second)
	if ttl < 0 {
		ttl = 0
	}
	d := map[string]any{
		"id":           e.ID,
		"issue_time":   e.IssueTime.Format(time.RFC3339Nano),
		"expire_time":  e.ExpireTime.Format(time.RFC3339Nano),
		"last_renewal": last,
		"renewable":    e.Renewable,
		"ttl":          ttl,
	}
	if e.Irrevocable || e.Attempts > 0 {
		d["irrevocable"] = e.Irrevocable
		d["revocation_attempts"] = e.Attempts
		d["error"] = e.LastError
	}
	return d
}
