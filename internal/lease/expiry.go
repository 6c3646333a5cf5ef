package lease

import (
	"container/heap"
	"context"
	"errors"
	"time"
)

// item is one scheduled expiry or retry.
type item struct {
	id    string
	when  time.Time
	index int
}

type expiryQueue []*item

func (q expiryQueue) Len() int           { return len(q) }
func (q expiryQueue) Less(i, j int) bool { return q[i].when.Before(q[j].when) }
func (q expiryQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i]; q[i].index = i; q[j].index = j }
func (q *expiryQueue) Push(x any)        { it := x.(*item); it.index = len(*q); *q = append(*q, it) }
func (q *expiryQueue) Pop() any {
	old := *q
	n := len(old)
	it := old[n-1]
	*q = old[:n-1]
	it.index = -1
	return it
}
func (q expiryQueue) peek() *item { return q[0] }

func (m *Manager) schedule(id string, when time.Time) {
	m.mu.Lock()
	if it, ok := m.pending[id]; ok {
		it.when = when
		heap.Fix(&m.queue, it.index)
	} else {
		it := &item{id: id, when: when}
		heap.Push(&m.queue, it)
		m.pending[id] = it
	}
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Manager) unschedule(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if it, ok := m.pending[id]; ok {
		heap.Remove(&m.queue, it.index)
		delete(m.pending, id)
	}
}

// Start loads every lease and starts expiring them on time. Leases that
// expired while the server was down are revoked at once.
func (m *Manager) Start(ctx context.Context) error {
	loaded := 0
	err := m.walk(ctx, "", func(id string) error {
		e, err := m.Lookup(ctx, id)
		if err != nil {
			m.log.Error("unreadable lease left in place", "lease_id", id, "err", err)
			return nil
		}
		loaded++
		switch {
		case e.Irrevocable:
		case !e.NextAttempt.IsZero():
			m.schedule(e.ID, e.NextAttempt)
		default:
			m.schedule(e.ID, e.ExpireTime)
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.stop, m.done = make(chan struct{}), make(chan struct{})
	go m.run()
	if loaded > 0 {
		m.log.Info("leases restored", "count", loaded)
	}
	return nil
}

// Stop ends the expiry loop and forgets the schedule (on seal).
func (m *Manager) Stop() {
	if m.stop == nil {
		return
	}
	close(m.stop)
	<-m.done
	m.workers.Wait() // revocations in progress finish before the seal
	m.stop = nil
	m.mu.Lock()
	m.queue, m.pending = nil, map[string]*item{}
	m.mu.Unlock()
}

func (m *Manager) run() {
	defer close(m.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		m.mu.Lock()
		wait := time.Hour
		if len(m.queue) > 0 {
			wait = m.queue.peek().when.Sub(m.now())
		}
		m.mu.Unlock()
		if wait <= 0 {
			m.expireDue()
			continue
		}
		timer.Reset(wait)
		select {
		case <-m.stop:
			return
		case <-m.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// expireDue hands every item whose time has come to a worker (at most
// RevokeWorkers at once; it waits for a free one).
func (m *Manager) expireDue() {
	now := m.now()
	for {
		m.mu.Lock()
		if len(m.queue) == 0 || m.queue.peek().when.After(now) {
			m.mu.Unlock()
			return
		}
		it := heap.Pop(&m.queue).(*item)
		delete(m.pending, it.id)
		busy := m.inflight[it.id]
		if !busy {
			m.inflight[it.id] = true
		}
		m.mu.Unlock()
		if busy {
			// Renewed or retried while its expiry is still running: look
			// again once that one is done.
			m.schedule(it.id, now.Add(time.Second))
			continue
		}
		select {
		case m.sem <- struct{}{}:
		case <-m.stop:
			m.mu.Lock()
			delete(m.inflight, it.id)
			m.mu.Unlock()
			return
		}
		m.workers.Add(1)
		go func(id string) {
			defer func() {
				m.mu.Lock()
				delete(m.inflight, id)
				m.mu.Unlock()
				<-m.sem
				m.workers.Done()
			}()
			m.expire(id)
		}(it.id)
		select {
		case <-m.stop:
			return
		default:
		}
	}
}

func (m *Manager) expire(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := m.Lookup(ctx, id)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			m.log.Error("load expiring lease", "lease_id", id, "err", err)
		}
		return
	}
	if e.Irrevocable {
		return
	}
	// A renewal may have moved the expiry since this item was queued.
	if e.NextAttempt.IsZero() && e.ExpireTime.After(m.now()) {
		m.schedule(e.ID, e.ExpireTime)
		return
	}
	if err := m.revokeEntry(ctx, e); err != nil {
		m.recordFailure(ctx, e, err)
		return
	}
	if err := m.delete(ctx, e); err != nil {
		m.log.Error("delete revoked lease", "lease_id", id, "err", err)
		return
	}
	m.log.Debug("lease expired and revoked", "lease_id", id)
}
