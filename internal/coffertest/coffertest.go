// Package coffertest starts real Coffer servers for tests: in-process
// through the real `coffer server` command on a loopback listener, or as a
// child process of a freshly built coffer binary (for crash tests).
//
// It is imported only by tests.
package coffertest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffer-dev/coffer/internal/cli"
)

// RequireIntegration skips t with reason, unless COFFER_REQUIRE_INTEGRATION
// is set (CI), in which case a missing part is a failure.
func RequireIntegration(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("COFFER_REQUIRE_INTEGRATION") != "" {
		t.Fatalf("integration test cannot run: %s (COFFER_REQUIRE_INTEGRATION is set)", reason)
	}
	t.Skip(reason)
}

// Server is a running coffer server.
type Server struct {
	// Addr is the base URL, e.g. http://127.0.0.1:43121.
	Addr string
	// RootToken and UnsealKey are set for dev servers.
	RootToken string
	UnsealKey string
	// Stdout and Stderr capture the server's output.
	Stdout *SyncBuffer
	Stderr *SyncBuffer

	cancel context.CancelFunc
	done   chan error
}

// SyncBuffer is a goroutine-safe bytes.Buffer.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var (
	listenerRe = regexp.MustCompile(`Listener: (https?://[0-9.:\[\]a-f]+)`)
	rootRe     = regexp.MustCompile(`Root Token: (\S+)`)
	unsealRe   = regexp.MustCompile(`Unseal Key: (\S+)`)
)

// StartDev runs `coffer server -dev` in-process on a free loopback port with
// extra args appended.
func StartDev(t testing.TB, extra ...string) *Server {
	t.Helper()
	args := append([]string{"server", "-dev", "-dev-listen-address=127.0.0.1:0", "-log-level=warn"}, extra...)
	return Start(t, nil, args...)
}

// Start runs the coffer CLI with args in-process (args[0] is normally
// "server"), with env overriding the process environment, and waits until
// the listener answers.
func Start(t testing.TB, env map[string]string, args ...string) *Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{Stdout: &SyncBuffer{}, Stderr: &SyncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	e := &cli.Env{
		Getenv: func(k string) string {
			if v, ok := env[k]; ok {
				return v
			}
			if strings.HasPrefix(k, "COFFER_") || strings.HasPrefix(k, "VAULT_") {
				return "" // isolate from the developer's shell
			}
			return os.Getenv(k)
		},
		Stdin:   strings.NewReader(""),
		Stdout:  s.Stdout,
		Stderr:  s.Stderr,
		HomeDir: func() (string, error) { return t.TempDir(), nil },
	}
	go func() { s.done <- cli.RunEnv(ctx, e, args) }()
	t.Cleanup(s.Stop)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := listenerRe.FindStringSubmatch(s.Stdout.String()); m != nil && strings.Contains(s.Stdout.String(), "server started") {
			s.Addr = m[1]
			break
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("coffer %v exited early: %v\nstdout:\n%s\nstderr:\n%s", args, err, s.Stdout, s.Stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("coffer %v did not start in time\nstdout:\n%s\nstderr:\n%s", args, s.Stdout, s.Stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if m := rootRe.FindStringSubmatch(s.Stdout.String()); m != nil {
		s.RootToken = m[1]
	}
	if m := unsealRe.FindStringSubmatch(s.Stdout.String()); m != nil {
		s.UnsealKey = m[1]
	}
	return s
}

// Stop shuts the server down gracefully and waits for it.
func (s *Server) Stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
	}
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary builds the coffer binary once per test process and returns its
// path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "coffer-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "coffer")
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/coffer")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build coffer: %v", buildErr)
	}
	return buildPath
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// Process is a coffer server running as a child process.
type Process struct {
	Addr   string
	Cmd    *exec.Cmd
	Stdout *SyncBuffer
	Stderr *SyncBuffer

	exited chan struct{}
}

// Signal sends sig to the process and waits for it to exit. Never call
// Cmd.Wait directly: the process is already being waited for.
func (p *Process) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		select {
		case <-p.exited:
			return
		default:
		}
		t.Fatalf("signal coffer: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("coffer did not exit after %v", sig)
	}
}

// StartProcess starts the coffer binary with args and waits for its
// listener to answer. The caller kills or stops it; Cleanup kills it.
func StartProcess(t testing.TB, env []string, args ...string) *Process {
	t.Helper()
	cmd := exec.Command(Binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	p := &Process{Cmd: cmd, Stdout: &SyncBuffer{}, Stderr: &SyncBuffer{}, exited: make(chan struct{})}
	pr, pw := io.Pipe()
	cmd.Stdout = io.MultiWriter(p.Stdout, pw)
	cmd.Stderr = p.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start coffer: %v", err)
	}
	exited := p.exited
	go func() { _ = cmd.Wait(); pw.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		addr := ""
		for sc.Scan() {
			if m := listenerRe.FindStringSubmatch(sc.Text()); m != nil {
				addr = m[1]
			}
			if strings.Contains(sc.Text(), "server started") {
				found <- addr
				break
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case p.Addr = <-found:
	case <-exited:
		t.Fatalf("coffer %v exited early\nstdout:\n%s\nstderr:\n%s", args, p.Stdout, p.Stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("coffer %v did not start in time\nstderr:\n%s", args, p.Stderr)
	}
	return p
}

// WaitHealthy polls addr's sys/health until it answers at all.
func WaitHealthy(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(addr + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("server %s did not answer sys/health", addr)
}
