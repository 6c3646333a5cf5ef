package token

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
)

// Defaults of the token store.
const (
	// DefaultTTL is the TTL of a token created without one, and MaxTTL the
	// longest any non-periodic token lives: 32 days, as in Vault.
	DefaultTTL = 32 * 24 * time.Hour
	MaxTTL     = 32 * 24 * time.Hour
)

// Backend serves auth/token/ on top of a Store.
type Backend struct {
	st *Store
}

// NewBackend returns the auth/token/ backend.
func NewBackend(st *Store) *Backend { return &Backend{st: st} }

var _ logical.Backend = (*Backend)(nil)

// SudoPaths are the paths below auth/token/ that need the sudo capability.
func SudoPaths() []string {
	return []string{"revoke-orphan", "accessors/", "tidy"}
}

// HandleRequest implements logical.Backend.
func (b *Backend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	p := strings.TrimSuffix(req.MountPath, "/")
	write := req.Operation == logical.UpdateOperation || req.Operation == logical.CreateOperation
	switch {
	case p == "create" && write:
		return b.create(ctx, req, false)
	case p == "create-orphan" && write:
		return b.create(ctx, req, true)
	case p == "lookup-self" && (req.Operation == logical.ReadOperation || write):
		return b.lookupSelf(ctx, req)
	case p == "lookup" && write:
		return b.lookup(ctx, req)
	case p == "lookup-accessor" && write:
		return b.lookupAccessor(ctx, req)
	case p == "renew-self" && write:
		return b.renew(ctx, req, req.ClientToken, "")
	case p == "renew" && write:
		tok, err := stringField(req.Data, "token")
		if err != nil {
			return nil, err
		}
		return b.renew(ctx, req, tok, "")
	case p == "renew-accessor" && write:
		acc, err := stringField(req.Data, "accessor")
		if err != nil {
			return nil, err
		}
		return b.renew(ctx, req, "", acc)
	case p == "revoke-self" && write:
		if err := b.st.Revoke(ctx, req.ClientToken); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return &logical.Response{Status: 204}, nil
	case (p == "revoke" || p == "revoke-orphan") && write:
		tok, err := stringField(req.Data, "token")
		if err != nil {
			return nil, err
		}
		if p == "revoke-orphan" {
			err = b.st.RevokeOrphan(ctx, tok)
		} else {
			err = b.st.Revoke(ctx, tok)
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return &logical.Response{Status: 204}, nil
	case p == "revoke-accessor" && write:
		acc, err := stringField(req.Data, "accessor")
		if err != nil {
			return nil, err
		}
		e, err := b.st.LookupAccessor(ctx, acc)
		if errors.Is(err, ErrNotFound) {
			return nil, logical.BadRequest("invalid accessor")
		}
		if err != nil {
			return nil, err
		}
		if err := b.st.RevokeHash(ctx, e.Hash); err != nil {
			return nil, err
		}
		return &logical.Response{Status: 204}, nil
	case p == "accessors" && req.Operation == logical.ListOperation:
		accs, err := b.st.ListAccessors(ctx)
		if err != nil {
			return nil, err
		}
		return &logical.Response{Data: map[string]any{"keys": accs}}, nil
	case p == "tidy" && write:
		n, err := b.st.Tidy(ctx)
		if err != nil {
			return nil, err
		}
		return &logical.Response{Data: map[string]any{"tokens_removed": n}, Warnings: []string{fmt.Sprintf("tidy removed %d expired tokens", n)}}, nil
	case slices.Contains([]string{"create", "create-orphan", "lookup", "lookup-self", "lookup-accessor", "renew", "renew-self", "renew-accessor", "revoke", "revoke-self", "revoke-orphan", "revoke-accessor", "tidy", "accessors"}, p):
		return nil, logical.ErrUnsupportedOperation
	}
	return nil, logical.ErrUnsupportedPath
}

func stringField(data map[string]any, name string) (string, error) {
	s, err := logical.ParseString(name, data[name])
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", logical.BadRequest("missing %s", name)
	}
	return s, nil
}

var policyNameRe = regexp.MustCompile(`^[A-Za-z0-9_.@+-]+$`)

