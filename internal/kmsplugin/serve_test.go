package kmsplugin_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	kmsapi "k8s.io/kms/apis/v2"

	"github.com/coffer-dev/coffer/internal/kmsplugin"
)

func TestListenSocket(t *testing.T) {
	base := shortTempDir(t)
	t.Run("creates 0700 dir and 0600 socket, removed on close", func(t *testing.T) {
		sock := filepath.Join(base, "new", "kms.sock")
		ln, err := kmsplugin.Listen(sock)
		if err != nil {
			t.Fatalf("Listen: %v", err)
		}
		fi, err := os.Lstat(sock)
		if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
			t.Fatalf("socket = %v, %v; want a 0600 socket", fi.Mode(), err)
		}
		di, _ := os.Stat(filepath.Dir(sock))
		if di.Mode().Perm() != 0o700 {
			t.Errorf("created directory mode = %04o, want 0700", di.Mode().Perm())
		}
		entries, _ := os.ReadDir(filepath.Dir(sock))
		if len(entries) != 1 {
			t.Errorf("socket directory holds %d entries, want only the socket", len(entries))
		}
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatalf("dial the renamed socket: %v", err)
		}
		conn.Close()
		ln.Close()
		if _, err := os.Lstat(sock); !os.IsNotExist(err) {
			t.Errorf("socket still present after Close: %v", err)
		}
	})
	t.Run("existing dir left as is", func(t *testing.T) {
		dir := filepath.Join(base, "shared")
		os.Mkdir(dir, 0o755)
		ln, err := kmsplugin.Listen(filepath.Join(dir, "kms.sock"))
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
		if di, _ := os.Stat(dir); di.Mode().Perm() != 0o755 {
			t.Errorf("existing directory mode changed to %04o", di.Mode().Perm())
		}
	})
	t.Run("stale socket replaced", func(t *testing.T) {
		sock := filepath.Join(base, "stale.sock")
		old, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		old.SetUnlinkOnClose(false)
		old.Close() // the file stays, nobody answers: a crashed plugin's socket
		ln, err := kmsplugin.Listen(sock)
		if err != nil {
			t.Fatalf("Listen over a stale socket: %v", err)
		}
		ln.Close()
	})
	t.Run("live socket refused", func(t *testing.T) {
		sock := filepath.Join(base, "live.sock")
		live, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer live.Close()
		_, err = kmsplugin.Listen(sock)
		if err == nil || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("Listen over a live socket = %v, want 'in use'", err)
		}
		if c, err := net.Dial("unix", sock); err != nil {
			t.Fatalf("the live socket was disturbed: %v", err)
		} else {
			c.Close()
		}
	})
	t.Run("regular file refused", func(t *testing.T) {
		p := filepath.Join(base, "file.sock")
		os.WriteFile(p, []byte("data"), 0o600)
		if _, err := kmsplugin.Listen(p); err == nil || !strings.Contains(err.Error(), "not a socket") {
			t.Fatalf("Listen over a regular file = %v", err)
		}
		if b, _ := os.ReadFile(p); string(b) != "data" {
			t.Fatal("the regular file was replaced")
		}
	})
	t.Run("symlink refused", func(t *testing.T) {
		target := filepath.Join(base, "target")
		os.WriteFile(target, []byte("keep"), 0o600)
		p := filepath.Join(base, "link.sock")
		os.Symlink(target, p)
		if _, err := kmsplugin.Listen(p); err == nil || !strings.Contains(err.Error(), "not a socket") {
			t.Fatalf("Listen over a symlink = %v", err)
		}
	})
}

func TestSocketPath(t *testing.T) {
	for in, want := range map[string]string{
		"unix:///var/run/kms.sock": "/var/run/kms.sock",
		"/var/run/kms.sock":        "/var/run/kms.sock",
	} {
		if got, err := kmsplugin.SocketPath(in); err != nil || got != want {
			t.Errorf("SocketPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := kmsplugin.SocketPath("unix://"); err == nil {
		t.Error("SocketPath(unix://) succeeded")
	}
}

// TestServeStops: cancelling the context stops serving and removes the
// socket; a client then fails.
func TestServeStops(t *testing.T) {
	kek, err := kmsplugin.LoadLocalKey(newKeyFile(t, t.TempDir(), "k"))
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(shortTempDir(t), "kms.sock")
	ln, err := kmsplugin.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- kmsplugin.Serve(ctx, ln, kmsplugin.NewService(kek, kmsplugin.Options{})) }()
	c := dial(t, sock)
	if _, err := c.Status(rpcCtx(t), &kmsapi.StatusRequest{}); err != nil {
		t.Fatalf("Status: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve returned %v", err)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
}
