package approle

import (
	"context"
	"strings"

	"github.com/coffer-dev/coffer/internal/logical"
)

// login serves login {role_id, secret_id}.
func (b *Backend) login(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	if err := logical.CheckFields(req.Data, "role_id", "secret_id"); err != nil {
		return nil, err
	}
	roleID, err := logical.ParseString("role_id", req.Data["role_id"])
	if err != nil {
		return nil, err
	}
	roleID = strings.TrimSpace(roleID)
	if roleID == "" {
		return nil, logical.BadRequest("missing role_id")
	}
	sid, err := logical.ParseString("secret_id", req.Data["secret_id"])
	if err != nil {
		return nil, err
	}
	sid = strings.TrimSpace(sid)
	if len(roleID) > maxRoleIDLen || len(sid) > maxSecretIDLen {
		return nil, errInvalidCredentials
	}
	name, r, err := b.roleByRoleID(ctx, roleID)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, errInvalidCredentials
	}
	if !r.allowsRemote(req.RemoteAddr) {
		b.log.Info("approle: login refused by the role's secret_id_bound_cidrs", "role", name, "remote_addr", req.RemoteAddr)
		return nil, logical.BadRequest("source address unauthorized by CIDR restrictions on the role")
	}
	meta := map[string]string{}
	var tokenCIDRs []string
	if r.BindSecretID {
		if sid == "" {
			return nil, logical.BadRequest("missing secret_id")
		}
		s, err := b.consumeSecretID(ctx, r, sid, req.RemoteAddr)
		if err != nil {
			return nil, err
		}
		for k, v := range s.Metadata {
			meta[k] = v
		}
		tokenCIDRs = s.TokenBoundCIDRs
	}
	meta["role_name"] = name
	a := &logical.Auth{Metadata: meta, DisplayName: name, Alias: name}
	r.Params.Auth(a)
	if len(tokenCIDRs) > 0 {
		a.BoundCIDRs = append([]string(nil), tokenCIDRs...)
	}
	return &logical.Response{Auth: a}, nil
}
