package approle

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
)

// Storage layout inside the mount's view.
const (
	keyPath        = "hmac-key"
	rolePrefix     = "role/"
	roleIDPrefix   = "role-id/"   // HMAC(role_id) -> role name
	secretIDPrefix = "secret-id/" // <role uuid>/HMAC(secret_id) -> secretID
	accessorPrefix = "accessor/"  // <role uuid>/<accessor> -> HMAC(secret_id)
)

// tidyInterval is how often the scheduled tidy runs.
const tidyInterval = 5 * time.Minute

// Backend is one mounted approle auth method.
type Backend struct {
	store storage.Backend
	log   *slog.Logger
	now   func() time.Time

	keyMu sync.Mutex
	key   []byte // HMAC key, loaded or created on first use

	roleMu sync.Mutex // serialises writes of roles and their role IDs
	// sidLocks serialise the check-and-update of one secret ID (striped
	// by its HMAC), so a use count never goes below zero.
	sidLocks [64]sync.Mutex

	tidyMu   sync.Mutex
	lastTidy time.Time
}

var (
	_ logical.Backend          = (*Backend)(nil)
	_ logical.PathSpecialist   = (*Backend)(nil)
	_ logical.ExistenceChecker = (*Backend)(nil)
	_ logical.Rotator          = (*Backend)(nil)
)

// Factory builds an approle backend. It takes no options.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	if conf == nil || conf.Storage == nil {
		return nil, errors.New("approle: backend config has no storage")
	}
	if len(conf.Options) > 0 {
		for k := range conf.Options {
			return nil, logical.BadRequest("unknown approle option %q: approle takes no options", k)
		}
	}
	log := conf.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Backend{store: conf.Storage, log: log, now: time.Now}, nil
}

// UnauthenticatedPaths: login needs no token.
func (b *Backend) UnauthenticatedPaths() []string { return []string{"login"} }

// SudoPaths: none.
func (b *Backend) SudoPaths() []string { return nil }

// HandleRequest routes the approle paths.
func (b *Backend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	p := req.MountPath
	write := req.Operation == logical.CreateOperation || req.Operation == logical.UpdateOperation
	switch {
	case p == "login":
		if !write {
			return nil, logical.ErrUnsupportedOperation
		}
		return b.login(ctx, req)
	case p == "tidy/secret-id":
		if !write {
			return nil, logical.ErrUnsupportedOperation
		}
		return b.handleTidy(ctx)
	case p == "role" || p == "role/":
		if req.Operation != logical.ListOperation {
			return nil, logical.ErrUnsupportedOperation
		}
		return b.listRoles(ctx)
	case strings.HasPrefix(p, rolePrefix):
		rest := strings.TrimPrefix(p, rolePrefix)
		name, sub, _ := strings.Cut(rest, "/")
		name, err := checkName(name)
		if err != nil {
			return nil, err
		}
		sub = strings.TrimSuffix(sub, "/")
		switch sub {
		case "":
			return b.handleRole(ctx, req, name)
		case "role-id":
			return b.handleRoleID(ctx, req, name)
		case "secret-id":
			switch {
			case req.Operation == logical.ListOperation:
				return b.listSecretIDs(ctx, name)
			case write:
				return b.generateSecretID(ctx, req, name, false)
			}
			return nil, logical.ErrUnsupportedOperation
		case "custom-secret-id":
			if !write {
				return nil, logical.ErrUnsupportedOperation
			}
			return b.generateSecretID(ctx, req, name, true)
		case "secret-id/lookup", "secret-id/destroy", "secret-id-accessor/lookup", "secret-id-accessor/destroy":
			if !write && !(req.Operation == logical.DeleteOperation && strings.HasSuffix(sub, "/destroy")) {
				return nil, logical.ErrUnsupportedOperation
			}
			return b.handleSecretIDOp(ctx, req, name, sub)
		}
	}
	return nil, logical.ErrUnsupportedPath
}

// Exists tells the pipeline whether a write to role/:name creates or
// updates it; every other write is an update.
func (b *Backend) Exists(ctx context.Context, req *logical.Request) (bool, error) {
	rest, ok := strings.CutPrefix(req.MountPath, rolePrefix)
	if !ok || strings.Contains(rest, "/") {
		return true, nil
	}
	name, err := checkName(rest)
	if err != nil {
		return false, nil // HandleRequest reports the bad name
	}
	r, err := b.loadRole(ctx, name)
	return r != nil, err
}

// RotateDue runs the secret ID tidy every tidyInterval; it returns how many
// entries it removed.
func (b *Backend) RotateDue(ctx context.Context, now time.Time) (int, error) {
	b.tidyMu.Lock()
	due := now.Sub(b.lastTidy) >= tidyInterval
	b.tidyMu.Unlock()
	if !due {
		return 0, nil
	}
	res, err := b.tidy(ctx)
	if err != nil {
		return 0, err
	}
	return res.secretIDs + res.accessors, nil
}

// hmacKey returns the mount's HMAC key, creating it on first use.
func (b *Backend) hmacKey(ctx context.Context) ([]byte, error) {
	b.keyMu.Lock()
	defer b.keyMu.Unlock()
	if b.key != nil {
		return b.key, nil
	}
	e, err := b.store.Get(ctx, keyPath)
	switch {
	case err == nil:
		if len(e.Value) != 32 {
			return nil, fmt.Errorf("approle: hmac key has length %d, want 32", len(e.Value))
		}
		b.key = e.Value
	case errors.Is(err, storage.ErrNotFound):
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return nil, fmt.Errorf("approle: generate hmac key: %w", err)
		}
		if err := b.store.Put(ctx, &storage.Entry{Key: keyPath, Value: k}); err != nil {
			return nil, fmt.Errorf("approle: store hmac key: %w", err)
		}
		b.key = k
	default:
		return nil, fmt.Errorf("approle: load hmac key: %w", err)
	}
	return b.key, nil
}

// digest is HMAC-SHA256(key, kind || 0 || v) in hex.
func (b *Backend) digest(ctx context.Context, kind, v string) (string, error) {
	k, err := b.hmacKey(ctx)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, k)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(v))
	return hex.EncodeToString(m.Sum(nil)), nil
}

// equalDigest compares two hex digests in constant time.
func equalDigest(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }

// newUUID returns a random (version 4) UUID.
func newUUID() (string, error) {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", fmt.Errorf("approle: generate id: %w", err)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}
