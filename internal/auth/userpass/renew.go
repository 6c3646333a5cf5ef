package userpass

import (
	"context"

	"github.com/coffer-dev/coffer/internal/auth/tokenparams"
	"github.com/coffer-dev/coffer/internal/logical"
)

var _ logical.AuthRenewer = (*Backend)(nil)

// RenewAuth lets a token be renewed only while its user exists with the
// same policies, as Vault does.
func (b *Backend) RenewAuth(ctx context.Context, a *logical.Auth) error {
	name := a.Metadata["username"]
	if name == "" {
		return logical.BadRequest("token has no username: not renewing")
	}
	u, err := b.loadUser(ctx, name)
	if err != nil {
		return err
	}
	if u == nil {
		return logical.BadRequest("user %q no longer exists: not renewing", name)
	}
	if !tokenparams.EquivalentPolicies(u.Params.Policies, a.Policies) {
		return logical.BadRequest("policies have changed, not renewing")
	}
	return nil
}
