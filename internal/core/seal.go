package core

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/coffer-dev/coffer/internal/barrier"
	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/shamir"
	"github.com/coffer-dev/coffer/internal/storage"
	"github.com/coffer-dev/coffer/internal/token"
)

// recoveryKeyPath holds the recovery key (behind the barrier) when the seal
// is static; the recovery shares reconstruct it.
const recoveryKeyPath = "core/recovery-key"

// InitRequest are the parameters of sys/init.
type InitRequest struct {
	SecretShares      int
	SecretThreshold   int
	RecoveryShares    int
	RecoveryThreshold int
	// RootTokenID, if set, is used as the root token (dev mode only).
	RootTokenID string
}

// InitResult is what init returns, once. Shares and token are never stored.
type InitResult struct {
	Keys         [][]byte
	RecoveryKeys [][]byte
	RootToken    string
}

func checkShares(kind string, shares, threshold int) error {
	switch {
	case shares < 1 || shares > 255:
		return logical.BadRequest("%s_shares must be between 1 and 255, got %d", kind, shares)
	case threshold < 1 || threshold > shares:
		return logical.BadRequest("%s_threshold must be between 1 and %s_shares (%d), got %d", kind, kind, shares, threshold)
	case shares > 1 && threshold < 2:
		return logical.BadRequest("%s_threshold must be greater than one for multiple shares", kind)
	case shares == 1 && threshold != 1:
		return logical.BadRequest("%s_threshold must be 1 when %s_shares is 1", kind, kind)
	}
	return nil
}

// split turns key into shares (the key itself when shares == 1).
func split(key []byte, shares, threshold int) ([][]byte, error) {
	if shares == 1 {
		return [][]byte{append([]byte(nil), key...)}, nil
	}
	return shamir.Split(key, shares, threshold)
}

// Init initializes the storage: generates the unseal (or recovery) key and
// the root key, writes the keyring, and creates the root token. The core is
// left unsealed when the seal is static, sealed otherwise.
func (c *Core) Init(ctx context.Context, req InitRequest) (*InitResult, error) {
	c.stateLock.Lock()
	defer c.stateLock.Unlock()

	init, err := c.Initialized(ctx)
	if err != nil {
		return nil, c.errorInternal("read init state", err)
	}
	if init {
		return nil, logical.BadRequest("%s", ErrAlreadyInitialized.Error())
	}
	sc := &SealConfig{Type: "shamir", SecretShares: req.SecretShares, SecretThreshold: req.SecretThreshold}
	if c.staticKey != nil {
		sc.Type = "static"
		sc.SecretShares, sc.SecretThreshold = 1, 1
		sc.RecoveryShares, sc.RecoveryThreshold = req.RecoveryShares, req.RecoveryThreshold
		if err := checkShares("recovery", sc.RecoveryShares, sc.RecoveryThreshold); err != nil {
			return nil, err
		}
	} else if err := checkShares("secret", sc.SecretShares, sc.SecretThreshold); err != nil {
		return nil, err
	}
	id, err := newUUID()
	if err != nil {
		return nil, c.errorInternal("generate cluster id", err)
	}
	sc.ClusterID = id
	sc.InitTime = time.Now().UTC()

	if half, err := c.barrier.Initialized(ctx); err != nil {
		return nil, c.errorInternal("read keyring state", err)
	} else if half {
		// A previous init stopped before writing the seal config, so its
		// keys and root token were never handed out: discard what it wrote.
		if err := c.discardHalfInit(ctx); err != nil {
			return nil, c.errorInternal("discard an interrupted init", err)
		}
	}
	res := &InitResult{}
	var unsealKey barrier.Key
	if c.staticKey != nil {
		unsealKey = *c.staticKey
	} else {
		unsealKey, err = barrier.NewKey()
		if err != nil {
			return nil, c.errorInternal("generate unseal key", err)
		}
		defer unsealKey.Zero()
		kb := unsealKey.Bytes()
		res.Keys, err = split(kb, sc.SecretShares, sc.SecretThreshold)
		clear(kb)
		if err != nil {
			return nil, c.errorInternal("split unseal key", err)
		}
	}
	if err := c.barrier.Initialize(ctx, unsealKey); err != nil {
		if errors.Is(err, barrier.ErrAlreadyInitialized) {
			return nil, logical.BadRequest("%s", ErrAlreadyInitialized.Error())
		}
		return nil, c.errorInternal("initialize barrier", err)
	}
	// The barrier must be open to create the root token.
	if err := c.barrier.Unseal(ctx, unsealKey); err != nil {
		return nil, c.errorInternal("open barrier after init", err)
	}
	if err := c.postUnseal(ctx); err != nil {
		c.barrier.Seal()
		return nil, c.errorInternal("set up after init", err)
	}
	if c.staticKey != nil {
		rk, err := barrier.NewKey()
		if err != nil {
			return nil, c.errorInternal("generate recovery key", err)
		}
		kb := rk.Bytes()
		rk.Zero()
		err = c.barrier.Put(ctx, &storage.Entry{Key: recoveryKeyPath, Value: kb})
		if err == nil {
			res.RecoveryKeys, err = split(kb, sc.RecoveryShares, sc.RecoveryThreshold)
		}
		clear(kb)
		if err != nil {
			return nil, c.errorInternal("store recovery key", err)
		}
	}
	root, err := c.tokens.Create(ctx, &token.Entry{
		ID:          req.RootTokenID,
		Policies:    []string{"root"},
		DisplayName: "root",
		Path:        "auth/token/root",
		Orphan:      true,
	})
	if err != nil {
		return nil, c.errorInternal("create root token", err)
	}
	res.RootToken = root.ID

	raw, err := json.Marshal(sc)
	if err != nil {
		return nil, c.errorInternal("encode seal config", err)
	}
	// The seal config is written last: a crash before this point leaves an
	// uninitialized server, and the next init discards what this one wrote.
	if err := c.raw.Put(ctx, &storage.Entry{Key: sealConfigPath, Value: raw}); err != nil {
		return nil, c.errorInternal("store seal config", err)
	}
	if c.staticKey != nil {
		c.sealed.Store(false)
		c.log.Info("core initialized and unsealed with the static seal key", "recovery_shares", sc.RecoveryShares, "recovery_threshold", sc.RecoveryThreshold)
	} else {
		c.preSeal()
		c.barrier.Seal()
		c.log.Info("core initialized", "secret_shares", sc.SecretShares, "secret_threshold", sc.SecretThreshold)
	}
	return res, nil
}

