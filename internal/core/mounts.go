package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
	"github.com/coffer-dev/coffer/internal/token"
)

const (
	mountTablePath = "core/mounts"
	authTablePath  = "core/auth"
	// Each mount's storage view lives under logical/<uuid>/ (secrets
	// engines) or auth/<uuid>/ (auth methods), behind the barrier.
	mountDataPrefix = "mount/"
	authDataPrefix  = "auth/"
)

// MountConfig is a mount's tunable configuration.
type MountConfig struct {
	DefaultLeaseTTL int  `json:"default_lease_ttl"`
	MaxLeaseTTL     int  `json:"max_lease_ttl"`
	ForceNoCache    bool `json:"force_no_cache"`
}

// MountEntry is one row of the mount table or the auth table.
type MountEntry struct {
	Path        string            `json:"path"` // with trailing "/"
	Type        string            `json:"type"`
	Description string            `json:"description"`
	Accessor    string            `json:"accessor"`
	UUID        string            `json:"uuid"`
	Local       bool              `json:"local"`
	SealWrap    bool              `json:"seal_wrap"`
	Options     map[string]string `json:"options"`
	Config      MountConfig       `json:"config"`
	CreatedTime time.Time         `json:"created_time"`

	backend logical.Backend
}

func (m *MountEntry) publicData() map[string]any {
	opts := map[string]any{}
	for k, v := range m.Options {
		opts[k] = v
	}
	var optsOut any = opts
	if len(opts) == 0 {
		optsOut = nil
	}
	return map[string]any{
		"type":                    m.Type,
		"description":             m.Description,
		"accessor":                m.Accessor,
		"uuid":                    m.UUID,
		"local":                   m.Local,
		"seal_wrap":               m.SealWrap,
		"external_entropy_access": false,
		"options":                 optsOut,
		"config": map[string]any{
			"default_lease_ttl": m.Config.DefaultLeaseTTL,
			"max_lease_ttl":     m.Config.MaxLeaseTTL,
			"force_no_cache":    m.Config.ForceNoCache,
		},
		"plugin_version":         "",
		"running_plugin_version": "",
		"running_sha256":         "",
	}
}

// mountTable is the routing table for one kind of mount.
type mountTable struct {
	mu      sync.RWMutex
	entries map[string]*MountEntry // by path, e.g. "secret/"
	path    string                 // storage key of the persisted table
	prefix  string                 // "" for secrets, "auth/" for auth methods
}

func newMountTable(path, prefix string) *mountTable {
	return &mountTable{entries: map[string]*MountEntry{}, path: path, prefix: prefix}
}

// match returns the mount serving the full request path p, by longest
// prefix on segment boundaries.
func (t *mountTable) match(p string) *MountEntry {
	t.mu.RLock()
	defer t.mu.RUnlock()
	cand := p
	if !strings.HasSuffix(cand, "/") {
		cand += "/"
	}
	for {
		if e, ok := t.entries[cand]; ok {
			return e
		}
		i := strings.LastIndexByte(strings.TrimSuffix(cand, "/"), '/')
		if i < 0 {
			return nil
		}
		cand = cand[:i+1]
	}
}

func (t *mountTable) list() []*MountEntry {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]*MountEntry, 0, len(t.entries))
	for _, e := range t.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func (t *mountTable) persistLocked(ctx context.Context, s storage.Backend) error {
	rows := make([]*MountEntry, 0, len(t.entries))
	for _, e := range t.entries {
		if e.Type == "system" || e.Type == "token" {
			continue // built in, recreated at unseal
		}
		rows = append(rows, e)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Path < rows[j].Path })
	raw, err := json.Marshal(rows)
	if err != nil {
		return fmt.Errorf("encode mount table: %w", err)
	}
	return s.Put(ctx, &storage.Entry{Key: t.path, Value: raw})
}

func (t *mountTable) load(ctx context.Context, s storage.Backend) ([]*MountEntry, error) {
	e, err := s.Get(ctx, t.path)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load mount table: %w", err)
	}
	var rows []*MountEntry
	if err := json.Unmarshal(e.Value, &rows); err != nil {
		return nil, fmt.Errorf("decode mount table: %w", err)
	}
	return rows, nil
}

// normalizeMountPath cleans a user-given mount path to "a/b/".
func normalizeMountPath(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", logical.BadRequest("mount path is empty")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", logical.BadRequest("invalid mount path %q", p)
		}
	}
	return p + "/", nil
}

// reservedMount reports whether path collides with a built-in mount.
func reservedMount(path string) bool {
	for _, r := range []string{"sys/", "auth/", "cubbyhole/", "identity/"} {
		if path == r || strings.HasPrefix(path, r) || strings.HasPrefix(r, path) {
			return true
		}
	}
	return false
}

