package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/coffer-dev/coffer/internal/storage"
)

// ErrNotRenewable is returned when renewing a token that is not renewable.
var ErrNotRenewable = errors.New("token is not renewable")

func (st *Store) save(ctx context.Context, e *Entry) error {
	raw, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode token: %w", err)
	}
	if err := st.s.Put(ctx, &storage.Entry{Key: idPrefix + e.Hash, Value: raw}); err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	return nil
}

// LookupAccessor returns the live entry whose accessor is acc (ID empty).
func (st *Store) LookupAccessor(ctx context.Context, acc string) (*Entry, error) {
	if !ValidFormat(acc) {
		return nil, ErrNotFound
	}
	ah, err := st.hash("accessor", acc)
	if err != nil {
		return nil, err
	}
	raw, err := st.s.Get(ctx, accessorPref+ah)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load accessor: %w", err)
	}
	return st.byHash(ctx, string(raw.Value))
}

// RenewResult is what Renew did.
type RenewResult struct {
	Entry *Entry
	// Capped is set when the TTL was cut short by a maximum.
	Capped bool
}

// Renew extends e's TTL by increment (or its original TTL when increment
// is zero), bounded by its explicit max TTL and by systemMax counted from
// its creation. Periodic tokens renew to their period, without systemMax.
func (st *Store) Renew(ctx context.Context, e *Entry, increment, systemMax time.Duration) (*RenewResult, error) {
	if !e.Renewable {
		return nil, ErrNotRenewable
	}
	if e.ExpireTime.IsZero() {
		return &RenewResult{Entry: e}, nil
	}
	now := st.now().UTC()
	ttl := e.TTL
	if increment > 0 {
		ttl = increment
	}
	var limit time.Time
	if e.Period > 0 {
		ttl = e.Period
	} else if systemMax > 0 {
		limit = e.CreationTime.Add(systemMax)
	}
	if e.ExplicitMaxTTL > 0 {
		if l := e.CreationTime.Add(e.ExplicitMaxTTL); limit.IsZero() || l.Before(limit) {
			limit = l
		}
	}
	exp := now.Add(ttl)
	capped := false
	if !limit.IsZero() && exp.After(limit) {
		exp, capped = limit, true
	}
	if !exp.After(now) {
		return nil, ErrNotFound
	}
	e.ExpireTime = exp
	if err := st.save(ctx, e); err != nil {
		return nil, err
	}
	return &RenewResult{Entry: e, Capped: capped}, nil
}

// Use counts one use of a token with a use limit. It returns exhausted=true
// when this was the last permitted use: the caller serves the request and
// then revokes the token.
func (st *Store) Use(ctx context.Context, e *Entry) (exhausted bool, err error) {
	if e.NumUses == 0 {
		return false, nil
	}
	st.useMu.Lock()
	defer st.useMu.Unlock()
	cur, err := st.byHash(ctx, e.Hash)
	if err != nil {
		return false, err
	}
	if cur.NumUses <= 0 {
		return false, ErrNotFound
	}
	cur.NumUses--
	if cur.NumUses == 0 {
		cur.NumUses = -1 // spent: refused from now on, revoked after this request
		if err := st.save(ctx, cur); err != nil {
			return false, err
		}
		return true, nil
	}
	if err := st.save(ctx, cur); err != nil {
		return false, err
	}
	e.NumUses = cur.NumUses
	return false, nil
}

// ListAccessors returns the accessors of every live token.
func (st *Store) ListAccessors(ctx context.Context) ([]string, error) {
	hashes, err := st.s.List(ctx, idPrefix)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	out := make([]string, 0, len(hashes))
	for _, h := range hashes {
		e, err := st.byHash(ctx, h)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e.Accessor)
	}
	sort.Strings(out)
	return out, nil
}

// Tidy deletes expired tokens and dangling parent-index entries. It returns
// how many tokens it removed.
func (st *Store) Tidy(ctx context.Context) (int, error) {
	hashes, err := st.s.List(ctx, idPrefix)
	if err != nil {
		return 0, fmt.Errorf("list tokens: %w", err)
	}
	n := 0
	for _, h := range hashes {
		e, err := st.loadRaw(ctx, h)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		if !e.ExpireTime.IsZero() && !st.now().Before(e.ExpireTime) {
			if err := st.revokeTree(ctx, h); err != nil {
				return n, err
			}
			n++
		}
	}
	parents, err := st.s.List(ctx, parentPrefix)
	if err != nil {
		return n, err
	}
	for _, p := range parents {
		ph := strings.TrimSuffix(p, "/")
		if _, err := st.loadRaw(ctx, ph); errors.Is(err, ErrNotFound) {
			kids, err := st.s.List(ctx, parentPrefix+p)
			if err != nil {
				return n, err
			}
			for _, k := range kids {
				if err := st.s.Delete(ctx, parentPrefix+p+k); err != nil {
					return n, err
				}
			}
		}
	}
	return n, nil
}

// Count returns the number of stored tokens (live or expired but not yet
// tidied).
func (st *Store) Count(ctx context.Context) (int, error) {
	hashes, err := st.s.List(ctx, idPrefix)
	if err != nil {
		return 0, err
	}
	return len(hashes), nil
}
