package kubernetes

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
)

const configKey = "config"

// config is the method's connection to the Kubernetes API server.
type config struct {
	Host   string `json:"kubernetes_host"`
	CACert string `json:"kubernetes_ca_cert,omitempty"`
	// TokenReviewerJWT is a credential: it is stored behind the barrier
	// and never returned by a read.
	TokenReviewerJWT     string   `json:"token_reviewer_jwt,omitempty"`
	PEMKeys              []string `json:"pem_keys,omitempty"`
	Issuer               string   `json:"issuer,omitempty"`
	DisableIssValidation bool     `json:"disable_iss_validation,omitempty"`
	DisableLocalCAJWT    bool     `json:"disable_local_ca_jwt,omitempty"`
}

var configFields = []string{
	"kubernetes_host", "kubernetes_ca_cert", "token_reviewer_jwt", "pem_keys",
	"issuer", "disable_iss_validation", "disable_local_ca_jwt",
}

func (b *Backend) loadConfig(ctx context.Context) (*config, error) {
	e, err := b.store.Get(ctx, configKey)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes: read config: %w", err)
	}
	var c config
	if err := json.Unmarshal(e.Value, &c); err != nil {
		return nil, fmt.Errorf("kubernetes: decode config: %w", err)
	}
	return &c, nil
}

func (b *Backend) handleConfig(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	switch req.Operation {
	case logical.ReadOperation:
		c, err := b.loadConfig(ctx)
		if err != nil {
			return nil, err
		}
		if c == nil {
			return nil, logical.ErrNotFound
		}
		keys := c.PEMKeys
		if keys == nil {
			keys = []string{}
		}
		return &logical.Response{Data: map[string]any{
			"kubernetes_host":        c.Host,
			"kubernetes_ca_cert":     c.CACert,
			"pem_keys":               keys,
			"issuer":                 c.Issuer,
			"disable_iss_validation": c.DisableIssValidation,
			"disable_local_ca_jwt":   c.DisableLocalCAJWT,
			"token_reviewer_jwt_set": c.TokenReviewerJWT != "",
		}}, nil
	case logical.CreateOperation, logical.UpdateOperation:
	default:
		return nil, logical.ErrUnsupportedOperation
	}
	c, err := parseConfig(req.Data)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: encode config: %w", err)
	}
	if err := b.store.Put(ctx, &storage.Entry{Key: configKey, Value: raw}); err != nil {
		return nil, fmt.Errorf("kubernetes: write config: %w", err)
	}
	return &logical.Response{Status: 204}, nil
}

// parseConfig validates a config write. A write replaces the whole
// config, as in Vault.
func parseConfig(d map[string]any) (*config, error) {
	if err := logical.CheckFields(d, configFields...); err != nil {
		return nil, err
	}
	var c config
	var err error
	if c.Host, err = logical.ParseString("kubernetes_host", d["kubernetes_host"]); err != nil {
		return nil, err
	}
	c.Host = strings.TrimRight(strings.TrimSpace(c.Host), "/")
	if c.Host == "" {
		return nil, logical.BadRequest("missing kubernetes_host")
	}
	u, err := url.Parse(c.Host)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, logical.BadRequest("kubernetes_host must be an http(s) URL such as https://10.0.0.1:443")
	}
	if c.CACert, err = logical.ParseString("kubernetes_ca_cert", d["kubernetes_ca_cert"]); err != nil {
		return nil, err
	}
	if c.CACert = strings.TrimSpace(c.CACert); c.CACert != "" {
		if _, err := parseCerts(c.CACert); err != nil {
			return nil, logical.BadRequest("kubernetes_ca_cert: %v", err)
		}
	}
	if c.TokenReviewerJWT, err = logical.ParseString("token_reviewer_jwt", d["token_reviewer_jwt"]); err != nil {
		return nil, err
	}
	c.TokenReviewerJWT = strings.TrimSpace(c.TokenReviewerJWT)
	if len(c.TokenReviewerJWT) > maxJWTLen {
		return nil, logical.BadRequest("token_reviewer_jwt is too long")
	}
	if c.PEMKeys, err = logical.ParseStrings("pem_keys", d["pem_keys"]); err != nil {
		return nil, err
	}
	if _, err := parsePublicKeys(c.PEMKeys); err != nil {
		return nil, logical.BadRequest("pem_keys: %v", err)
	}
	if c.Issuer, err = logical.ParseString("issuer", d["issuer"]); err != nil {
		return nil, err
	}
	if c.DisableIssValidation, err = logical.ParseBool("disable_iss_validation", d["disable_iss_validation"]); err != nil {
		return nil, err
	}
	if c.DisableLocalCAJWT, err = logical.ParseBool("disable_local_ca_jwt", d["disable_local_ca_jwt"]); err != nil {
		return nil, err
	}
	return &c, nil
}

// parseCerts decodes one or more PEM certificates.
func parseCerts(s string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := []byte(s)
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unexpected PEM block %q", blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("invalid certificate: %v", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return out, nil
}

// parsePublicKeys decodes the pem_keys list: PEM public keys (PKIX or
// PKCS#1 RSA) or certificates whose keys are used. Only RSA and ECDSA keys
// are accepted, the algorithms Kubernetes signs service account tokens
// with.
func parsePublicKeys(list []string) ([]crypto.PublicKey, error) {
	var out []crypto.PublicKey
	for i, s := range list {
		rest := []byte(s)
		n := 0
		for {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			n++
			var k any
			var err error
			switch blk.Type {
			case "PUBLIC KEY":
				k, err = x509.ParsePKIXPublicKey(blk.Bytes)
			case "RSA PUBLIC KEY":
				k, err = x509.ParsePKCS1PublicKey(blk.Bytes)
			case "CERTIFICATE":
				var c *x509.Certificate
				if c, err = x509.ParseCertificate(blk.Bytes); err == nil {
					k = c.PublicKey
				}
			default:
				err = fmt.Errorf("unexpected PEM block %q", blk.Type)
			}
			if err != nil {
				return nil, fmt.Errorf("key %d: %v", i, err)
			}
			switch k.(type) {
			case *rsa.PublicKey, *ecdsa.PublicKey:
			default:
				return nil, fmt.Errorf("key %d: only RSA and ECDSA keys are supported", i)
			}
			out = append(out, k)
		}
		if n == 0 {
			return nil, fmt.Errorf("key %d: no PEM block found", i)
		}
	}
	return out, nil
}
