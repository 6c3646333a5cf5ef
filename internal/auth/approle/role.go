package approle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/coffer-dev/coffer/internal/auth/cidr"
	"github.com/coffer-dev/coffer/internal/auth/tokenparams"
	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
)

// maxRoleIDLen bounds a custom role_id.
const maxRoleIDLen = 256

// role is a stored role.
type role struct {
	// UUID names the role's secret IDs in storage: a role deleted and
	// created again under the same name does not inherit them.
	UUID               string        `json:"uuid"`
	RoleID             string        `json:"role_id"`
	BindSecretID       bool          `json:"bind_secret_id"`
	SecretIDBoundCIDRs []string      `json:"secret_id_bound_cidrs,omitempty"`
	SecretIDNumUses    int           `json:"secret_id_num_uses"`
	SecretIDTTL        time.Duration `json:"secret_id_ttl"`
	LocalSecretIDs     bool          `json:"local_secret_ids"`
	tokenparams.Params
}

// roleIDIndex is the value stored at role-id/<HMAC(role_id)>.
type roleIDIndex struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

var nameRe = regexp.MustCompile(`^[a-z0-9_@+=-][a-z0-9_.@+=-]{0,127}$`)

// checkName lower-cases a role name and checks it (role names are
// case-insensitive, as in Vault).
func checkName(name string) (string, error) {
	n := strings.ToLower(name)
	if !nameRe.MatchString(n) {
		return "", logical.BadRequest("invalid role name %q: use letters, digits and _ . @ + = - (at most 128, not starting with '.')", name)
	}
	return n, nil
}

// roleFields are the fields a role write accepts.
var roleFields = append([]string{
	"role_id", "bind_secret_id", "secret_id_bound_cidrs", "bound_cidr_list", "secret_id_num_uses",
	"secret_id_ttl", "local_secret_ids",
}, tokenparams.Fields...)

// boundCIDRs parses the role's address binding (stored in canonical
// form, so this fails only on corrupted storage).
func (r *role) boundCIDRs() (cidr.List, error) {
	l, err := cidr.Parse(r.SecretIDBoundCIDRs)
	if err != nil {
		return nil, fmt.Errorf("approle: stored secret_id_bound_cidrs: %w", err)
	}
	return l, nil
}

// allowsRemote checks the role's address binding, failing closed on a
// stored list that no longer parses.
func (r *role) allowsRemote(remoteAddr string) bool {
	if len(r.SecretIDBoundCIDRs) == 0 {
		return true
	}
	l, err := r.boundCIDRs()
	return err == nil && len(l) > 0 && l.AllowsRemote(remoteAddr)
}

// parseCIDRField reads a list-of-CIDRs field.
func parseCIDRField(field string, v any) (cidr.List, error) {
	list, err := logical.ParseStrings(field, v)
	if err != nil {
		return nil, err
	}
	l, err := cidr.Parse(list)
	if err != nil {
		return nil, logical.BadRequest("%s: %v", field, err)
	}
	return l, nil
}

func (b *Backend) loadRole(ctx context.Context, name string) (*role, error) {
	e, err := b.store.Get(ctx, rolePrefix+name)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("approle: read role: %w", err)
	}
	var r role
	if err := json.Unmarshal(e.Value, &r); err != nil {
		return nil, fmt.Errorf("approle: decode role: %w", err)
	}
	return &r, nil
}

// roleByRoleID resolves a role_id to its role, or nil.
func (b *Backend) roleByRoleID(ctx context.Context, roleID string) (string, *role, error) {
	d, err := b.digest(ctx, "role_id", roleID)
	if err != nil {
		return "", nil, err
	}
	e, err := b.store.Get(ctx, roleIDPrefix+d)
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("approle: read role id index: %w", err)
	}
	var idx roleIDIndex
	if err := json.Unmarshal(e.Value, &idx); err != nil {
		return "", nil, fmt.Errorf("approle: decode role id index: %w", err)
	}
	if !equalDigest(idx.Digest, d) {
		return "", nil, nil
	}
	r, err := b.loadRole(ctx, idx.Name)
	if err != nil || r == nil {
		return "", nil, err
	}
	// The index and the role must agree (a role's role_id changed under
	// an old index entry is not a match).
	rd, err := b.digest(ctx, "role_id", r.RoleID)
	if err != nil {
		return "", nil, err
	}
	if !equalDigest(rd, d) {
		return "", nil, nil
	}
	return idx.Name, r, nil
}

