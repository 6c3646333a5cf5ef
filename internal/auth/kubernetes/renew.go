package kubernetes

import (
	"context"

	"github.com/coffer-dev/coffer/internal/auth/tokenparams"
	"github.com/coffer-dev/coffer/internal/logical"
)

var _ logical.AuthRenewer = (*Backend)(nil)

// RenewAuth lets a token be renewed only while its role exists, still
// binds the token's service account, and grants the same policies.
func (b *Backend) RenewAuth(ctx context.Context, a *logical.Auth) error {
	name := a.Metadata["role"]
	if name == "" {
		return logical.BadRequest("token has no role: not renewing")
	}
	r, err := b.loadRole(ctx, name)
	if err != nil {
		return err
	}
	if r == nil {
		return logical.BadRequest("role %q does not exist during renewal", name)
	}
	if !r.allowsNamespace(a.Metadata["service_account_namespace"]) || !r.allowsName(a.Metadata["service_account_name"]) {
		return logical.BadRequest("role %q no longer binds this service account: not renewing", name)
	}
	if !tokenparams.EquivalentPolicies(r.Policies, a.Policies) {
		return logical.BadRequest("policies have changed, not renewing")
	}
	return nil
}
