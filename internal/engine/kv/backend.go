package kv

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

// Backend is one mounted KV engine.
type Backend struct {
	store      storage.Backend
	mountPoint string
	log        *slog.Logger
	// now is the clock; tests replace it.
	now func() time.Time

	// modeMu guards version: requests hold it shared, an upgrade
	// exclusively, so the mount is unavailable while it migrates.
	modeMu  sync.RWMutex
	version int

	// cfgMu guards cfg, the cached v2/config entry.
	cfgMu sync.RWMutex
	cfg   mountConfig

	// locks serialise the requests on one path (see lockFor).
	locks [256]sync.RWMutex

	// metaCache holds decoded metadata for readers (see loadMetaShared).
	metaMu    sync.Mutex
	metaCache map[string]*keyMeta
}

var (
	_ logical.Backend          = (*Backend)(nil)
	_ logical.ExistenceChecker = (*Backend)(nil)
	_ logical.OptionsUpdater   = (*Backend)(nil)
	_ logical.Cleaner          = (*Backend)(nil)
)

// Factory builds a KV backend; it has the logical.Factory signature.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	return New(ctx, conf)
}

// New builds a KV backend for conf. Options["version"] selects "1"
// (default) or "2". A version 2 mount loads its config and finishes any
// upgrade from version 1 that was interrupted.
func New(ctx context.Context, conf *logical.BackendConfig) (*Backend, error) {
	if conf == nil || conf.Storage == nil {
		return nil, errors.New("kv: backend config has no storage")
	}
	version, err := parseVersion(conf.Options["version"])
	if err != nil {
		return nil, err
	}
	log := conf.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Backend{
		store:      conf.Storage,
		mountPoint: conf.MountPoint,
		log:        log,
		now:        func() time.Time { return time.Now().UTC() },
		version:    version,
	}
	if version == 2 {
		if err := b.loadConfig(ctx); err != nil {
			return nil, err
		}
		if err := b.upgrade(ctx); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func parseVersion(s string) (int, error) {
	switch strings.TrimSpace(s) {
	case "", "1":
		return 1, nil
	case "2":
		return 2, nil
	default:
		return 0, logical.BadRequest("kv: version must be \"1\" or \"2\", got %q", s)
	}
}

// HandleRequest serves one request on a path below the mount.
func (b *Backend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	b.modeMu.RLock()
	defer b.modeMu.RUnlock()
	if b.version == 1 {
		return b.handleV1(ctx, req)
	}
	return b.handleV2(ctx, req)
}

// Exists tells the pipeline whether a POST/PUT creates or updates.
func (b *Backend) Exists(ctx context.Context, req *logical.Request) (bool, error) {
	b.modeMu.RLock()
	defer b.modeMu.RUnlock()
	if b.version == 1 {
		return b.existsV1(ctx, req.MountPath)
	}
	return b.existsV2(ctx, req.MountPath)
}

// UpdateOptions applies the mount's options after a tune. Moving from
// version 1 to 2 migrates every value before it returns; version 2 cannot
// go back to 1. An empty version leaves the mount as it is.
func (b *Backend) UpdateOptions(opts map[string]string) error {
	v := strings.TrimSpace(opts["version"])
	if v == "" {
		return nil
	}
	version, err := parseVersion(v)
	if err != nil {
		return err
	}
	b.modeMu.Lock()
	defer b.modeMu.Unlock()
	switch {
	case version == b.version:
		return nil
	case version < b.version:
		return logical.BadRequest("cannot downgrade a KV mount from version 2 to version 1")
	}
	// The interface carries no context; the migration is bounded by the
	// size of the mount, and a crash in the middle is finished by New.
	ctx := context.Background()
	if err := b.loadConfig(ctx); err != nil {
		return err
	}
	if err := b.upgrade(ctx); err != nil {
		return err
	}
	b.version = 2
	return nil
}

// lockFor returns the stripe lock of a path. Distinct paths may share a
// stripe; that only costs some concurrency.
func (b *Backend) lockFor(path string) *sync.RWMutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(path))
	return &b.locks[h.Sum32()%uint32(len(b.locks))]
}

func isWrite(op logical.Operation) bool {
	return op == logical.CreateOperation || op == logical.UpdateOperation
}

func isRead(op logical.Operation) bool {
	return op == logical.ReadOperation || op == logical.HeadOperation
}