func (b *Backend) listRoles(ctx context.Context) (*logical.Response, error) {
	names, err := b.store.List(ctx, rolePrefix)
	if err != nil {
		return nil, fmt.Errorf("approle: list roles: %w", err)
	}
	if len(names) == 0 {
		return nil, logical.ErrNotFound
	}
	return &logical.Response{Data: map[string]any{"keys": names}}, nil
}

func (r *role) data() map[string]any {
	cidrs := r.SecretIDBoundCIDRs
	if cidrs == nil {
		cidrs = []string{}
	}
	d := map[string]any{
		"bind_secret_id":        r.BindSecretID,
		"secret_id_bound_cidrs": cidrs,
		"secret_id_num_uses":    r.SecretIDNumUses,
		"secret_id_ttl":         logical.FormatSeconds(r.SecretIDTTL),
		"local_secret_ids":      r.LocalSecretIDs,
	}
	r.Params.Data(d)
	if r.Period > 0 {
		d["period"] = logical.FormatSeconds(r.Period)
	}
	return d
}

func (b *Backend) handleRole(ctx context.Context, req *logical.Request, name string) (*logical.Response, error) {
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
		return b.deleteRole(ctx, name)
	case logical.CreateOperation, logical.UpdateOperation:
	default:
		return nil, logical.ErrUnsupportedOperation
	}
	if err := logical.CheckFields(req.Data, roleFields...); err != nil {
		return nil, err
	}
	b.roleMu.Lock()
	defer b.roleMu.Unlock()
	r, err := b.loadRole(ctx, name)
	if err != nil {
		return nil, err
	}
	created := r == nil
	if created {
		id, err := newUUID()
		if err != nil {
			return nil, err
		}
		r = &role{UUID: id, BindSecretID: true}
	}
	oldRoleID := r.RoleID
	if err := r.update(req.Data, created); err != nil {
		return nil, err
	}
	if r.RoleID == "" {
		if r.RoleID, err = newUUID(); err != nil {
			return nil, err
		}
	}
	if err := b.storeRole(ctx, name, r, oldRoleID); err != nil {
		return nil, err
	}
	return &logical.Response{Status: 204}, nil
}

// update applies a role write to r and validates the result.
func (r *role) update(d map[string]any, created bool) error {
	var err error
	if v, ok := d["role_id"]; ok {
		if r.RoleID, err = parseRoleID(v); err != nil {
			return err
		}
	}
	if v, ok := d["bind_secret_id"]; ok {
		if r.BindSecretID, err = logical.ParseBool("bind_secret_id", v); err != nil {
			return err
		}
	}
	for _, f := range []string{"secret_id_bound_cidrs", "bound_cidr_list"} {
		if v, ok := d[f]; ok {
			l, err := parseCIDRField(f, v)
			if err != nil {
				return err
			}
			r.SecretIDBoundCIDRs = l.Strings()
			break
		}
	}
	if v, ok := d["secret_id_num_uses"]; ok {
		n, err := logical.ParseInt("secret_id_num_uses", v)
		if err != nil {
			return err
		}
		if n < 0 || n > 1<<31-1 {
			return logical.BadRequest("secret_id_num_uses cannot be negative")
		}
		r.SecretIDNumUses = int(n)
	}
	if v, ok := d["secret_id_ttl"]; ok {
		if r.SecretIDTTL, err = logical.ParseDuration("secret_id_ttl", v); err != nil {
			return err
		}
	}
	if v, ok := d["local_secret_ids"]; ok {
		b, err := logical.ParseBool("local_secret_ids", v)
		if err != nil {
			return err
		}
		if !created && b != r.LocalSecretIDs {
			return logical.BadRequest("local_secret_ids can only be modified during role creation")
		}
		r.LocalSecretIDs = b
	}
	if err := r.Params.Update(d); err != nil {
		return err
	}
	if !r.BindSecretID && len(r.SecretIDBoundCIDRs) == 0 {
		return logical.BadRequest("at least one constraint should be enabled on the role: bind_secret_id or secret_id_bound_cidrs")
	}
	return nil
}

func parseRoleID(v any) (string, error) {
	s, err := logical.ParseString("role_id", v)
	if err != nil {
		return "", err
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", logical.BadRequest("role_id cannot be empty")
	}
	if len(s) > maxRoleIDLen {
		return "", logical.BadRequest("role_id is longer than %d bytes", maxRoleIDLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return "", logical.BadRequest("role_id contains a control character")
		}
	}
	return s, nil
}

