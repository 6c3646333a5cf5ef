package barrier

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coffer-dev/coffer/internal/storage"
)

// Raw storage layout owned by the barrier (docs/barrier-format.md).
const (
	rootKeyPath   = "core/root-key"
	keyringPath   = "core/keyring"
	logicalPrefix = "logical/"

	entryVersion = 1
	headerSize   = 5 // term (4, big-endian) || version (1)
	nonceSize    = 12
	tagSize      = 16

	// DefaultRotationThreshold is how many encryptions a term performs
	// before the barrier rotates by itself: below 2^32, the NIST SP 800-38D
	// bound for random 96-bit nonces, with a 10% margin.
	DefaultRotationThreshold = 3_860_000_000
	// DefaultCheckpointInterval is how many encryptions pass between
	// writes of the counter to storage.
	DefaultCheckpointInterval = 100_000
)

// Options tune a Barrier. The zero value uses the defaults.
type Options struct {
	RotationThreshold  uint64
	CheckpointInterval uint64
}

// KeyInfo describes the active keyring term.
type KeyInfo struct {
	Term        uint32
	InstallTime time.Time
	Encryptions uint64
}

type term struct {
	id      uint32
	key     []byte
	aead    cipher.AEAD
	install time.Time
	encs    uint64 // final count, for terms no longer active
}

// Barrier encrypts every logical entry before it reaches storage and
// authenticates it on the way back. It is safe for concurrent use.
type Barrier struct {
	s    storage.Backend
	opts Options

	mu       sync.RWMutex
	sealed   bool
	rootKey  []byte
	rootAEAD cipher.AEAD
	terms    map[uint32]*term
	active   uint32

	encs       atomic.Uint64 // encryptions under the active term
	checkpoint atomic.Uint64 // encs value last persisted
	busy       atomic.Bool   // a rotation or checkpoint is being written
}

var _ storage.Backend = (*Barrier)(nil)

// New returns a sealed barrier over s.
func New(s storage.Backend, opts Options) *Barrier {
	if opts.RotationThreshold == 0 {
		opts.RotationThreshold = DefaultRotationThreshold
	}
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = DefaultCheckpointInterval
	}
	return &Barrier{s: s, opts: opts, sealed: true}
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal encrypts plaintext for path in the entry format.
func sealEntry(aead cipher.AEAD, termID uint32, path string, plaintext []byte) ([]byte, error) {
	out := make([]byte, headerSize+nonceSize, headerSize+nonceSize+len(plaintext)+tagSize)
	binary.BigEndian.PutUint32(out, termID)
	out[4] = entryVersion
	if _, err := rand.Read(out[headerSize : headerSize+nonceSize]); err != nil {
		return nil, fmt.Errorf("barrier: read nonce: %w", err)
	}
	return aead.Seal(out, out[headerSize:headerSize+nonceSize], plaintext, aad(out[:headerSize], path)), nil
}

func aad(header []byte, path string) []byte {
	a := make([]byte, 0, len(header)+len(path))
	a = append(a, header...)
	return append(a, path...)
}

// parseHeader splits an entry; it checks lengths and the version only.
func parseHeader(path string, raw []byte) (termID uint32, err error) {
	if len(raw) < headerSize+nonceSize+tagSize {
		return 0, &DecodeError{Path: path, Reason: fmt.Sprintf("entry is %d bytes, shorter than the minimum %d", len(raw), headerSize+nonceSize+tagSize)}
	}
	if raw[4] != entryVersion {
		return 0, &DecodeError{Path: path, Reason: fmt.Sprintf("unknown entry version %d", raw[4])}
	}
	return binary.BigEndian.Uint32(raw), nil
}

func openEntry(aead cipher.AEAD, path string, raw []byte) ([]byte, error) {
	pt, err := aead.Open(nil, raw[headerSize:headerSize+nonceSize], raw[headerSize+nonceSize:], aad(raw[:headerSize], path))
	if err != nil {
		return nil, &DecodeError{Path: path, Reason: "authentication failed (tampered, moved, or wrong key)"}
	}
	return pt, nil
}

// checkPath refuses logical keys that cannot be stored safely.
func checkPath(p string, allowEmpty bool) error {
	if p == "" {
		if allowEmpty {
			return nil
		}
		return fmt.Errorf("%w: empty key", ErrBadPath)
	}
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("%w: %q starts with /", ErrBadPath, p)
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] == 0x7f {
			return fmt.Errorf("%w: control character in key", ErrBadPath)
		}
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." || seg == "." {
			return fmt.Errorf("%w: %q has a %q segment", ErrBadPath, p, seg)
		}
	}
	return nil
}

