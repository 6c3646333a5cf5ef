package database

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
)

// Backend is one mounted database engine.
type Backend struct {
	store storage.Backend
	log   *slog.Logger
	// now is the clock of request-driven changes; RotateDue uses the time
	// it is given instead.
	now func() time.Time

	// connMu guards conns, the open connection of each config, built on
	// first use and dropped when the config changes.
	connMu sync.Mutex
	conns  map[string]*connection

	// configLocks serialise changes to one config (write, delete,
	// rotate-root) by name stripe.
	configLocks [64]sync.Mutex
	// staticLocks serialise the changes and rotations of one static role.
	staticLocks [64]sync.Mutex

	// schedMu guards the index of static roles' next rotations; loaded
	// says a full scan has filled it.
	schedMu sync.Mutex
	loaded  bool
	due     map[string]time.Time
}

var (
	_ logical.Backend          = (*Backend)(nil)
	_ logical.ExistenceChecker = (*Backend)(nil)
	_ logical.SecretBackend    = (*Backend)(nil)
	_ logical.Rotator          = (*Backend)(nil)
)

// Factory builds a database backend; it has the logical.Factory signature.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	return New(ctx, conf)
}

// New builds a database backend on conf.Storage. It connects to nothing
// until a request needs it.
func New(_ context.Context, conf *logical.BackendConfig) (*Backend, error) {
	if conf == nil || conf.Storage == nil {
		return nil, errors.New("database: backend config has no storage")
	}
	log := conf.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Backend{
		store: conf.Storage,
		log:   log,
		now:   func() time.Time { return time.Now().UTC() },
		conns: map[string]*connection{},
		due:   map[string]time.Time{},
	}, nil
}

// Cleanup closes every connection pool. The engine keeps working after
// it (pools reopen on demand); it is meant for unmount and seal.
func (b *Backend) Cleanup(_ context.Context) {
	b.connMu.Lock()
	conns := b.conns
	b.conns = map[string]*connection{}
	b.connMu.Unlock()
	for _, c := range conns {
		c.pool.close()
	}
}

// HandleRequest serves one request on a path below the mount.
func (b *Backend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	kind, name, err := route(req.MountPath)
	if err != nil {
		return nil, err
	}
	op := req.Operation
	switch {
	case name == "" && op == logical.ListOperation:
		return b.list(ctx, kind)
	case name == "":
		return nil, logical.ErrUnsupportedOperation
	}
	switch kind {
	case "config":
		switch {
		case isRead(op):
			return b.readConfig(ctx, name)
		case isWrite(op):
			return b.writeConfig(ctx, req, name)
		case op == logical.DeleteOperation:
			return b.deleteConfig(ctx, name)
		}
	case "roles":
		switch {
		case isRead(op):
			return b.readRole(ctx, name)
		case isWrite(op):
			return b.writeRole(ctx, req, name)
		case op == logical.DeleteOperation:
			return b.deleteEntry(ctx, rolePrefix+name)
		}
	case "static-roles":
		switch {
		case isRead(op):
			return b.readStaticRole(ctx, name)
		case isWrite(op):
			return b.writeStaticRole(ctx, req, name)
		case op == logical.DeleteOperation:
			return b.deleteStaticRole(ctx, name)
		}
	case "creds":
		// Not on HEAD: a request whose answer is dropped must not create
		// a user.
		if op == logical.ReadOperation {
			return b.creds(ctx, req, name)
		}
	case "static-creds":
		if isRead(op) {
			return b.staticCreds(ctx, name)
		}
	case "reset":
		if isWrite(op) {
			return b.reset(ctx, req, name)
		}
	case "rotate-root":
		if isWrite(op) {
			return b.rotateRoot(ctx, req, name)
		}
	case "rotate-role":
		if isWrite(op) {
			return b.rotateRole(ctx, req, name)
		}
	}
	return nil, logical.ErrUnsupportedOperation
}

// Exists tells the pipeline whether a write creates or updates: config,
// roles and static-roles entries exist once written; every other write is
// an update.
func (b *Backend) Exists(ctx context.Context, req *logical.Request) (bool, error) {
	kind, name, err := route(req.MountPath)
	if err != nil || name == "" {
		return true, nil
	}
	prefix, ok := storagePrefix[kind]
	if !ok {
		return true, nil
	}
	_, err = b.store.Get(ctx, prefix+name)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("database: read %s %q: %w", kind, name, err)
	}
	return true, nil
}

