package lease

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage/inmem"
)

// recorder is an honest SecretBackend: it records revocations and renewals
// and fails while fail is set.
type recorder struct {
	mu      sync.Mutex
	revoked map[string]int
	renewed map[string]time.Time
	fail    bool
}

func newRecorder() *recorder {
	return &recorder{revoked: map[string]int{}, renewed: map[string]time.Time{}}
}

func (r *recorder) RevokeSecret(ctx context.Context, l *logical.Lease) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("database unreachable")
	}
	r.revoked[l.ID]++
	return nil
}

func (r *recorder) RenewSecret(ctx context.Context, l *logical.Lease, exp time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("database unreachable")
	}
	r.renewed[l.ID] = exp
	return nil
}

func (r *recorder) setFail(f bool) { r.mu.Lock(); r.fail = f; r.mu.Unlock() }
func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.revoked[id]
}

func (r *recorder) SecretBackend(path string) (logical.SecretBackend, error) {
	if strings.HasPrefix(path, "gone/") {
		return nil, ErrNoBackend
	}
	return r, nil
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestExpiryRevokesOnTime(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder()
	m := New(inmem.New(), rec, Options{})
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	s := &logical.Secret{TTL: 200 * time.Millisecond, Renewable: true}
	start := time.Now()
	if err := m.Register(ctx, "database/creds/app", "tok1", s, 0, 0); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.LeaseID, "database/creds/app/") || len(s.LeaseID) != len("database/creds/app/")+24 {
		t.Fatalf("lease id = %q", s.LeaseID)
	}
	waitUntil(t, "expiry", func() bool { return rec.count(s.LeaseID) == 1 })
	if d := time.Since(start); d < 200*time.Millisecond || d > 1200*time.Millisecond {
		t.Fatalf("revoked after %v, want about 200ms (within 1s)", d)
	}
	if _, err := m.Lookup(ctx, s.LeaseID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lease still stored after expiry: %v", err)
	}
}

func TestRenewBoundedByMax(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder()
	m := New(inmem.New(), rec, Options{})
	s := &logical.Secret{TTL: time.Hour, MaxTTL: 2 * time.Hour, Renewable: true}
	if err := m.Register(ctx, "db/creds/r", "t", s, 0, 0); err != nil {
		t.Fatal(err)
	}
	e, capped, err := m.Renew(ctx, s.LeaseID, 5*time.Hour)
	if err != nil || !capped || !e.ExpireTime.Equal(e.MaxExpire) {
		t.Fatalf("Renew(5h) = %+v, %v, %v; want capped at max", e, capped, err)
	}
	if !rec.renewed[s.LeaseID].Equal(e.MaxExpire) {
		t.Fatalf("backend renewed to %v, want %v", rec.renewed[s.LeaseID], e.MaxExpire)
	}
	nr := &logical.Secret{TTL: time.Hour}
	if err := m.Register(ctx, "db/creds/r", "t", nr, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Renew(ctx, nr.LeaseID, 0); !errors.Is(err, ErrNotRenewable) {
		t.Fatalf("Renew of a non-renewable lease = %v", err)
	}
	// The mount maximum bounds the TTL at issue.
	short := &logical.Secret{TTL: 10 * time.Hour}
	if err := m.Register(ctx, "db/creds/r", "t", short, 0, time.Hour); err != nil {
		t.Fatal(err)
	}
	if short.TTL != time.Hour {
		t.Fatalf("TTL under a 1h mount max = %v", short.TTL)
	}
}

func TestFailedRevocationRetriesThenIrrevocable(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder()
	rec.setFail(true)
	var irrevocable []string
	var mu sync.Mutex
	m := New(inmem.New(), rec, Options{MaxAttempts: 3, BaseBackoff: 20 * time.Millisecond,
		OnIrrevocable: func(id string) { mu.Lock(); irrevocable = append(irrevocable, id); mu.Unlock() }})
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	s := &logical.Secret{TTL: 10 * time.Millisecond}
	if err := m.Register(ctx, "db/creds/r", "t", s, 0, 0); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "irrevocable", func() bool { mu.Lock(); defer mu.Unlock(); return len(irrevocable) == 1 })
	e, err := m.Lookup(ctx, s.LeaseID)
	if err != nil || !e.Irrevocable || e.Attempts != 3 || !strings.Contains(e.LastError, "unreachable") {
		t.Fatalf("lease after failures = %+v, %v", e, err)
	}
	list, err := m.Irrevocable(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("Irrevocable() = %v, %v", list, err)
	}
	total, irr, _ := m.Count(ctx)
	if total != 1 || irr != 1 {
		t.Fatalf("Count() = %d, %d", total, irr)
	}
	// A manual revoke once the backend recovers clears it.
	rec.setFail(false)
	if err := m.Revoke(ctx, s.LeaseID, false); err != nil {
		t.Fatalf("Revoke after recovery: %v", err)
	}
	if rec.count(s.LeaseID) != 1 {
		t.Fatalf("secret not revoked")
	}
}

