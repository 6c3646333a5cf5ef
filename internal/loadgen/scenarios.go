package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

type scenario interface {
	setup(ctx context.Context, c *client) error
	// op sends one measured request (with client.do) and returns its
	// status.
	op(ctx context.Context, c *client, w *worker) (int, error)
	// teardown removes what setup made; an error means something was
	// left behind.
	teardown(ctx context.Context, c *client) error
}

func newScenario(name string, cfg *Config) (scenario, error) {
	switch name {
	case "health":
		return healthScenario{}, nil
	case "kv-read":
		return &kvScenario{cfg: cfg, readRatio: 1}, nil
	case "kv-write":
		return &kvScenario{cfg: cfg, readRatio: 0}, nil
	case "kv-mixed":
		if cfg.ReadRatio < 0 || cfg.ReadRatio > 1 {
			return nil, fmt.Errorf("read ratio %v is not between 0 and 1", cfg.ReadRatio)
		}
		return &kvScenario{cfg: cfg, readRatio: cfg.ReadRatio}, nil
	case "transit-encrypt":
		return &transitScenario{cfg: cfg}, nil
	case "login-userpass":
		return &loginScenario{}, nil
	}
	return nil, fmt.Errorf("unknown scenario %q (want one of %v)", name, Scenarios)
}

// healthScenario is the baseline: the bare HTTP round trip of the server.
type healthScenario struct{}

func (healthScenario) setup(context.Context, *client) error    { return nil }
func (healthScenario) teardown(context.Context, *client) error { return nil }
func (healthScenario) op(ctx context.Context, c *client, w *worker) (int, error) {
	return c.do(ctx, w, http.MethodGet, "sys/health", nil)
}

// randomText is n bytes of URL-safe base64 text (a JSON string without
// escapes).
func randomText(n int) string {
	b := make([]byte, (n*3+3)/4)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

// mountKV creates a KV v2 mount at path. When the server refuses because
// the path is taken (Vault answers 400), an existing KV v2 mount there is
// used as it is and left in place; anything else there is an error.
func mountKV(ctx context.Context, c *client, path string) (created bool, err error) {
	_, err = c.must(ctx, http.MethodPost, "sys/mounts/"+path, map[string]any{
		"type": "kv", "options": map[string]string{"version": "2"}, "description": "coffer bench scratch mount",
	})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		return err == nil, err
	}
	mounts, lerr := c.must(ctx, http.MethodGet, "sys/mounts", nil)
	if lerr != nil {
		return false, err
	}
	data, _ := mounts["data"].(map[string]any)
	m, _ := data[path+"/"].(map[string]any)
	if m == nil {
		return false, err
	}
	opts, _ := m["options"].(map[string]any)
	if m["type"] != "kv" || opts["version"] != "2" {
		return false, fmt.Errorf("mount %s/ is not a KV version 2 mount (type %v, options %v)", path, m["type"], opts)
	}
	return false, nil
}

type kvScenario struct {
	cfg       *Config
	readRatio float64
	mount     string
	created   bool
	paths     []string
	body      []byte
}

func (s *kvScenario) setup(ctx context.Context, c *client) error {
	s.mount = strings.Trim(s.cfg.Mount, "/")
	if s.mount == "" {
		s.mount = randomName("bench-kv-")
	}
	created, err := mountKV(ctx, c, s.mount)
	if err != nil {
		return err
	}
	s.created = created
	body, err := json.Marshal(map[string]any{"data": map[string]string{"value": randomText(s.cfg.ValueSize)}})
	if err != nil {
		return err
	}
	s.body = body
	s.paths = make([]string, s.cfg.Keys)
	for i := range s.paths {
		s.paths[i] = s.mount + "/data/key-" + strconv.Itoa(i)
	}
	if s.readRatio == 0 || s.cfg.NoPopulate {
		return nil
	}
	// Write every key once so reads find data, with parallel writers; the
	// first failure stops them.
	if s.cfg.Progress != nil {
		fmt.Fprintf(s.cfg.Progress, "writing %d keys of %d bytes to %s/...\n", len(s.paths), s.cfg.ValueSize, s.mount)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	next := make(chan string)
	for range min(32, s.cfg.Workers, len(s.paths)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				status, raw, err := c.call(ctx, http.MethodPost, p, s.body)
				if err == nil && status >= 400 {
					err = newAPIError(http.MethodPost, p, status, raw)
				}
				if err != nil {
					cancel(err)
				}
			}
		}()
	}
	for _, p := range s.paths {
		if ctx.Err() != nil {
			break
		}
		next <- p
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("write %d keys: %w", len(s.paths), err)
	}
	return nil
}

