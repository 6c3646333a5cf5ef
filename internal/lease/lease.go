// Package lease is the lease manager: every secret issued with a TTL gets a
// lease, persisted behind the barrier and tied to the token that created it.
// The manager renews leases within their maximum, revokes them on request,
// when their token is revoked, and on expiry — on time, also after a
// restart (leases are reloaded at unseal). A revocation that fails is
// retried with exponential backoff and, after MaxAttempts, marked
// irrevocable: kept, listed, logged and counted, never dropped.
//
// Storage layout (keys in the storage.Backend given, the barrier):
//
//	lease/id/<lease id>                 the lease (JSON); ids contain "/"
//	lease/token/<token hash>/<sha256>   the lease id, to revoke by token
//
// This package must not import core, server or any engine.
package lease

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
)

const (
	idPrefix    = "lease/id/"
	tokenPrefix = "lease/token/"
)

// Errors.
var (
	ErrNotFound     = errors.New("lease not found")
	ErrNotRenewable = errors.New("lease is not renewable")
	ErrNoBackend    = errors.New("no secrets engine serves this lease any more")
	ErrBadLeaseID   = errors.New("invalid lease id")
	errIrrevocable  = errors.New("lease is irrevocable")
)

// Resolver finds the backend that issued a lease, from the lease's path.
type Resolver interface {
	SecretBackend(path string) (logical.SecretBackend, error)
}

