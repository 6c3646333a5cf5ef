package core

import (
	"context"
	"strings"

	"github.com/coffer-dev/coffer/internal/logical"
)

// sys/mounts, sys/auth and sys/internal/ui/mounts.

func (c *Core) systemMountData() map[string]any {
	sys := &MountEntry{Path: "sys/", Type: "system", Description: "system endpoints used for control, policy and debugging", Accessor: "system", UUID: "system"}
	return sys.publicData()
}

func (c *Core) tokenMountData() map[string]any {
	tok := &MountEntry{Path: "token/", Type: "token", Description: "token based credentials", Accessor: "auth_token", UUID: "token"}
	return tok.publicData()
}

func (c *Core) handleMountsList(auth bool) *logical.Response {
	d := map[string]any{}
	t := c.mounts
	if auth {
		t = c.auths
		d["token/"] = c.tokenMountData()
	} else {
		d["sys/"] = c.systemMountData()
	}
	for _, e := range t.list() {
		d[e.Path] = e.publicData()
	}
	return &logical.Response{Data: d, TopLevel: true}
}

// parseMountRequest reads the body of POST sys/mounts/:path and
// sys/auth/:path.
func parseMountRequest(path string, data map[string]any) (*MountEntry, error) {
	if err := logical.CheckFields(data, "type", "description", "config", "options", "local", "seal_wrap", "external_entropy_access", "plugin_name", "plugin_version", "path"); err != nil {
		return nil, err
	}
	e := &MountEntry{Path: path, Options: map[string]string{}}
	var err error
	if e.Type, err = logical.ParseString("type", data["type"]); err != nil {
		return nil, err
	}
	if e.Type == "" {
		if e.Type, err = logical.ParseString("plugin_name", data["plugin_name"]); err != nil {
			return nil, err
		}
	}
	if e.Type == "" {
		return nil, logical.BadRequest("type is required")
	}
	if e.Description, err = logical.ParseString("description", data["description"]); err != nil {
		return nil, err
	}
	if e.Local, err = logical.ParseBool("local", data["local"]); err != nil {
		return nil, err
	}
	if e.SealWrap, err = logical.ParseBool("seal_wrap", data["seal_wrap"]); err != nil {
		return nil, err
	}
	if err := applyOptions(e, data["options"]); err != nil {
		return nil, err
	}
	if err := applyConfig(e, data["config"]); err != nil {
		return nil, err
	}
	// Vault's aliases for the two KV versions.
	switch e.Type {
	case "kv-v2":
		e.Type = "kv"
		e.Options["version"] = "2"
	case "kv-v1":
		e.Type = "kv"
		e.Options["version"] = "1"
	case "kv":
		if e.Options["version"] == "" {
			e.Options["version"] = "1"
		}
	}
	return e, nil
}

func applyOptions(e *MountEntry, v any) error {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return logical.BadRequest("options must be an object of strings")
	}
	for k, val := range m {
		s, err := logical.ParseString("options."+k, val)
		if err != nil {
			return err
		}
		e.Options[k] = s
	}
	return nil
}

func applyConfig(e *MountEntry, v any) error {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return logical.BadRequest("config must be an object")
	}
	for k, val := range m {
		switch k {
		case "default_lease_ttl":
			d, err := logical.ParseDuration(k, val)
			if err != nil {
				return err
			}
			e.Config.DefaultLeaseTTL = int(logical.FormatSeconds(d))
		case "max_lease_ttl":
			d, err := logical.ParseDuration(k, val)
			if err != nil {
				return err
			}
			e.Config.MaxLeaseTTL = int(logical.FormatSeconds(d))
		case "force_no_cache":
			b, err := logical.ParseBool(k, val)
			if err != nil {
				return err
			}
			e.Config.ForceNoCache = b
		case "description", "audit_non_hmac_request_keys", "audit_non_hmac_response_keys", "listing_visibility",
			"passthrough_request_headers", "allowed_response_headers", "token_type", "plugin_version",
			"allowed_managed_keys", "options":
			// Accepted for compatibility with clients that send the whole
			// config; Coffer does not act on them.
		default:
			return logical.BadRequest("unknown config field %q", k)
		}
	}
	return nil
}

