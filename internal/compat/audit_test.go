package compat

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/coffer-dev/coffer/internal/audit"
	"github.com/coffer-dev/coffer/internal/coffertest"
)

// TestAuditFailClosed sends mixed requests with a file audit device, makes
// the device unwritable halfway, and checks that every request after that
// point is refused, that the log holds no plaintext canary, and that the
// chain verifies.
func TestAuditFailClosed(t *testing.T) {
	const total = 10000
	dir := t.TempDir()
	rootToken := "cfr.audittestroottoken000000000000"
	p := coffertest.StartProcess(t, nil, "server", "-dev", "-dev-listen-address=127.0.0.1:0",
		"-dev-root-token-id="+rootToken, "-audit-dir="+dir, "-log-level=error")
	c := newClient(t, p.Addr, rootToken)
	logPath := filepath.Join(dir, "audit.log")
	if err := c.Sys().EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": logPath}}); err != nil {
		t.Fatalf("EnableAudit: %v", err)
	}
	// Paths outside the audit directory are refused.
	err := c.Sys().EnableAuditWithOptions("evil", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": "/etc/cron.d/x"}})
	wantStatus(t, err, 400, "audit directory")
	err = c.Sys().EnableAuditWithOptions("evil2", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": filepath.Join(dir, "..", "x.log")}})
	wantStatus(t, err, 400, "audit directory")

	if fi, err := os.Stat(logPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("audit log mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	var canaries []string
	var mu sync.Mutex
	half := total / 2
	for i := 0; i < half; i++ {
		canary := fmt.Sprintf("canary-%d-%x", i, i*7919)
		mu.Lock()
		canaries = append(canaries, canary)
		mu.Unlock()
		switch i % 3 {
		case 0:
			_, err = c.Logical().Write(fmt.Sprintf("secret/data/c%d", i), map[string]any{"data": map[string]any{"v": canary}})
		case 1:
			_, err = c.Logical().Read(fmt.Sprintf("secret/data/c%d", i-1))
		default:
			_, err = c.Auth().Token().LookupSelf()
		}
		if err != nil {
			t.Fatalf("request %d before the failure: %v", i, err)
		}
	}
	// Make the device unwritable: replace the file by a directory; the
	// device fails its next write and cannot reopen.
	if err := os.Rename(logPath, logPath+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(logPath, 0o700); err != nil {
		t.Fatal(err)
	}
	// Log rotation: SIGHUP makes the server reopen the path, which is now
	// a directory, so the device cannot write any more.
	if err := p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, err := c.Logical().Read("secret/data/c0")
		return err != nil
	})
	refused := 0
	for i := half; i < total; i++ {
		_, err := c.Logical().Read("secret/data/c0")
		if err != nil {
			refused++
		}
	}
	t.Logf("audit fail-closed: %d requests before, %d after the device broke, %d refused", half, total-half, refused)
	if refused != total-half {
		t.Fatalf("only %d of %d requests were refused after the audit device broke", refused, total-half)
	}
	// The failing device is reported on sys/health.
	h, err := c.Sys().Health()
	if err != nil {
		t.Fatalf("Health: %v", err)
	}
	_ = h
	resp, err := c.Logical().ReadRaw("sys/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"audit_devices_failing"`) {
		t.Fatalf("sys/health does not report the failing audit device: %s", body)
	}
	raw, err := os.ReadFile(logPath + ".old")
	if err != nil {
		t.Fatal(err)
	}
	for _, cn := range canaries {
		for _, form := range []string{cn, base64.StdEncoding.EncodeToString([]byte(cn)), hex.EncodeToString([]byte(cn))} {
			if bytes.Contains(raw, []byte(form)) {
				t.Fatalf("audit log holds canary %q in the clear", form)
			}
		}
	}
	if bytes.Contains(raw, []byte(rootToken)) {
		t.Fatalf("audit log holds the root token in the clear")
	}
	res, err := audit.VerifyFile(logPath + ".old")
	if err != nil {
		t.Fatalf("VerifyFile: %v", err)
	}
	if res.Lines < half*2 {
		t.Fatalf("audit log has %d lines, want at least %d", res.Lines, half*2)
	}
	if !strings.Contains(string(raw), `"path":"secret/data/c0"`) {
		t.Fatalf("audit log does not name the request paths")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("condition not met within 10s")
}
