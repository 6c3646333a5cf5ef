package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coffer-dev/coffer/internal/audit"
	"github.com/coffer-dev/coffer/internal/barrier"
	"github.com/coffer-dev/coffer/internal/lease"
	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/metrics"
	"github.com/coffer-dev/coffer/internal/storage"
	"github.com/coffer-dev/coffer/internal/token"
)

const sealConfigPath = "core/seal-config"

// SealConfig is stored in plaintext (it is needed while sealed) at
// core/seal-config. It holds no secret.
type SealConfig struct {
	Type              string    `json:"type"` // "shamir" or "static"
	SecretShares      int       `json:"secret_shares"`
	SecretThreshold   int       `json:"secret_threshold"`
	RecoveryShares    int       `json:"recovery_shares,omitempty"`
	RecoveryThreshold int       `json:"recovery_threshold,omitempty"`
	ClusterID         string    `json:"cluster_id"`
	InitTime          time.Time `json:"init_time"`
}

// Config is what a Core is built from.
type Config struct {
	// Storage is the raw (untrusted) backend.
	Storage storage.Backend
	// StorageType names it for sys/seal-status ("bolt", "inmem").
	StorageType string
	// StaticKey, when set, is the auto-unseal key: init wraps the root key
	// with it, returns recovery keys, and Unseal happens without shares.
	StaticKey *barrier.Key
	// ClusterName is reported by seal-status and health.
	ClusterName string
	Logger      *slog.Logger
	// Barrier options (tests shrink the rotation threshold).
	BarrierOptions barrier.Options
	// AuditDir is the only directory under which file audit devices may be
	// enabled through the API; empty refuses them all.
	AuditDir string
	// Metrics, if set, receives the core's metrics and backs sys/metrics.
	Metrics *metrics.Set
	// LeaseRevocationWorkers bounds the expired leases revoked at once
	// (default 16).
	LeaseRevocationWorkers int
	// Engines and AuthMethods map a mount type ("kv", "userpass") to the
	// factory that builds it. They are wired in one place (the server
	// command), so core never imports a backend.
	Engines     map[string]logical.Factory
	AuthMethods map[string]logical.Factory
}

// Core is the seal state machine and request pipeline.
type Core struct {
	raw         storage.Backend
	barrier     *barrier.Barrier
	storageType string
	staticKey   *barrier.Key
	clusterName string
	log         *slog.Logger

	// stateLock is held for reading by every request and for writing by
	// seal and unseal, so a seal waits for requests in flight.
	stateLock sync.RWMutex
	sealed    atomic.Bool

	// unsealMu guards the unseal progress, kept only in memory.
	unsealMu     sync.Mutex
	unsealShares [][]byte
	unsealNonce  string

	tokens *token.Store

	tokenBackend *token.Backend
	leases       *lease.Manager
	periodicStop context.CancelFunc
	periodicDone chan struct{}
	policies     *policyStore
	audit        *audit.Broker
	auditDevs    *auditTable
	auditDir     string
	metrics      *metrics.Set

	engines     map[string]logical.Factory
	authMethods map[string]logical.Factory
	mounts      *mountTable
	auths       *mountTable
}

