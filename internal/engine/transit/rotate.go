package transit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// RotateDue rotates every key whose auto_rotate_period has elapsed since
// its latest version was created (now >= creation + period), giving the
// new version now as its creation time, and returns how many keys it
// rotated. It implements logical.Rotator.
//
// The contract with the caller (the core, about every
// core.RotationInterval while unsealed):
//   - now is the current time; it is the only clock RotateDue reads, so a
//     second call with the same now rotates nothing more.
//   - A key overdue by several periods is rotated once; the next rotation
//     is one period after that.
//   - It is safe to call concurrently with requests and with itself: each
//     rotation holds the key's lock and re-checks that it is still due.
//   - A failing key does not stop the others: the count includes every
//     rotation made, and the error joins every failure (and ctx's error if
//     ctx ended first). A failed key is tried again on the next call.
//
// The first call lists and reads every key to build the index of due
// times; later calls read only keys that are due.
func (b *Backend) RotateDue(ctx context.Context, now time.Time) (int, error) {
	if err := b.loadSchedule(ctx); err != nil {
		return 0, err
	}
	b.schedMu.Lock()
	var names []string
	for name, at := range b.due {
		if !now.Before(at) {
			names = append(names, name)
		}
	}
	b.schedMu.Unlock()
	sort.Strings(names)

	var errs []error
	rotated := 0
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		ok, err := b.rotateIfDue(ctx, name, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("transit: auto-rotate key %q: %w", name, err))
			continue
		}
		if ok {
			rotated++
			b.log.Info("transit: key rotated on schedule", "key", name)
		}
	}
	return rotated, errors.Join(errs...)
}

// rotateIfDue rotates key name if it is due at now.
func (b *Backend) rotateIfDue(ctx context.Context, name string, now time.Time) (bool, error) {
	l := b.lockFor(name)
	l.Lock()
	defer l.Unlock()
	p, err := b.readPolicy(ctx, name)
	if err != nil {
		return false, err
	}
	if p == nil {
		b.unschedule(name)
		return false, nil
	}
	if next, on := p.nextRotation(); !on || now.Before(next) {
		b.schedule(p)
		p.zero()
		return false, nil
	}
	if err := p.rotate(now); err != nil {
		p.zero()
		return false, err
	}
	return true, b.writePolicy(ctx, p)
}

// loadSchedule fills the index of due times on first use. A key that
// cannot be read is indexed as due at once: rotateIfDue then reads it
// again and reports the error, on this call and every later one until it
// reads.
func (b *Backend) loadSchedule(ctx context.Context) error {
	b.schedMu.Lock()
	loaded := b.loaded
	b.schedMu.Unlock()
	if loaded {
		return nil
	}
	names, err := b.store.List(ctx, policyPrefix)
	if err != nil {
		return fmt.Errorf("transit: list keys: %w", err)
	}
	for _, name := range names {
		if strings.HasSuffix(name, "/") {
			continue
		}
		l := b.lockFor(name)
		l.RLock()
		p, err := b.readPolicy(ctx, name)
		switch {
		case err != nil:
			b.schedMu.Lock()
			b.due[name] = time.Time{}
			b.schedMu.Unlock()
		case p != nil:
			b.schedule(p)
			p.zero()
		}
		l.RUnlock()
	}
	b.schedMu.Lock()
	b.loaded = true
	b.schedMu.Unlock()
	return nil
}

// schedule records when p is next due, or that it never is. The caller
// holds p's lock.
func (b *Backend) schedule(p *policy) {
	next, on := p.nextRotation()
	b.schedMu.Lock()
	defer b.schedMu.Unlock()
	if on {
		b.due[p.name] = next
	} else {
		delete(b.due, p.name)
	}
}

func (b *Backend) unschedule(name string) {
	b.schedMu.Lock()
	defer b.schedMu.Unlock()
	delete(b.due, name)
}
