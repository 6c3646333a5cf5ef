package barrier

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coffer-dev/coffer/internal/storage"
)

const (
	// DefaultRotationThreshold is how many encryptions a keyring term
	// performs before the barrier rotates by itself. NIST SP 800-38D caps a
	// key used with random 96-bit nonces at 2^32 (about 4.29e9)
	// encryptions; this keeps a 10% margin below it. It is also the
	// largest threshold Options accepts.
	DefaultRotationThreshold = 3_860_000_000
	// DefaultCheckpointInterval is how many encryptions pass between
	// writes of the active term's count to storage.
	DefaultCheckpointInterval = 100_000

	// sealWriteTimeout bounds the last counter write on Seal.
	sealWriteTimeout = 10 * time.Second
)

// Options tune a Barrier. The zero value uses the defaults.
type Options struct {
	// RotationThreshold is how many encryptions the active term may
	// perform before the barrier rotates to a new term. Zero means
	// DefaultRotationThreshold; larger values are lowered to it.
	RotationThreshold uint64
	// CheckpointInterval is how many encryptions may pass between writes of
	// the count to storage; Unseal adds it to the stored count, since up to
	// that many may have been lost in a crash. Zero means
	// DefaultCheckpointInterval.
	CheckpointInterval uint64
}

// KeyInfo describes the active keyring term.
type KeyInfo struct {
	Term        uint32
	InstallTime time.Time
	// Encryptions is an upper bound on the encryptions performed with the
	// term's key: it includes the margin Unseal adds for a possible crash.
	Encryptions uint64
}

// Barrier encrypts every logical entry before it reaches storage and
// authenticates it on the way back; see the package documentation. It is
// safe for concurrent use.
type Barrier struct {
	s    storage.Backend
	opts Options

	// mu guards the fields below. Encryption and decryption hold it for
	// reading, so a key is never zeroed while in use; Initialize, Unseal,
	// Seal, rotations and checkpoints hold it for writing, which also
	// serializes every write of core/keyring.
	mu       sync.RWMutex
	sealed   bool
	root     []byte
	rootAEAD cipher.AEAD
	terms    map[uint32]*term
	active   *term
	// persisted is the active term's count last written to storage, and
	// limit the count encs may reach before an encryption has to
	// checkpoint or rotate first: min(threshold, persisted+interval). So
	// the stored count plus the interval always bounds the encryptions
	// performed, and no term ever exceeds the threshold.
	persisted uint64
	limit     uint64

	// encs counts encryptions under the active term. It only changes
	// under mu: Add under the read lock, Store under the write lock.
	encs atomic.Uint64
}

var _ storage.Backend = (*Barrier)(nil)

// New returns a sealed barrier over the untrusted backend s.
func New(s storage.Backend, opts Options) *Barrier {
	if opts.RotationThreshold == 0 || opts.RotationThreshold > DefaultRotationThreshold {
		opts.RotationThreshold = DefaultRotationThreshold
	}
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = DefaultCheckpointInterval
	}
	return &Barrier{s: s, opts: opts, sealed: true}
}

// Initialized reports whether storage holds a keyring. It works while
// sealed.
func (b *Barrier) Initialized(ctx context.Context) (bool, error) {
	return b.exists(ctx, keyringPath)
}

func (b *Barrier) exists(ctx context.Context, path string) (bool, error) {
	_, err := b.s.Get(ctx, path)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("barrier: read %s: %w", path, err)
	}
	return true, nil
}

// Initialize generates the root key and the first keyring term, and writes
// core/root-key (the root key encrypted with unsealKey) and core/keyring
// (the keyring encrypted with the root key) in one atomic batch. It
// returns ErrAlreadyInitialized if either exists. The barrier stays
// sealed: call Unseal next.
func (b *Barrier) Initialize(ctx context.Context, unsealKey Key) error {
	if !unsealKey.valid() {
		return fmt.Errorf("%w: unseal key is not %d bytes", ErrInvalidKey, KeySize)
	}
	// The write lock makes concurrent Initialize calls take turns, so that
	// a second one cannot replace the root key the first one returned.
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range []string{rootKeyPath, keyringPath} {
		found, err := b.exists(ctx, p)
		if err != nil {
			return err
		}
		if found {
			return ErrAlreadyInitialized
		}
	}
	root := make([]byte, KeySize)
	defer clear(root)
	first := make([]byte, KeySize)
	defer clear(first)
	if _, err := rand.Read(root); err != nil {
		return fmt.Errorf("barrier: generate root key: %w", err)
	}
	if _, err := rand.Read(first); err != nil {
		return fmt.Errorf("barrier: generate first term key: %w", err)
	}
	rootAEAD, err := newAEAD(root)
	if err != nil {
		return err
	}
	unsealAEAD, err := newAEAD(unsealKey.b)
	if err != nil {
		return err
	}
	t := &term{id: 1, key: first, installTime: now()}
	keyring, err := encodeKeyring(rootAEAD, []*term{t}, t, 0)
	if err != nil {
		return err
	}
	wrapped, err := encryptEntry(unsealAEAD, coreTerm, rootKeyPath, root)
	if err != nil {
		return err
	}
	err = b.s.Batch(ctx, []storage.Op{
		{Kind: storage.OpPut, Entry: &storage.Entry{Key: rootKeyPath, Value: wrapped}},
		{Kind: storage.OpPut, Entry: &storage.Entry{Key: keyringPath, Value: keyring}},
	})
	if err != nil {
		return fmt.Errorf("barrier: write root key and keyring: %w", err)
	}
	return nil
}

