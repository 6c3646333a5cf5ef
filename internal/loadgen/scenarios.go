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
	"sync"
)

type scenario interface {
	setup(ctx context.Context, c *client) error
	// op sends one request; the body is returned for the first probe.
	op(ctx context.Context, c *client, w *worker) (int, []byte, error)
	teardown(ctx context.Context, c *client)
	describe() string
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

func (healthScenario) setup(context.Context, *client) error { return nil }
func (healthScenario) teardown(context.Context, *client)    {}
func (healthScenario) describe() string                     { return "sys/health" }
func (healthScenario) op(ctx context.Context, c *client, _ *worker) (int, []byte, error) {
	return c.call(ctx, http.MethodGet, "sys/health", nil)
}

// randomText is n bytes of URL-safe base64 text (a JSON string without
// escapes).
func randomText(n int) string {
	b := make([]byte, (n*3+3)/4)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

// mountKV creates a KV v2 mount at path, or reports that one exists.
func mountKV(ctx context.Context, c *client, path string) (created bool, err error) {
	_, err = c.must(ctx, http.MethodPost, "sys/mounts/"+path, map[string]any{
		"type": "kv", "options": map[string]string{"version": "2"}, "description": "coffer bench scratch mount",
	})
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
		return false, nil // already mounted: use it, leave it in place
	}
	return err == nil, err
}

type kvScenario struct {
	cfg       *Config
	readRatio float64
	mount     string
	created   bool
	paths     []string
	body      []byte
}

func (s *kvScenario) describe() string { return s.mount + "/data/..." }

func (s *kvScenario) setup(ctx context.Context, c *client) error {
	s.mount = s.cfg.Mount
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
	if s.readRatio == 0 {
		return nil
	}
	// Write every key once so reads find data, with a few parallel writers.
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	par := min(16, s.cfg.Workers, len(s.paths))
	next := make(chan string)
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				status, raw, err := c.call(ctx, http.MethodPost, p, s.body)
				if err == nil && status >= 400 {
					err = fmt.Errorf("write %s: status %d: %s", p, status, raw)
				}
				if err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			}
		}()
	}
	for _, p := range s.paths {
		next <- p
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errc:
		return fmt.Errorf("populate %d keys: %w", len(s.paths), err)
	default:
		return nil
	}
}

func (s *kvScenario) op(ctx context.Context, c *client, w *worker) (int, []byte, error) {
	p := s.paths[w.intn(len(s.paths))]
	if s.readRatio >= 1 || (s.readRatio > 0 && float64(w.next()>>11)/(1<<53) < s.readRatio) {
		return c.call(ctx, http.MethodGet, p, nil)
	}
	return c.call(ctx, http.MethodPost, p, s.body)
}

func (s *kvScenario) teardown(ctx context.Context, c *client) {
	if s.created {
		_, _ = c.must(ctx, http.MethodDelete, "sys/mounts/"+s.mount, nil)
	}
}

type transitScenario struct {
	cfg   *Config
	mount string
	body  []byte
}

func (s *transitScenario) describe() string { return s.mount + "/encrypt/bench" }

func (s *transitScenario) setup(ctx context.Context, c *client) error {
	s.mount = randomName("bench-transit-")
	if _, err := c.must(ctx, http.MethodPost, "sys/mounts/"+s.mount, map[string]any{"type": "transit"}); err != nil {
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

func (s *transitScenario) op(ctx context.Context, c *client, _ *worker) (int, []byte, error) {
	return c.call(ctx, http.MethodPost, s.mount+"/encrypt/bench", s.body)
}

func (s *transitScenario) teardown(ctx context.Context, c *client) {
	if s.mount != "" {
		_, _ = c.must(ctx, http.MethodDelete, "sys/mounts/"+s.mount, nil)
	}
}

// loginScenario logs one userpass user in again and again. Each login
// issues a token with a 1-minute TTL, so the tokens expire by themselves;
// disabling the scratch auth mount afterwards removes the user.
type loginScenario struct {
	path string
	body []byte
}

func (s *loginScenario) describe() string { return "auth/" + s.path + "/login/bench" }

func (s *loginScenario) setup(ctx context.Context, c *client) error {
	s.path = randomName("bench-userpass-")
	if _, err := c.must(ctx, http.MethodPost, "sys/auth/"+s.path, map[string]any{"type": "userpass"}); err != nil {
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

func (s *loginScenario) op(ctx context.Context, c *client, _ *worker) (int, []byte, error) {
	return c.call(ctx, http.MethodPost, "auth/"+s.path+"/login/bench", s.body)
}

func (s *loginScenario) teardown(ctx context.Context, c *client) {
	if s.path != "" {
		_, _ = c.must(ctx, http.MethodDelete, "sys/auth/"+s.path, nil)
	}
}