// Initialized reports whether a keyring exists in storage.
func (b *Barrier) Initialized(ctx context.Context) (bool, error) {
	_, err := b.s.Get(ctx, keyringPath)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("barrier: read keyring: %w", err)
	}
	return true, nil
}

// keyringDoc is the plaintext of core/keyring.
type keyringDoc struct {
	ActiveTerm uint32    `json:"active_term"`
	Terms      []termDoc `json:"terms"`
	RootKey    []byte    `json:"-"`
}

type termDoc struct {
	Term        uint32    `json:"term"`
	Key         []byte    `json:"key"`
	InstallTime time.Time `json:"install_time"`
	Encryptions uint64    `json:"encryptions"`
}

// Initialize creates the root key and the first keyring term, wraps the
// root key with unsealKey, and writes both in one batch. The barrier stays
// sealed.
func (b *Barrier) Initialize(ctx context.Context, unsealKey Key) error {
	if len(unsealKey.b) != KeySize {
		return ErrInvalidKey
	}
	init, err := b.Initialized(ctx)
	if err != nil {
		return err
	}
	if init {
		return ErrAlreadyInitialized
	}
	root, err := NewKey()
	if err != nil {
		return err
	}
	defer root.Zero()
	first, err := NewKey()
	if err != nil {
		return err
	}
	defer first.Zero()
	rootAEAD, err := newAEAD(root.b)
	if err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	kr, err := encodeKeyring(rootAEAD, &keyringDoc{ActiveTerm: 1, Terms: []termDoc{{Term: 1, Key: first.b, InstallTime: time.Now().UTC()}}})
	if err != nil {
		return err
	}
	wrapped, err := wrapRootKey(unsealKey, root.b)
	if err != nil {
		return err
	}
	return b.s.Batch(ctx, []storage.Op{
		{Kind: storage.OpPut, Entry: &storage.Entry{Key: rootKeyPath, Value: wrapped}},
		{Kind: storage.OpPut, Entry: &storage.Entry{Key: keyringPath, Value: kr}},
	})
}

func wrapRootKey(unsealKey Key, root []byte) ([]byte, error) {
	aead, err := newAEAD(unsealKey.b)
	if err != nil {
		return nil, fmt.Errorf("barrier: %w", err)
	}
	return sealEntry(aead, 0, rootKeyPath, root)
}

func encodeKeyring(rootAEAD cipher.AEAD, doc *keyringDoc) ([]byte, error) {
	pt, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("barrier: encode keyring: %w", err)
	}
	defer clear(pt)
	return sealEntry(rootAEAD, 0, keyringPath, pt)
}

// Unseal opens the root key with unsealKey and loads the keyring. A wrong
// key returns ErrInvalidKey.
func (b *Barrier) Unseal(ctx context.Context, unsealKey Key) error {
	if len(unsealKey.b) != KeySize {
		return ErrInvalidKey
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.sealed {
		return nil
	}
	wrapped, err := b.s.Get(ctx, rootKeyPath)
	if errors.Is(err, storage.ErrNotFound) {
		return ErrNotInitialized
	}
	if err != nil {
		return fmt.Errorf("barrier: read root key: %w", err)
	}
	ua, err := newAEAD(unsealKey.b)
	if err != nil {
		return ErrInvalidKey
	}
	if _, err := parseHeader(rootKeyPath, wrapped.Value); err != nil {
		return err
	}
	root, err := openEntry(ua, rootKeyPath, wrapped.Value)
	if err != nil || len(root) != KeySize {
		return ErrInvalidKey
	}
	rootAEAD, err := newAEAD(root)
	if err != nil {
		clear(root)
		return ErrInvalidKey
	}
	raw, err := b.s.Get(ctx, keyringPath)
	if err != nil {
		clear(root)
		return fmt.Errorf("barrier: read keyring: %w", err)
	}
	if _, err := parseHeader(keyringPath, raw.Value); err != nil {
		clear(root)
		return err
	}
	pt, err := openEntry(rootAEAD, keyringPath, raw.Value)
	if err != nil {
		clear(root)
		return err
	}
	var doc keyringDoc
	err = json.Unmarshal(pt, &doc)
	clear(pt)
	if err != nil {
		clear(root)
		return &DecodeError{Path: keyringPath, Reason: "keyring does not decode"}
	}
	terms := make(map[uint32]*term, len(doc.Terms))
	var activeEncs uint64
	for _, td := range doc.Terms {
		a, err := newAEAD(td.Key)
		if err != nil || td.Term == 0 {
			clear(root)
			return &DecodeError{Path: keyringPath, Reason: fmt.Sprintf("keyring term %d is invalid", td.Term)}
		}
		terms[td.Term] = &term{id: td.Term, key: td.Key, aead: a, install: td.InstallTime, encs: td.Encryptions}
		if td.Term == doc.ActiveTerm {
			activeEncs = td.Encryptions
		}
	}
	if terms[doc.ActiveTerm] == nil {
		clear(root)
		return &DecodeError{Path: keyringPath, Reason: "keyring has no active term"}
	}
	b.rootKey, b.rootAEAD, b.terms, b.active = root, rootAEAD, terms, doc.ActiveTerm
	// Fail safe: a crash may have lost up to one checkpoint interval of
	// encryptions since the count was last written.
	b.encs.Store(activeEncs + b.opts.CheckpointInterval)
	b.checkpoint.Store(activeEncs)
	b.sealed = false
	return nil
}

// Seal zeroes every key in memory. Operations then return ErrSealed.
// (Go's AES implementation keeps its expanded key schedule inside the
// cipher object; the barrier drops every reference to it.)
func (b *Barrier) Seal() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sealed {
		return
	}
	if n := b.encs.Load(); n > b.checkpoint.Load() && b.rootAEAD != nil {
		// Best effort: keep the counter exact across a clean seal.
		if err := b.persistLocked(context.Background()); err == nil {
			b.checkpoint.Store(n)
		}
	}
	for _, t := range b.terms {
		clear(t.key)
		t.key, t.aead = nil, nil
	}
	clear(b.rootKey)
	b.rootKey, b.rootAEAD, b.terms, b.active = nil, nil, nil, 0
	b.sealed = true
}

