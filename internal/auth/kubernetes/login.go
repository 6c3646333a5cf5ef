package kubernetes

import (
	"context"
	"slices"
	"strings"

	"github.com/coffer-dev/coffer/internal/logical"
)

// Vault's answers for a token whose service account the role does not
// bind.
var (
	errNamespaceNotAuthorized = &logical.CodedError{Status: 403, Msg: "namespace not authorized"}
	errNameNotAuthorized      = &logical.CodedError{Status: 403, Msg: "service account name not authorized"}
)

const saUserPrefix = "system:serviceaccount:"

func (b *Backend) login(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	if err := logical.CheckFields(req.Data, "role", "jwt"); err != nil {
		return nil, err
	}
	roleName, err := logical.ParseString("role", req.Data["role"])
	if err != nil {
		return nil, err
	}
	jwtStr, err := logical.ParseString("jwt", req.Data["jwt"])
	if err != nil {
		return nil, err
	}
	jwtStr = strings.TrimSpace(jwtStr)
	switch {
	case roleName == "":
		return nil, logical.BadRequest("missing role")
	case jwtStr == "":
		return nil, logical.BadRequest("missing jwt")
	}
	if checkRoleName(roleName) != nil {
		return nil, logical.BadRequest("invalid role name %q", roleName)
	}
	cfg, err := b.loadConfig(ctx)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, logical.BadRequest("the kubernetes auth method is not configured: write its config first")
	}
	r, err := b.loadRole(ctx, roleName)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.BadRequest("invalid role name %q", roleName)
	}
	tok, err := parseJWT(jwtStr)
	if err != nil {
		return nil, logical.BadRequest("%v", err)
	}
	if len(cfg.PEMKeys) > 0 {
		keys, err := parsePublicKeys(cfg.PEMKeys)
		if err != nil {
			return nil, err
		}
		if err := tok.verify(keys, b.now()); err != nil {
			b.log.Debug("kubernetes auth: login refused", "role", roleName, "reason", err)
			return nil, logical.ErrPermissionDenied
		}
	}
	// Refuse tokens the role obviously does not bind before asking the API
	// server. The claims are not trusted yet: the decision is repeated on
	// the reviewed identity below.
	c := tok.claims
	if c.Namespace != "" && !r.allowsNamespace(c.Namespace) {
		return nil, errNamespaceNotAuthorized
	}
	if c.Name != "" && !r.allowsName(c.Name) {
		return nil, errNameNotAuthorized
	}
	rv, err := b.reviewerFor(cfg, jwtStr)
	if err != nil {
		return nil, err
	}
	var audiences []string
	if r.Audience != "" {
		audiences = []string{r.Audience}
	}
	st, err := b.review(ctx, rv, jwtStr, audiences)
	if err != nil {
		return nil, err
	}
	if !st.Authenticated {
		// st.Error says why (expired, invalidated, wrong audience) without
		// quoting the token.
		b.log.Debug("kubernetes auth: token review refused the token", "role", roleName, "reason", st.Error)
		return nil, logical.ErrPermissionDenied
	}
	if r.Audience != "" && !slices.Contains(st.Audiences, r.Audience) {
		b.log.Debug("kubernetes auth: reviewed token lacks the role's audience", "role", roleName)
		return nil, logical.ErrPermissionDenied
	}
	ns, name, ok := splitServiceAccount(st.User.Username)
	if !ok {
		b.log.Debug("kubernetes auth: reviewed user is not a service account", "role", roleName)
		return nil, logical.ErrPermissionDenied
	}
	if (c.Namespace != "" && c.Namespace != ns) || (c.Name != "" && c.Name != name) {
		return nil, logical.ErrPermissionDenied
	}
	if !r.allowsNamespace(ns) {
		return nil, errNamespaceNotAuthorized
	}
	if !r.allowsName(name) {
		return nil, errNameNotAuthorized
	}
	uid := st.User.UID
	if c.UID != "" && uid != "" && c.UID != uid {
		return nil, logical.ErrPermissionDenied
	}
	if uid == "" {
		uid = c.UID
	}
	if cfg.Issuer != "" && !cfg.DisableIssValidation && c.Issuer != cfg.Issuer {
		b.log.Debug("kubernetes auth: token issuer does not match the config", "role", roleName)
		return nil, logical.ErrPermissionDenied
	}
	alias := uid
	if r.AliasNameSource == aliasName || alias == "" {
		alias = ns + "/" + name
	}
	pols := append([]string(nil), r.Policies...)
	return &logical.Response{Auth: &logical.Auth{
		Policies:      pols,
		TokenPolicies: pols,
		Metadata: map[string]string{
			"role":                      roleName,
			"service_account_name":      name,
			"service_account_namespace": ns,
			"service_account_uid":       uid,
		},
		DisplayName: ns + "-" + name,
		TTL:         r.TTL,
		MaxTTL:      r.MaxTTL,
		Period:      r.Period,
		NumUses:     r.NumUses,
		Alias:       alias,
		BoundCIDRs:  append([]string(nil), r.BoundCIDRs...),
	}}, nil
}

// splitServiceAccount parses "system:serviceaccount:<ns>:<name>".
func splitServiceAccount(user string) (ns, name string, ok bool) {
	rest, ok := strings.CutPrefix(user, saUserPrefix)
	if !ok {
		return "", "", false
	}
	ns, name, ok = strings.Cut(rest, ":")
	if !ok || ns == "" || name == "" || strings.Contains(name, ":") {
		return "", "", false
	}
	return ns, name, true
}