// storeRole writes r and, when its role_id changed from oldRoleID, moves
// the index, refusing a role_id another role already has. roleMu is held.
func (b *Backend) storeRole(ctx context.Context, name string, r *role, oldRoleID string) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("approle: encode role: %w", err)
	}
	ops := []storage.Op{{Kind: storage.OpPut, Entry: &storage.Entry{Key: rolePrefix + name, Value: raw}}}
	if r.RoleID != oldRoleID {
		otherName, other, err := b.roleByRoleID(ctx, r.RoleID)
		if err != nil {
			return err
		}
		if other != nil && otherName != name {
			return logical.BadRequest("role_id already in use")
		}
		d, err := b.digest(ctx, "role_id", r.RoleID)
		if err != nil {
			return err
		}
		idx, err := json.Marshal(roleIDIndex{Name: name, Digest: d})
		if err != nil {
			return fmt.Errorf("approle: encode role id index: %w", err)
		}
		ops = append(ops, storage.Op{Kind: storage.OpPut, Entry: &storage.Entry{Key: roleIDPrefix + d, Value: idx}})
		if oldRoleID != "" {
			od, err := b.digest(ctx, "role_id", oldRoleID)
			if err != nil {
				return err
			}
			ops = append(ops, storage.Op{Kind: storage.OpDelete, Entry: &storage.Entry{Key: roleIDPrefix + od}})
		}
	}
	if err := b.store.Batch(ctx, ops); err != nil {
		return fmt.Errorf("approle: write role: %w", err)
	}
	return nil
}

// deleteRole removes the role, its role_id index and all its secret IDs.
func (b *Backend) deleteRole(ctx context.Context, name string) (*logical.Response, error) {
	b.roleMu.Lock()
	defer b.roleMu.Unlock()
	r, err := b.loadRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return &logical.Response{Status: 204}, nil
	}
	d, err := b.digest(ctx, "role_id", r.RoleID)
	if err != nil {
		return nil, err
	}
	ops := []storage.Op{
		{Kind: storage.OpDelete, Entry: &storage.Entry{Key: rolePrefix + name}},
		{Kind: storage.OpDelete, Entry: &storage.Entry{Key: roleIDPrefix + d}},
	}
	for _, prefix := range []string{secretIDPrefix + r.UUID + "/", accessorPrefix + r.UUID + "/"} {
		keys, err := b.store.List(ctx, prefix)
		if err != nil {
			return nil, fmt.Errorf("approle: list secret ids: %w", err)
		}
		for _, k := range keys {
			ops = append(ops, storage.Op{Kind: storage.OpDelete, Entry: &storage.Entry{Key: prefix + k}})
		}
	}
	// One batch: the role and every credential it had go together. Secret
	// IDs written concurrently under the old UUID can never be used (no
	// role has that UUID) and are removed by tidy.
	if err := b.store.Batch(ctx, ops); err != nil {
		return nil, fmt.Errorf("approle: delete role: %w", err)
	}
	return &logical.Response{Status: 204}, nil
}

func (b *Backend) handleRoleID(ctx context.Context, req *logical.Request, name string) (*logical.Response, error) {
	switch req.Operation {
	case logical.ReadOperation:
		r, err := b.loadRole(ctx, name)
		if err != nil {
			return nil, err
		}
		if r == nil {
			return nil, logical.ErrNotFound
		}
		return &logical.Response{Data: map[string]any{"role_id": r.RoleID}}, nil
	case logical.CreateOperation, logical.UpdateOperation:
	default:
		return nil, logical.ErrUnsupportedOperation
	}
	if err := logical.CheckFields(req.Data, "role_id"); err != nil {
		return nil, err
	}
	if _, ok := req.Data["role_id"]; !ok {
		return nil, logical.BadRequest("missing role_id")
	}
	id, err := parseRoleID(req.Data["role_id"])
	if err != nil {
		return nil, err
	}
	b.roleMu.Lock()
	defer b.roleMu.Unlock()
	r, err := b.loadRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.BadRequest("role %q does not exist", name)
	}
	old := r.RoleID
	r.RoleID = id
	if err := b.storeRole(ctx, name, r, old); err != nil {
		return nil, err
	}
	return &logical.Response{Status: 204}, nil
}
