package transit

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
)

// maxCached bounds the cache of parsed keys.
const maxCached = 1024

// Backend is one mounted transit engine.
type Backend struct {
	store storage.Backend
	log   *slog.Logger
	// now is the clock of request-driven changes; tests replace it.
	// RotateDue uses the time it is given instead.
	now func() time.Time

	// locks serialise the requests on one key (see lockFor).
	locks [256]sync.RWMutex

	// cacheMu guards cache. It is taken after a key's lock, never before.
	cacheMu sync.Mutex
	cache   map[string]*policy

	// schedMu guards the auto-rotation index: when each key with an
	// auto_rotate_period is next due. loaded says a full scan has filled it.
	schedMu sync.Mutex
	loaded  bool
	due     map[string]time.Time
}

var (
	_ logical.Backend          = (*Backend)(nil)
	_ logical.ExistenceChecker = (*Backend)(nil)
	_ logical.Rotator          = (*Backend)(nil)
)

// Factory builds a transit backend; it has the logical.Factory signature.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	return New(ctx, conf)
}

// New builds a transit backend on conf.Storage. It takes no options and
// reads nothing until the first request.
func New(_ context.Context, conf *logical.BackendConfig) (*Backend, error) {
	if conf == nil || conf.Storage == nil {
		return nil, errors.New("transit: backend config has no storage")
	}
	log := conf.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Backend{
		store: conf.Storage,
		log:   log,
		now:   func() time.Time { return time.Now().UTC() },
		cache: map[string]*policy{},
		due:   map[string]time.Time{},
	}, nil
}

// HandleRequest serves one request on a path below the mount.
func (b *Backend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	r, err := route(req.MountPath)
	if err != nil {
		return nil, err
	}
	op := req.Operation
	switch {
	case r.endpoint == "keys" && r.name == "":
		if op != logical.ListOperation {
			return nil, logical.ErrUnsupportedOperation
		}
		return b.listKeys(ctx)
	case r.endpoint == "keys" && r.action == "":
		switch {
		case isRead(op):
			return b.readKey(ctx, req, r.name)
		case isWrite(op):
			return b.createKey(ctx, req, r.name)
		case op == logical.DeleteOperation:
			return b.deleteKey(ctx, r.name)
		}
		return nil, logical.ErrUnsupportedOperation
	case !isWrite(op):
		return nil, logical.ErrUnsupportedOperation
	}
	switch r.endpoint {
	case "keys":
		switch r.action {
		case "rotate":
			return b.rotateKey(ctx, req, r.name)
		case "config":
			return b.configKey(ctx, req, r.name)
		case "trim":
			return b.trimKey(ctx, req, r.name)
		}
	case "encrypt":
		return b.encrypt(ctx, req, r.name)
	case "decrypt":
		return b.decrypt(ctx, req, r.name)
	case "rewrap":
		return b.rewrap(ctx, req, r.name)
	case "datakey":
		return b.datakey(ctx, req, r.name, r.action)
	case "hmac":
		return b.hmac(ctx, req, r.name, r.action)
	case "sign":
		return b.sign(ctx, req, r.name, r.action)
	case "verify":
		return b.verify(ctx, req, r.name, r.action)
	case "random":
		return b.random(req, r.action, r.extra)
	case "hash":
		return b.hash(req, r.action)
	}
	return nil, logical.ErrUnsupportedPath
}

// Exists tells the pipeline whether a POST/PUT creates or updates. Only
// encrypt/:name can create (Vault's upsert): it is a create, needing the
// create capability, exactly when the key is absent. Every other write
// is an update.
func (b *Backend) Exists(ctx context.Context, req *logical.Request) (bool, error) {
	r, err := route(req.MountPath)
	if err != nil || r.endpoint != "encrypt" {
		return true, nil
	}
	l := b.lockFor(r.name)
	l.RLock()
	defer l.RUnlock()
	p, err := b.load(ctx, r.name)
	if err != nil {
		return false, err
	}
	return p != nil, nil
}

// lockFor returns the stripe lock of a key name. Distinct names may share
// a stripe; that only costs some concurrency.
func (b *Backend) lockFor(name string) *sync.RWMutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return &b.locks[h.Sum32()%uint32(len(b.locks))]
}

// load returns key name, from the cache or storage; nil when absent. The
// caller holds the key's lock (shared or exclusive) for as long as it uses
// the result, and must not modify it.
func (b *Backend) load(ctx context.Context, name string) (*policy, error) {
	b.cacheMu.Lock()
	p := b.cache[name]
	b.cacheMu.Unlock()
	if p != nil {
		return p, nil
	}
	p, err := b.readPolicy(ctx, name)
	if err != nil || p == nil {
		return nil, err
	}
	return b.cacheAdd(p), nil
}

