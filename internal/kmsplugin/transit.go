package kmsplugin

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TransitConfig configures a Transit KEK.
type TransitConfig struct {
	// Address is Coffer's base URL, e.g. https://coffer.example:8200.
	Address string
	// CACert is a PEM file of CA certificates to verify Coffer's TLS
	// certificate (default: the system roots).
	CACert string
	// Mount is the transit engine's mount path (default "transit").
	Mount string
	// Key is the transit key's name.
	Key string
	// TokenFile holds a Coffer token; it is re-read whenever the token can
	// no longer be renewed or is refused. Exactly one of TokenFile and
	// AppRole is set.
	TokenFile string
	// AppRole logs in with role_id and secret_id files.
	AppRole *AppRole
	// Kubernetes logs in with a service account token file (Coffer's
	// kubernetes auth method). Exactly one of TokenFile, AppRole and
	// Kubernetes is set.
	Kubernetes *KubernetesLogin
	// Timeout bounds every request to Coffer (default 2 s), so that a
	// hung server makes Encrypt fail fast rather than stall the apiserver.
	Timeout time.Duration
	// KeyPollInterval is how often the key's versions are read to notice
	// rotations and configuration changes (default 10 s).
	KeyPollInterval time.Duration
	// Logger receives structured logs (never tokens or plaintext).
	Logger *slog.Logger
}

// AppRole names the AppRole credentials the plugin logs in with.
type AppRole struct {
	// Mount is the auth method's mount path (default "approle").
	Mount string
	// RoleIDFile and SecretIDFile hold the role_id and secret_id.
	RoleIDFile   string
	SecretIDFile string
}

// KubernetesLogin names the kubernetes auth role to log in with.
type KubernetesLogin struct {
	// Mount is the auth method's mount path (default "kubernetes").
	Mount string
	// Role is the kubernetes auth role.
	Role string
	// JWTFile holds the service account token; it is re-read at every
	// login, so projected tokens the kubelet rotates keep working
	// (default the in-cluster token file).
	JWTFile string
}

// DefaultServiceAccountTokenFile is where a pod's service account token is
// mounted.
const DefaultServiceAccountTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// Transit is a KEK that is a Coffer transit key, used over Coffer's HTTP
// API (transit/encrypt and transit/decrypt; the key itself never leaves
// Coffer). The ciphertext is transit's own string, `vault:v<N>:<base64>`,
// as bytes.
//
// The token the plugin needs:
//
//	path "<mount>/encrypt/<key>" { capabilities = ["update"] }
//	path "<mount>/decrypt/<key>" { capabilities = ["update"] }
//	path "<mount>/keys/<key>"    { capabilities = ["read"] }
type Transit struct {
	cfg  TransitConfig
	base *url.URL
	hc   *http.Client
	log  *slog.Logger
	auth *authenticator

	refreshMu sync.Mutex // one key read at a time
	mu        sync.Mutex
	info      *keyInfo
}

// keyInfo is what the plugin knows of the transit key's versions.
type keyInfo struct {
	latest     int
	minDecrypt int
	created    map[int]int64
	fetched    time.Time
}

var _ KEK = (*Transit)(nil)

var (
	keyNameRe = regexp.MustCompile(`^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$`)
	mountRe   = regexp.MustCompile(`^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*$`)
)

