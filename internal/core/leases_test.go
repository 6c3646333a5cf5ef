package core

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage/inmem"
	"github.com/coffer-dev/coffer/internal/token"
)

// issuer is a small honest engine that issues leased secrets and records
// their revocation, to test the pipeline's lease handling.
type issuer struct {
	mu      sync.Mutex
	live    map[string]bool
	n       int
	revoked int
}

func (e *issuer) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	name := "user" + string(rune('a'+e.n))
	e.live[name] = true
	return &logical.Response{
		Data:   map[string]any{"username": name},
		Secret: &logical.Secret{TTL: time.Hour, MaxTTL: 2 * time.Hour, Renewable: true, InternalData: map[string]any{"username": name}},
	}, nil
}

func (e *issuer) RevokeSecret(ctx context.Context, l *logical.Lease) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.live, l.InternalData["username"].(string))
	e.revoked++
	return nil
}

func (e *issuer) RenewSecret(ctx context.Context, l *logical.Lease, exp time.Time) error { return nil }

func TestLeasesThroughThePipeline(t *testing.T) {
	ctx := context.Background()
	eng := &issuer{live: map[string]bool{}}
	c, err := New(Config{Storage: inmem.New(), Engines: map[string]logical.Factory{
		"issuer": func(context.Context, *logical.BackendConfig) (logical.Backend, error) { return eng, nil },
	}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Init(ctx, InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SubmitUnsealShare(ctx, res.Keys[0]); err != nil {
		t.Fatal(err)
	}
	if err := c.Mount(ctx, false, &MountEntry{Path: "db/", Type: "issuer"}); err != nil {
		t.Fatal(err)
	}
	if err := c.policies.put(ctx, "app", `path "db/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	te, err := c.tokens.Create(ctx, &token.Entry{Policies: []string{"app", "default"}, TTL: time.Hour, Renewable: true})
	if err != nil {
		t.Fatal(err)
	}
	do := func(tok string, op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
		if data == nil {
			data = map[string]any{}
		}
		return c.HandleRequest(ctx, &logical.Request{Operation: op, Path: path, ClientToken: tok, Data: data})
	}
	r1, err := do(te.ID, logical.ReadOperation, "db/creds/app", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r1.Secret.LeaseID, "db/creds/app/") || r1.Secret.TTL != time.Hour {
		t.Fatalf("secret = %+v", r1.Secret)
	}
	// The default policy lets the holder renew and look up its lease.
	rr, err := do(te.ID, logical.UpdateOperation, "sys/leases/renew", map[string]any{"lease_id": r1.Secret.LeaseID, "increment": "3h"})
	if err != nil {
		t.Fatalf("renew: %v", err)
	}
	if rr.Secret.TTL > 2*time.Hour+time.Second || len(rr.Warnings) == 0 {
		t.Fatalf("renew beyond max = %+v, want capped with a warning", rr)
	}
	lk, err := do(te.ID, logical.UpdateOperation, "sys/leases/lookup", map[string]any{"lease_id": r1.Secret.LeaseID})
	if err != nil || lk.Data["id"] != r1.Secret.LeaseID {
		t.Fatalf("lookup = %v, %v", lk, err)
	}
	// Listing by prefix needs sudo: the app token is refused, root is not.
	if _, err := do(te.ID, logical.ListOperation, "sys/leases/lookup/db/creds/app/", nil); !errors.Is(err, logical.ErrPermissionDenied) {
		t.Fatalf("list by a non-sudo token = %v", err)
	}
	if l, err := do(res.RootToken, logical.ListOperation, "sys/leases/lookup/db/creds/app/", nil); err != nil || len(l.Data["keys"].([]string)) != 1 {
		t.Fatalf("list = %v, %v", l, err)
	}
	if _, err := do(te.ID, logical.ReadOperation, "db/creds/app", nil); err != nil {
		t.Fatal(err)
	}
	// Revoking the token revokes both of its leases.
	if err := c.tokens.Revoke(ctx, te.ID); err != nil {
		t.Fatal(err)
	}
	eng.mu.Lock()
	live, revoked := len(eng.live), eng.revoked
	eng.mu.Unlock()
	if live != 0 || revoked != 2 {
		t.Fatalf("after token revocation: %d secrets live, %d revoked; want 0 and 2", live, revoked)
	}
	cnt, err := do(res.RootToken, logical.ReadOperation, "sys/leases/count", nil)
	if err != nil || cnt.Data["lease_count"] != 0 {
		t.Fatalf("count = %v, %v", cnt, err)
	}
}

// cleanIssuer is an issuer that can fail revocations and records Cleanup.
type cleanIssuer struct {
	issuer
	failRevoke bool
	cleanups   int
}

func (e *cleanIssuer) RevokeSecret(ctx context.Context, l *logical.Lease) error {
	e.mu.Lock()
	fail := e.failRevoke
	e.mu.Unlock()
	if fail {
		return errors.New("database unreachable")
	}
	return e.issuer.RevokeSecret(ctx, l)
}

func (e *cleanIssuer) Cleanup(context.Context) {
	e.mu.Lock()
	e.cleanups++
	e.mu.Unlock()
}

// TestUnmountRevokesLeases: unmounting an engine revokes the secrets it
// issued first; if they cannot be revoked the mount stays, so nothing is
// orphaned. The engine's Cleanup runs on unmount and on seal.
func TestUnmountRevokesLeases(t *testing.T) {
	ctx := context.Background()
	eng := &cleanIssuer{issuer: issuer{live: map[string]bool{}}}
	c, err := New(Config{Storage: inmem.New(), Engines: map[string]logical.Factory{
		"issuer": func(context.Context, *logical.BackendConfig) (logical.Backend, error) { return eng, nil },
	}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Init(ctx, InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SubmitUnsealShare(ctx, res.Keys[0]); err != nil {
		t.Fatal(err)
	}
	if err := c.Mount(ctx, false, &MountEntry{Path: "db/", Type: "issuer"}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "db/creds/app", ClientToken: res.RootToken, Data: map[string]any{}}); err != nil {
			t.Fatal(err)
		}
	}
	eng.mu.Lock()
	eng.failRevoke = true
	eng.mu.Unlock()
	var bad *logical.InvalidRequestError
	if err := c.Unmount(ctx, false, "db/"); !errors.As(err, &bad) || !strings.Contains(err.Error(), "could not all be revoked") {
		t.Fatalf("unmount with unrevocable leases = %v, want a 400", err)
	}
	if _, err := c.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "db/creds/app", ClientToken: res.RootToken, Data: map[string]any{}}); err != nil {
		t.Fatalf("mount gone after a refused unmount: %v", err)
	}
	eng.mu.Lock()
	eng.failRevoke = false
	eng.mu.Unlock()
	if err := c.Unmount(ctx, false, "db/"); err != nil {
		t.Fatalf("unmount: %v", err)
	}
	eng.mu.Lock()
	live, cleanups := len(eng.live), eng.cleanups
	eng.mu.Unlock()
	if live != 0 || cleanups != 1 {
		t.Fatalf("after unmount: %d secrets live, %d cleanups; want 0 and 1", live, cleanups)
	}

	if err := c.Mount(ctx, false, &MountEntry{Path: "db2/", Type: "issuer"}); err != nil {
		t.Fatal(err)
	}
	c.Seal()
	eng.mu.Lock()
	cleanups = eng.cleanups
	eng.mu.Unlock()
	if cleanups != 2 {
		t.Fatalf("cleanups after seal = %d, want 2", cleanups)
	}
}