// Sealed reports whether the barrier is sealed.
func (b *Barrier) Sealed() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.sealed
}

func (b *Barrier) docLocked() *keyringDoc {
	doc := &keyringDoc{ActiveTerm: b.active}
	for id, t := range b.terms {
		encs := t.encs
		if id == b.active {
			encs = b.encs.Load()
		}
		doc.Terms = append(doc.Terms, termDoc{Term: id, Key: t.key, InstallTime: t.install, Encryptions: encs})
	}
	return doc
}

func (b *Barrier) persistLocked(ctx context.Context) error {
	raw, err := encodeKeyring(b.rootAEAD, b.docLocked())
	if err != nil {
		return err
	}
	if err := b.s.Put(ctx, &storage.Entry{Key: keyringPath, Value: raw}); err != nil {
		return fmt.Errorf("barrier: write keyring: %w", err)
	}
	return nil
}

// Rotate adds a new term and makes it active. Entries written under older
// terms stay readable.
func (b *Barrier) Rotate(ctx context.Context) (KeyInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rotateLocked(ctx)
}

func (b *Barrier) rotateLocked(ctx context.Context) (KeyInfo, error) {
	if b.sealed {
		return KeyInfo{}, ErrSealed
	}
	k, err := NewKey()
	if err != nil {
		return KeyInfo{}, err
	}
	a, err := newAEAD(k.b)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("barrier: %w", err)
	}
	prev, prevEncs, prevCheckpoint := b.active, b.encs.Load(), b.checkpoint.Load()
	var next uint32
	for id := range b.terms {
		next = max(next, id)
	}
	next++
	t := &term{id: next, key: k.b, aead: a, install: time.Now().UTC()}
	b.terms[prev].encs = prevEncs
	b.terms[next] = t
	b.active = next
	b.encs.Store(0)
	b.checkpoint.Store(0)
	if err := b.persistLocked(ctx); err != nil {
		delete(b.terms, next)
		b.active = prev
		b.encs.Store(prevEncs)
		b.checkpoint.Store(prevCheckpoint)
		k.Zero()
		return KeyInfo{}, err
	}
	return KeyInfo{Term: next, InstallTime: t.install}, nil
}

// KeyStatus describes the active term.
func (b *Barrier) KeyStatus() (KeyInfo, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.sealed {
		return KeyInfo{}, ErrSealed
	}
	t := b.terms[b.active]
	return KeyInfo{Term: t.id, InstallTime: t.install, Encryptions: b.encs.Load()}, nil
}

// encrypt seals plaintext for the logical path under the active term and
// counts the encryption.
func (b *Barrier) encrypt(path string, plaintext []byte) ([]byte, uint64, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.sealed {
		return nil, 0, ErrSealed
	}
	t := b.terms[b.active]
	n := b.encs.Add(1)
	out, err := sealEntry(t.aead, t.id, path, plaintext)
	return out, n, err
}

