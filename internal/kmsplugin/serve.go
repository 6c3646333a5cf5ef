package kmsplugin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	kmsapi "k8s.io/kms/apis/v2"
)

// maxRecvMsg bounds a gRPC request: the largest valid Decrypt request
// (1 kB ciphertext, 1 kB key_id, 32 kB of annotations) fits with room to
// spare; bigger messages are refused by gRPC with ResourceExhausted before
// they are decoded.
const maxRecvMsg = 64 << 10

// SocketPath strips an optional unix:// scheme (the form kube-apiserver's
// EncryptionConfiguration uses) and makes the path absolute.
func SocketPath(s string) (string, error) {
	p := strings.TrimPrefix(s, "unix://")
	if p == "" {
		return "", errors.New("empty socket path")
	}
	return filepath.Abs(p)
}

// Listen creates the plugin's unix socket at path, mode 0600. A missing
// directory is created 0700. An existing path is replaced only if it is a
// socket nobody answers on (a stale socket left by a crashed plugin); a
// live socket or anything else is an error. The socket is bound in a
// private 0700 directory, made 0600, then renamed into place, so it is
// never reachable with wider permissions. Closing the listener removes the
// socket.
func Listen(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create socket directory: %w", err)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create socket directory: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(dir, ".coffer-kms-")
	if err != nil {
		return nil, fmt.Errorf("create socket: %w", err)
	}
	defer os.RemoveAll(tmp)
	tmpSock := filepath.Join(tmp, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmpSock, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmpSock, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod socket: %w", err)
	}
	if err := os.Rename(tmpSock, path); err != nil {
		ln.Close()
		return nil, fmt.Errorf("create socket %s: %w", path, err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("create socket %s: %w", path, err)
	}
	return &socketListener{UnixListener: ln, path: path, fi: fi}, nil
}

func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("socket path: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket; refusing to replace it", path)
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("%s is in use: another process answers on it", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%s exists and cannot be probed (%v); refusing to replace it", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}

// socketListener removes its socket on Close, unless the path has since
// been replaced by another file.
type socketListener struct {
	*net.UnixListener
	path string
	fi   os.FileInfo
}

func (l *socketListener) Close() error {
	err := l.UnixListener.Close()
	if cur, serr := os.Lstat(l.path); serr == nil && os.SameFile(cur, l.fi) {
		os.Remove(l.path)
	}
	return err
}

// Serve serves svc's KMS v2 API on ln until ctx is done, then stops
// gracefully (in-flight requests get 5 s) and closes ln.
func Serve(ctx context.Context, ln net.Listener, svc *Service) error {
	gs := grpc.NewServer(
		grpc.ChainUnaryInterceptor(svc.intercept),
		grpc.MaxRecvMsgSize(maxRecvMsg),
	)
	kmsapi.RegisterKeyManagementServiceServer(gs, svc)
	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(ln) }()
	select {
	case <-ctx.Done():
		stopped := make(chan struct{})
		go func() { gs.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			gs.Stop()
		}
		<-errc
		return nil
	case err := <-errc:
		return fmt.Errorf("serve kms api: %w", err)
	}
}

// intercept records metrics and logs for every request and turns a panic
// into codes.Internal. Logs carry the method, code, duration, the
// apiserver's request uid and the key_id: never plaintext or ciphertext.
func (s *Service) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	method := path.Base(info.FullMethod)
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("kms request panicked", "method", method, "stack", string(debug.Stack()))
			resp, err = nil, status.Error(codes.Internal, "internal error")
		}
		d := time.Since(start)
		code := status.Code(err)
		s.metrics.observe(method, code.String(), d)
		attrs := []any{"method", method, "code", code.String(), "duration", d}
		switch r := req.(type) {
		case *kmsapi.EncryptRequest:
			attrs = append(attrs, "uid", truncate(r.GetUid(), 100))
			if e, ok := resp.(*kmsapi.EncryptResponse); ok && e != nil {
				attrs = append(attrs, "key_id", e.GetKeyId())
			}
		case *kmsapi.DecryptRequest:
			attrs = append(attrs, "uid", truncate(r.GetUid(), 100), "key_id", truncate(r.GetKeyId(), 200))
		case *kmsapi.StatusRequest:
			if st, ok := resp.(*kmsapi.StatusResponse); ok && st != nil {
				attrs = append(attrs, "healthz", st.GetHealthz(), "key_id", st.GetKeyId())
			}
		}
		if err != nil {
			attrs = append(attrs, "err", status.Convert(err).Message())
			s.log.Warn("kms request failed", attrs...)
			return
		}
		s.log.Debug("kms request", attrs...)
	}()
	return handler(ctx, req)
}