// Unseal opens the root key with unsealKey and loads the keyring. It
// returns ErrInvalidKey when unsealKey cannot open the root key,
// ErrNotInitialized when there is none, and nil when already unsealed
// (without looking at unsealKey).
func (b *Barrier) Unseal(ctx context.Context, unsealKey Key) error {
	if !unsealKey.valid() {
		return fmt.Errorf("%w: unseal key is not %d bytes", ErrInvalidKey, KeySize)
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
		return fmt.Errorf("barrier: read %s: %w", rootKeyPath, err)
	}
	unsealAEAD, err := newAEAD(unsealKey.b)
	if err != nil {
		return err
	}
	root, err := unwrapRootKey(unsealAEAD, wrapped.Value)
	if err != nil {
		return err
	}
	rootAEAD, err := newAEAD(root)
	if err != nil {
		clear(root)
		return err
	}
	raw, err := b.s.Get(ctx, keyringPath)
	if err != nil {
		clear(root)
		if errors.Is(err, storage.ErrNotFound) {
			return &DecodeError{Path: keyringPath, Err: errors.New("keyring is missing")}
		}
		return fmt.Errorf("barrier: read %s: %w", keyringPath, err)
	}
	terms, active, count, err := decodeKeyring(rootAEAD, raw.Value)
	if err != nil {
		clear(root)
		return err
	}
	b.root, b.rootAEAD, b.terms, b.active = root, rootAEAD, terms, active
	// Fail safe: encryptions since the last checkpoint are not in storage;
	// there were at most CheckpointInterval of them.
	b.persisted = count
	b.encs.Store(satAdd(count, b.opts.CheckpointInterval))
	b.limit = min(b.opts.RotationThreshold, b.encs.Load())
	b.sealed = false
	return nil
}

// Seal writes the active term's count to storage (best effort: if that
// fails, Unseal's margin covers it), zeroes every key the barrier holds,
// and makes every operation return ErrSealed until the next Unseal.
//
// Go cannot promise that no copy of a key survives in memory: AES keeps its
// expanded key schedule inside cipher objects, which Seal drops for the
// garbage collector, and the runtime may have moved or copied buffers.
func (b *Barrier) Seal() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sealed {
		return
	}
	var keyring []byte
	if n := b.encs.Load(); n != b.persisted {
		// Encrypted before the keys are zeroed, written after: a slow
		// backend must not keep keys in memory.
		keyring, _ = encodeKeyring(b.rootAEAD, sortedTerms(b.terms), b.active, n)
	}
	for _, t := range b.terms {
		clear(t.key)
		t.key, t.aead = nil, nil
	}
	clear(b.root)
	b.root, b.rootAEAD, b.terms, b.active = nil, nil, nil, nil
	b.persisted, b.limit = 0, 0
	b.encs.Store(0)
	b.sealed = true
	if keyring != nil {
		// Still under mu, so that no Unseal reads the keyring before this
		// write lands and is then overtaken by it.
		ctx, cancel := context.WithTimeout(context.Background(), sealWriteTimeout)
		_ = b.s.Put(ctx, &storage.Entry{Key: keyringPath, Value: keyring})
		cancel()
	}
}

// Sealed reports whether the barrier is sealed.
func (b *Barrier) Sealed() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.sealed
}

// KeyStatus describes the active keyring term.
func (b *Barrier) KeyStatus() (KeyInfo, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.sealed {
		return KeyInfo{}, ErrSealed
	}
	return KeyInfo{Term: b.active.id, InstallTime: b.active.installTime, Encryptions: b.encs.Load()}, nil
}

