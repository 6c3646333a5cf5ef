package database

import (
	"context"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
)

// dbRole is the JSON of a role/<name> entry: a dynamic role.
type dbRole struct {
	DBName               string   `json:"db_name"`
	CreationStatements   []string `json:"creation_statements"`
	RevocationStatements []string `json:"revocation_statements"`
	RollbackStatements   []string `json:"rollback_statements"`
	RenewStatements      []string `json:"renew_statements"`
	DefaultTTLSeconds    int64    `json:"default_ttl"`
	MaxTTLSeconds        int64    `json:"max_ttl"`
}

func (r *dbRole) defaultTTL() time.Duration { return time.Duration(r.DefaultTTLSeconds) * time.Second }
func (r *dbRole) maxTTL() time.Duration     { return time.Duration(r.MaxTTLSeconds) * time.Second }

var roleFields = []string{
	"db_name", "creation_statements", "revocation_statements", "rollback_statements", "renew_statements",
	"default_ttl", "max_ttl", "credential_type",
}

func (b *Backend) loadRole(ctx context.Context, name string) (*dbRole, error) {
	var r dbRole
	found, err := b.getJSON(ctx, rolePrefix+name, &r)
	if err != nil || !found {
		return nil, err
	}
	return &r, nil
}

func (b *Backend) readRole(ctx context.Context, name string) (*logical.Response, error) {
	r, err := b.loadRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.ErrNotFound
	}
	return &logical.Response{Data: map[string]any{
		"db_name":               r.DBName,
		"creation_statements":   nonNil(r.CreationStatements),
		"revocation_statements": nonNil(r.RevocationStatements),
		"rollback_statements":   nonNil(r.RollbackStatements),
		"renew_statements":      nonNil(r.RenewStatements),
		"default_ttl":           r.DefaultTTLSeconds,
		"max_ttl":               r.MaxTTLSeconds,
		"credential_type":       "password",
		"credential_config":     map[string]any{},
	}}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// writeRole creates or updates a dynamic role. On update, fields that are
// absent keep their value.
func (b *Backend) writeRole(ctx context.Context, req *logical.Request, name string) (*logical.Response, error) {
	d := req.Data
	if err := logical.CheckFields(d, roleFields...); err != nil {
		return nil, err
	}
	l := b.staticLock("role/" + name)
	l.Lock()
	defer l.Unlock()
	r, err := b.loadRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		r = &dbRole{}
	}
	if v, ok := d["db_name"]; ok {
		if r.DBName, err = logical.ParseString("db_name", v); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		name string
		dst  *[]string
	}{
		{"creation_statements", &r.CreationStatements}, {"revocation_statements", &r.RevocationStatements},
		{"rollback_statements", &r.RollbackStatements}, {"renew_statements", &r.RenewStatements},
	} {
		if v, ok := d[f.name]; ok {
			st, err := parseStatements(f.name, v)
			if err != nil {
				return nil, err
			}
			*f.dst = st
		}
	}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"default_ttl", &r.DefaultTTLSeconds}, {"max_ttl", &r.MaxTTLSeconds}} {
		if v, ok := d[f.name]; ok {
			dur, err := logical.ParseDuration(f.name, v)
			if err != nil {
				return nil, err
			}
			*f.dst = int64(dur / time.Second)
		}
	}
	if ct, err := logical.ParseString("credential_type", d["credential_type"]); err != nil {
		return nil, err
	} else if ct != "" && ct != "password" {
		return nil, logical.BadRequest("credential_type: Coffer supports only \"password\"")
	}
	switch {
	case r.DBName == "":
		return nil, logical.BadRequest("db_name is required")
	case len(r.CreationStatements) == 0:
		return nil, logical.BadRequest("creation_statements are required")
	case r.MaxTTLSeconds > 0 && r.DefaultTTLSeconds > r.MaxTTLSeconds:
		return nil, logical.BadRequest("default_ttl cannot be greater than max_ttl")
	}
	if err := checkName(r.DBName); err != nil {
		return nil, logical.BadRequest("db_name: invalid config name %q", clip(r.DBName))
	}
	return nil, b.putJSON(ctx, rolePrefix+name, r)
}