func (b *Backend) create(ctx context.Context, req *logical.Request, orphanPath bool) (*logical.Response, error) {
	d := req.Data
	if err := logical.CheckFields(d, "id", "policies", "meta", "metadata", "no_parent", "no_default_policy", "renewable",
		"ttl", "lease", "type", "explicit_max_ttl", "display_name", "num_uses", "period", "entity_alias", "role_name"); err != nil {
		return nil, err
	}
	parent, err := b.st.Lookup(ctx, req.ClientToken)
	if err != nil {
		return nil, logical.ErrPermissionDenied
	}
	isRoot := parent.IsRoot()

	e := &Entry{Path: "auth/token/create", Renewable: true}
	if orphanPath {
		e.Path = "auth/token/create-orphan"
	}
	pols, err := logical.ParseStrings("policies", d["policies"])
	if err != nil {
		return nil, err
	}
	for _, p := range pols {
		if !policyNameRe.MatchString(p) {
			return nil, logical.BadRequest("invalid policy name %q", p)
		}
	}
	noDefault, err := logical.ParseBool("no_default_policy", d["no_default_policy"])
	if err != nil {
		return nil, err
	}
	if pols == nil {
		pols = slices.Clone(parent.Policies)
	}
	pols = normalizePolicies(pols, noDefault)
	if !isRoot {
		for _, p := range pols {
			if p == "root" {
				return nil, logical.BadRequest("root tokens can only be created by a root token")
			}
			if p != "default" && !slices.Contains(parent.Policies, p) {
				return nil, logical.BadRequest("child policies must be subset of parent")
			}
		}
	}
	e.Policies = pols

	noParent, err := logical.ParseBool("no_parent", d["no_parent"])
	if err != nil {
		return nil, err
	}
	if noParent && !isRoot {
		return nil, logical.BadRequest("root or sudo privileges required to create an orphan token with no_parent")
	}
	e.Orphan = orphanPath || noParent
	if !e.Orphan {
		e.Parent = parent.Hash
	}
	if id, err := logical.ParseString("id", d["id"]); err != nil {
		return nil, err
	} else if id != "" {
		if !isRoot {
			return nil, logical.BadRequest("root or sudo privileges required to specify token id")
		}
		if !ValidFormat(id) || strings.Contains(id, ".") && !strings.HasPrefix(id, Prefix) {
			return nil, logical.BadRequest("invalid token id")
		}
		if _, err := b.st.Lookup(ctx, id); err == nil {
			return nil, logical.BadRequest("cannot create a token with a duplicate ID")
		}
		e.ID = id
	}
	if t, err := logical.ParseString("type", d["type"]); err != nil {
		return nil, err
	} else if t != "" && t != "service" && t != "default" {
		return nil, logical.BadRequest("token type %q is not supported (only service tokens)", t)
	}
	if v, ok := d["renewable"]; ok {
		if e.Renewable, err = logical.ParseBool("renewable", v); err != nil {
			return nil, err
		}
	}
	if meta, ok := d["meta"]; ok || d["metadata"] != nil {
		if !ok {
			meta = d["metadata"]
		}
		m, ok := meta.(map[string]any)
		if !ok && meta != nil {
			return nil, logical.BadRequest("meta must be an object of strings")
		}
		e.Meta = map[string]string{}
		for k, v := range m {
			s, ok := v.(string)
			if !ok {
				return nil, logical.BadRequest("meta.%s must be a string", k)
			}
			e.Meta[k] = s
		}
	}
	name, err := logical.ParseString("display_name", d["display_name"])
	if err != nil {
		return nil, err
	}
	e.DisplayName = "token"
	if name != "" {
		e.DisplayName = "token-" + strings.TrimPrefix(name, "token-")
	}
	nu, err := logical.ParseInt("num_uses", d["num_uses"])
	if err != nil {
		return nil, err
	}
	if nu < 0 {
		return nil, logical.BadRequest("num_uses cannot be negative")
	}
	e.NumUses = int(nu)

	ttlField := d["ttl"]
	if ttlField == nil {
		ttlField = d["lease"]
	}
	ttl, err := logical.ParseDuration("ttl", ttlField)
	if err != nil {
		return nil, err
	}
	if e.ExplicitMaxTTL, err = logical.ParseDuration("explicit_max_ttl", d["explicit_max_ttl"]); err != nil {
		return nil, err
	}
	if e.Period, err = logical.ParseDuration("period", d["period"]); err != nil {
		return nil, err
	}
	if e.Period > 0 && !isRoot {
		return nil, logical.BadRequest("root or sudo privileges required to create periodic token")
	}
	var warnings []string
	switch {
	case e.Period > 0:
		ttl = e.Period
	case ttl == 0 && slices.Contains(e.Policies, "root"):
		// A root token without a TTL never expires, as in Vault.
	case ttl == 0:
		ttl = DefaultTTL
	}
	if e.Period == 0 && ttl > MaxTTL {
		ttl = MaxTTL
		warnings = append(warnings, fmt.Sprintf("TTL of %q exceeded the effective max_ttl of %q; TTL value is capped accordingly", ttlField, MaxTTL))
	}
	if e.ExplicitMaxTTL > 0 && (ttl == 0 || ttl > e.ExplicitMaxTTL) {
		ttl = e.ExplicitMaxTTL
		warnings = append(warnings, "explicit max TTL is less than the requested TTL; TTL value is capped accordingly")
	}
	e.TTL = ttl
	created, err := b.st.Create(ctx, e)
	if err != nil {
		return nil, err
	}
	a := authOf(created, b.st.now())
	a.TTL = created.TTL
	return &logical.Response{Auth: a, Warnings: warnings}, nil
}