// Rotate adds a keyring term and makes it active: new writes use its key,
// and entries written under older terms stay readable.
func (b *Barrier) Rotate(ctx context.Context) (KeyInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sealed {
		return KeyInfo{}, ErrSealed
	}
	return b.rotateLocked(ctx)
}

// rotateLocked writes a keyring with a new active term, then installs it;
// on failure nothing changes. mu must be held for writing.
func (b *Barrier) rotateLocked(ctx context.Context) (KeyInfo, error) {
	var last uint32
	for id := range b.terms {
		last = max(last, id)
	}
	if last == math.MaxUint32 {
		return KeyInfo{}, errors.New("barrier: rotate: keyring has no term numbers left")
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return KeyInfo{}, fmt.Errorf("barrier: rotate: generate key: %w", err)
	}
	aead, err := newAEAD(key)
	if err != nil {
		clear(key)
		return KeyInfo{}, err
	}
	next := &term{id: last + 1, key: key, aead: aead, installTime: now()}
	retired := b.encs.Load()
	terms := sortedTerms(b.terms)
	old := b.active
	oldCount := old.encryptions
	old.encryptions = retired
	keyring, err := encodeKeyring(b.rootAEAD, append(terms, next), next, 0)
	if err == nil {
		err = b.s.Put(ctx, &storage.Entry{Key: keyringPath, Value: keyring})
		if err != nil {
			err = fmt.Errorf("barrier: rotate: write keyring: %w", err)
		}
	}
	if err != nil {
		old.encryptions = oldCount
		clear(key)
		return KeyInfo{}, err
	}
	b.terms[next.id] = next
	b.active = next
	b.persisted = 0
	b.encs.Store(0)
	b.limit = min(b.opts.RotationThreshold, b.opts.CheckpointInterval)
	return KeyInfo{Term: next.id, InstallTime: next.installTime}, nil
}

// encrypt seals plaintext for the logical path under the active term. Each
// call reserves one encryption of the term; when none is left before the
// next checkpoint or the rotation threshold, it does that first.
func (b *Barrier) encrypt(ctx context.Context, path string, plaintext []byte) ([]byte, error) {
	for {
		b.mu.RLock()
		if b.sealed {
			b.mu.RUnlock()
			return nil, ErrSealed
		}
		if b.encs.Add(1) <= b.limit {
			t := b.active
			out, err := encryptEntry(t.aead, t.id, path, plaintext)
			b.mu.RUnlock()
			return out, err
		}
		// No room: take the reservation back while still holding the read
		// lock, so that it cannot undo a reset by rotation, and the count
		// stays exact.
		b.encs.Add(^uint64(0))
		b.mu.RUnlock()
		if err := b.maintain(ctx); err != nil {
			return nil, err
		}
	}
}

// maintain makes room for more encryptions: it rotates when the active
// term reached the threshold, and otherwise writes the count. Writers that
// queue here behind the one doing it find room and return, so a burst of
// writers at the threshold rotates once.
func (b *Barrier) maintain(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sealed {
		return ErrSealed
	}
	n := b.encs.Load()
	if n < b.limit {
		return nil
	}
	if n >= b.opts.RotationThreshold {
		_, err := b.rotateLocked(ctx)
		return err
	}
	keyring, err := encodeKeyring(b.rootAEAD, sortedTerms(b.terms), b.active, n)
	if err != nil {
		return err
	}
	if err := b.s.Put(ctx, &storage.Entry{Key: keyringPath, Value: keyring}); err != nil {
		return fmt.Errorf("barrier: checkpoint: write keyring: %w", err)
	}
	b.persisted = n
	b.limit = min(b.opts.RotationThreshold, satAdd(n, b.opts.CheckpointInterval))
	return nil
}

// decrypt authenticates and decrypts a logical entry, in place (see
// openEntry).
func (b *Barrier) decrypt(path string, raw []byte) ([]byte, error) {
	id, err := entryTerm(path, raw)
	if err != nil {
		return nil, err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.sealed {
		return nil, ErrSealed
	}
	t := b.terms[id]
	if t == nil {
		return nil, &DecodeError{Path: path, Err: fmt.Errorf("%w %d", ErrUnknownTerm, id)}
	}
	return openEntry(t.aead, path, raw)
}

func now() time.Time { return time.Now().UTC().Round(0) }

// satAdd returns a+b, or MaxUint64 when that overflows.
func satAdd(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}
