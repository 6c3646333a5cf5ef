package kv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/coffer-dev/coffer/internal/storage"
)

// defaultMaxVersions is kept when neither the key nor the mount sets
// max_versions, as in Vault.
const defaultMaxVersions = 10

// keyMeta is the stored metadata of one secret (v2/meta/<path>).
type keyMeta struct {
	CurrentVersion     uint64            `json:"current_version"`
	OldestVersion      uint64            `json:"oldest_version"`
	MaxVersions        int               `json:"max_versions"`
	CASRequired        bool              `json:"cas_required"`
	DeleteVersionAfter time.Duration     `json:"delete_version_after"`
	CustomMetadata     map[string]string `json:"custom_metadata,omitempty"`
	CreatedTime        time.Time         `json:"created_time"`
	UpdatedTime        time.Time         `json:"updated_time"`
	// Versions holds every kept version, destroyed ones included;
	// versions trimmed by max_versions are gone from it.
	Versions map[uint64]*versionMeta `json:"versions"`
}

// versionMeta is the state of one version.
type versionMeta struct {
	CreatedTime time.Time `json:"created_time"`
	// DeletionTime is zero when no deletion is set; it may be in the
	// future (delete_version_after).
	DeletionTime time.Time `json:"deletion_time,omitzero"`
	Destroyed    bool      `json:"destroyed,omitempty"`
}

// live reports whether the version can be read at now.
func (v *versionMeta) live(now time.Time) bool {
	return !v.Destroyed && !v.deleted(now)
}

func (v *versionMeta) deleted(now time.Time) bool {
	return !v.DeletionTime.IsZero() && !v.DeletionTime.After(now)
}

// formatTime renders t as Vault does: RFC 3339 with nanoseconds in UTC,
// and "" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// maxCachedMeta bounds the decoded metadata kept for reads.
const maxCachedMeta = 10000

// loadMeta reads and decodes the metadata of path (nil if none) for a
// request that holds the path's write lock and may change it: it forgets
// the cached copy first, so no reader sees it again before the write is
// done (readers need the lock the caller holds).
func (b *Backend) loadMeta(ctx context.Context, path string) (*keyMeta, error) {
	b.metaMu.Lock()
	delete(b.metaCache, path)
	b.metaMu.Unlock()
	return b.decodeMeta(ctx, path)
}

// loadMetaShared is loadMeta for readers holding the path's read lock.
// The result may be shared with other readers: it must not be modified.
// Decoding the metadata was a tenth of a KV read's server time; writers
// invalidate under the write lock (loadMeta), so a cached copy is never
// stale.
func (b *Backend) loadMetaShared(ctx context.Context, path string) (*keyMeta, error) {
	b.metaMu.Lock()
	m := b.metaCache[path]
	b.metaMu.Unlock()
	if m != nil {
		return m, nil
	}
	m, err := b.decodeMeta(ctx, path)
	if err != nil || m == nil {
		return m, err
	}
	b.metaMu.Lock()
	if b.metaCache == nil {
		b.metaCache = make(map[string]*keyMeta)
	}
	if len(b.metaCache) >= maxCachedMeta {
		for k := range b.metaCache { // evict an arbitrary entry
			delete(b.metaCache, k)
			break
		}
	}
	b.metaCache[path] = m
	b.metaMu.Unlock()
	return m, nil
}

// Cleanup drops the cached metadata (on seal and unmount).
func (b *Backend) Cleanup(context.Context) {
	b.metaMu.Lock()
	b.metaCache = nil
	b.metaMu.Unlock()
}

func (b *Backend) decodeMeta(ctx context.Context, path string) (*keyMeta, error) {
	e, err := b.store.Get(ctx, metaKey(path))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kv: read metadata of %q: %w", path, err)
	}
	var m keyMeta
	if err := json.Unmarshal(e.Value, &m); err != nil {
		return nil, fmt.Errorf("kv: decode metadata of %q: %w", path, errCorrupt)
	}
	if m.Versions == nil {
		m.Versions = map[uint64]*versionMeta{}
	}
	return &m, nil
}