// afterEncrypt rotates when the active term reached the threshold and
// checkpoints the counter; one writer at a time does either.
func (b *Barrier) afterEncrypt(ctx context.Context, n uint64) error {
	due := n >= b.opts.RotationThreshold
	checkpoint := n-b.checkpoint.Load() >= b.opts.CheckpointInterval
	if !due && !checkpoint {
		return nil
	}
	if !b.busy.CompareAndSwap(false, true) {
		return nil
	}
	defer b.busy.Store(false)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sealed {
		return nil
	}
	if b.encs.Load() >= b.opts.RotationThreshold {
		_, err := b.rotateLocked(ctx)
		return err
	}
	cur := b.encs.Load()
	if cur-b.checkpoint.Load() >= b.opts.CheckpointInterval {
		if err := b.persistLocked(ctx); err != nil {
			return err
		}
		b.checkpoint.Store(cur)
	}
	return nil
}

func (b *Barrier) decrypt(path string, raw []byte) ([]byte, error) {
	termID, err := parseHeader(path, raw)
	if err != nil {
		return nil, err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.sealed {
		return nil, ErrSealed
	}
	t := b.terms[termID]
	if t == nil {
		return nil, &DecodeError{Path: path, Reason: fmt.Sprintf("unknown key term %d", termID)}
	}
	return openEntry(t.aead, path, raw)
}

func (b *Barrier) checkOpen() error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.sealed {
		return ErrSealed
	}
	return nil
}

// Get returns the plaintext of the logical entry at key.
func (b *Barrier) Get(ctx context.Context, key string) (*storage.Entry, error) {
	if err := checkPath(key, false); err != nil {
		return nil, err
	}
	if err := b.checkOpen(); err != nil {
		return nil, err
	}
	raw, err := b.s.Get(ctx, logicalPrefix+key)
	if err != nil {
		return nil, err
	}
	pt, err := b.decrypt(key, raw.Value)
	if err != nil {
		return nil, err
	}
	return &storage.Entry{Key: key, Value: pt}, nil
}

// Put encrypts and stores e.
func (b *Barrier) Put(ctx context.Context, e *storage.Entry) error {
	if err := checkPath(e.Key, false); err != nil {
		return err
	}
	ct, n, err := b.encrypt(e.Key, e.Value)
	if err != nil {
		return err
	}
	if err := b.s.Put(ctx, &storage.Entry{Key: logicalPrefix + e.Key, Value: ct}); err != nil {
		return err
	}
	return b.afterEncrypt(ctx, n)
}

// Delete removes the logical entry at key.
func (b *Barrier) Delete(ctx context.Context, key string) error {
	if err := checkPath(key, false); err != nil {
		return err
	}
	if err := b.checkOpen(); err != nil {
		return err
	}
	return b.s.Delete(ctx, logicalPrefix+key)
}

// List returns the logical children of prefix.
func (b *Barrier) List(ctx context.Context, prefix string) ([]string, error) {
	if err := checkPath(prefix, true); err != nil {
		return nil, err
	}
	if err := b.checkOpen(); err != nil {
		return nil, err
	}
	return b.s.List(ctx, logicalPrefix+prefix)
}

// Batch encrypts every put and applies the operations atomically.
func (b *Barrier) Batch(ctx context.Context, ops []storage.Op) error {
	out := make([]storage.Op, len(ops))
	var last uint64
	for i, op := range ops {
		if op.Entry == nil {
			return fmt.Errorf("%w: batch operation without an entry", ErrBadPath)
		}
		if err := checkPath(op.Entry.Key, false); err != nil {
			return err
		}
		switch op.Kind {
		case storage.OpPut:
			ct, n, err := b.encrypt(op.Entry.Key, op.Entry.Value)
			if err != nil {
				return err
			}
			last = n
			out[i] = storage.Op{Kind: storage.OpPut, Entry: &storage.Entry{Key: logicalPrefix + op.Entry.Key, Value: ct}}
		case storage.OpDelete:
			out[i] = storage.Op{Kind: storage.OpDelete, Entry: &storage.Entry{Key: logicalPrefix + op.Entry.Key}}
		default:
			return fmt.Errorf("%w: unknown batch operation %d", ErrBadPath, op.Kind)
		}
	}
	if err := b.checkOpen(); err != nil {
		return err
	}
	if err := b.s.Batch(ctx, out); err != nil {
		return err
	}
	if last > 0 {
		return b.afterEncrypt(ctx, last)
	}
	return nil
}
