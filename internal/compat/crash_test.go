package compat

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	mrand "math/rand/v2"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	bbolt "go.etcd.io/bbolt"

	"github.com/coffer-dev/coffer/internal/coffertest"
)

// TestCrashSafety starts coffer as a child process, writes under
// concurrency, SIGKILLs it at a random moment, restarts it and checks that
// every acknowledged write survived; at the end the bbolt file must pass
// bbolt's consistency check.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test is long; run without -short")
	}
	const (
		cycles  = 12
		writers = 16
	)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "data", "coffer.db")
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	env := []string{"COFFER_SEAL_TYPE=static", "COFFER_SEAL_KEY=" + base64.StdEncoding.EncodeToString(key)}
	args := []string{"server", "-tls-disable", "-address=127.0.0.1:0", "-storage-path=" + dbPath, "-log-level=error"}

	p := coffertest.StartProcess(t, env, args...)
	c := newClient(t, p.Addr, "")
	res, err := c.Sys().Init(&vault.InitRequest{RecoveryShares: 1, RecoveryThreshold: 1})
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	c.SetToken(res.RootToken)
	if err := c.Sys().Mount("kv", &vault.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
		t.Fatalf("Mount kv: %v", err)
	}

	acked := map[string]string{} // path -> value, for every acknowledged write
	var mu sync.Mutex
	total := 0
	for cycle := 0; cycle < cycles; cycle++ {
		if cycle > 0 {
			p = coffertest.StartProcess(t, env, args...)
			c = newClient(t, p.Addr, res.RootToken)
			verify(t, c, acked, cycle)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				wc := newClient(t, p.Addr, res.RootToken)
				wc.SetClientTimeout(5 * time.Second)
				for i := 0; ctx.Err() == nil; i++ {
					path := fmt.Sprintf("kv/c%d/w%d/k%d", cycle, w, i)
					val := fmt.Sprintf("v-%d-%d-%d-%x", cycle, w, i, mrand.Uint64())
					_, err := wc.Logical().WriteWithContext(ctx, path, map[string]any{"value": val})
					if err != nil {
						return // the server died under us, or the context ended
					}
					mu.Lock()
					acked[path] = val
					total++
					mu.Unlock()
				}
			}(w)
		}
		time.Sleep(time.Duration(50+mrand.IntN(400)) * time.Millisecond)
		p.Signal(t, syscall.SIGKILL)
		cancel()
		wg.Wait()
	}
	p = coffertest.StartProcess(t, env, args...)
	c = newClient(t, p.Addr, res.RootToken)
	verify(t, c, acked, cycles)
	// Graceful stop, then bbolt's own consistency check on the file.
	p.Signal(t, syscall.SIGTERM)
	db, err := bbolt.Open(dbPath, 0o600, &bbolt.Options{Timeout: 5 * time.Second, ReadOnly: true})
	if err != nil {
		t.Fatalf("open bbolt file after crashes: %v", err)
	}
	defer db.Close()
	if err := db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Fatalf("bbolt consistency check: %v", err)
	}
	t.Logf("crash safety: %d SIGKILL cycles, %d acknowledged writes, 0 lost, bbolt check clean", cycles, total)
	if total < cycles {
		t.Fatalf("only %d writes were acknowledged in %d cycles; the test did not exercise the server", total, cycles)
	}
}

func verify(t *testing.T, c *vault.Client, acked map[string]string, cycle int) {
	t.Helper()
	lost := 0
	for path, want := range acked {
		s, err := c.Logical().Read(path)
		if err != nil {
			t.Fatalf("cycle %d: read %s: %v", cycle, path, err)
		}
		if s == nil || s.Data["value"] != want {
			lost++
			if lost < 5 {
				t.Errorf("cycle %d: acknowledged write %s lost (got %v)", cycle, path, s)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("cycle %d: %d of %d acknowledged writes lost", cycle, lost, len(acked))
	}
}