func (s *kvScenario) op(ctx context.Context, c *client, w *worker) (int, error) {
	p := s.paths[w.intn(len(s.paths))]
	if s.readRatio >= 1 || (s.readRatio > 0 && float64(w.next()>>11)/(1<<53) < s.readRatio) {
		return c.do(ctx, w, http.MethodGet, p, nil)
	}
	return c.do(ctx, w, http.MethodPost, p, s.body)
}

func (s *kvScenario) teardown(ctx context.Context, c *client) error {
	if !s.created {
		return nil
	}
	_, err := c.must(ctx, http.MethodDelete, "sys/mounts/"+s.mount, nil)
	return err
}

type transitScenario struct {
	cfg   *Config
	mount string
	body  []byte
}

func (s *transitScenario) setup(ctx context.Context, c *client) error {
	s.mount = randomName("bench-transit-")
	if _, err := c.must(ctx, http.MethodPost, "sys/mounts/"+s.mount, map[string]any{"type": "transit", "description": "coffer bench scratch mount"}); err != nil {
		s.mount = ""
		return err
	}
	if _, err := c.must(ctx, http.MethodPost, s.mount+"/keys/bench", map[string]any{"type": "aes256-gcm96"}); err != nil {
		return err
	}
	pt := make([]byte, s.cfg.ValueSize)
	_, _ = rand.Read(pt)
	body, err := json.Marshal(map[string]string{"plaintext": base64.StdEncoding.EncodeToString(pt)})
	s.body = body
	return err
}

func (s *transitScenario) op(ctx context.Context, c *client, w *worker) (int, error) {
	return c.do(ctx, w, http.MethodPost, s.mount+"/encrypt/bench", s.body)
}

func (s *transitScenario) teardown(ctx context.Context, c *client) error {
	if s.mount == "" {
		return nil
	}
	_, err := c.must(ctx, http.MethodDelete, "sys/mounts/"+s.mount, nil)
	return err
}

// loginScenario logs one userpass user in again and again. Every login
// issues a token (a durable write on the server); their accessors are kept
// and the tokens revoked in teardown, after the measurement, so that they
// neither pile up nor expire during a later scenario. Each also has a
// 1-minute TTL in case the run is cut short or -keep is given. Disabling the
// scratch auth mount afterwards removes the user.
type loginScenario struct {
	path string
	body []byte

	mu        sync.Mutex
	accessors []string
}

func (s *loginScenario) setup(ctx context.Context, c *client) error {
	s.path = randomName("bench-userpass-")
	if _, err := c.must(ctx, http.MethodPost, "sys/auth/"+s.path, map[string]any{"type": "userpass", "description": "coffer bench scratch mount"}); err != nil {
		s.path = ""
		return err
	}
	pw := randomText(24)
	if _, err := c.must(ctx, http.MethodPost, "auth/"+s.path+"/users/bench", map[string]any{
		"password": pw, "token_policies": "default", "token_ttl": "1m",
	}); err != nil {
		return err
	}
	body, err := json.Marshal(map[string]string{"password": pw})
	s.body = body
	return err
}

func (s *loginScenario) op(ctx context.Context, c *client, w *worker) (int, error) {
	status, err := c.doKeep(ctx, w, http.MethodPost, "auth/"+s.path+"/login/bench", s.body)
	if err != nil || status >= 400 {
		return status, err
	}
	var out struct {
		Auth struct {
			Accessor string `json:"accessor"`
		} `json:"auth"`
	}
	if json.Unmarshal(w.body.Bytes(), &out) == nil && out.Auth.Accessor != "" {
		s.mu.Lock()
		s.accessors = append(s.accessors, out.Auth.Accessor)
		s.mu.Unlock()
	}
	return status, nil
}

func (s *loginScenario) teardown(ctx context.Context, c *client) error {
	if s.path == "" {
		return nil
	}
	s.mu.Lock()
	accessors := s.accessors
	s.accessors = nil
	s.mu.Unlock()
	next := make(chan string)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range min(16, len(accessors)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range next {
				if _, err := c.must(ctx, http.MethodPost, "auth/token/revoke-accessor", map[string]string{"accessor": a}); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	for _, a := range accessors {
		next <- a
	}
	close(next)
	wg.Wait()
	_, err := c.must(ctx, http.MethodDelete, "sys/auth/"+s.path, nil)
	if n := failed.Load(); n > 0 {
		err = errors.Join(err, fmt.Errorf("%d of %d login tokens not revoked (they expire within a minute)", n, len(accessors)))
	}
	return err
}
