package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/coffer-dev/coffer/internal/storage"
)

// pendingPrefix holds one marker per revocation in progress, so that a
// revocation cut short by a crash is finished at the next unseal.
const pendingPrefix = "token/revoke-pending/"

// LeaseRevoker revokes every lease a token created; the lease manager
// implements it. Optional: nil means tokens have no leases to revoke.
type LeaseRevoker interface {
	RevokeByToken(ctx context.Context, tokenHash string) error
}

// SetRenewCheck makes every renewal (renew, renew-self, renew-accessor)
// first ask f, which consults the auth method that issued the token; an
// error from f refuses the renewal.
func (st *Store) SetRenewCheck(f func(ctx context.Context, e *Entry) error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.renewCheck = f
}

// SetLeaseRevoker makes token revocation also revoke the token's leases.
func (st *Store) SetLeaseRevoker(r LeaseRevoker) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.leases = r
}

func (st *Store) loadRaw(ctx context.Context, h string) (*Entry, error) {
	raw, err := st.s.Get(ctx, idPrefix+h)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load token: %w", err)
	}
	var e Entry
	if err := json.Unmarshal(raw.Value, &e); err != nil {
		return nil, fmt.Errorf("decode token entry: %w", err)
	}
	return &e, nil
}

// markRevoked atomically flags the token and records the pending
// revocation.
func (st *Store) markRevoked(ctx context.Context, e *Entry, orphanChildren bool) error {
	if e.Revoked {
		return nil
	}
	e.Revoked = true
	raw, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode token: %w", err)
	}
	mode := []byte("tree")
	if orphanChildren {
		mode = []byte("orphan")
	}
	return st.s.Batch(ctx, []storage.Op{
		{Kind: storage.OpPut, Entry: &storage.Entry{Key: idPrefix + e.Hash, Value: raw}},
		{Kind: storage.OpPut, Entry: &storage.Entry{Key: pendingPrefix + e.Hash, Value: mode}},
	})
}

// revokeTree revokes token h and, depth first, its descendants. Children
// are marked before they are deleted, so a token is refused from the
// moment any revocation that covers it has begun.
func (st *Store) revokeTree(ctx context.Context, h string) error {
	e, err := st.loadRaw(ctx, h)
	if errors.Is(err, ErrNotFound) {
		return st.s.Delete(ctx, pendingPrefix+h)
	}
	if err != nil {
		return err
	}
	if err := st.markRevoked(ctx, e, false); err != nil {
		return err
	}
	children, err := st.s.List(ctx, parentPrefix+h+"/")
	if err != nil {
		return fmt.Errorf("list child tokens: %w", err)
	}
	for _, c := range children {
		if err := st.revokeTree(ctx, strings.TrimSuffix(c, "/")); err != nil {
			return err
		}
	}
	return st.deleteEntry(ctx, e)
}

// deleteEntry removes e, its indexes, its leases and its pending marker.
func (st *Store) deleteEntry(ctx context.Context, e *Entry) error {
	st.mu.Lock()
	lr := st.leases
	st.mu.Unlock()
	if lr != nil {
		if err := lr.RevokeByToken(ctx, e.Hash); err != nil {
			return fmt.Errorf("revoke leases of token: %w", err)
		}
	}
	ah, err := st.hash("accessor", e.Accessor)
	if err != nil {
		return err
	}
	ops := []storage.Op{
		{Kind: storage.OpDelete, Entry: &storage.Entry{Key: idPrefix + e.Hash}},
		{Kind: storage.OpDelete, Entry: &storage.Entry{Key: accessorPref + ah}},
		{Kind: storage.OpDelete, Entry: &storage.Entry{Key: pendingPrefix + e.Hash}},
	}
	if e.Parent != "" {
		ops = append(ops, storage.Op{Kind: storage.OpDelete, Entry: &storage.Entry{Key: parentPrefix + e.Parent + "/" + e.Hash}})
	}
	if err := st.s.Batch(ctx, ops); err != nil {
		return fmt.Errorf("delete token: %w", err)
	}
	return nil
}