// mountBackend instantiates the backend of e.
func (c *Core) mountBackend(ctx context.Context, e *MountEntry, dataPrefix string) error {
	var f logical.Factory
	var ok bool
	if dataPrefix == authDataPrefix {
		f, ok = c.authMethods[e.Type]
	} else {
		f, ok = c.engines[e.Type]
	}
	if !ok {
		return logical.BadRequest("unknown %s type %q", kindName(dataPrefix), e.Type)
	}
	mountPoint := e.Path
	if dataPrefix == authDataPrefix {
		mountPoint = "auth/" + e.Path
	}
	b, err := f(ctx, &logical.BackendConfig{
		Storage:    newView(c.barrier, dataPrefix+e.UUID+"/"),
		MountPoint: mountPoint,
		Options:    e.Options,
		Logger:     c.log.With("mount", mountPoint, "type", e.Type),
	})
	if err != nil {
		return err
	}
	e.backend = b
	return nil
}

func kindName(dataPrefix string) string {
	if dataPrefix == authDataPrefix {
		return "auth method"
	}
	return "secrets engine"
}

// loadMounts restores both tables at unseal.
func (c *Core) loadMounts(ctx context.Context) error {
	c.mounts = newMountTable(mountTablePath, "")
	c.auths = newMountTable(authTablePath, "auth/")
	for _, pair := range []struct {
		t      *mountTable
		prefix string
	}{{c.mounts, mountDataPrefix}, {c.auths, authDataPrefix}} {
		rows, err := pair.t.load(ctx, c.barrier)
		if err != nil {
			return err
		}
		for _, e := range rows {
			if err := c.mountBackend(ctx, e, pair.prefix); err != nil {
				return fmt.Errorf("mount %s: %w", e.Path, err)
			}
			pair.t.entries[e.Path] = e
		}
	}
	return nil
}

