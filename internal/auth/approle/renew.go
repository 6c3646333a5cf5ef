package approle

import (
	"context"

	"github.com/coffer-dev/coffer/internal/auth/tokenparams"
	"github.com/coffer-dev/coffer/internal/logical"
)

var _ logical.AuthRenewer = (*Backend)(nil)

// RenewAuth lets a token be renewed only while its role exists with the
// same policies, as Vault does.
func (b *Backend) RenewAuth(ctx context.Context, a *logical.Auth) error {
	name := a.Metadata["role_name"]
	if name == "" {
		return logical.BadRequest("token has no role_name: not renewing")
	}
	r, err := b.loadRole(ctx, name)
	if err != nil {
		return err
	}
	if r == nil {
		return logical.BadRequest("role %q does not exist during renewal", name)
	}
	if !tokenparams.EquivalentPolicies(r.Params.Policies, a.Policies) {
		return logical.BadRequest("policies have changed, not renewing")
	}
	return nil
}
