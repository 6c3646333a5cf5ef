package core

import (
	"context"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
)

// RotationInterval is how often mounted backends get to run their
// scheduled rotations.
const RotationInterval = 10 * time.Second

// startPeriodic runs the backends' scheduled rotations until stopPeriodic.
func (c *Core) startPeriodic() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	c.periodicStop, c.periodicDone = cancel, done
	go func() {
		defer close(done)
		t := time.NewTicker(RotationInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				c.runRotations(ctx, now)
			}
		}
	}()
}

func (c *Core) stopPeriodic() {
	if c.periodicStop == nil {
		return
	}
	c.periodicStop()
	<-c.periodicDone
	c.periodicStop, c.periodicDone = nil, nil
}

// runRotations calls RotateDue on every mounted backend that has one.
func (c *Core) runRotations(ctx context.Context, now time.Time) {
	// TryRLock: a seal holding the write lock waits for this goroutine to
	// stop, so blocking here would deadlock; skip this round instead.
	if !c.stateLock.TryRLock() {
		return
	}
	defer c.stateLock.RUnlock()
	if c.sealed.Load() {
		return
	}
	for _, t := range []*mountTable{c.mounts, c.auths} {
		for _, e := range t.list() {
			r, ok := e.backend.(logical.Rotator)
			if !ok {
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			n, err := r.RotateDue(rctx, now)
			cancel()
			if err != nil {
				c.log.Error("scheduled rotation failed; will retry", "mount", e.Path, "err", err)
			} else if n > 0 {
				c.log.Info("scheduled rotations done", "mount", e.Path, "count", n)
			}
		}
	}
}
