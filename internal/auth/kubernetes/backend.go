package kubernetes

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
)

// Backend is one mounted kubernetes auth method.
type Backend struct {
	store     storage.Backend
	log       *slog.Logger
	tokenFile *cachedFile // the pod's own token, the default reviewer
	caFile    *cachedFile // the pod's cluster CA, the default CA
	now       func() time.Time

	roleMu sync.Mutex // serialises read-modify-write of roles
}

var (
	_ logical.Backend          = (*Backend)(nil)
	_ logical.PathSpecialist   = (*Backend)(nil)
	_ logical.ExistenceChecker = (*Backend)(nil)
)

// Factory builds a kubernetes auth method that falls back to the pod's
// service account credentials at their standard paths.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	return NewFactory(LocalFiles{TokenPath: DefaultTokenPath, CAPath: DefaultCAPath})(ctx, conf)
}

// NewFactory returns a Factory whose backends read the local service
// account token and CA from lf instead of the standard paths.
func NewFactory(lf LocalFiles) logical.Factory {
	return func(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
		if conf == nil || conf.Storage == nil {
			return nil, errors.New("kubernetes: backend config has no storage")
		}
		log := conf.Logger
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		return &Backend{
			store:     conf.Storage,
			log:       log,
			tokenFile: newCachedFile(lf.TokenPath, lf.Reload),
			caFile:    newCachedFile(lf.CAPath, lf.Reload),
			now:       time.Now,
		}, nil
	}
}

// UnauthenticatedPaths: login needs no token.
func (b *Backend) UnauthenticatedPaths() []string { return []string{"login"} }

// SudoPaths: none.
func (b *Backend) SudoPaths() []string { return nil }

// HandleRequest serves config, role/:name, LIST role and login.
func (b *Backend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	p := req.MountPath
	switch {
	case p == "login":
		if req.Operation != logical.CreateOperation && req.Operation != logical.UpdateOperation {
			return nil, logical.ErrUnsupportedOperation
		}
		return b.login(ctx, req)
	case p == "config":
		return b.handleConfig(ctx, req)
	case p == "role" || p == "role/":
		if req.Operation != logical.ListOperation {
			return nil, logical.ErrUnsupportedOperation
		}
		return b.listRoles(ctx)
	case strings.HasPrefix(p, rolePrefix):
		if req.Operation == logical.ListOperation {
			return nil, logical.ErrUnsupportedOperation
		}
		return b.handleRole(ctx, req, strings.TrimPrefix(p, rolePrefix))
	}
	return nil, logical.ErrUnsupportedPath
}

// Exists tells the pipeline whether a write to config or a role creates or
// updates it.
func (b *Backend) Exists(ctx context.Context, req *logical.Request) (bool, error) {
	p := req.MountPath
	switch {
	case p == "config":
		c, err := b.loadConfig(ctx)
		return c != nil, err
	case strings.HasPrefix(p, rolePrefix):
		name := strings.TrimPrefix(p, rolePrefix)
		if checkRoleName(name) != nil {
			return false, nil // HandleRequest reports the bad name
		}
		r, err := b.loadRole(ctx, name)
		return r != nil, err
	}
	return true, nil
}
