package approle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
)

type tidyResult struct {
	secretIDs int // expired, or of a deleted role
	accessors int // pointing at no secret ID
}

func (b *Backend) handleTidy(ctx context.Context) (*logical.Response, error) {
	res, err := b.tidy(ctx)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{
		"secret_ids_removed": res.secretIDs,
		"accessors_removed":  res.accessors,
	}}, nil
}

// tidy removes expired secret IDs, secret IDs and accessors of roles that
// no longer exist, and accessors whose secret ID is gone. Each removal
// takes the secret ID's lock, so it cannot race a login.
func (b *Backend) tidy(ctx context.Context) (tidyResult, error) {
	b.tidyMu.Lock()
	defer b.tidyMu.Unlock()
	var res tidyResult
	live := map[string]bool{}
	names, err := b.store.List(ctx, rolePrefix)
	if err != nil {
		return res, fmt.Errorf("approle: tidy: list roles: %w", err)
	}
	for _, n := range names {
		r, err := b.loadRole(ctx, n)
		if err != nil {
			return res, err
		}
		if r != nil {
			live[r.UUID] = true
		}
	}
	now := b.now()
	uuids, err := b.store.List(ctx, secretIDPrefix)
	if err != nil {
		return res, fmt.Errorf("approle: tidy: list secret ids: %w", err)
	}
	for _, u := range uuids {
		u = strings.TrimSuffix(u, "/")
		digests, err := b.store.List(ctx, secretIDPrefix+u+"/")
		if err != nil {
			return res, fmt.Errorf("approle: tidy: list secret ids: %w", err)
		}
		for _, d := range digests {
			removed, err := b.tidyOne(ctx, u, d, !live[u], now)
			if err != nil {
				return res, err
			}
			if removed {
				res.secretIDs++
			}
		}
	}
	accUUIDs, err := b.store.List(ctx, accessorPrefix)
	if err != nil {
		return res, fmt.Errorf("approle: tidy: list accessors: %w", err)
	}
	for _, u := range accUUIDs {
		u = strings.TrimSuffix(u, "/")
		accs, err := b.store.List(ctx, accessorPrefix+u+"/")
		if err != nil {
			return res, fmt.Errorf("approle: tidy: list accessors: %w", err)
		}
		for _, acc := range accs {
			e, err := b.store.Get(ctx, accessorKey(u, acc))
			if errors.Is(err, storage.ErrNotFound) {
				continue // removed meanwhile
			}
			if err != nil {
				return res, fmt.Errorf("approle: tidy: read accessor: %w", err)
			}
			digest := string(e.Value)
			mu := b.lockFor(digest)
			mu.Lock()
			_, gerr := b.store.Get(ctx, secretIDKey(u, digest))
			if gerr != nil && !errors.Is(gerr, storage.ErrNotFound) {
				mu.Unlock()
				return res, fmt.Errorf("approle: tidy: read secret id: %w", gerr)
			}
			var derr error
			if gerr != nil || !live[u] {
				derr = b.store.Delete(ctx, accessorKey(u, acc))
				if derr == nil {
					res.accessors++
				}
			}
			mu.Unlock()
			if derr != nil {
				return res, fmt.Errorf("approle: tidy: delete accessor: %w", derr)
			}
		}
	}
	b.lastTidy = now
	if res.secretIDs+res.accessors > 0 {
		b.log.Info("approle: tidied secret ids", "secret_ids_removed", res.secretIDs, "accessors_removed", res.accessors)
	}
	return res, nil
}

// tidyOne removes one secret ID if it expired or its role is gone.
func (b *Backend) tidyOne(ctx context.Context, roleUUID, digest string, orphan bool, now time.Time) (bool, error) {
	mu := b.lockFor(digest)
	mu.Lock()
	defer mu.Unlock()
	s, err := b.loadSecretID(ctx, roleUUID, digest)
	if err != nil {
		return false, err
	}
	if s == nil {
		// Gone meanwhile, or an entry whose digest does not match its
		// key: remove the key itself.
		if err := b.store.Delete(ctx, secretIDKey(roleUUID, digest)); err != nil {
			return false, fmt.Errorf("approle: tidy: delete secret id: %w", err)
		}
		return false, nil
	}
	if !orphan && !s.expired(now) {
		return false, nil
	}
	if err := b.store.Batch(ctx, deleteSecretIDOps(roleUUID, s)); err != nil {
		return false, fmt.Errorf("approle: tidy: delete secret id: %w", err)
	}
	return true, nil
}
