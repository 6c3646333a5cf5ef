package kubernetes

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"
)

// Default locations of the pod's service account credentials.
const (
	DefaultTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	DefaultCAPath    = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
	// DefaultReload is how long a file read from disk is trusted before it
	// is read again. The kubelet refreshes a projected token at 80% of its
	// lifetime (at least an hour), so a minute is well inside the window.
	DefaultReload = time.Minute
	maxLocalFile  = 1 << 20
)

// LocalFiles says where the server's own pod credentials are, used when the
// config has no token_reviewer_jwt or kubernetes_ca_cert. Tests point it at
// temporary files.
type LocalFiles struct {
	TokenPath string
	CAPath    string
	// Reload is how often the files are re-read; zero means DefaultReload.
	Reload time.Duration
}

// cachedFile is a file re-read from disk at most every reload period.
type cachedFile struct {
	path   string
	reload time.Duration

	mu     sync.Mutex
	data   string
	exists bool
	readAt time.Time
}

func newCachedFile(path string, reload time.Duration) *cachedFile {
	if reload <= 0 {
		reload = DefaultReload
	}
	return &cachedFile{path: path, reload: reload}
}

// get returns the file's trimmed content, and false when the file does not
// exist (the server is not running in a pod). Other read errors are
// returned: a credential that exists but cannot be read must not silently
// fall back to another one.
func (f *cachedFile) get(now time.Time) (string, bool, error) {
	if f == nil || f.path == "" {
		return "", false, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.readAt.IsZero() && now.Sub(f.readAt) < f.reload {
		return f.data, f.exists, nil
	}
	fh, err := os.Open(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		f.data, f.exists, f.readAt = "", false, now
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxLocalFile+1))
	if err != nil {
		return "", false, err
	}
	if len(b) > maxLocalFile {
		return "", false, errors.New("file is larger than 1 MiB")
	}
	f.data, f.exists, f.readAt = strings.TrimSpace(string(b)), true, now
	return f.data, true, nil
}
