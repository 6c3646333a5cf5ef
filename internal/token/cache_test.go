package token

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The entry cache never lets a token outlive the write that ends it: a
// revoked, spent or renewed token is seen as such by the next lookup, also
// while other lookups run concurrently, and callers cannot change the
// cached copy.
func TestEntryCacheNeverStale(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)

	// Revocation while 4 goroutines look the token up in a loop: once
	// Revoke has returned, no lookup that starts afterwards succeeds.
	for round := range 20 {
		e, err := st.Create(ctx, &Entry{Policies: []string{"default"}, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		var revoked atomic.Bool
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		stop := make(chan struct{})
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					after := revoked.Load()
					_, err := st.Lookup(ctx, e.ID)
					if after && err == nil {
						errs <- errors.New("lookup succeeded after Revoke returned")
						return
					}
				}
			}()
		}
		time.Sleep(time.Millisecond * time.Duration(round%3))
		if err := st.Revoke(ctx, e.ID); err != nil {
			t.Fatal(err)
		}
		revoked.Store(true)
		time.Sleep(2 * time.Millisecond)
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
	}

	// Use counts: each use is seen by the next lookup.
	u, err := st.Create(ctx, &Entry{Policies: []string{"default"}, NumUses: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		got, err := st.Lookup(ctx, u.ID)
		if err != nil || got.NumUses != 3-i {
			t.Fatalf("lookup before use %d: NumUses %d, %v", i+1, got.NumUses, err)
		}
		if _, err := st.Use(ctx, got); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Lookup(ctx, u.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lookup of a spent token = %v", err)
	}

	// Renewal moves the expiry for the next lookup; a caller changing the
	// entry it got changes nothing else.
	r, err := st.Create(ctx, &Entry{Policies: []string{"default", "app"}, Meta: map[string]string{"k": "v"}, TTL: time.Minute, Renewable: true})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := st.Lookup(ctx, r.ID)
	got.Policies[1] = "root"
	got.Meta["k"] = "changed"
	fresh, err := st.Lookup(ctx, r.ID)
	if err != nil || fresh.Policies[1] != "app" || fresh.Meta["k"] != "v" {
		t.Fatalf("a caller's change to its entry leaked into the next lookup: %v %v, %v", fresh.Policies, fresh.Meta, err)
	}
	if _, err := st.Renew(ctx, fresh, time.Hour, MaxTTL); err != nil {
		t.Fatal(err)
	}
	again, err := st.Lookup(ctx, r.ID)
	if err != nil || time.Until(again.ExpireTime) < 50*time.Minute {
		t.Fatalf("lookup after renew: expires %v, %v", again.ExpireTime, err)
	}

	// Seal (Reset) drops every cached entry.
	st.Reset()
	if st.cache.entries != nil {
		t.Fatal("Reset kept cached token entries")
	}
}