// Revoke revokes token id, every descendant and their leases.
func (st *Store) Revoke(ctx context.Context, id string) error {
	if !ValidFormat(id) {
		return ErrNotFound
	}
	h, err := st.hash("id", id)
	if err != nil {
		return err
	}
	return st.revokeTree(ctx, h)
}

// RevokeHash revokes the token with hash h (as found in an Entry).
func (st *Store) RevokeHash(ctx context.Context, h string) error {
	return st.revokeTree(ctx, h)
}

// RevokeOrphan revokes token id alone; its children become orphans.
func (st *Store) RevokeOrphan(ctx context.Context, id string) error {
	if !ValidFormat(id) {
		return ErrNotFound
	}
	h, err := st.hash("id", id)
	if err != nil {
		return err
	}
	return st.revokeOrphanHash(ctx, h)
}

func (st *Store) revokeOrphanHash(ctx context.Context, h string) error {
	e, err := st.loadRaw(ctx, h)
	if errors.Is(err, ErrNotFound) {
		return st.s.Delete(ctx, pendingPrefix+h)
	}
	if err != nil {
		return err
	}
	if err := st.markRevoked(ctx, e, true); err != nil {
		return err
	}
	children, err := st.s.List(ctx, parentPrefix+h+"/")
	if err != nil {
		return fmt.Errorf("list child tokens: %w", err)
	}
	for _, c := range children {
		ch := strings.TrimSuffix(c, "/")
		ce, err := st.loadRaw(ctx, ch)
		if errors.Is(err, ErrNotFound) {
			if err := st.s.Delete(ctx, parentPrefix+h+"/"+ch); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		ce.Parent, ce.Orphan = "", true
		raw, err := json.Marshal(ce)
		if err != nil {
			return fmt.Errorf("encode token: %w", err)
		}
		if err := st.s.Batch(ctx, []storage.Op{
			{Kind: storage.OpPut, Entry: &storage.Entry{Key: idPrefix + ch, Value: raw}},
			{Kind: storage.OpDelete, Entry: &storage.Entry{Key: parentPrefix + h + "/" + ch}},
		}); err != nil {
			return fmt.Errorf("orphan child token: %w", err)
		}
	}
	return st.deleteEntry(ctx, e)
}

// ResumeRevocations finishes every revocation a crash interrupted. The core
// calls it at unseal, before serving requests.
func (st *Store) ResumeRevocations(ctx context.Context) (int, error) {
	pending, err := st.s.List(ctx, pendingPrefix)
	if err != nil {
		return 0, fmt.Errorf("list pending revocations: %w", err)
	}
	n := 0
	for _, h := range pending {
		mode, err := st.s.Get(ctx, pendingPrefix+h)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		if string(mode.Value) == "orphan" {
			err = st.revokeOrphanHash(ctx, h)
		} else {
			err = st.revokeTree(ctx, h)
		}
		if err != nil {
			return n, fmt.Errorf("resume revocation: %w", err)
		}
		n++
	}
	return n, nil
}

// RevokeByPath revokes every token whose creation path starts with prefix
// (e.g. "auth/userpass/": the tokens an auth mount issued), with their
// descendants and leases, and returns how many it revoked. It scans the
// whole store: it is meant for rare operations (disabling an auth method).
// It stops at the first token that cannot be revoked.
func (st *Store) RevokeByPath(ctx context.Context, prefix string) (int, error) {
	if prefix == "" {
		return 0, errors.New("token: empty path prefix")
	}
	hashes, err := st.s.List(ctx, idPrefix)
	if err != nil {
		return 0, fmt.Errorf("list tokens: %w", err)
	}
	n := 0
	for _, h := range hashes {
		e, err := st.loadRaw(ctx, h)
		if errors.Is(err, ErrNotFound) {
			continue // revoked meanwhile (e.g. as a child of another)
		}
		if err != nil {
			return n, err
		}
		if !strings.HasPrefix(e.Path, prefix) {
			continue
		}
		if err := st.revokeTree(ctx, h); err != nil {
			return n, fmt.Errorf("revoke token %s: %w", e.Accessor, err)
		}
		n++
	}
	return n, nil
}
