//go:build linux

package audit_test

import (
	"context"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/coffer-dev/coffer/internal/audit"
)

// TestFileDeviceTornWrite makes the kernel accept only part of a line
// (RLIMIT_FSIZE, which binds root too) and checks that the device reports
// the failure, cuts the partial line off, and continues the chain once the
// limit is lifted. The limit is process-wide, so this runs in a child.
func TestFileDeviceTornWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	if os.Getenv("AUDIT_TORN_WRITE_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFileDeviceTornWrite$", "-test.v")
		cmd.Env = append(os.Environ(), "AUDIT_TORN_WRITE_CHILD="+path)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		if strings.Contains(string(out), "SKIP") {
			t.Skipf("child skipped:\n%s", out)
		}
		verifyOK(t, path, 5)
		return
	}
	path = os.Getenv("AUDIT_TORN_WRITE_CHILD")
	signal.Ignore(syscall.SIGXFSZ)

	d := openDevice(t, path, audit.FileOptions{})
	logPairs(t, d, 1)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	torn := lim
	torn.Cur = uint64(fi.Size()) + 100 // well inside the next line
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &torn); err != nil {
		t.Skipf("cannot set RLIMIT_FSIZE: %v", err)
	}
	err = d.LogRequest(context.Background(), sampleRequest(9, "tok-torn", "sec-torn"))
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("LogRequest beyond RLIMIT_FSIZE = %v, want EFBIG", err)
	}
	if ok, _ := d.Healthy(); ok {
		t.Error("device healthy after a torn write")
	}
	if fi2, _ := os.Stat(path); fi2.Size() != fi.Size() {
		t.Errorf("file is %d bytes after the torn write, want the partial line cut back to %d", fi2.Size(), fi.Size())
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	logPairs(t, d, 1)
	if ok, why := d.Healthy(); !ok {
		t.Errorf("device unhealthy after recovering: %s", why)
	}
}