// handleMounts serves sys/mounts... and sys/auth...; rest is the path
// after "sys/mounts" or "sys/auth".
func (c *Core) handleMounts(ctx context.Context, req *logical.Request, auth bool, rest string) (*logical.Response, error) {
	rest = strings.Trim(rest, "/")
	if rest == "" {
		if req.Operation != logical.ReadOperation {
			return nil, logical.ErrUnsupportedOperation
		}
		return c.handleMountsList(auth), nil
	}
	if p, ok := strings.CutSuffix(rest, "/tune"); ok {
		return c.handleTune(ctx, req, auth, p)
	}
	switch req.Operation {
	case logical.ReadOperation:
		t := c.mounts
		if auth {
			t = c.auths
			if rest == "token" {
				return &logical.Response{Data: c.tokenMountData()}, nil
			}
		} else if rest == "sys" {
			return &logical.Response{Data: c.systemMountData()}, nil
		}
		t.mu.RLock()
		e, ok := t.entries[rest+"/"]
		t.mu.RUnlock()
		if !ok {
			return nil, logical.BadRequest("no matching mount at %q", rest+"/")
		}
		return &logical.Response{Data: e.publicData()}, nil
	case logical.CreateOperation, logical.UpdateOperation:
		e, err := parseMountRequest(rest, req.Data)
		if err != nil {
			return nil, err
		}
		if err := c.Mount(ctx, auth, e); err != nil {
			return nil, err
		}
		return &logical.Response{Status: 204}, nil
	case logical.DeleteOperation:
		if err := c.Unmount(ctx, auth, rest); err != nil {
			return nil, err
		}
		return &logical.Response{Status: 204}, nil
	}
	return nil, logical.ErrUnsupportedOperation
}

func (c *Core) handleTune(ctx context.Context, req *logical.Request, auth bool, path string) (*logical.Response, error) {
	t := c.mounts
	if auth {
		t = c.auths
	}
	switch req.Operation {
	case logical.ReadOperation:
		t.mu.RLock()
		e, ok := t.entries[strings.Trim(path, "/")+"/"]
		t.mu.RUnlock()
		if !ok {
			return nil, logical.BadRequest("no mount at %q", path)
		}
		d := map[string]any{
			"default_lease_ttl": e.Config.DefaultLeaseTTL,
			"max_lease_ttl":     e.Config.MaxLeaseTTL,
			"force_no_cache":    e.Config.ForceNoCache,
			"description":       e.Description,
		}
		if len(e.Options) > 0 {
			d["options"] = e.Options
		}
		return &logical.Response{Data: d, TopLevel: true}, nil
	case logical.CreateOperation, logical.UpdateOperation:
	default:
		return nil, logical.ErrUnsupportedOperation
	}
	err := c.Tune(ctx, auth, path, func(e *MountEntry) error {
		opts := make(map[string]string, len(e.Options))
		for k, v := range e.Options {
			opts[k] = v
		}
		e.Options = opts
		for k, v := range req.Data {
			switch k {
			case "description":
				s, err := logical.ParseString(k, v)
				if err != nil {
					return err
				}
				e.Description = s
			case "options":
				if err := applyOptions(e, v); err != nil {
					return err
				}
			default:
				if err := applyConfig(e, map[string]any{k: v}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &logical.Response{Status: 204}, nil
}

// handleUIMount serves sys/internal/ui/mounts/:path, which the Vault CLI
// calls before every kv command to learn the mount and the KV version.
func (c *Core) handleUIMount(ctx context.Context, req *logical.Request, path string) (*logical.Response, error) {
	if req.Operation != logical.ReadOperation {
		return nil, logical.ErrUnsupportedOperation
	}
	path = strings.TrimPrefix(path, "/")
	if path == "" {
		d := map[string]any{"secret": map[string]any{}, "auth": map[string]any{}}
		sec := d["secret"].(map[string]any)
		for _, e := range c.mounts.list() {
			sec[e.Path] = e.publicData()
		}
		au := d["auth"].(map[string]any)
		for _, e := range c.auths.list() {
			au[e.Path] = e.publicData()
		}
		return &logical.Response{Data: d}, nil
	}
	e := c.mounts.match(path)
	if e == nil {
		return nil, logical.ErrNotFound
	}
	d := e.publicData()
	d["path"] = e.Path
	return &logical.Response{Data: d}, nil
}
