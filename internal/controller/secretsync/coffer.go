package secretsync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxCofferResponse bounds a response body read from Coffer.
const maxCofferResponse = 4 << 20

// cofferClient speaks the small part of Coffer's HTTP API the controller
// needs: kubernetes login, KV v2 read, dynamic credentials, lease renewal.
type cofferClient struct {
	hc *http.Client
}

// apiError is a Coffer error answer. Its messages are Coffer's, which
// never contain secret values.
type apiError struct {
	Status int
	Errors []string
}

func (e *apiError) Error() string {
	if len(e.Errors) > 0 && e.Errors[0] != "" {
		return strings.Join(e.Errors, "; ")
	}
	if e.Status == http.StatusNotFound {
		return "not found"
	}
	return fmt.Sprintf("coffer answered %d %s", e.Status, http.StatusText(e.Status))
}

func isStatus(err error, code int) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == code
}

// envelope is Coffer's (Vault's) response body.
type envelope struct {
	LeaseID       string          `json:"lease_id"`
	Renewable     bool            `json:"renewable"`
	LeaseDuration int64           `json:"lease_duration"`
	Data          json.RawMessage `json:"data"`
	Auth          *struct {
		ClientToken   string `json:"client_token"`
		LeaseDuration int64  `json:"lease_duration"`
		Renewable     bool   `json:"renewable"`
	} `json:"auth"`
}

// escapePath escapes each segment of a slash-separated logical path.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// do sends one request to addr/v1/path and decodes the envelope.
func (c *cofferClient) do(ctx context.Context, method, addr, path, token string, query url.Values, body any) (*envelope, error) {
	u := strings.TrimRight(addr, "/") + "/v1/" + escapePath(path)
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("coffer request: %w", err)
	}
	req.Header.Set("X-Vault-Request", "true")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	cofferRequestsTotal.Inc()
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("coffer at %s unreachable: %w", addr, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxCofferResponse+1))
	if err != nil {
		return nil, fmt.Errorf("read coffer response: %w", err)
	}
	if len(raw) > maxCofferResponse {
		return nil, errors.New("coffer response larger than 4 MiB")
	}
	if resp.StatusCode >= 400 {
		ae := &apiError{Status: resp.StatusCode}
		var eb struct {
			Errors []string `json:"errors"`
		}
		if json.Unmarshal(raw, &eb) == nil {
			ae.Errors = eb.Errors
		}
		return nil, ae
	}
	var env envelope
	if resp.StatusCode == http.StatusNoContent || len(raw) == 0 {
		return &env, nil
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, errors.New("coffer answered with a body that is not JSON")
	}
	return &env, nil
}

// login exchanges a service account token for a Coffer token.
func (c *cofferClient) login(ctx context.Context, addr, mount, role, jwt string) (token string, ttl time.Duration, err error) {
	env, err := c.do(ctx, http.MethodPost, addr, "auth/"+mount+"/login", "", nil, map[string]any{"role": role, "jwt": jwt})
	if err != nil {
		return "", 0, err
	}
	if env.Auth == nil || env.Auth.ClientToken == "" {
		return "", 0, errors.New("coffer login answered without a token")
	}
	return env.Auth.ClientToken, time.Duration(env.Auth.LeaseDuration) * time.Second, nil
}

// kvSecret is a KV v2 secret as read.
type kvSecret struct {
	Data    map[string]any
	Version int64
}

// readKV reads mount/data/path (version 0: the latest). A missing,
// deleted or destroyed version is errSourceNotFound.
func (c *cofferClient) readKV(ctx context.Context, addr, token, mount, path string, version int64) (*kvSecret, error) {
	var q url.Values
	if version > 0 {
		q = url.Values{"version": {fmt.Sprint(version)}}
	}
	env, err := c.do(ctx, http.MethodGet, addr, mount+"/data/"+path, token, q, nil)
	if isStatus(err, http.StatusNotFound) {
		return nil, errSourceNotFound
	}
	if err != nil {
		return nil, err
	}
	var d struct {
		Data     map[string]any `json:"data"`
		Metadata struct {
			Version int64 `json:"version"`
		} `json:"metadata"`
	}
	dec := json.NewDecoder(bytes.NewReader(env.Data))
	dec.UseNumber()
	if len(env.Data) == 0 || dec.Decode(&d) != nil {
		return nil, errors.New("coffer answered a KV read without a KV v2 body (is the mount KV version 2?)")
	}
	if d.Data == nil {
		return nil, errSourceNotFound
	}
	return &kvSecret{Data: d.Data, Version: d.Metadata.Version}, nil
}

// leased is a dynamic secret and its lease.
type leased struct {
	Data      map[string]any
	LeaseID   string
	TTL       time.Duration
	Renewable bool
}

// creds issues dynamic credentials from mount/creds/role.
func (c *cofferClient) creds(ctx context.Context, addr, token, mount, role string) (*leased, error) {
	env, err := c.do(ctx, http.MethodGet, addr, mount+"/creds/"+role, token, nil, nil)
	if err != nil {
		return nil, err
	}
	var d map[string]any
	dec := json.NewDecoder(bytes.NewReader(env.Data))
	dec.UseNumber()
	if len(env.Data) == 0 || dec.Decode(&d) != nil || d == nil {
		return nil, errors.New("coffer answered a credentials request without data")
	}
	if env.LeaseID == "" {
		return nil, errors.New("coffer answered a credentials request without a lease")
	}
	return &leased{Data: d, LeaseID: env.LeaseID, TTL: time.Duration(env.LeaseDuration) * time.Second, Renewable: env.Renewable}, nil
}

// renew extends a lease by increment and returns the TTL granted.
func (c *cofferClient) renew(ctx context.Context, addr, token, leaseID string, increment time.Duration) (time.Duration, error) {
	env, err := c.do(ctx, http.MethodPut, addr, "sys/leases/renew", token, nil, map[string]any{
		"lease_id": leaseID, "increment": int64(increment / time.Second),
	})
	if err != nil {
		return 0, err
	}
	return time.Duration(env.LeaseDuration) * time.Second, nil
}
