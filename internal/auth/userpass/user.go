package userpass

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/coffer-dev/coffer/internal/auth/tokenparams"
	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
)

// maxPasswordLen bounds passwords, in bytes.
const maxPasswordLen = 1024

// user is a stored user. The password exists only as its encoded hash.
type user struct {
	PasswordHash string `json:"password_hash"`
	tokenparams.Params
}

// User names are case-insensitive (stored lower-case, as Vault does).
var nameRe = regexp.MustCompile(`^[a-z0-9_@+=-][a-z0-9_.@+=-]{0,127}$`)

// checkName lower-cases name and checks it.
func checkName(name string) (string, error) {
	n := strings.ToLower(name)
	if !nameRe.MatchString(n) {
		return "", logical.BadRequest("invalid user name %q: use letters, digits and _ . @ + = - (at most 128, not starting with '.')", name)
	}
	return n, nil
}

func (b *Backend) loadUser(ctx context.Context, name string) (*user, error) {
	e, err := b.store.Get(ctx, userPrefix+name)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("userpass: read user: %w", err)
	}
	var u user
	if err := json.Unmarshal(e.Value, &u); err != nil {
		return nil, fmt.Errorf("userpass: decode user: %w", err)
	}
	return &u, nil
}

func encodeUser(name string, u *user) (*storage.Entry, error) {
	raw, err := json.Marshal(u)
	if err != nil {
		return nil, fmt.Errorf("userpass: encode user: %w", err)
	}
	return &storage.Entry{Key: userPrefix + name, Value: raw}, nil
}

func (b *Backend) listUsers(ctx context.Context) (*logical.Response, error) {
	names, err := b.store.List(ctx, userPrefix)
	if err != nil {
		return nil, fmt.Errorf("userpass: list users: %w", err)
	}
	if len(names) == 0 {
		return nil, logical.ErrNotFound
	}
	return &logical.Response{Data: map[string]any{"keys": names}}, nil
}

// parsePassword reads and checks the password field of a write.
func parsePassword(d map[string]any) (string, bool, error) {
	v, ok := d["password"]
	if !ok {
		return "", false, nil
	}
	pw, err := logical.ParseString("password", v)
	if err != nil {
		return "", false, err
	}
	if pw == "" {
		return "", false, logical.BadRequest("password cannot be empty")
	}
	if len(pw) > maxPasswordLen {
		return "", false, logical.BadRequest("password is longer than %d bytes", maxPasswordLen)
	}
	return pw, true, nil
}

func (b *Backend) handleUser(ctx context.Context, req *logical.Request, name string) (*logical.Response, error) {
	switch req.Operation {
	case logical.ReadOperation:
		u, err := b.loadUser(ctx, name)
		if err != nil {
			return nil, err
		}
		if u == nil {
			return nil, logical.ErrNotFound
		}
		d := map[string]any{}
		u.Params.Data(d)
		return &logical.Response{Data: d}, nil
	case logical.DeleteOperation:
		b.userMu.Lock()
		defer b.userMu.Unlock()
		err := b.store.Batch(ctx, []storage.Op{
			{Kind: storage.OpDelete, Entry: &storage.Entry{Key: userPrefix + name}},
			{Kind: storage.OpDelete, Entry: &storage.Entry{Key: lockoutPrefix + name}},
		})
		if err != nil {
			return nil, fmt.Errorf("userpass: delete user: %w", err)
		}
		return &logical.Response{Status: 204}, nil
	case logical.CreateOperation, logical.UpdateOperation:
	default:
		return nil, logical.ErrUnsupportedOperation
	}
	if err := logical.CheckFields(req.Data, append([]string{"password"}, tokenparams.Fields...)...); err != nil {
		return nil, err
	}
	pw, hasPW, err := parsePassword(req.Data)
	if err != nil {
		return nil, err
	}
	// Hash before taking the lock: it is the slow part.
	var encoded string
	if hasPW {
		if encoded, err = NewHash(pw, b.config().hash); err != nil {
			return nil, err
		}
	}
	b.userMu.Lock()
	defer b.userMu.Unlock()
	u, err := b.loadUser(ctx, name)
	if err != nil {
		return nil, err
	}
	if u == nil {
		if !hasPW {
			return nil, logical.BadRequest("missing password")
		}
		u = &user{}
	}
	if err := u.Params.Update(req.Data); err != nil {
		return nil, err
	}
	return b.storeUser(ctx, name, u, encoded)
}

// storeUser writes u, with a new password hash if encoded is set (which
// also clears the user's lockout).
func (b *Backend) storeUser(ctx context.Context, name string, u *user, encoded string) (*logical.Response, error) {
	ops := []storage.Op{}
	if encoded != "" {
		u.PasswordHash = encoded
		ops = append(ops, storage.Op{Kind: storage.OpDelete, Entry: &storage.Entry{Key: lockoutPrefix + name}})
	}
	e, err := encodeUser(name, u)
	if err != nil {
		return nil, err
	}
	ops = append(ops, storage.Op{Kind: storage.OpPut, Entry: e})
	if err := b.store.Batch(ctx, ops); err != nil {
		return nil, fmt.Errorf("userpass: write user: %w", err)
	}
	return &logical.Response{Status: 204}, nil
}

func (b *Backend) handlePassword(ctx context.Context, req *logical.Request, name string) (*logical.Response, error) {
	if req.Operation != logical.CreateOperation && req.Operation != logical.UpdateOperation {
		return nil, logical.ErrUnsupportedOperation
	}
	if err := logical.CheckFields(req.Data, "password"); err != nil {
		return nil, err
	}
	pw, hasPW, err := parsePassword(req.Data)
	if err != nil {
		return nil, err
	}
	if !hasPW {
		return nil, logical.BadRequest("missing password")
	}
	encoded, err := NewHash(pw, b.config().hash)
	if err != nil {
		return nil, err
	}
	b.userMu.Lock()
	defer b.userMu.Unlock()
	u, err := b.loadUser(ctx, name)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, logical.BadRequest("username does not exist")
	}
	return b.storeUser(ctx, name, u, encoded)
}

func (b *Backend) handlePolicies(ctx context.Context, req *logical.Request, name string) (*logical.Response, error) {
	if req.Operation != logical.CreateOperation && req.Operation != logical.UpdateOperation {
		return nil, logical.ErrUnsupportedOperation
	}
	if err := logical.CheckFields(req.Data, "token_policies", "policies"); err != nil {
		return nil, err
	}
	if _, ok := req.Data["token_policies"]; !ok {
		if _, ok := req.Data["policies"]; !ok {
			return nil, logical.BadRequest("missing token_policies")
		}
	}
	b.userMu.Lock()
	defer b.userMu.Unlock()
	u, err := b.loadUser(ctx, name)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, logical.BadRequest("username does not exist")
	}
	if err := u.Params.Update(req.Data); err != nil {
		return nil, err
	}
	return b.storeUser(ctx, name, u, "")
}