// normalizePolicies dedupes and sorts, adding "default" unless told not to
// or the set is root.
func normalizePolicies(pols []string, noDefault bool) []string {
	set := map[string]bool{}
	for _, p := range pols {
		p = strings.ToLower(strings.TrimSpace(p))
		if p != "" {
			set[p] = true
		}
	}
	if noDefault {
		delete(set, "default")
	} else if !set["root"] {
		set["default"] = true
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func remaining(e *Entry, now time.Time) time.Duration {
	if e.ExpireTime.IsZero() {
		return 0
	}
	d := e.ExpireTime.Sub(now)
	if d < 0 {
		return 0
	}
	return d.Round(time.Second)
}

func authOf(e *Entry, now time.Time) *logical.Auth {
	meta := e.Meta
	if meta == nil {
		meta = map[string]string{}
	}
	return &logical.Auth{
		ClientToken:   e.ID,
		Accessor:      e.Accessor,
		Policies:      e.Policies,
		TokenPolicies: e.Policies,
		Metadata:      meta,
		DisplayName:   e.DisplayName,
		TTL:           remaining(e, now),
		Renewable:     e.Renewable,
		TokenType:     "service",
		Orphan:        e.Orphan,
		NumUses:       e.NumUses,
	}
}

// LookupData is the data of lookup, lookup-self and lookup-accessor. The id
// is omitted for lookup-accessor.
func LookupData(e *Entry, now time.Time, withID bool) map[string]any {
	var expire any
	if !e.ExpireTime.IsZero() {
		expire = e.ExpireTime.UTC().Format(time.RFC3339Nano)
	}
	meta := any(nil)
	if len(e.Meta) > 0 {
		meta = e.Meta
	}
	d := map[string]any{
		"accessor":         e.Accessor,
		"creation_time":    e.CreationTime.Unix(),
		"creation_ttl":     int64(e.TTL / time.Second),
		"display_name":     e.DisplayName,
		"entity_id":        "",
		"expire_time":      expire,
		"explicit_max_ttl": int64(e.ExplicitMaxTTL / time.Second),
		"id":               "",
		"issue_time":       e.CreationTime.UTC().Format(time.RFC3339Nano),
		"meta":             meta,
		"num_uses":         max(e.NumUses, 0),
		"orphan":           e.Orphan,
		"path":             e.Path,
		"policies":         e.Policies,
		"renewable":        e.Renewable,
		"ttl":              int64(remaining(e, now) / time.Second),
		"type":             "service",
	}
	if e.Period > 0 {
		d["period"] = int64(e.Period / time.Second)
	}
	if len(e.BoundCIDRs) > 0 {
		d["bound_cidrs"] = e.BoundCIDRs
	}
	if withID {
		d["id"] = e.ID
	}
	return d
}

func (b *Backend) lookupSelf(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	e, err := b.st.lookupCaller(ctx, req.ClientToken)
	if err != nil {
		return nil, logical.ErrPermissionDenied
	}
	return &logical.Response{Data: LookupData(e, b.st.now(), true)}, nil
}

func (b *Backend) lookup(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	tok, err := stringField(req.Data, "token")
	if err != nil {
		return nil, err
	}
	e, err := b.st.Lookup(ctx, tok)
	if errors.Is(err, ErrNotFound) {
		return nil, logical.BadRequest("bad token")
	}
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: LookupData(e, b.st.now(), true)}, nil
}

func (b *Backend) lookupAccessor(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	acc, err := stringField(req.Data, "accessor")
	if err != nil {
		return nil, err
	}
	e, err := b.st.LookupAccessor(ctx, acc)
	if errors.Is(err, ErrNotFound) {
		return nil, logical.BadRequest("invalid accessor")
	}
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: LookupData(e, b.st.now(), false)}, nil
}

func (b *Backend) renew(ctx context.Context, req *logical.Request, tok, acc string) (*logical.Response, error) {
	inc, err := logical.ParseDuration("increment", req.Data["increment"])
	if err != nil {
		return nil, err
	}
	var e *Entry
	if acc != "" {
		e, err = b.st.LookupAccessor(ctx, acc)
	} else {
		e, err = b.st.Lookup(ctx, tok)
	}
	if errors.Is(err, ErrNotFound) {
		if acc != "" {
			return nil, logical.BadRequest("invalid accessor")
		}
		return nil, logical.BadRequest("invalid token")
	}
	if err != nil {
		return nil, err
	}
	b.st.mu.Lock()
	check := b.st.renewCheck
	b.st.mu.Unlock()
	if check != nil && e.Renewable {
		if err := check(ctx, e); err != nil {
			return nil, err
		}
	}
	res, err := b.st.Renew(ctx, e, inc, MaxTTL)
	if errors.Is(err, ErrNotRenewable) {
		return nil, logical.BadRequest("token is not renewable")
	}
	if errors.Is(err, ErrNotFound) {
		return nil, logical.BadRequest("token has reached its maximum TTL and cannot be renewed")
	}
	if err != nil {
		return nil, err
	}
	resp := &logical.Response{Auth: authOf(res.Entry, b.st.now())}
	if acc != "" {
		resp.Auth.ClientToken = ""
	} else {
		resp.Auth.ClientToken = tok
	}
	if res.Capped {
		resp.Warnings = []string{"TTL of the token was capped by its maximum TTL"}
	}
	return resp, nil
}