// Mount adds a secrets engine (auth=false) or auth method (auth=true).
func (c *Core) Mount(ctx context.Context, auth bool, e *MountEntry) error {
	t, prefix := c.mounts, mountDataPrefix
	if auth {
		t, prefix = c.auths, authDataPrefix
	}
	path, err := normalizeMountPath(e.Path)
	if err != nil {
		return err
	}
	e.Path = path
	if !auth && reservedMount(path) {
		return logical.BadRequest("cannot mount at %q: the path is reserved", path)
	}
	if auth && (path == "token/" || strings.HasPrefix(path, "token/")) {
		return logical.BadRequest("cannot enable an auth method at %q: the path is reserved", path)
	}
	if e.UUID, err = newUUID(); err != nil {
		return c.errorInternal("generate mount uuid", err)
	}
	acc, err := newUUID()
	if err != nil {
		return c.errorInternal("generate mount accessor", err)
	}
	e.Accessor = e.Type + "_" + acc[:8]
	e.CreatedTime = time.Now().UTC()
	if e.Options == nil {
		e.Options = map[string]string{}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for p := range t.entries {
		if strings.HasPrefix(p, path) || strings.HasPrefix(path, p) {
			return logical.BadRequest("path is already in use at %s%s", t.prefix, p)
		}
	}
	if err := c.mountBackend(ctx, e, prefix); err != nil {
		return err
	}
	t.entries[path] = e
	if err := t.persistLocked(ctx, c.barrier); err != nil {
		delete(t.entries, path)
		return c.errorInternal("store mount table", err)
	}
	c.log.Info("mounted", "kind", kindName(prefix), "path", t.prefix+path, "type", e.Type)
	return nil
}

// Unmount removes a mount and all the data in its view.
func (c *Core) Unmount(ctx context.Context, auth bool, path string) error {
	t, prefix := c.mounts, mountDataPrefix
	if auth {
		t, prefix = c.auths, authDataPrefix
	}
	path, err := normalizeMountPath(path)
	if err != nil {
		return err
	}
	t.mu.Lock()
	e, ok := t.entries[path]
	if !ok || e.Type == "system" || e.Type == "token" {
		t.mu.Unlock()
		if ok {
			return logical.BadRequest("cannot unmount %q", path)
		}
		return nil // Vault: unmounting a missing path succeeds
	}
	t.mu.Unlock()
	// As Vault does, the secrets a mount issued are revoked before it goes:
	// once the engine is gone nothing could revoke them. If some cannot be
	// revoked now, the mount stays (and they are retried in the background).
	if !auth && c.leases != nil {
		if _, err := c.leases.RevokePrefix(ctx, path, false); err != nil {
			c.log.Warn("unmount refused: leases not revoked", "path", path, "err", err)
			return logical.BadRequest("cannot unmount %q: its leases could not all be revoked: %v; unmount again once they are, or revoke them with sys/leases/revoke-force", path, err)
		}
	}
	// Likewise every token an auth method issued (and their children and
	// leases) is revoked before it goes, as Vault does: a method that is
	// gone cannot vouch for them any more.
	if auth {
		n, err := c.tokens.RevokeByPath(ctx, "auth/"+path)
		if err != nil {
			c.log.Warn("disable refused: tokens not revoked", "path", path, "revoked", n, "err", err)
			return logical.BadRequest("cannot disable %q: its tokens could not all be revoked (%d were): %v; disable it again", path, n, err)
		}
		if n > 0 {
			c.log.Info("revoked the tokens of a disabled auth method", "path", path, "tokens", n)
		}
	}
	t.mu.Lock()
	if cur, ok := t.entries[path]; !ok || cur != e {
		t.mu.Unlock()
		return nil // unmounted (or replaced) meanwhile
	}
	delete(t.entries, path)
	if err := t.persistLocked(ctx, c.barrier); err != nil {
		t.entries[path] = e
		t.mu.Unlock()
		return c.errorInternal("store mount table", err)
	}
	t.mu.Unlock()
	if cl, ok := e.backend.(logical.Cleaner); ok {
		cl.Cleanup(ctx)
	}
	if err := clearPrefix(ctx, c.barrier, prefix+e.UUID+"/"); err != nil {
		c.log.Error("clear data of unmounted path", "path", t.prefix+path, "err", err)
	}
	if auth {
		// Logins that finished while the first pass ran.
		if n, err := c.tokens.RevokeByPath(ctx, "auth/"+path); err != nil {
			c.log.Error("revoke tokens of a disabled auth method", "path", path, "err", err)
		} else if n > 0 {
			c.log.Info("revoked the tokens of a disabled auth method", "path", path, "tokens", n)
		}
	}
	c.log.Info("unmounted", "kind", kindName(prefix), "path", t.prefix+path)
	return nil
}

// clearBatch is how many deletes clearPrefix commits at once.
const clearBatch = 512

// clearPrefix deletes every key under prefix, clearBatch keys per storage
// batch: one commit (one fsync on bbolt) per batch rather than per key, so
// that unmounting a path with thousands of keys takes a moment, not
// seconds per thousand.
func clearPrefix(ctx context.Context, s storage.Backend, prefix string) error {
	var ops []storage.Op
	var walk func(prefix string) error
	walk = func(prefix string) error {
		names, err := s.List(ctx, prefix)
		if err != nil {
			return err
		}
		for _, n := range names {
			if strings.HasSuffix(n, "/") {
				if err := walk(prefix + n); err != nil {
					return err
				}
				continue
			}
			ops = append(ops, storage.Op{Kind: storage.OpDelete, Entry: &storage.Entry{Key: prefix + n}})
			if len(ops) == clearBatch {
				if err := s.Batch(ctx, ops); err != nil {
					return err
				}
				ops = nil
			}
		}
		return nil
	}
	if err := walk(prefix); err != nil {
		return err
	}
	if len(ops) == 0 {
		return nil
	}
	return s.Batch(ctx, ops)
}

// Tune changes a mount's config, description or options.
func (c *Core) Tune(ctx context.Context, auth bool, path string, apply func(e *MountEntry) error) error {
	t := c.mounts
	if auth {
		t = c.auths
	}
	path, err := normalizeMountPath(path)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[path]
	if !ok {
		return logical.BadRequest("no mount at %s%s", t.prefix, path)
	}
	// Copy on write: requests in flight keep reading the entry they
	// routed with; the table gets the changed copy.
	ne := *e
	if err := apply(&ne); err != nil {
		return err
	}
	if u, ok := ne.backend.(logical.OptionsUpdater); ok {
		if err := u.UpdateOptions(ne.Options); err != nil {
			return err
		}
	}
	t.entries[path] = &ne
	if err := t.persistLocked(ctx, c.barrier); err != nil {
		t.entries[path] = e
		if u, ok := e.backend.(logical.OptionsUpdater); ok {
			_ = u.UpdateOptions(e.Options)
		}
		return c.errorInternal("store mount table", err)
	}
	return nil
}

// checkTokenRenew asks the auth method that issued e (found from the
// token's creation path) whether its login still stands before e is
// renewed. Tokens of the token store itself (root, auth/token/create)
// need no check; a token whose method is gone is refused.
func (c *Core) checkTokenRenew(ctx context.Context, e *token.Entry) error {
	rest, ok := strings.CutPrefix(e.Path, "auth/")
	if !ok || rest == "" || strings.HasPrefix(rest, "token/") {
		return nil
	}
	me := c.auths.match(rest)
	if me == nil {
		return logical.BadRequest("the auth method that issued this token no longer exists")
	}
	r, ok := me.backend.(logical.AuthRenewer)
	if !ok {
		return nil
	}
	pols := make([]string, 0, len(e.Policies))
	for _, p := range e.Policies {
		if p != "default" {
			pols = append(pols, p)
		}
	}
	return r.RenewAuth(ctx, &logical.Auth{Policies: pols, TokenPolicies: pols, Metadata: maps.Clone(e.Meta), DisplayName: e.DisplayName})
}