// NewTransit checks cfg and returns a Transit. It does not contact Coffer:
// the plugin starts (and reports why it is unhealthy) even while Coffer is
// down or sealed. Call Run to keep the token and key information fresh.
func NewTransit(cfg TransitConfig) (*Transit, error) {
	if cfg.Mount == "" {
		cfg.Mount = "transit"
	}
	cfg.Mount = strings.Trim(cfg.Mount, "/")
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.KeyPollInterval <= 0 {
		cfg.KeyPollInterval = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if !mountRe.MatchString(cfg.Mount) || strings.Contains("/"+cfg.Mount+"/", "/../") || strings.Contains("/"+cfg.Mount+"/", "/./") {
		return nil, fmt.Errorf("invalid transit mount path %q", cfg.Mount)
	}
	if cfg.Key == "" {
		return nil, errors.New("a transit key name is required")
	}
	if len(cfg.Key) > 256 || !keyNameRe.MatchString(cfg.Key) {
		return nil, fmt.Errorf("invalid transit key name %q (letters, digits and _, with - and . inside)", cfg.Key)
	}
	if n := len(TransitKeyID(cfg.Mount, cfg.Key, 999999999, 1<<62)); n > maxKeyIDLen {
		return nil, fmt.Errorf("mount path and key name are too long: key_ids would exceed %d bytes", maxKeyIDLen)
	}
	u, err := url.Parse(cfg.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("invalid Coffer address %q (want http(s)://host:port)", cfg.Address)
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CACert != "" {
		pem, err := os.ReadFile(cfg.CACert)
		if err != nil {
			return nil, fmt.Errorf("read CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA certificate %s: no PEM certificate found", cfg.CACert)
		}
		tlsConf.RootCAs = pool
	}
	methods := 0
	for _, set := range []bool{cfg.TokenFile != "", cfg.AppRole != nil, cfg.Kubernetes != nil} {
		if set {
			methods++
		}
	}
	switch {
	case methods > 1:
		return nil, errors.New("give one of a token file, AppRole credentials or a kubernetes role, not several")
	case cfg.TokenFile != "":
		if _, err := readSecretFile(cfg.TokenFile, "token"); err != nil {
			return nil, err
		}
	case cfg.AppRole != nil:
		if cfg.AppRole.Mount == "" {
			cfg.AppRole.Mount = "approle"
		}
		cfg.AppRole.Mount = strings.Trim(cfg.AppRole.Mount, "/")
		if !mountRe.MatchString(cfg.AppRole.Mount) {
			return nil, fmt.Errorf("invalid AppRole mount path %q", cfg.AppRole.Mount)
		}
		if _, err := readSecretFile(cfg.AppRole.RoleIDFile, "role_id"); err != nil {
			return nil, err
		}
		if _, err := readSecretFile(cfg.AppRole.SecretIDFile, "secret_id"); err != nil {
			return nil, err
		}
	case cfg.Kubernetes != nil:
		k := *cfg.Kubernetes
		if k.Mount == "" {
			k.Mount = "kubernetes"
		}
		k.Mount = strings.Trim(k.Mount, "/")
		if !mountRe.MatchString(k.Mount) {
			return nil, fmt.Errorf("invalid kubernetes auth mount path %q", k.Mount)
		}
		if k.Role == "" {
			return nil, errors.New("a kubernetes auth role is required")
		}
		if k.JWTFile == "" {
			k.JWTFile = DefaultServiceAccountTokenFile
		}
		// The file is not read here: a projected token may appear only
		// after the pod starts; login reports a missing file.
		cfg.Kubernetes = &k
	default:
		return nil, errors.New("a token file, AppRole credentials or a kubernetes role are required to reach Coffer")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	tr.Proxy = nil // the plugin talks to one known server; a proxy variable must not reroute key traffic
	tr.MaxIdleConnsPerHost = 64
	tr.ResponseHeaderTimeout = cfg.Timeout
	t := &Transit{cfg: cfg, base: u, hc: &http.Client{Transport: tr}, log: cfg.Logger}
	t.auth = newAuthenticator(t, cfg.TokenFile, cfg.AppRole, cfg.Kubernetes, cfg.Logger)
	return t, nil
}

// Describe names the key for logs.
func (t *Transit) Describe() string {
	return "transit key " + t.cfg.Mount + "/" + t.cfg.Key + " at " + t.base.Redacted()
}

// Run keeps the token renewed (logging in again when renewal fails) and
// polls the key's versions until ctx is done.
func (t *Transit) Run(ctx context.Context) {
	go t.auth.run(ctx)
	tick := time.NewTicker(t.cfg.KeyPollInterval)
	defer tick.Stop()
	for {
		if err := t.refreshKey(ctx); err != nil && ctx.Err() == nil {
			t.log.Debug("cannot read transit key", "key", t.cfg.Mount+"/"+t.cfg.Key, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Encrypt encrypts plaintext with the key's latest version.
func (t *Transit) Encrypt(ctx context.Context, plaintext []byte) ([]byte, string, error) {
	// Read the key first: transit's encrypt creates a missing key when the
	// token may create, and the plugin must never make a key up.
	if _, err := t.keyInfo(ctx, 0); err != nil {
		return nil, "", err
	}
	d, err := t.authedCall(ctx, http.MethodPost, t.cfg.Mount+"/encrypt/"+t.cfg.Key,
		map[string]any{"plaintext": base64.StdEncoding.EncodeToString(plaintext)})
	if err != nil {
		return nil, "", t.transitError(err)
	}
	ct, _ := d["ciphertext"].(string)
	v, err := CiphertextVersion(ct)
	if err != nil {
		return nil, "", fmt.Errorf("%w: transit answered a malformed ciphertext", ErrUnavailable)
	}
	id, err := t.keyID(ctx, v)
	if err != nil {
		return nil, "", err
	}
	return []byte(ct), id, nil
}

// Decrypt decrypts a ciphertext of the version keyID names. The key_id must
// be one of this key's (right mount, name, version and creation time) and
// agree with the version in the ciphertext.
func (t *Transit) Decrypt(ctx context.Context, keyID string, ciphertext []byte) ([]byte, error) {
	v, created, err := ParseTransitKeyID(keyID, t.cfg.Mount, t.cfg.Key)
	if err != nil {
		return nil, err
	}
	cv, err := CiphertextVersion(string(ciphertext))
	if err != nil {
		return nil, err
	}
	if cv != v {
		return nil, fmt.Errorf("%w: ciphertext is of key version %d but key_id names version %d", ErrInvalidCiphertext, cv, v)
	}
	info, err := t.keyInfo(ctx, v)
	if err != nil {
		return nil, err
	}
	if got, ok := info.created[v]; (!ok || got != created) && time.Since(info.fetched) > time.Second {
		// The key may have changed since the last poll (re-created).
		if err := t.refreshKey(ctx); err != nil {
			return nil, err
		}
		t.mu.Lock()
		info = t.info
		t.mu.Unlock()
	}
	if got, ok := info.created[v]; !ok || got != created {
		return nil, fmt.Errorf("%w: transit key %s/%s has no version %d created at %d (deleted, trimmed or re-created key)", ErrUnknownKeyID, t.cfg.Mount, t.cfg.Key, v, created)
	}
	d, err := t.authedCall(ctx, http.MethodPost, t.cfg.Mount+"/decrypt/"+t.cfg.Key,
		map[string]any{"ciphertext": string(ciphertext)})
	if err != nil {
		return nil, t.transitError(err)
	}
	b64, _ := d["plaintext"].(string)
	pt, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: transit answered malformed plaintext", ErrUnavailable)
	}
	return pt, nil
}

// CiphertextVersion parses a transit ciphertext, `vault:v<N>:<base64 of
// nonce || ciphertext || tag>`, and returns N. It accepts only the
// canonical form transit produces.
func CiphertextVersion(ct string) (int, error) {
	rest, ok := strings.CutPrefix(ct, "vault:v")
	if !ok {
		return 0, fmt.Errorf("%w: not a transit ciphertext", ErrInvalidCiphertext)
	}
	vs, b64, ok := strings.Cut(rest, ":")
	if !ok {
		return 0, fmt.Errorf("%w: not a transit ciphertext", ErrInvalidCiphertext)
	}
	v, err := parseCanonicalUint(vs, 9)
	if err != nil || v < 1 {
		return 0, fmt.Errorf("%w: bad key version in ciphertext", ErrInvalidCiphertext)
	}
	// The decoder skips newlines; a canonical ciphertext has none.
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || strings.ContainsAny(b64, "\r\n") {
		return 0, fmt.Errorf("%w: ciphertext is not valid base64", ErrInvalidCiphertext)
	}
	if len(raw) < 12+16 {
		return 0, fmt.Errorf("%w: ciphertext too short", ErrInvalidCiphertext)
	}
	return int(v), nil
}

// keyID returns the key_id of version v, reading the key if v is new.
func (t *Transit) keyID(ctx context.Context, v int) (string, error) {
	info, err := t.keyInfo(ctx, v)
	if err != nil {
		return "", err
	}
	created, ok := info.created[v]
	if !ok {
		return "", fmt.Errorf("%w: transit used key version %d, which the key does not list", ErrUnavailable, v)
	}
	return TransitKeyID(t.cfg.Mount, t.cfg.Key, v, created), nil
}

// keyInfo returns the cached key information, reading the key when
// nothing is cached or when version v (if > 0) is not known yet.
func (t *Transit) keyInfo(ctx context.Context, v int) (*keyInfo, error) {
	t.mu.Lock()
	info := t.info
	t.mu.Unlock()
	if info != nil && (v == 0 || v <= info.latest) {
		return info, nil
	}
	if err := t.refreshKey(ctx); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.info, nil
}

// refreshKey reads the key's versions.
func (t *Transit) refreshKey(ctx context.Context) error {
	t.refreshMu.Lock()
	defer t.refreshMu.Unlock()
	d, err := t.authedCall(ctx, http.MethodGet, t.cfg.Mount+"/keys/"+t.cfg.Key, nil)
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusNotFound {
		return fmt.Errorf("%w: transit key %s/%s does not exist (create it with: coffer write %s/keys/%s type=aes256-gcm96)", ErrKeyNotFound, t.cfg.Mount, t.cfg.Key, t.cfg.Mount, t.cfg.Key)
	}
	if err != nil {
		return t.transitError(err)
	}
	if enc, _ := d["supports_encryption"].(bool); !enc {
		return fmt.Errorf("%w: transit key %s/%s cannot encrypt (type %v)", ErrKeyNotFound, t.cfg.Mount, t.cfg.Key, d["type"])
	}
	if derived, _ := d["derived"].(bool); derived {
		return fmt.Errorf("%w: transit key %s/%s is derived; the plugin needs a key without derivation", ErrKeyNotFound, t.cfg.Mount, t.cfg.Key)
	}
	info := &keyInfo{created: map[int]int64{}, fetched: time.Now()}
	if info.latest, err = jsonInt(d["latest_version"]); err != nil || info.latest < 1 {
		return fmt.Errorf("%w: transit key has a malformed latest_version", ErrUnavailable)
	}
	info.minDecrypt, _ = jsonInt(d["min_decryption_version"])
	keys, _ := d["keys"].(map[string]any)
	for k, c := range keys {
		v, err := strconv.Atoi(k)
		if err != nil {
			continue
		}
		if info.created[v], err = jsonInt64(c); err != nil {
			return fmt.Errorf("%w: transit key version %d has a malformed creation time", ErrUnavailable, v)
		}
	}
	if _, ok := info.created[info.latest]; !ok {
		return fmt.Errorf("%w: transit key does not list its latest version", ErrUnavailable)
	}
	t.mu.Lock()
	old := t.info
	t.info = info
	t.mu.Unlock()
	if old != nil && old.latest != info.latest {
		t.log.Info("transit key rotated", "key", t.cfg.Mount+"/"+t.cfg.Key, "latest_version", info.latest,
			"key_id", TransitKeyID(t.cfg.Mount, t.cfg.Key, info.latest, info.created[info.latest]))
	}
	if old != nil && old.minDecrypt != info.minDecrypt {
		t.log.Info("transit key min_decryption_version changed", "key", t.cfg.Mount+"/"+t.cfg.Key, "min_decryption_version", info.minDecrypt)
	}
	return nil
}

// transitError classifies a transit 400/404 answer.
func (t *Transit) transitError(err error) error {
	var ae *apiError
	if !errors.As(err, &ae) {
		return err
	}
	msg := strings.Join(ae.errors, "; ")
	switch {
	// Vault's wording, which Coffer keeps (docs/transit.md).
	case strings.Contains(msg, "disallowed by policy"):
		return fmt.Errorf("%w: %s (below the key's min_decryption_version)", ErrKeyVersionDisabled, msg)
	case strings.Contains(msg, "encryption key not found"):
		return fmt.Errorf("%w: transit key %s/%s does not exist", ErrKeyNotFound, t.cfg.Mount, t.cfg.Key)
	case ae.status == http.StatusBadRequest:
		return fmt.Errorf("%w: transit refused it: %s", ErrInvalidCiphertext, msg)
	}
	return fmt.Errorf("%w: coffer answered %d: %s", ErrUnavailable, ae.status, msg)
}

// authedCall is call with the current token; a token Coffer refuses is
// replaced once (renewal may have failed while Coffer was away).
func (t *Transit) authedCall(ctx context.Context, method, path string, body any) (map[string]any, error) {
	tok, err := t.auth.token(ctx)
	if err != nil {
		return nil, err
	}
	d, err := t.call(ctx, method, path, body, tok)
	if !errors.Is(err, ErrPermissionDenied) {
		return d, err
	}
	fresh, lerr := t.auth.relogin(ctx, tok)
	if lerr != nil || fresh == tok {
		return nil, err
	}
	return t.call(ctx, method, path, body, fresh)
}

// apiError is an answer Coffer gave with a 4xx status other than 403 and
// 429, for the caller to interpret.
type apiError struct {
	status int
	errors []string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("coffer answered %d: %s", e.status, strings.Join(e.errors, "; "))
}

// maxResponse bounds what the plugin reads from Coffer.
const maxResponse = 1 << 20

// call sends one request to Coffer's /v1/ API and returns the answer's
// data (or, for logins, auth) object. Errors: ErrUnavailable (cannot reach,
// timeout, sealed = ErrSealed, 5xx, 429), ErrPermissionDenied (403), or
// *apiError.
func (t *Transit) call(ctx context.Context, method, path string, body any, token string) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(raw)
	}
	u := *t.base
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/" + path
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	req.Header.Set("X-Vault-Request", "true")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := t.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: coffer at %s did not answer within %s", ErrUnavailable, t.base.Redacted(), t.cfg.Timeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%w: cannot reach coffer at %s: %v", ErrUnavailable, t.base.Redacted(), err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("%w: reading coffer's answer: %v", ErrUnavailable, err)
	}
	var out struct {
		Data   map[string]any `json:"data"`
		Auth   map[string]any `json:"auth"`
		Errors []string       `json:"errors"`
	}
	if len(raw) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&out); err != nil && resp.StatusCode < 300 {
			return nil, fmt.Errorf("%w: coffer answered %d with a body that is not JSON", ErrUnavailable, resp.StatusCode)
		}
	}
	msg := strings.Join(out.Errors, "; ")
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(strings.ToLower(msg), "sealed"):
		return nil, fmt.Errorf("%w (at %s)", ErrSealed, t.base.Redacted())
	case resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%w on %s (check the token's policy)", ErrPermissionDenied, path)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return nil, fmt.Errorf("%w: coffer answered %d: %s", ErrUnavailable, resp.StatusCode, msg)
	case resp.StatusCode >= 300:
		return nil, &apiError{status: resp.StatusCode, errors: out.Errors}
	}
	if out.Auth != nil {
		return out.Auth, nil
	}
	return out.Data, nil
}

func jsonInt(v any) (int, error) {
	n, err := jsonInt64(v)
	if err != nil || n > 1<<31 {
		return 0, errors.New("not an int")
	}
	return int(n), err
}

func jsonInt64(v any) (int64, error) {
	switch n := v.(type) {
	case json.Number:
		return n.Int64()
	case float64:
		return int64(n), nil
	}
	return 0, errors.New("not a number")
}