// Entry is a stored lease.
type Entry struct {
	ID           string         `json:"id"`
	Path         string         `json:"path"`
	TokenHash    string         `json:"token_hash"`
	IssueTime    time.Time      `json:"issue_time"`
	ExpireTime   time.Time      `json:"expire_time"`
	LastRenewal  time.Time      `json:"last_renewal,omitempty"`
	MaxExpire    time.Time      `json:"max_expire"`
	Renewable    bool           `json:"renewable"`
	InternalData map[string]any `json:"internal_data,omitempty"`

	// Revocation bookkeeping.
	Attempts    int       `json:"attempts,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	NextAttempt time.Time `json:"next_attempt,omitempty"`
	Irrevocable bool      `json:"irrevocable,omitempty"`
}

func (e *Entry) lease() *logical.Lease {
	return &logical.Lease{ID: e.ID, Path: e.Path, IssueTime: e.IssueTime, ExpireTime: e.ExpireTime, InternalData: e.InternalData}
}

// Options tune the manager.
type Options struct {
	// MaxAttempts is how many revocation attempts are made before a lease is
	// marked irrevocable (default 6).
	MaxAttempts int
	// BaseBackoff is the wait after the first failed attempt, doubled after
	// each further failure up to MaxBackoff (defaults 1s and 10m).
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// SystemMaxTTL bounds every lease (default 32 days).
	SystemMaxTTL time.Duration
	Logger       *slog.Logger
	// Now is the clock (tests).
	Now func() time.Time
	// OnIrrevocable is called when a lease becomes irrevocable (metrics).
	OnIrrevocable func(id string)
	// RevokeWorkers bounds the expired leases revoked at the same time
	// (default 16): a mass expiry (after an outage, or many leases of one
	// TTL) is worked off in parallel instead of one backend round trip and
	// one storage commit after the other.
	RevokeWorkers int
}

// Manager owns the leases of one unsealed core.
type Manager struct {
	s    storage.Backend
	res  Resolver
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	queue   expiryQueue
	pending map[string]*item
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}

	// Expiries in progress: sem holds one token per running worker,
	// inflight the leases being expired, workers the running goroutines.
	sem      chan struct{}
	inflight map[string]bool
	workers  sync.WaitGroup
}

// New returns a manager; call Start after unseal and Stop before seal.
func New(s storage.Backend, res Resolver, opts Options) *Manager {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 6
	}
	if opts.BaseBackoff <= 0 {
		opts.BaseBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 10 * time.Minute
	}
	if opts.SystemMaxTTL <= 0 {
		opts.SystemMaxTTL = 32 * 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RevokeWorkers <= 0 {
		opts.RevokeWorkers = 16
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{s: s, res: res, opts: opts, log: log, pending: map[string]*item{}, wake: make(chan struct{}, 1),
		sem: make(chan struct{}, opts.RevokeWorkers), inflight: map[string]bool{}}
}

func (m *Manager) now() time.Time { return m.opts.Now().UTC() }

func tokenIndexKey(tokenHash, id string) string {
	sum := sha256.Sum256([]byte(id))
	return tokenPrefix + tokenHash + "/" + hex.EncodeToString(sum[:])
}

// ValidID checks a lease id given by a client.
func ValidID(id string) bool {
	if id == "" || len(id) > 1024 || strings.HasPrefix(id, "/") {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	for _, seg := range strings.Split(id, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

func randomSuffix() (string, error) {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 24)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		b[i] = alphabet[n.Int64()]
	}
	return string(b), nil
}

// Register creates the lease for secret s issued at reqPath for the token
// with hash tokenHash. mountMax bounds the TTL (zero: the system maximum).
// It sets s.LeaseID and caps s.TTL.
func (m *Manager) Register(ctx context.Context, reqPath, tokenHash string, s *logical.Secret, mountDefault, mountMax time.Duration) error {
	suffix, err := randomSuffix()
	if err != nil {
		return fmt.Errorf("lease id: %w", err)
	}
	now := m.now()
	maxTTL := m.opts.SystemMaxTTL
	if mountMax > 0 && mountMax < maxTTL {
		maxTTL = mountMax
	}
	if s.MaxTTL > 0 && s.MaxTTL < maxTTL {
		maxTTL = s.MaxTTL
	}
	ttl := s.TTL
	if ttl <= 0 {
		ttl = mountDefault
	}
	if ttl <= 0 || ttl > maxTTL {
		ttl = maxTTL
	}
	e := &Entry{
		ID:           strings.TrimSuffix(reqPath, "/") + "/" + suffix,
		Path:         reqPath,
		TokenHash:    tokenHash,
		IssueTime:    now,
		ExpireTime:   now.Add(ttl),
		MaxExpire:    now.Add(maxTTL),
		Renewable:    s.Renewable,
		InternalData: s.InternalData,
	}
	if err := m.persist(ctx, e, true); err != nil {
		return err
	}
	s.LeaseID, s.TTL = e.ID, ttl
	m.schedule(e.ID, e.ExpireTime)
	return nil
}

func (m *Manager) persist(ctx context.Context, e *Entry, withIndex bool) error {
	raw, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode lease: %w", err)
	}
	ops := []storage.Op{{Kind: storage.OpPut, Entry: &storage.Entry{Key: idPrefix + e.ID, Value: raw}}}
	if withIndex && e.TokenHash != "" {
		ops = append(ops, storage.Op{Kind: storage.OpPut, Entry: &storage.Entry{Key: tokenIndexKey(e.TokenHash, e.ID), Value: []byte(e.ID)}})
	}
	if err := m.s.Batch(ctx, ops); err != nil {
		return fmt.Errorf("store lease: %w", err)
	}
	return nil
}

// Lookup returns the lease with id.
func (m *Manager) Lookup(ctx context.Context, id string) (*Entry, error) {
	if !ValidID(id) {
		return nil, ErrBadLeaseID
	}
	raw, err := m.s.Get(ctx, idPrefix+id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load lease: %w", err)
	}
	var e Entry
	if err := json.Unmarshal(raw.Value, &e); err != nil {
		return nil, fmt.Errorf("decode lease: %w", err)
	}
	return &e, nil
}

// Renew extends lease id by increment (or its original TTL when zero),
// bounded by its maximum; the backend renews the secret first.
func (m *Manager) Renew(ctx context.Context, id string, increment time.Duration) (*Entry, bool, error) {
	e, err := m.Lookup(ctx, id)
	if err != nil {
		return nil, false, err
	}
	if e.Irrevocable || !e.NextAttempt.IsZero() {
		return nil, false, ErrNotFound
	}
	if !e.Renewable {
		return nil, false, ErrNotRenewable
	}
	now := m.now()
	if !now.Before(e.ExpireTime) {
		return nil, false, ErrNotFound
	}
	if increment <= 0 {
		increment = e.ExpireTime.Sub(e.IssueTime)
		if !e.LastRenewal.IsZero() {
			increment = e.ExpireTime.Sub(e.LastRenewal)
		}
	}
	exp := now.Add(increment)
	capped := false
	if exp.After(e.MaxExpire) {
		exp, capped = e.MaxExpire, true
	}
	sb, err := m.res.SecretBackend(e.Path)
	if err != nil {
		return nil, false, err
	}
	if err := sb.RenewSecret(ctx, e.lease(), exp); err != nil {
		return nil, false, err
	}
	e.ExpireTime, e.LastRenewal = exp, now
	if err := m.persist(ctx, e, false); err != nil {
		return nil, false, err
	}
	m.schedule(e.ID, e.ExpireTime)
	return e, capped, nil
}

// Revoke revokes lease id now. The backend's failure is returned (the
// lease stays, and is retried on its schedule) unless force is set, in
// which case the lease is deleted whatever the backend says.
func (m *Manager) Revoke(ctx context.Context, id string, force bool) error {
	e, err := m.Lookup(ctx, id)
	if err != nil {
		return err
	}
	err = m.revokeEntry(ctx, e)
	if err != nil && !force {
		m.recordFailure(ctx, e, err)
		return err
	}
	if err != nil {
		m.log.Warn("lease force-revoked although its secret could not be revoked", "lease_id", id, "err", err)
	}
	return m.delete(ctx, e)
}

func (m *Manager) revokeEntry(ctx context.Context, e *Entry) error {
	sb, err := m.res.SecretBackend(e.Path)
	if err != nil {
		return err
	}
	return sb.RevokeSecret(ctx, e.lease())
}

func (m *Manager) delete(ctx context.Context, e *Entry) error {
	ops := []storage.Op{{Kind: storage.OpDelete, Entry: &storage.Entry{Key: idPrefix + e.ID}}}
	if e.TokenHash != "" {
		ops = append(ops, storage.Op{Kind: storage.OpDelete, Entry: &storage.Entry{Key: tokenIndexKey(e.TokenHash, e.ID)}})
	}
	if err := m.s.Batch(ctx, ops); err != nil {
		return fmt.Errorf("delete lease: %w", err)
	}
	m.unschedule(e.ID)
	return nil
}

// recordFailure counts a failed revocation and schedules the next attempt,
// or marks the lease irrevocable after MaxAttempts.
func (m *Manager) recordFailure(ctx context.Context, e *Entry, cause error) {
	e.Attempts++
	e.LastError = cause.Error()
	if e.Attempts >= m.opts.MaxAttempts {
		e.Irrevocable = true
		e.NextAttempt = time.Time{}
		m.log.Error("lease is irrevocable: its secret could not be revoked; revoke it by hand, then force-revoke the lease",
			"lease_id", e.ID, "attempts", e.Attempts, "err", cause)
		if m.opts.OnIrrevocable != nil {
			m.opts.OnIrrevocable(e.ID)
		}
	} else {
		backoff := m.opts.BaseBackoff << (e.Attempts - 1)
		if backoff > m.opts.MaxBackoff || backoff <= 0 {
			backoff = m.opts.MaxBackoff
		}
		e.NextAttempt = m.now().Add(backoff)
		m.log.Warn("lease revocation failed; will retry", "lease_id", e.ID, "attempt", e.Attempts, "retry_in", backoff, "err", cause)
	}
	if err := m.persist(ctx, e, false); err != nil {
		m.log.Error("store lease revocation state", "lease_id", e.ID, "err", err)
	}
	if !e.Irrevocable {
		m.schedule(e.ID, e.NextAttempt)
	} else {
		m.unschedule(e.ID)
	}
}

// walk calls fn for every lease id under prefix (recursively).
func (m *Manager) walk(ctx context.Context, prefix string, fn func(id string) error) error {
	names, err := m.s.List(ctx, idPrefix+prefix)
	if err != nil {
		return fmt.Errorf("list leases: %w", err)
	}
	for _, n := range names {
		if strings.HasSuffix(n, "/") {
			if err := m.walk(ctx, prefix+n, fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(prefix + n); err != nil {
			return err
		}
	}
	return nil
}

// RevokePrefix revokes every lease whose id starts with prefix (a path
// prefix such as "database/creds/app/"). Failures are scheduled for retry
// and reported; with force, leases are deleted regardless.
func (m *Manager) RevokePrefix(ctx context.Context, prefix string, force bool) (int, error) {
	prefix = strings.TrimPrefix(prefix, "/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	n := 0
	var failed []string
	err := m.walk(ctx, prefix, func(id string) error {
		err := m.Revoke(ctx, id, force)
		switch {
		case err == nil:
			n++
		case errors.Is(err, ErrNotFound):
		default:
			failed = append(failed, id)
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	if len(failed) > 0 {
		return n, fmt.Errorf("%d leases could not be revoked now and will be retried (first: %s)", len(failed), failed[0])
	}
	return n, nil
}

// RevokeByToken revokes the leases a token created. It implements
// token.LeaseRevoker: a lease whose secret cannot be revoked now does not
// block the token's revocation; it is retried in the background.
func (m *Manager) RevokeByToken(ctx context.Context, tokenHash string) error {
	names, err := m.s.List(ctx, tokenPrefix+tokenHash+"/")
	if err != nil {
		return fmt.Errorf("list leases of token: %w", err)
	}
	for _, n := range names {
		raw, err := m.s.Get(ctx, tokenPrefix+tokenHash+"/"+n)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		id := string(raw.Value)
		if err := m.Revoke(ctx, id, false); err != nil && !errors.Is(err, ErrNotFound) {
			// recordFailure has scheduled a retry; drop the token link so
			// the token itself can go.
			e, lerr := m.Lookup(ctx, id)
			if lerr == nil {
				e.TokenHash = ""
				_ = m.persist(ctx, e, false)
			}
			_ = m.s.Delete(ctx, tokenPrefix+tokenHash+"/"+n)
			continue
		}
	}
	return nil
}

// List returns the lease ids (and folders) directly under prefix.
func (m *Manager) List(ctx context.Context, prefix string) ([]string, error) {
	return m.s.List(ctx, idPrefix+strings.TrimPrefix(prefix, "/"))
}

// Irrevocable returns every lease marked irrevocable.
func (m *Manager) Irrevocable(ctx context.Context) ([]*Entry, error) {
	var out []*Entry
	err := m.walk(ctx, "", func(id string) error {
		e, err := m.Lookup(ctx, id)
		if err != nil {
			return nil
		}
		if e.Irrevocable {
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// Count returns the number of leases and of irrevocable ones.
func (m *Manager) Count(ctx context.Context) (total, irrevocable int, err error) {
	err = m.walk(ctx, "", func(id string) error {
		total++
		if e, err := m.Lookup(ctx, id); err == nil && e.Irrevocable {
			irrevocable++
		}
		return nil
	})
	return total, irrevocable, err
}

// Tidy removes token index entries that point at missing leases.
func (m *Manager) Tidy(ctx context.Context) (int, error) {
	toks, err := m.s.List(ctx, tokenPrefix)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range toks {
		names, err := m.s.List(ctx, tokenPrefix+t)
		if err != nil {
			return n, err
		}
		for _, name := range names {
			raw, err := m.s.Get(ctx, tokenPrefix+t+name)
			if err != nil {
				continue
			}
			if _, err := m.Lookup(ctx, string(raw.Value)); errors.Is(err, ErrNotFound) {
				if err := m.s.Delete(ctx, tokenPrefix+t+name); err != nil {
					return n, err
				}
				n++
			}
		}
	}
	return n, nil
}
