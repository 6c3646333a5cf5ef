package fileenc

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// VaultClient talks to the transit engine of a Vault-compatible server
// (Coffer, Vault, OpenBao) for the hc_vault key source: the data key is
// sent base64-encoded to <engine>/encrypt/<key> and the "vault:v1:..."
// ciphertext stored in "enc"; decryption posts it to <engine>/decrypt/<key>.
type VaultClient struct {
	// Token authenticates the requests.
	Token string
	// HTTP is the client to use; nil uses a client with a 30 s timeout.
	HTTP *http.Client
}

// VaultURI is a parsed transit key URI:
// https://host:8200/v1/<engine path>/keys/<key name>.
type VaultURI struct {
	Address    string
	EnginePath string
	KeyName    string
}

func (u VaultURI) String() string {
	return u.Address + "/v1/" + u.EnginePath + "/keys/" + u.KeyName
}

// ParseVaultURI parses a transit key URI as sops takes it in
// --hc-vault-transit and hc_vault_transit_uri.
func ParseVaultURI(s string) (VaultURI, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return VaultURI{}, fmt.Errorf("invalid transit key URI %q (want https://host:port/v1/<engine>/keys/<name>)", truncate(s, 100))
	}
	p := strings.Trim(u.Path, "/")
	rest, ok := strings.CutPrefix(p, "v1/")
	i := strings.LastIndex(rest, "/keys/")
	if !ok || i <= 0 || strings.Contains(rest[i+len("/keys/"):], "/") || rest[i+len("/keys/"):] == "" {
		return VaultURI{}, fmt.Errorf("invalid transit key URI %q (want https://host:port/v1/<engine>/keys/<name>)", truncate(s, 100))
	}
	return VaultURI{Address: u.Scheme + "://" + u.Host, EnginePath: rest[:i], KeyName: rest[i+len("/keys/"):]}, nil
}

func (c *VaultClient) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// Encrypt encrypts secret with the transit key.
func (c *VaultClient) Encrypt(ctx context.Context, u VaultURI, secret []byte) (VaultKey, error) {
	var out struct {
		Data struct {
			Ciphertext string `json:"ciphertext"`
		} `json:"data"`
	}
	body := map[string]string{"plaintext": base64.StdEncoding.EncodeToString(secret)}
	if err := c.post(ctx, u, "encrypt", body, &out); err != nil {
		return VaultKey{}, err
	}
	if !strings.HasPrefix(out.Data.Ciphertext, "vault:") {
		return VaultKey{}, fmt.Errorf("transit key %s: the server returned no ciphertext", u)
	}
	return VaultKey{
		VaultAddress: u.Address, EnginePath: u.EnginePath, KeyName: u.KeyName,
		CreatedAt: time.Now().UTC().Format(time.RFC3339), Enc: out.Data.Ciphertext,
	}, nil
}

// Decrypt opens an hc_vault key's "enc".
func (c *VaultClient) Decrypt(ctx context.Context, k VaultKey) ([]byte, error) {
	u := VaultURI{Address: strings.TrimRight(k.VaultAddress, "/"), EnginePath: strings.Trim(k.EnginePath, "/"), KeyName: k.KeyName}
	var out struct {
		Data struct {
			Plaintext string `json:"plaintext"`
		} `json:"data"`
	}
	if err := c.post(ctx, u, "decrypt", map[string]string{"ciphertext": k.Enc}, &out); err != nil {
		return nil, err
	}
	secret, err := base64.StdEncoding.DecodeString(out.Data.Plaintext)
	if err != nil {
		return nil, fmt.Errorf("transit key %s: the server returned a plaintext that is not base64", u)
	}
	return secret, nil
}

func (c *VaultClient) post(ctx context.Context, u VaultURI, op string, body any, out any) error {
	if c == nil {
		return errors.New("no transit server configured")
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	endpoint := u.Address + "/v1/" + u.EnginePath + "/" + op + "/" + url.PathEscape(u.KeyName)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("transit key %s: %w", u, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Vault-Request", "true")
	if c.Token != "" {
		req.Header.Set("X-Vault-Token", c.Token)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("transit key %s: cannot reach the server: %w", u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("transit key %s: %w", u, err)
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Errors []string `json:"errors"`
		}
		_ = json.Unmarshal(data, &e)
		msg := strings.Join(e.Errors, "; ")
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return fmt.Errorf("transit key %s: %s %s: server answered %d: %s", u, op, u.KeyName, resp.StatusCode, truncate(msg, 300))
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("transit key %s: the server sent a body that is not JSON", u)
	}
	return nil
}