// cacheAdd caches p unless another reader of the same key got there first,
// in which case p is zeroed and the cached one returned.
func (b *Backend) cacheAdd(p *policy) *policy {
	b.cacheMu.Lock()
	defer b.cacheMu.Unlock()
	if old := b.cache[p.name]; old != nil {
		p.zero()
		return old
	}
	if len(b.cache) >= maxCached {
		b.evictOneLocked(p.name)
	}
	b.cache[p.name] = p
	return p
}

// evictOneLocked drops and zeroes one cached key whose lock is free, so
// that no request is using it. It never waits: TryLock cannot deadlock
// against requests that hold a key lock and want cacheMu. If every
// candidate is busy the cache grows past maxCached for a while.
func (b *Backend) evictOneLocked(keep string) {
	own := b.lockFor(keep)
	for name, p := range b.cache {
		l := b.lockFor(name)
		if l == own || !l.TryLock() {
			continue
		}
		delete(b.cache, name)
		p.zero()
		l.Unlock()
		return
	}
}

// cacheReplace makes p the cached version of its key and zeroes the one it
// replaces. The caller holds the key's lock exclusively, so no request is
// using the old one.
func (b *Backend) cacheReplace(p *policy) {
	b.cacheMu.Lock()
	defer b.cacheMu.Unlock()
	if old := b.cache[p.name]; old != nil && old != p {
		old.zero()
	}
	if _, ok := b.cache[p.name]; !ok && len(b.cache) >= maxCached {
		b.evictOneLocked(p.name)
	}
	b.cache[p.name] = p
}

// cacheDrop forgets and zeroes key name; the caller holds its lock
// exclusively.
func (b *Backend) cacheDrop(name string) {
	b.cacheMu.Lock()
	defer b.cacheMu.Unlock()
	if old := b.cache[name]; old != nil {
		old.zero()
		delete(b.cache, name)
	}
}

// target is a parsed request path: endpoint/name/action/extra, where the
// meaning of action and extra depends on the endpoint.
type target struct {
	endpoint, name, action, extra string
}

// route splits a mount-relative path and checks the key name in it.
func route(path string) (target, error) {
	seg := strings.Split(path, "/")
	n := len(seg)
	var t target
	switch seg[0] {
	case "keys":
		switch {
		case n == 1 || (n == 2 && seg[1] == ""):
			return target{endpoint: "keys"}, nil
		case n == 2:
			t = target{endpoint: "keys", name: seg[1]}
		case n == 3 && (seg[2] == "rotate" || seg[2] == "config" || seg[2] == "trim"):
			t = target{endpoint: "keys", name: seg[1], action: seg[2]}
		default:
			return t, logical.ErrUnsupportedPath
		}
	case "encrypt", "decrypt", "rewrap":
		if n != 2 {
			return t, logical.ErrUnsupportedPath
		}
		t = target{endpoint: seg[0], name: seg[1]}
	case "datakey":
		if n != 3 {
			return t, logical.ErrUnsupportedPath
		}
		t = target{endpoint: seg[0], action: seg[1], name: seg[2]}
	case "hmac", "sign", "verify":
		switch n {
		case 2:
			t = target{endpoint: seg[0], name: seg[1]}
		case 3:
			t = target{endpoint: seg[0], name: seg[1], action: seg[2]}
		default:
			return t, logical.ErrUnsupportedPath
		}
	case "random", "hash":
		if n > 3 || (seg[0] == "hash" && n > 2) {
			return t, logical.ErrUnsupportedPath
		}
		t = target{endpoint: seg[0]}
		if n > 1 {
			t.action = seg[1]
		}
		if n > 2 {
			t.extra = seg[2]
		}
		return t, nil
	default:
		return t, logical.ErrUnsupportedPath
	}
	return t, checkName(t.name)
}

// maxNameLen bounds key names, so that storage keys stay short.
const maxNameLen = 256

// checkName accepts Vault's key names: word characters, '-' and '.', not
// starting or ending with '-' or '.'.
func checkName(name string) error {
	if name == "" {
		return logical.BadRequest("missing key name")
	}
	if len(name) > maxNameLen {
		return logical.BadRequest("key name is longer than %d bytes", maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		word := c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		inner := (c == '-' || c == '.') && i > 0 && i < len(name)-1
		if !word && !inner {
			return logical.BadRequest("invalid key name %q: use letters, digits, '_', and '-' or '.' inside", clip(name))
		}
	}
	return nil
}

func isWrite(op logical.Operation) bool {
	return op == logical.CreateOperation || op == logical.UpdateOperation
}

func isRead(op logical.Operation) bool {
	return op == logical.ReadOperation || op == logical.HeadOperation
}