// New builds a Core. It starts sealed; with a static key and an
// initialized storage, call Unseal with no shares (AutoUnseal) to open it.
func New(cfg Config) (*Core, error) {
	if cfg.Storage == nil {
		return nil, errors.New("core: no storage backend")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := barrier.New(cfg.Storage, cfg.BarrierOptions)
	c := &Core{
		raw:         cfg.Storage,
		barrier:     b,
		storageType: cfg.StorageType,
		staticKey:   cfg.StaticKey,
		clusterName: cfg.ClusterName,
		log:         log,
		tokens:      token.NewStore(b),
		policies:    newPolicyStore(b),
		audit:       &audit.Broker{},
		auditDir:    cfg.AuditDir,
		engines:     cfg.Engines,
		authMethods: cfg.AuthMethods,
		mounts:      newMountTable(mountTablePath, ""),
		auths:       newMountTable(authTablePath, "auth/"),
	}
	c.sealed.Store(true)
	c.tokenBackend = token.NewBackend(c.tokens)
	c.leases = lease.New(b, c, lease.Options{Logger: log.With("component", "lease"), RevokeWorkers: cfg.LeaseRevocationWorkers, OnIrrevocable: func(string) {
		if c.metrics != nil {
			c.metrics.LeaseIrrevocable()
		}
	}})
	c.tokens.SetLeaseRevoker(c.leases)
	c.tokens.SetRenewCheck(c.checkTokenRenew)
	c.auditDevs = newAuditTable()
	c.metrics = cfg.Metrics
	if c.metrics != nil {
		if err := c.registerGauges(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Sealed reports whether the core is sealed.
func (c *Core) Sealed() bool {
	return c.sealed.Load()
}

func (c *Core) sealConfig(ctx context.Context) (*SealConfig, error) {
	e, err := c.raw.Get(ctx, sealConfigPath)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read seal config: %w", err)
	}
	var sc SealConfig
	if err := json.Unmarshal(e.Value, &sc); err != nil {
		return nil, fmt.Errorf("decode seal config: %w", err)
	}
	return &sc, nil
}

// Initialized reports whether init has completed.
func (c *Core) Initialized(ctx context.Context) (bool, error) {
	sc, err := c.sealConfig(ctx)
	if err != nil {
		return false, err
	}
	if sc == nil {
		return false, nil
	}
	return c.barrier.Initialized(ctx)
}

func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

// postUnseal brings up everything that lives behind the barrier. Called
// with stateLock held for writing.
func (c *Core) postUnseal(ctx context.Context) error {
	if err := c.tokens.Init(ctx); err != nil {
		return err
	}
	if err := c.policies.setup(ctx); err != nil {
		return fmt.Errorf("set up policies: %w", err)
	}
	if err := c.loadAudit(ctx); err != nil {
		return err
	}
	if err := c.loadMounts(ctx); err != nil {
		return err
	}
	if err := c.leases.Start(ctx); err != nil {
		return fmt.Errorf("start lease manager: %w", err)
	}
	c.startPeriodic()
	if n, err := c.tokens.ResumeRevocations(ctx); err != nil {
		return err
	} else if n > 0 {
		c.log.Info("finished token revocations interrupted by a restart", "count", n)
	}
	return nil
}

// preSeal tears down what postUnseal set up. Called with stateLock held for
// writing.
func (c *Core) preSeal() {
	c.stopPeriodic()
	c.leases.Stop()
	c.tokens.Reset()
	c.policies.invalidate()
	c.unloadAudit()
	for _, t := range []*mountTable{c.mounts, c.auths} {
		t.mu.RLock()
		for _, e := range t.entries {
			if cl, ok := e.backend.(logical.Cleaner); ok {
				cl.Cleanup(context.Background())
			}
		}
		t.mu.RUnlock()
	}
	c.mounts = newMountTable(mountTablePath, "")
	c.auths = newMountTable(authTablePath, "auth/")
}

// Seal zeroes the keys and refuses every request until the next unseal. It
// waits for requests in flight.
func (c *Core) Seal() {
	c.stateLock.Lock()
	defer c.stateLock.Unlock()
	c.sealLocked()
}

func (c *Core) sealLocked() {
	if c.sealed.Load() {
		return
	}
	c.preSeal()
	c.barrier.Seal()
	c.sealed.Store(true)
	c.log.Info("core sealed")
}

// Shutdown seals the core; the server calls it on exit.
func (c *Core) Shutdown() { c.Seal() }

// errorInternal logs err and returns the generic internal error, so that
// storage details never reach a client.
func (c *Core) errorInternal(op string, err error) error {
	c.log.Error("internal error", "op", op, "err", err)
	return fmt.Errorf("%w: %s", logical.ErrInternal, op)
}
