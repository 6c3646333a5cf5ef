package userpass

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
)

// Storage layout inside the mount's view.
const (
	userPrefix    = "user/"
	lockoutPrefix = "lockout/"
	// padKey is written by failed logins of unknown users, so they do the
	// storage work a known user's failure does without storing anything
	// about names that do not exist.
	padKey = "lockout-pad"
)

// Backend is one mounted userpass auth method.
type Backend struct {
	store storage.Backend
	log   *slog.Logger
	now   func() time.Time

	confMu sync.RWMutex
	conf   *config

	// hashSem bounds concurrent argon2id computations (each holds
	// argon2_memory KiB).
	hashSem chan struct{}

	userMu sync.Mutex // serialises read-modify-write of user entries

	lockMu   sync.Mutex     // serialises lockout bookkeeping
	inflight map[string]int // logins being verified, by lockout key
}

var (
	_ logical.Backend          = (*Backend)(nil)
	_ logical.PathSpecialist   = (*Backend)(nil)
	_ logical.ExistenceChecker = (*Backend)(nil)
	_ logical.OptionsUpdater   = (*Backend)(nil)
)

// Factory builds a userpass backend from its mount options (see
// options.go). It computes one argon2id hash (the dummy).
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	if conf == nil || conf.Storage == nil {
		return nil, errors.New("userpass: backend config has no storage")
	}
	c, err := parseOptions(conf.Options)
	if err != nil {
		return nil, err
	}
	if err := c.withDummy(); err != nil {
		return nil, err
	}
	log := conf.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Backend{
		store:    conf.Storage,
		log:      log,
		now:      time.Now,
		conf:     c,
		hashSem:  make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
		inflight: map[string]int{},
	}, nil
}

// UpdateOptions applies new mount options (sys/auth/:path/tune).
func (b *Backend) UpdateOptions(opts map[string]string) error {
	c, err := parseOptions(opts)
	if err != nil {
		return err
	}
	cur := b.config()
	if c.hash == cur.hash {
		c.dummy = cur.dummy
	} else if err := c.withDummy(); err != nil {
		return err
	}
	b.confMu.Lock()
	b.conf = c
	b.confMu.Unlock()
	return nil
}

func (b *Backend) config() *config {
	b.confMu.RLock()
	defer b.confMu.RUnlock()
	return b.conf
}

// UnauthenticatedPaths: login needs no token.
func (b *Backend) UnauthenticatedPaths() []string { return []string{"login/*"} }

// SudoPaths: none.
func (b *Backend) SudoPaths() []string { return nil }

// HandleRequest serves users/, users/:name, users/:name/password,
// users/:name/policies and login/:name.
func (b *Backend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	p := req.MountPath
	switch {
	case strings.HasPrefix(p, "login/"):
		if req.Operation != logical.CreateOperation && req.Operation != logical.UpdateOperation {
			return nil, logical.ErrUnsupportedOperation
		}
		return b.login(ctx, req, strings.TrimPrefix(p, "login/"))
	case p == "users" || p == "users/":
		if req.Operation != logical.ListOperation {
			return nil, logical.ErrUnsupportedOperation
		}
		return b.listUsers(ctx)
	case strings.HasPrefix(p, "users/"):
		rest := strings.TrimSuffix(strings.TrimPrefix(p, "users/"), "/")
		name, sub, _ := strings.Cut(rest, "/")
		name, err := checkName(name)
		if err != nil {
			return nil, err
		}
		switch sub {
		case "":
			return b.handleUser(ctx, req, name)
		case "password":
			return b.handlePassword(ctx, req, name)
		case "policies":
			return b.handlePolicies(ctx, req, name)
		}
	}
	return nil, logical.ErrUnsupportedPath
}

// Exists tells the pipeline whether a write to users/:name creates or
// updates it. Logins and the sub-paths are always updates (and a login
// must not touch storage before the timing-equalised path).
func (b *Backend) Exists(ctx context.Context, req *logical.Request) (bool, error) {
	rest, ok := strings.CutPrefix(req.MountPath, "users/")
	if !ok || strings.Contains(strings.TrimSuffix(rest, "/"), "/") {
		return true, nil
	}
	name, err := checkName(strings.TrimSuffix(rest, "/"))
	if err != nil {
		return false, nil // HandleRequest reports the bad name
	}
	u, err := b.loadUser(ctx, name)
	return u != nil, err
}
