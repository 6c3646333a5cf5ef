//go:build unix

package audit_test

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/coffer-dev/coffer/internal/audit"
)

func TestFileDeviceModes(t *testing.T) {
	for _, umask := range []int{0, 0o022, 0o777} {
		t.Run(fmt.Sprintf("umask %04o", umask), func(t *testing.T) {
			base := t.TempDir()
			if err := os.Chmod(base, 0o755); err != nil {
				t.Fatal(err)
			}
			old := syscall.Umask(umask)
			t.Cleanup(func() { syscall.Umask(old) })

			path := filepath.Join(base, "new", "sub", "audit.log")
			d, err := audit.OpenFile(path, audit.FileOptions{})
			if err != nil {
				t.Fatal(err)
			}
			d.Close()
			syscall.Umask(old)

			checks := []struct {
				path string
				want os.FileMode
			}{
				{base, 0o755}, // existing: left alone
				{filepath.Join(base, "new"), 0o700},
				{filepath.Join(base, "new", "sub"), 0o700},
				{path, 0o600},
			}
			for _, c := range checks {
				fi, err := os.Stat(c.path)
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode().Perm(); got != c.want {
					t.Errorf("mode of %s = %v, want %v", c.path[len(base):], got, c.want)
				}
			}
		})
	}
}

func TestFileDeviceTightensExistingFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	openDevice(t, path, audit.FileOptions{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("mode of existing log after OpenFile = %v, want 0600", got)
	}
}

func TestFileDeviceRefusesFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("cannot make a FIFO here: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		d, err := audit.OpenFile(path, audit.FileOptions{})
		if err == nil {
			d.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("OpenFile(FIFO) succeeded, want an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OpenFile(FIFO) blocked")
	}
}
