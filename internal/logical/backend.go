package logical

import (
	"context"
	"log/slog"
	"time"

	"github.com/coffer-dev/coffer/internal/storage"
)

// Backend is a mounted secrets engine or auth method. Paths in requests it
// receives are relative to its mount (Request.MountPath).
type Backend interface {
	HandleRequest(ctx context.Context, req *Request) (*Response, error)
}

// ExistenceChecker is implemented by backends that tell create from update:
// a POST/PUT on a path that exists is an update, otherwise a create (the
// ACL then checks the matching capability).
type ExistenceChecker interface {
	Exists(ctx context.Context, req *Request) (bool, error)
}

// BackendConfig is what a backend is built with.
type BackendConfig struct {
	// Storage is the backend's private view of the barrier: keys are
	// relative to the mount, and nothing outside the view is reachable.
	Storage    storage.Backend
	MountPoint string
	Options    map[string]string
	Logger     *slog.Logger
}

// Factory builds a backend.
type Factory func(ctx context.Context, conf *BackendConfig) (Backend, error)

// OptionsUpdater is implemented by backends whose options can change after
// mount (sys/mounts/:path/tune with options).
type OptionsUpdater interface {
	UpdateOptions(opts map[string]string) error
}

// PathSpecialist is implemented by backends with paths that skip token
// checks (logins) or need the sudo capability. Patterns are relative to the
// mount; a trailing "*" matches any suffix.
type PathSpecialist interface {
	UnauthenticatedPaths() []string
	SudoPaths() []string
}

// Lease is what the lease manager hands back to a backend to renew or
// revoke a secret it issued.
type Lease struct {
	ID           string
	Path         string // the request path that created it, e.g. "database/creds/app"
	IssueTime    time.Time
	ExpireTime   time.Time
	InternalData map[string]any
}

// SecretBackend is implemented by backends that issue leased secrets.
// RevokeSecret must be idempotent (revoking an already-removed secret
// succeeds): the lease manager retries failures with backoff. RenewSecret
// extends the secret to at least until newExpire, or returns an error; the
// manager has already bounded newExpire by the lease's maximum.
type SecretBackend interface {
	RevokeSecret(ctx context.Context, l *Lease) error
	RenewSecret(ctx context.Context, l *Lease, newExpire time.Time) error
}

// Rotator is implemented by backends with scheduled work (transit keys'
// auto_rotate_period, database static roles). While unsealed, the core
// calls RotateDue about every RotationInterval with the current time; it
// returns how many rotations it made.
type Rotator interface {
	RotateDue(ctx context.Context, now time.Time) (int, error)
}

// AuthRenewer is implemented by auth methods that check, when a token they
// issued is renewed, that its login still stands (Vault's renew callback):
// the user or role still exists, its policies did not change. auth holds
// the token's policies (without "default"), metadata and display name. An
// error refuses the renewal (BadRequest for Vault's 400 answers) and
// nothing is written.
type AuthRenewer interface {
	RenewAuth(ctx context.Context, auth *Auth) error
}

// Cleaner is implemented by backends that hold resources outside the
// barrier (connection pools, goroutines). The core calls Cleanup when the
// mount is removed and before sealing; the backend may be used again after
// an unseal, so Cleanup releases resources without breaking it.
type Cleaner interface {
	Cleanup(ctx context.Context)
}
