package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// DefaultAddress is used when neither -address, COFFER_ADDR nor VAULT_ADDR
// is set.
const DefaultAddress = "https://127.0.0.1:8200"

// tokenFile is the token helper file written by `coffer login`.
const tokenFile = ".coffer-token"

// Client is a small HTTP client for the /v1/ API.
type Client struct {
	addr  *url.URL
	token string
	hc    *http.Client
}

// APIError is a server's error answer.
type APIError struct {
	Status int
	Errors []string
}

func (e *APIError) Error() string {
	if len(e.Errors) == 0 {
		return fmt.Sprintf("server answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("server answered %d: %s", e.Status, strings.Join(e.Errors, "; "))
}

// clientFlags are shared by every command that talks to a server.
type clientFlags struct {
	address       string
	caCert        string
	tlsSkipVerify bool
	format        string
}

func addClientFlags(cmd *cobra.Command, f *clientFlags) {
	fl := cmd.Flags()
	fl.StringVar(&f.address, "address", "", "server address (default $COFFER_ADDR, $VAULT_ADDR, "+DefaultAddress+")")
	fl.StringVar(&f.caCert, "ca-cert", "", "PEM CA certificate to verify the server (default $COFFER_CACERT, $VAULT_CACERT)")
	fl.BoolVar(&f.tlsSkipVerify, "tls-skip-verify", false, "do not verify the server's TLS certificate (insecure)")
	fl.StringVar(&f.format, "format", "", "output format: table, json or yaml (default $COFFER_FORMAT, table)")
}

func firstEnv(env *Env, names ...string) string {
	for _, n := range names {
		if v := env.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

func (f *clientFlags) outputFormat(env *Env) (string, error) {
	format := f.format
	if format == "" {
		format = firstEnv(env, "COFFER_FORMAT", "VAULT_FORMAT")
	}
	if format == "" {
		format = "table"
	}
	switch format {
	case "table", "json", "yaml":
		return format, nil
	}
	return "", usagef("invalid -format %q (want table, json or yaml)", format)
}

// newClient builds a client from flags, then COFFER_*/VAULT_* variables,
// then the token helper file.
func (f *clientFlags) newClient(env *Env) (*Client, error) {
	addr := f.address
	if addr == "" {
		addr = firstEnv(env, "COFFER_ADDR", "VAULT_ADDR")
	}
	if addr == "" {
		addr = DefaultAddress
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("invalid server address %q (want http(s)://host:port)", addr)
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	ca := f.caCert
	if ca == "" {
		ca = firstEnv(env, "COFFER_CACERT", "VAULT_CACERT")
	}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("read CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA certificate %s: no PEM certificate found", ca)
		}
		tlsConf.RootCAs = pool
	}
	skip := f.tlsSkipVerify
	if v := firstEnv(env, "COFFER_SKIP_VERIFY", "VAULT_SKIP_VERIFY"); v != "" {
		if b, err := parseBoolish(v); err == nil && b {
			skip = true
		}
	}
	tlsConf.InsecureSkipVerify = skip //nolint:gosec // explicit user choice
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	c := &Client{addr: u, hc: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
	c.token = firstEnv(env, "COFFER_TOKEN", "VAULT_TOKEN")
	if c.token == "" && env.HomeDir != nil {
		if home, err := env.HomeDir(); err == nil {
			if b, err := os.ReadFile(filepath.Join(home, tokenFile)); err == nil {
				c.token = strings.TrimSpace(string(b))
			}
		}
	}
	return c, nil
}

func parseBoolish(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "1", "t", "true", "yes":
		return true, nil
	case "0", "f", "false", "no":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean: %q", s)
}

// Response is a decoded server answer.
type Response struct {
	Status int
	Body   map[string]any
}

// Data returns the body's "data" object, or nil.
func (r *Response) Data() map[string]any {
	if r == nil || r.Body == nil {
		return nil
	}
	d, _ := r.Body["data"].(map[string]any)
	return d
}

// Do sends a request. body may be nil. A status >= 400 becomes *APIError;
// when allow404 is true a 404 returns (nil, nil).
func (c *Client) Do(ctx context.Context, method, path string, body any) (*Response, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(raw)
	}
	u := *c.addr
	p, q, _ := strings.Cut(path, "?")
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/" + strings.TrimPrefix(p, "/")
	u.RawQuery = q
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if c.token != "" {
		req.Header.Set("X-Vault-Token", c.token)
	}
	req.Header.Set("X-Vault-Request", "true")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		if method == http.MethodPatch {
			req.Header.Set("Content-Type", "application/merge-patch+json")
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach %s: %w", c.addr.Redacted(), err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	out := &Response{Status: resp.StatusCode}
	if len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&out.Body); err != nil && resp.StatusCode < 400 {
			return nil, fmt.Errorf("server sent a body that is not a JSON object (status %d)", resp.StatusCode)
		}
	}
	if resp.StatusCode >= 400 {
		ae := &APIError{Status: resp.StatusCode}
		if errs, ok := out.Body["errors"].([]any); ok {
			for _, e := range errs {
				ae.Errors = append(ae.Errors, fmt.Sprint(e))
			}
		}
		return out, ae
	}
	return out, nil
}
