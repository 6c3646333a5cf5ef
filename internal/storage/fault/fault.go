// Package fault wraps a storage.Backend to inject failures and latency, so
// tests can check that storage errors surface as clean 500s and that
// nothing half-written survives. Test tool: it uses math/rand.
package fault

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/coffer-dev/coffer/internal/storage"
)

// ErrInjected is wrapped by every injected failure.
var ErrInjected = errors.New("fault: injected storage failure")

// Options configure a Backend.
type Options struct {
	// FailPercent is the chance (0-100) that a call fails.
	FailPercent float64
	// Latency is added before every call.
	Latency time.Duration
	// WritesOnly limits failures to Put, Delete and Batch.
	WritesOnly bool
}

// Backend is the fault-injecting wrapper.
type Backend struct {
	inner      storage.Backend
	failBits   atomic.Uint64 // math.Float64bits of the fail percentage
	latency    atomic.Int64
	writesOnly bool
	injected   atomic.Uint64
}

var _ storage.Backend = (*Backend)(nil)

// New wraps inner.
func New(inner storage.Backend, opts Options) *Backend {
	b := &Backend{inner: inner, writesOnly: opts.WritesOnly}
	b.SetFailPercent(opts.FailPercent)
	b.latency.Store(int64(opts.Latency))
	return b
}

// SetFailPercent changes the failure rate at run time.
func (b *Backend) SetFailPercent(p float64) { b.failBits.Store(math.Float64bits(p)) }

// SetLatency changes the added latency at run time.
func (b *Backend) SetLatency(d time.Duration) { b.latency.Store(int64(d)) }

// Injected returns how many failures were injected so far.
func (b *Backend) Injected() uint64 { return b.injected.Load() }

func (b *Backend) before(ctx context.Context, write bool) error {
	if d := time.Duration(b.latency.Load()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	if b.writesOnly && !write {
		return nil
	}
	if p := math.Float64frombits(b.failBits.Load()); p > 0 && rand.Float64()*100 < p {
		b.injected.Add(1)
		return ErrInjected
	}
	return nil
}

// Get implements storage.Backend.
func (b *Backend) Get(ctx context.Context, key string) (*storage.Entry, error) {
	if err := b.before(ctx, false); err != nil {
		return nil, err
	}
	return b.inner.Get(ctx, key)
}

// Put implements storage.Backend.
func (b *Backend) Put(ctx context.Context, e *storage.Entry) error {
	if err := b.before(ctx, true); err != nil {
		return err
	}
	return b.inner.Put(ctx, e)
}

// Delete implements storage.Backend.
func (b *Backend) Delete(ctx context.Context, key string) error {
	if err := b.before(ctx, true); err != nil {
		return err
	}
	return b.inner.Delete(ctx, key)
}

// List implements storage.Backend.
func (b *Backend) List(ctx context.Context, prefix string) ([]string, error) {
	if err := b.before(ctx, false); err != nil {
		return nil, err
	}
	return b.inner.List(ctx, prefix)
}

// Batch implements storage.Backend.
func (b *Backend) Batch(ctx context.Context, ops []storage.Op) error {
	if err := b.before(ctx, true); err != nil {
		return err
	}
	return b.inner.Batch(ctx, ops)
}
