package core

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage/fault"
	"github.com/coffer-dev/coffer/internal/storage/inmem"
)

// TestStorageFailures checks that failing storage gives the generic internal
// error (a 500 at the HTTP layer), with the detail only in the server log,
// and never a panic or a half-applied init.
func TestStorageFailures(t *testing.T) {
	ctx := context.Background()
	var logBuf bytes.Buffer
	fs := fault.New(inmem.New(), fault.Options{FailPercent: 100})
	c, err := New(Config{Storage: fs, Logger: slog.New(slog.NewTextHandler(&logBuf, nil)),
		Engines: map[string]logical.Factory{"noop": func(context.Context, *logical.BackendConfig) (logical.Backend, error) { return noop{}, nil }}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Init(ctx, InitRequest{SecretShares: 1, SecretThreshold: 1})
	if !errors.Is(err, logical.ErrInternal) {
		t.Fatalf("Init on failing storage = %v, want ErrInternal", err)
	}
	if strings.Contains(err.Error(), "injected") {
		t.Fatalf("storage detail leaked into the client error: %v", err)
	}
	if !strings.Contains(logBuf.String(), "injected") {
		t.Fatalf("storage detail missing from the log: %s", logBuf.String())
	}
	fs.SetFailPercent(0)
	res, err := c.Init(ctx, InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatalf("Init after storage recovered: %v", err)
	}
	if err := c.SubmitUnsealShare(ctx, res.Keys[0]); err != nil {
		t.Fatal(err)
	}
	if err := c.Mount(ctx, false, &MountEntry{Path: "kv/", Type: "noop"}); err != nil {
		t.Fatal(err)
	}
	fs.SetFailPercent(100)
	for _, path := range []string{"kv/x", "sys/mounts", "auth/token/lookup-self"} {
		_, err := c.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: path, ClientToken: res.RootToken, Data: map[string]any{}})
		if !errors.Is(err, logical.ErrInternal) && !errors.Is(err, logical.ErrPermissionDenied) {
			t.Errorf("%s on failing storage = %v, want an internal error", path, err)
		}
	}
	fs.SetFailPercent(0)
	if _, err := c.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "kv/x", ClientToken: res.RootToken, Data: map[string]any{}}); err != nil {
		t.Fatalf("request after storage recovered: %v", err)
	}
}

// TestInitInterrupted fails init after the keyring is written and checks
// that the next init succeeds instead of being stuck.
func TestInitInterrupted(t *testing.T) {
	ctx := context.Background()
	mem := inmem.New()
	fs := fault.New(mem, fault.Options{})
	c, err := New(Config{Storage: fs})
	if err != nil {
		t.Fatal(err)
	}
	// Let the barrier's batch through, then fail every later write.
	if err := c.barrier.Initialize(ctx, mustKey(t)); err != nil {
		t.Fatal(err)
	}
	if init, _ := c.Initialized(ctx); init {
		t.Fatalf("half-initialized storage reports initialized")
	}
	res, err := c.Init(ctx, InitRequest{SecretShares: 3, SecretThreshold: 2})
	if err != nil {
		t.Fatalf("Init after an interrupted init: %v", err)
	}
	for _, k := range res.Keys[:2] {
		if err := c.SubmitUnsealShare(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if c.Sealed() {
		t.Fatalf("still sealed")
	}
}