// ParseKeyShare decodes an unseal key share given as hex or base64.
func ParseKeyShare(s string) ([]byte, error) {
	if b, err := hex.DecodeString(s); err == nil {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return nil, logical.BadRequest("unseal key share must be hex or base64 encoded")
}

// UnsealStatus is the state reported by sys/seal-status and sys/unseal.
type UnsealStatus struct {
	Type        string
	Initialized bool
	Sealed      bool
	T, N        int
	Progress    int
	Nonce       string
	ClusterID   string
	Recovery    bool
}

// Status returns the seal status.
func (c *Core) Status(ctx context.Context) (*UnsealStatus, error) {
	sc, err := c.sealConfig(ctx)
	if err != nil {
		return nil, c.errorInternal("read seal config", err)
	}
	st := &UnsealStatus{Type: "shamir", Sealed: c.Sealed()}
	if c.staticKey != nil {
		st.Type = "static"
		st.Recovery = true
	}
	if sc == nil {
		return st, nil
	}
	st.Initialized = true
	st.T, st.N = sc.SecretThreshold, sc.SecretShares
	st.ClusterID = sc.ClusterID
	c.unsealMu.Lock()
	st.Progress = len(c.unsealShares)
	st.Nonce = c.unsealNonce
	c.unsealMu.Unlock()
	return st, nil
}

func (c *Core) resetUnsealLocked() {
	for _, s := range c.unsealShares {
		clear(s)
	}
	c.unsealShares = nil
	c.unsealNonce = ""
}

// ResetUnseal discards the unseal progress.
func (c *Core) ResetUnseal() {
	c.unsealMu.Lock()
	defer c.unsealMu.Unlock()
	c.resetUnsealLocked()
}

// SubmitUnsealShare adds one key share. When the threshold is reached it
// combines the shares and tries to unseal; wrong shares reset the progress
// and return an error, and nothing is written.
func (c *Core) SubmitUnsealShare(ctx context.Context, share []byte) error {
	sc, err := c.sealConfig(ctx)
	if err != nil {
		return c.errorInternal("read seal config", err)
	}
	if sc == nil {
		return logical.BadRequest("%s", ErrNotInitialized.Error())
	}
	if c.staticKey != nil {
		return logical.BadRequest("this server unseals with its static seal key; unseal key shares are not used (recovery keys are for recovery operations)")
	}
	if !c.Sealed() {
		return nil
	}
	want := 33
	if sc.SecretShares == 1 {
		want = 32
	}
	if len(share) != want {
		return logical.BadRequest("unseal key share has length %d, want %d bytes", len(share), want)
	}

	c.unsealMu.Lock()
	for _, s := range c.unsealShares {
		if subtle.ConstantTimeCompare(s, share) == 1 {
			c.unsealMu.Unlock()
			return nil // Vault ignores a share given twice.
		}
	}
	if c.unsealNonce == "" {
		n, err := newUUID()
		if err != nil {
			c.unsealMu.Unlock()
			return c.errorInternal("generate unseal nonce", err)
		}
		c.unsealNonce = n
	}
	c.unsealShares = append(c.unsealShares, append([]byte(nil), share...))
	if len(c.unsealShares) < sc.SecretThreshold {
		c.unsealMu.Unlock()
		return nil
	}
	shares := c.unsealShares
	c.unsealShares = nil
	c.unsealNonce = ""
	c.unsealMu.Unlock()

	var keyBytes []byte
	if sc.SecretShares == 1 {
		keyBytes = shares[0]
	} else {
		keyBytes, err = shamir.Combine(shares)
		for _, s := range shares {
			clear(s)
		}
		if err != nil {
			return logical.BadRequest("unseal failed: the key shares could not be combined (%v); progress has been reset", err)
		}
	}
	key, err := barrier.KeyFromBytes(keyBytes)
	clear(keyBytes)
	if err != nil {
		return logical.BadRequest("unseal failed: the key shares do not form a valid key; progress has been reset")
	}
	defer key.Zero()
	return c.unsealWith(ctx, key)
}

func (c *Core) unsealWith(ctx context.Context, key barrier.Key) error {
	c.stateLock.Lock()
	defer c.stateLock.Unlock()
	if !c.sealed.Load() {
		return nil
	}
	if err := c.barrier.Unseal(ctx, key); err != nil {
		if errors.Is(err, barrier.ErrInvalidKey) {
			c.log.Warn("unseal attempt with wrong key shares")
			return logical.BadRequest("unseal failed: the key shares are not the unseal key of this server; progress has been reset")
		}
		return c.errorInternal("unseal barrier", err)
	}
	if err := c.postUnseal(ctx); err != nil {
		c.preSeal()
		c.barrier.Seal()
		return c.errorInternal("set up after unseal", err)
	}
	c.sealed.Store(false)
	c.log.Info("core unsealed")
	return nil
}

// AutoUnseal unseals with the static seal key. It is a no-op for a Shamir
// seal or an uninitialized server.
func (c *Core) AutoUnseal(ctx context.Context) error {
	if c.staticKey == nil {
		return nil
	}
	sc, err := c.sealConfig(ctx)
	if err != nil {
		return fmt.Errorf("auto-unseal: %w", err)
	}
	if sc == nil {
		return nil
	}
	if sc.Type != "static" {
		return fmt.Errorf("auto-unseal: storage was initialized with a %q seal; remove the static seal key from the configuration", sc.Type)
	}
	if err := c.unsealWith(ctx, *c.staticKey); err != nil {
		return fmt.Errorf("auto-unseal: %w", err)
	}
	return nil
}

// RotateKeyring adds a new barrier key term.
func (c *Core) RotateKeyring(ctx context.Context) (barrier.KeyInfo, error) {
	info, err := c.barrier.Rotate(ctx)
	if err != nil {
		return info, c.errorInternal("rotate keyring", err)
	}
	c.log.Info("barrier keyring rotated", "term", info.Term)
	return info, nil
}

// discardHalfInit deletes the raw keys of the barrier layout
// (docs/barrier-format.md): the wrapped root key, the keyring and every
// logical entry.
func (c *Core) discardHalfInit(ctx context.Context) error {
	if err := clearPrefix(ctx, c.raw, "logical/"); err != nil {
		return err
	}
	return c.raw.Batch(ctx, []storage.Op{
		{Kind: storage.OpDelete, Entry: &storage.Entry{Key: "core/root-key"}},
		{Kind: storage.OpDelete, Entry: &storage.Entry{Key: "core/keyring"}},
	})
}
