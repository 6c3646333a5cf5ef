package token

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coffer-dev/coffer/internal/storage/inmem"
)

func newStore(t testing.TB) *Store {
	t.Helper()
	st := NewStore(inmem.New())
	if err := st.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestGenerateFormat(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		tok, err := Generate(Prefix)
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) != len(Prefix)+32 || !strings.HasPrefix(tok, Prefix) || !ValidFormat(tok) {
			t.Fatalf("Generate() = %q", tok)
		}
		for _, c := range tok[len(Prefix):] {
			if !strings.ContainsRune(alphabet, c) {
				t.Fatalf("Generate() = %q has %q outside base62", tok, c)
			}
		}
		if seen[tok] {
			t.Fatalf("Generate() repeated %q", tok)
		}
		seen[tok] = true
	}
}

func TestNeverStoredInTheClear(t *testing.T) {
	ctx := context.Background()
	mem := inmem.New()
	st := NewStore(mem)
	if err := st.Init(ctx); err != nil {
		t.Fatal(err)
	}
	e, err := st.Create(ctx, &Entry{Policies: []string{"default"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := mem.List(ctx, "token/id/")
	for _, k := range keys {
		if strings.Contains(k, e.ID) {
			t.Fatalf("token stored under its own value: %s", k)
		}
		v, _ := mem.Get(ctx, "token/id/"+k)
		if strings.Contains(string(v.Value), e.ID) || strings.Contains(string(v.Value), e.ID[len(Prefix):]) {
			t.Fatalf("token value stored in its entry")
		}
	}
}

func TestExpiryRenewAndUses(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st.now = func() time.Time { return now }
	e, err := st.Create(ctx, &Entry{Policies: []string{"default"}, TTL: time.Hour, ExplicitMaxTTL: 90 * time.Minute, Renewable: true})
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(50 * time.Minute)
	res, err := st.Renew(ctx, e, time.Hour, MaxTTL)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Capped || !res.Entry.ExpireTime.Equal(e.CreationTime.Add(90*time.Minute)) {
		t.Fatalf("Renew past explicit max = %+v, want capped at creation+90m", res)
	}
	now = now.Add(41 * time.Minute)
	if _, err := st.Lookup(ctx, e.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Lookup after expiry = %v, want ErrNotFound", err)
	}

	nr, err := st.Create(ctx, &Entry{Policies: []string{"default"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Renew(ctx, nr, 0, MaxTTL); !errors.Is(err, ErrNotRenewable) {
		t.Fatalf("Renew of a non-renewable token = %v", err)
	}

	u, err := st.Create(ctx, &Entry{Policies: []string{"default"}, NumUses: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i, wantLast := range []bool{false, true} {
		last, err := st.Use(ctx, u)
		if err != nil || last != wantLast {
			t.Fatalf("Use %d = %v, %v; want last=%v", i+1, last, err, wantLast)
		}
	}
	if _, err := st.Lookup(ctx, u.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Lookup of a spent token = %v, want ErrNotFound", err)
	}
}

func TestRevokeTreeAndOrphan(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	root, _ := st.Create(ctx, &Entry{Policies: []string{"root"}})
	mk := func(parent *Entry) *Entry {
		e, err := st.Create(ctx, &Entry{Policies: []string{"default"}, Parent: parent.Hash})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	a := mk(root)
	a1, a2 := mk(a), mk(a)
	a11 := mk(a1)
	if err := st.RevokeOrphan(ctx, a1.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Lookup(ctx, a11.ID); err != nil || !got.Orphan || got.Parent != "" {
		t.Fatalf("child of an orphan-revoked token = %+v, %v; want a live orphan", got, err)
	}
	if err := st.Revoke(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*Entry{a, a1, a2} {
		if _, err := st.Lookup(ctx, e.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("token survived its tree's revocation: %v", err)
		}
	}
	if _, err := st.Lookup(ctx, a11.ID); err != nil {
		t.Fatalf("orphan revoked with its former parent's tree: %v", err)
	}
	if _, err := st.Lookup(ctx, root.ID); err != nil {
		t.Fatalf("root revoked: %v", err)
	}
}

func TestResumeRevocation(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	p, _ := st.Create(ctx, &Entry{Policies: []string{"default"}})
	var kids []*Entry
	for i := 0; i < 20; i++ {
		k, _ := st.Create(ctx, &Entry{Policies: []string{"default"}, Parent: p.Hash})
		kids = append(kids, k)
	}
	// Simulate a crash right after the revocation was recorded.
	raw, _ := st.loadRaw(ctx, p.Hash)
	if err := st.markRevoked(ctx, raw, false); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Lookup(ctx, p.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("marked token still usable: %v", err)
	}
	n, err := st.ResumeRevocations(ctx)
	if err != nil || n != 1 {
		t.Fatalf("ResumeRevocations() = %d, %v; want 1", n, err)
	}
	for _, k := range kids {
		if _, err := st.Lookup(ctx, k.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("child survived a resumed revocation")
		}
	}
	if n, _ := st.ResumeRevocations(ctx); n != 0 {
		t.Fatalf("second ResumeRevocations() = %d, want 0", n)
	}
}

func TestTidy(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	now := time.Now()
	st.now = func() time.Time { return now }
	if _, err := st.Create(ctx, &Entry{Policies: []string{"default"}, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	live, _ := st.Create(ctx, &Entry{Policies: []string{"default"}, TTL: time.Hour})
	now = now.Add(2 * time.Minute)
	n, err := st.Tidy(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Tidy() = %d, %v; want 1", n, err)
	}
	if c, _ := st.Count(ctx); c != 1 {
		t.Fatalf("Count() after tidy = %d, want 1", c)
	}
	if _, err := st.Lookup(ctx, live.ID); err != nil {
		t.Fatalf("live token tidied: %v", err)
	}
}

// FuzzLookup feeds arbitrary strings as tokens and accessors: never a
// panic, never a match.
func FuzzLookup(f *testing.F) {
	st := newStore(f)
	ctx := context.Background()
	if _, err := st.Create(ctx, &Entry{Policies: []string{"default"}}); err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"", "cfr.", "cfr.AAAA", "hvs.x", strings.Repeat("a", 300), "cfr.\x00\x01", "../../etc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := st.Lookup(ctx, s); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Lookup(%q) = %v, want ErrNotFound", s, err)
		}
		if _, err := st.LookupAccessor(ctx, s); !errors.Is(err, ErrNotFound) {
			t.Fatalf("LookupAccessor(%q) = %v, want ErrNotFound", s, err)
		}
	})
}
