package kv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
)

// mountConfig is the version 2 mount's settings (v2/config).
type mountConfig struct {
	// MaxVersions 0 means the default of 10.
	MaxVersions        int           `json:"max_versions"`
	CASRequired        bool          `json:"cas_required"`
	DeleteVersionAfter time.Duration `json:"delete_version_after"`
}

// loadConfig reads v2/config into the cache.
func (b *Backend) loadConfig(ctx context.Context) error {
	var c mountConfig
	e, err := b.store.Get(ctx, v2ConfigKey)
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return fmt.Errorf("kv: read config: %w", err)
	default:
		if err := json.Unmarshal(e.Value, &c); err != nil {
			return fmt.Errorf("kv: decode config: %w", errCorrupt)
		}
	}
	b.cfgMu.Lock()
	b.cfg = c
	b.cfgMu.Unlock()
	return nil
}

func (b *Backend) config() mountConfig {
	b.cfgMu.RLock()
	defer b.cfgMu.RUnlock()
	return b.cfg
}

// handleConfig serves config: GET reads, POST/PUT updates the fields given.
func (b *Backend) handleConfig(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	switch {
	case isRead(req.Operation):
		c := b.config()
		return &logical.Response{Data: map[string]any{
			"cas_required":         c.CASRequired,
			"delete_version_after": c.DeleteVersionAfter.String(),
			"max_versions":         c.MaxVersions,
		}}, nil
	case isWrite(req.Operation):
	default:
		return nil, logical.ErrUnsupportedOperation
	}
	if err := logical.CheckFields(req.Data, "max_versions", "cas_required", "delete_version_after"); err != nil {
		return nil, err
	}
	b.cfgMu.Lock()
	defer b.cfgMu.Unlock()
	c := b.cfg
	if v, ok := req.Data["max_versions"]; ok {
		n, err := parseMaxVersions(v)
		if err != nil {
			return nil, err
		}
		c.MaxVersions = n
	}
	if v, ok := req.Data["cas_required"]; ok {
		x, err := logical.ParseBool("cas_required", v)
		if err != nil {
			return nil, err
		}
		c.CASRequired = x
	}
	if v, ok := req.Data["delete_version_after"]; ok {
		d, err := logical.ParseDuration("delete_version_after", v)
		if err != nil {
			return nil, err
		}
		c.DeleteVersionAfter = d
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("kv: encode config: %w", err)
	}
	if err := b.store.Put(ctx, &storage.Entry{Key: v2ConfigKey, Value: raw}); err != nil {
		return nil, fmt.Errorf("kv: write config: %w", err)
	}
	b.cfg = c
	return nil, nil
}

// maxMaxVersions keeps max_versions within Vault's uint32 range.
const maxMaxVersions = 1<<32 - 1

func parseMaxVersions(v any) (int, error) {
	n, err := logical.ParseInt("max_versions", v)
	if err != nil {
		return 0, err
	}
	if n < 0 || n > maxMaxVersions {
		return 0, logical.BadRequest("max_versions: must be between 0 and %d", int64(maxMaxVersions))
	}
	return int(n), nil
}
