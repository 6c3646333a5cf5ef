package database

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// idleTimeout closes connections left idle this long, so that a pool
	// nobody uses any more (its engine unmounted or sealed without a
	// cleanup call) does not hold connections for ever.
	idleTimeout = time.Minute
	// pingAfterIdle: a connection idle longer than this is pinged before
	// it is reused, so that a restarted server costs no failed request.
	pingAfterIdle = time.Second
	// closeTimeout bounds the goodbye sent to the server when closing.
	closeTimeout = 5 * time.Second
)

// pool is a bounded pool of pgx connections for one database config:
// at most maxOpen connections at a time, at most maxIdle kept idle (none
// when negative), none older than maxLifetime (when non-zero), none idle
// longer than idleTimeout.
type pool struct {
	dial        func(ctx context.Context) (*pgx.Conn, error)
	maxIdle     int
	maxLifetime time.Duration

	slots chan struct{} // one token per open connection

	mu     sync.Mutex
	idle   []*pooledConn // most recently used last
	closed bool
	reaper *time.Timer
}

type pooledConn struct {
	conn     *pgx.Conn
	created  time.Time
	lastUsed time.Time
}

func newPool(maxOpen, maxIdle int, maxLifetime time.Duration, dial func(ctx context.Context) (*pgx.Conn, error)) *pool {
	if maxOpen <= 0 {
		maxOpen = defaultMaxOpen
	}
	switch {
	case maxIdle == 0 || maxIdle > maxOpen:
		maxIdle = maxOpen
	case maxIdle < 0:
		maxIdle = 0
	}
	return &pool{dial: dial, maxIdle: maxIdle, maxLifetime: maxLifetime, slots: make(chan struct{}, maxOpen)}
}

func (p *pool) expired(pc *pooledConn, now time.Time) bool {
	return pc.conn.IsClosed() || (p.maxLifetime > 0 && now.Sub(pc.created) >= p.maxLifetime)
}

// acquire returns a connection, waiting for a free slot.
func (p *pool) acquire(ctx context.Context) (*pooledConn, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			<-p.slots
			return nil, errClosed
		}
		var pc *pooledConn
		if n := len(p.idle); n > 0 {
			pc = p.idle[n-1]
			p.idle = p.idle[:n-1]
		}
		p.mu.Unlock()
		if pc == nil {
			break
		}
		now := time.Now()
		if p.expired(pc, now) {
			closeConn(pc.conn)
			continue
		}
		if now.Sub(pc.lastUsed) > pingAfterIdle {
			if err := pc.conn.Ping(ctx); err != nil {
				closeConn(pc.conn)
				if ctx.Err() != nil {
					<-p.slots
					return nil, ctx.Err()
				}
				continue
			}
		}
		return pc, nil
	}
	c, err := p.dial(ctx)
	if err != nil {
		<-p.slots
		return nil, err
	}
	now := time.Now()
	return &pooledConn{conn: c, created: now, lastUsed: now}, nil
}

// release gives a connection back; reusable is false after an error
// that may have left it in an unknown state.
func (p *pool) release(pc *pooledConn, reusable bool) {
	defer func() { <-p.slots }()
	now := time.Now()
	pc.lastUsed = now
	p.mu.Lock()
	keep := reusable && !p.closed && len(p.idle) < p.maxIdle && !p.expired(pc, now)
	if keep {
		p.idle = append(p.idle, pc)
		if p.reaper == nil {
			p.reaper = time.AfterFunc(idleTimeout, p.reap)
		}
	}
	p.mu.Unlock()
	if !keep {
		closeConn(pc.conn)
	}
}

// reap closes the connections idle for idleTimeout or more, and re-arms
// itself while any stay idle.
func (p *pool) reap() {
	now := time.Now()
	p.mu.Lock()
	var old []*pooledConn
	keep := p.idle[:0]
	for _, pc := range p.idle {
		if now.Sub(pc.lastUsed) >= idleTimeout || p.expired(pc, now) {
			old = append(old, pc)
		} else {
			keep = append(keep, pc)
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	p.reaper = nil
	if len(p.idle) > 0 && !p.closed {
		next := idleTimeout - now.Sub(p.idle[0].lastUsed)
		p.reaper = time.AfterFunc(max(next, time.Second), p.reap)
	}
	p.mu.Unlock()
	for _, pc := range old {
		closeConn(pc.conn)
	}
}

// close closes the idle connections and makes the pool refuse new work;
// connections in use are closed when released.
func (p *pool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.closed = true
	if p.reaper != nil {
		p.reaper.Stop()
		p.reaper = nil
	}
	p.mu.Unlock()
	for _, pc := range idle {
		closeConn(pc.conn)
	}
}

// stats returns the number of open connections and of idle ones.
func (p *pool) stats() (open, idle int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.slots) + len(p.idle), len(p.idle)
}

func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_ = c.Close(ctx)
}

// run runs fn on a connection of the pool. A connection that saw an
// error from anything but the server itself (a network failure, a
// cancelled context) is not reused.
func (p *pool) run(ctx context.Context, fn func(c *pgx.Conn) error) error {
	pc, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	err = fn(pc.conn)
	p.release(pc, err == nil || isServerError(err))
	return err
}

// tx runs fn in a transaction on a connection of the pool: committed if
// fn succeeds, rolled back otherwise.
func (p *pool) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return p.run(ctx, func(c *pgx.Conn) error {
		tx, err := c.Begin(ctx)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			rctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
			defer cancel()
			_ = tx.Rollback(rctx)
			return err
		}
		return tx.Commit(ctx)
	})
}