// Storage layout, relative to the mount's view.
const (
	configPrefix     = "config/"
	rolePrefix       = "role/"
	staticRolePrefix = "static-role/"
)

var storagePrefix = map[string]string{
	"config":       configPrefix,
	"roles":        rolePrefix,
	"static-roles": staticRolePrefix,
}

// listable are the kinds that answer LIST without a name.
var listable = map[string]bool{"config": true, "roles": true, "static-roles": true}

// route splits a mount-relative path into its kind and name.
func route(path string) (kind, name string, err error) {
	kind, name, _ = strings.Cut(path, "/")
	switch kind {
	case "config", "roles", "static-roles":
	case "creds", "static-creds", "reset", "rotate-root", "rotate-role":
		if name == "" {
			return "", "", logical.ErrUnsupportedPath
		}
	default:
		return "", "", logical.ErrUnsupportedPath
	}
	if name == "" {
		if !listable[kind] {
			return "", "", logical.ErrUnsupportedPath
		}
		return kind, "", nil
	}
	return kind, name, checkName(name)
}

// maxNameLen bounds config and role names.
const maxNameLen = 128

// checkName accepts Vault's names: word characters, '-' and '.', not
// starting or ending with '-' or '.'.
func checkName(name string) error {
	if len(name) > maxNameLen {
		return logical.BadRequest("name is longer than %d bytes", maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		word := c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		inner := (c == '-' || c == '.') && i > 0 && i < len(name)-1
		if !word && !inner {
			if c == '/' {
				return logical.ErrUnsupportedPath
			}
			return logical.BadRequest("invalid name %q: use letters, digits, '_', and '-' or '.' inside", clip(name))
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func isWrite(op logical.Operation) bool {
	return op == logical.CreateOperation || op == logical.UpdateOperation
}

func isRead(op logical.Operation) bool {
	return op == logical.ReadOperation || op == logical.HeadOperation
}

// list answers LIST config/, roles/ and static-roles/.
func (b *Backend) list(ctx context.Context, kind string) (*logical.Response, error) {
	names, err := b.store.List(ctx, storagePrefix[kind])
	if err != nil {
		return nil, fmt.Errorf("database: list %s: %w", kind, err)
	}
	keys := make([]string, 0, len(names))
	for _, n := range names {
		if !strings.HasSuffix(n, "/") {
			keys = append(keys, n)
		}
	}
	if len(keys) == 0 {
		return nil, logical.ErrNotFound
	}
	sort.Strings(keys)
	return &logical.Response{Data: map[string]any{"keys": keys}}, nil
}

// getJSON reads and decodes an entry; found is false when it is absent.
func (b *Backend) getJSON(ctx context.Context, key string, v any) (found bool, err error) {
	e, err := b.store.Get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("database: read %q: %w", key, err)
	}
	defer clear(e.Value)
	if err := json.Unmarshal(e.Value, v); err != nil {
		return false, fmt.Errorf("%w: %q", errCorrupt, key)
	}
	return true, nil
}

// putJSON encodes and stores an entry.
func (b *Backend) putJSON(ctx context.Context, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("database: encode %q: %w", key, err)
	}
	err = b.store.Put(ctx, &storage.Entry{Key: key, Value: raw})
	clear(raw)
	if err != nil {
		return fmt.Errorf("database: write %q: %w", key, err)
	}
	return nil
}

func (b *Backend) deleteEntry(ctx context.Context, key string) (*logical.Response, error) {
	if err := b.store.Delete(ctx, key); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("database: delete %q: %w", key, err)
	}
	return nil, nil
}

func stripe(name string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return int(h.Sum32() % uint32(n))
}

func (b *Backend) configLock(name string) *sync.Mutex {
	return &b.configLocks[stripe(name, len(b.configLocks))]
}

func (b *Backend) staticLock(name string) *sync.Mutex {
	return &b.staticLocks[stripe(name, len(b.staticLocks))]
}

// allowedRole reports whether role may use a config whose allowed_roles
// is patterns: "*" matches every role, and a pattern may hold '*'
// wildcards ("app-*").
func allowedRole(patterns []string, role string) bool {
	for _, p := range patterns {
		if globMatch(p, role) {
			return true
		}
	}
	return false
}

// globMatch matches s against a pattern whose only special character is
// '*' (any run of characters).
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}
