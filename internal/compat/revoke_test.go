package compat

import (
	"crypto/rand"
	"encoding/base64"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/coffer-dev/coffer/internal/coffertest"
)

// TestRevokeTreeCrash revokes a parent token with 1,000 children, SIGKILLs
// the server in the middle of the revocation, restarts it, and checks that
// no child survives: the revocation resumes at unseal.
func TestRevokeTreeCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("long test; run without -short")
	}
	const children = 1000
	dir := t.TempDir()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	env := []string{"COFFER_SEAL_TYPE=static", "COFFER_SEAL_KEY=" + base64.StdEncoding.EncodeToString(key)}
	args := []string{"server", "-tls-disable", "-address=127.0.0.1:0", "-storage-path=" + filepath.Join(dir, "c.db"), "-log-level=info"}
	p := coffertest.StartProcess(t, env, args...)
	c := newClient(t, p.Addr, "")
	res, err := c.Sys().Init(&vault.InitRequest{RecoveryShares: 1, RecoveryThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(res.RootToken)
	if err := c.Sys().PutPolicy("minter", `path "auth/token/create" { capabilities = ["update"] }`); err != nil {
		t.Fatal(err)
	}

	resumed := false
	for cycle := 0; cycle < 6 && !resumed; cycle++ {
		parent, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"minter"}})
		if err != nil {
			t.Fatal(err)
		}
		pc := newClient(t, p.Addr, parent.Auth.ClientToken)
		kids := make([]string, children)
		var wg sync.WaitGroup
		errs := make(chan error, children)
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; i < children; i += 8 {
					s, err := pc.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"minter"}})
					if err != nil {
						errs <- err
						return
					}
					kids[i] = s.Auth.ClientToken
				}
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("create child: %v", err)
		}
		// Revoke in the background and kill the server while it works.
		go func() { _ = c.Auth().Token().RevokeTree(parent.Auth.ClientToken) }()
		time.Sleep(time.Duration(20+cycle*15) * time.Millisecond)
		p.Signal(t, syscall.SIGKILL)

		p = coffertest.StartProcess(t, env, args...)
		c = newClient(t, p.Addr, res.RootToken)
		if strings.Contains(p.Stderr.String(), "finished token revocations interrupted by a restart") {
			resumed = true
		}
		parentAlive := lookupOK(c, parent.Auth.ClientToken)
		alive := 0
		for _, k := range kids {
			if lookupOK(c, k) {
				alive++
			}
		}
		t.Logf("cycle %d: parent alive=%v, %d of %d children alive after restart (resumed=%v)", cycle, parentAlive, alive, children, resumed)
		if !parentAlive && alive > 0 {
			t.Fatalf("cycle %d: the parent is revoked but %d children survived the crash", cycle, alive)
		}
		if parentAlive {
			// The kill came before the revocation began: finish it now and
			// check the tree is gone.
			if err := c.Auth().Token().RevokeTree(parent.Auth.ClientToken); err != nil {
				t.Fatal(err)
			}
			for _, k := range kids {
				if lookupOK(c, k) {
					t.Fatalf("cycle %d: child survives a completed revocation", cycle)
				}
			}
		}
	}
	if !resumed {
		t.Fatalf("no kill landed in the middle of a revocation in 6 cycles; the test did not exercise recovery")
	}
}

func lookupOK(c *vault.Client, tok string) bool {
	s, err := c.Auth().Token().Lookup(tok)
	return err == nil && s != nil
}
