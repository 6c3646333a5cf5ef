package token

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/coffer-dev/coffer/internal/storage"
)

// maxCachedEntries bounds the decoded token entries kept in memory.
const maxCachedEntries = 10000

// entryCache keeps decoded token entries by hash, so that the token of
// every request is not read and JSON-decoded from storage each time (a
// seventh of a KV read's server time). It is filled only by lookups and
// emptied of a hash by every write of that hash's entry, which all go
// through invalidatingStorage: a token is refused from the moment the
// write that revokes it (or spends its last use, or expires it) returns.
//
// A lookup fills the cache only if no token entry was written between its
// storage read and the fill (gen), so a lookup that raced a revocation
// can never put the old entry back.
type entryCache struct {
	mu      sync.Mutex
	gen     uint64
	entries map[string]*Entry
}

// get returns a copy of the cached entry for hash h, and the generation to
// pass to put after a miss.
func (c *entryCache) get(h string) (*Entry, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[h]; e != nil {
		return e.clone(), c.gen
	}
	return nil, c.gen
}

// put caches a copy of e (read from storage at generation gen) unless a
// token entry was written since.
func (c *entryCache) put(h string, e *Entry, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if c.entries == nil {
		c.entries = make(map[string]*Entry)
	}
	if len(c.entries) >= maxCachedEntries {
		for k := range c.entries { // evict an arbitrary entry
			delete(c.entries, k)
			break
		}
	}
	c.entries[h] = e.clone()
}

// invalidate forgets hash h (every hash when h is empty).
func (c *entryCache) invalidate(h string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if h == "" {
		c.entries = nil
		return
	}
	delete(c.entries, h)
}

// clone copies e deeply enough that callers may change it.
func (e *Entry) clone() *Entry {
	c := *e
	c.Policies = slices.Clone(e.Policies)
	c.Meta = maps.Clone(e.Meta)
	c.BoundCIDRs = slices.Clone(e.BoundCIDRs)
	return &c
}

// invalidatingStorage is the token store's view of storage: every write of
// a token entry (Put, Delete or a Batch touching token/id/) invalidates its
// hash in the cache once the write has returned, whether it succeeded or
// not (a failed Batch may have been applied before the error).
type invalidatingStorage struct {
	storage.Backend
	cache *entryCache
}

func entryHash(key string) (string, bool) {
	return strings.CutPrefix(key, idPrefix)
}

func (s *invalidatingStorage) Put(ctx context.Context, e *storage.Entry) error {
	err := s.Backend.Put(ctx, e)
	if h, ok := entryHash(e.Key); ok {
		s.cache.invalidate(h)
	}
	return err
}

func (s *invalidatingStorage) Delete(ctx context.Context, key string) error {
	err := s.Backend.Delete(ctx, key)
	if h, ok := entryHash(key); ok {
		s.cache.invalidate(h)
	}
	return err
}

func (s *invalidatingStorage) Batch(ctx context.Context, ops []storage.Op) error {
	err := s.Backend.Batch(ctx, ops)
	for _, op := range ops {
		if h, ok := entryHash(op.Entry.Key); ok {
			s.cache.invalidate(h)
		}
	}
	return err
}