func TestRetrySucceedsWhenBackendReturns(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder()
	rec.setFail(true)
	m := New(inmem.New(), rec, Options{MaxAttempts: 50, BaseBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	s := &logical.Secret{TTL: 5 * time.Millisecond}
	if err := m.Register(ctx, "db/creds/r", "t", s, 0, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(80 * time.Millisecond)
	rec.setFail(false)
	waitUntil(t, "revocation after recovery", func() bool { return rec.count(s.LeaseID) == 1 })
}

func TestRestartRevokesExpired(t *testing.T) {
	ctx := context.Background()
	mem := inmem.New()
	rec := newRecorder()
	m := New(mem, rec, Options{})
	s := &logical.Secret{TTL: 50 * time.Millisecond}
	if err := m.Register(ctx, "db/creds/r", "t", s, 0, 0); err != nil {
		t.Fatal(err)
	}
	// The server was "down" (manager never started) past the expiry.
	time.Sleep(100 * time.Millisecond)
	m2 := New(mem, rec, Options{})
	if err := m2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m2.Stop()
	waitUntil(t, "revocation at restart", func() bool { return rec.count(s.LeaseID) == 1 })
}

func TestRevokeByTokenAndPrefix(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder()
	m := New(inmem.New(), rec, Options{})
	var a, b, c logical.Secret
	for _, x := range []struct {
		s    *logical.Secret
		path string
		tok  string
	}{{&a, "db/creds/r1", "tokA"}, {&b, "db/creds/r1", "tokB"}, {&c, "db/creds/r2", "tokA"}} {
		x.s.TTL = time.Hour
		if err := m.Register(ctx, x.path, x.tok, x.s, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.RevokeByToken(ctx, "tokA"); err != nil {
		t.Fatal(err)
	}
	if rec.count(a.LeaseID) != 1 || rec.count(c.LeaseID) != 1 || rec.count(b.LeaseID) != 0 {
		t.Fatalf("RevokeByToken revoked %v", rec.revoked)
	}
	n, err := m.RevokePrefix(ctx, "db/creds/r1", false)
	if err != nil || n != 1 || rec.count(b.LeaseID) != 1 {
		t.Fatalf("RevokePrefix = %d, %v", n, err)
	}
	// A lease whose engine is gone: plain revoke fails, force deletes.
	var g logical.Secret
	g.TTL = time.Hour
	if err := m.Register(ctx, "gone/creds/x", "t", &g, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := m.Revoke(ctx, g.LeaseID, false); !errors.Is(err, ErrNoBackend) {
		t.Fatalf("Revoke with no backend = %v", err)
	}
	if err := m.Revoke(ctx, g.LeaseID, true); err != nil {
		t.Fatalf("force Revoke = %v", err)
	}
	if _, err := m.Lookup(ctx, g.LeaseID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("force-revoked lease still there")
	}
	for _, bad := range []string{"", "/abs", "a//b", "a/../b", "a b"} {
		if _, err := m.Lookup(ctx, bad); !errors.Is(err, ErrBadLeaseID) {
			t.Errorf("Lookup(%q) = %v, want ErrBadLeaseID", bad, err)
		}
	}
}

// slowBackend takes 20 ms per revocation and records how many ran at
// once.
type slowBackend struct {
	recorder
	running, peak int
}

func (b *slowBackend) RevokeSecret(ctx context.Context, l *logical.Lease) error {
	b.mu.Lock()
	b.running++
	b.peak = max(b.peak, b.running)
	b.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	b.mu.Lock()
	b.running--
	b.revoked[l.ID]++
	b.mu.Unlock()
	return nil
}

func (b *slowBackend) SecretBackend(string) (logical.SecretBackend, error) { return b, nil }

// Leases expiring together are revoked in parallel, never more than
// RevokeWorkers at once, each exactly once; Stop waits for the
// revocations in progress.
func TestMassExpiryInParallel(t *testing.T) {
	ctx := context.Background()
	b := &slowBackend{recorder: recorder{revoked: map[string]int{}, renewed: map[string]time.Time{}}}
	m := New(inmem.New(), b, Options{RevokeWorkers: 4})
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 40 {
		s := &logical.Secret{TTL: 100 * time.Millisecond}
		if err := m.Register(ctx, "database/creds/app", "tok", s, 0, 0); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.LeaseID)
	}
	waitUntil(t, "all revoked", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.revoked) == len(ids)
	})
	b.mu.Lock()
	peak := b.peak
	for id, n := range b.revoked {
		if n != 1 {
			t.Errorf("lease %s revoked %d times", id, n)
		}
	}
	b.mu.Unlock()
	if peak < 2 || peak > 4 {
		t.Errorf("%d revocations ran at once, want 2 to 4 (RevokeWorkers 4)", peak)
	}
	waitUntil(t, "leases deleted", func() bool {
		n, _, _ := m.Count(ctx)
		return n == 0
	})

	// Stop while revocations run: it returns only once they are done.
	for range 8 {
		if err := m.Register(ctx, "database/creds/app", "tok", &logical.Secret{TTL: 10 * time.Millisecond}, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "revocations running", func() bool { b.mu.Lock(); defer b.mu.Unlock(); return b.running > 0 })
	m.Stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running != 0 {
		t.Errorf("%d revocations still running after Stop", b.running)
	}
}