func putMetaOp(path string, m *keyMeta) (storage.Op, error) {
	raw, err := json.Marshal(m)
	if err != nil {
		return storage.Op{}, fmt.Errorf("kv: encode metadata of %q: %w", path, err)
	}
	return storage.Op{Kind: storage.OpPut, Entry: &storage.Entry{Key: metaKey(path), Value: raw}}, nil
}

func deleteOp(key string) storage.Op {
	return storage.Op{Kind: storage.OpDelete, Entry: &storage.Entry{Key: key}}
}

func (b *Backend) saveMeta(ctx context.Context, path string, m *keyMeta) error {
	op, err := putMetaOp(path, m)
	if err != nil {
		return err
	}
	if err := b.store.Put(ctx, op.Entry); err != nil {
		return fmt.Errorf("kv: write metadata of %q: %w", path, err)
	}
	return nil
}

// loadVersion reads the data of version n, or nil if it is gone.
func (b *Backend) loadVersion(ctx context.Context, path string, n uint64) (map[string]any, error) {
	e, err := b.store.Get(ctx, dataKey(path, n))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kv: read version %d of %q: %w", n, path, err)
	}
	data, err := decodeObject(e.Value)
	if err != nil {
		return nil, fmt.Errorf("kv: decode version %d of %q: %w", n, path, err)
	}
	return data, nil
}

// decodeObject decodes a stored JSON object, keeping numbers exact. Its
// error is errCorrupt alone, never the decoder's (see errCorrupt).
func decodeObject(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
		return nil, errCorrupt
	}
	return m, nil
}

// customMetadata returns the key's custom metadata as the API shows it:
// null when there is none.
func (m *keyMeta) customMetadata() map[string]string {
	if m == nil || len(m.CustomMetadata) == 0 {
		return nil
	}
	out := make(map[string]string, len(m.CustomMetadata))
	for k, v := range m.CustomMetadata {
		out[k] = v
	}
	return out
}

// versionResponse is the metadata of one version as data reads and writes
// return it.
func versionResponse(m *keyMeta, n uint64, v *versionMeta) map[string]any {
	return map[string]any{
		"created_time":    formatTime(v.CreatedTime),
		"custom_metadata": m.customMetadata(),
		"deletion_time":   formatTime(v.DeletionTime),
		"destroyed":       v.Destroyed,
		"version":         n,
	}
}

// metadataResponse renders GET metadata/:path.
func metadataResponse(m *keyMeta) map[string]any {
	versions := make(map[string]any, len(m.Versions))
	for n, v := range m.Versions {
		versions[strconv.FormatUint(n, 10)] = map[string]any{
			"created_time":  formatTime(v.CreatedTime),
			"deletion_time": formatTime(v.DeletionTime),
			"destroyed":     v.Destroyed,
		}
	}
	return map[string]any{
		"cas_required":         m.CASRequired,
		"created_time":         formatTime(m.CreatedTime),
		"current_version":      m.CurrentVersion,
		"custom_metadata":      m.customMetadata(),
		"delete_version_after": m.DeleteVersionAfter.String(),
		"max_versions":         m.MaxVersions,
		"oldest_version":       m.OldestVersion,
		"updated_time":         formatTime(m.UpdatedTime),
		"versions":             versions,
	}
}

// sortedVersions lists the kept version numbers, oldest first.
func (m *keyMeta) sortedVersions() []uint64 {
	out := make([]uint64, 0, len(m.Versions))
	for n := range m.Versions {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// effectiveMaxVersions is the key's max_versions if set, else the mount's,
// else 10.
func effectiveMaxVersions(m *keyMeta, c mountConfig) int {
	switch {
	case m.MaxVersions > 0:
		return m.MaxVersions
	case c.MaxVersions > 0:
		return c.MaxVersions
	default:
		return defaultMaxVersions
	}
}

// effectiveDeleteAfter is the shorter of the key's and the mount's
// delete_version_after, where zero means unset.
func effectiveDeleteAfter(m *keyMeta, c mountConfig) time.Duration {
	k, g := m.DeleteVersionAfter, c.DeleteVersionAfter
	switch {
	case k <= 0:
		return max(g, 0)
	case g <= 0 || k < g:
		return k
	default:
		return g
	}
}

// casRequired reports whether writes to the key need options.cas.
func casRequired(m *keyMeta, c mountConfig) bool {
	return c.CASRequired || (m != nil && m.CASRequired)
}
