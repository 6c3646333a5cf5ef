package kubernetes

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	_ "crypto/sha256" // SHA-256 for RS256, PS256, ES256
	_ "crypto/sha512" // SHA-384 and SHA-512
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"strings"
	"time"
)

// maxJWTLen bounds the token accepted at login. Service account tokens
// are around 1 KiB; 16 KiB leaves room for large extra claims.
const maxJWTLen = 16 << 10

// jwt is a compact JWS split into its parts. Nothing in it is trusted
// until the API server has reviewed the token (or, with pem_keys, the
// signature has been verified).
type jwt struct {
	alg          string
	claims       claims
	signingInput string // header.payload, as signed
	signature    []byte
}

// claims are the parts of a Kubernetes service account token Coffer reads.
// Both token forms are understood: projected (bound) tokens carry a
// "kubernetes.io" object; legacy Secret-based tokens carry flat
// "kubernetes.io/serviceaccount/..." claims.
type claims struct {
	Issuer    string
	Subject   string
	Audience  []string
	Expiry    time.Time // zero when absent
	NotBefore time.Time // zero when absent
	Namespace string
	Name      string
	UID       string
}

type rawHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Kid string `json:"kid"`
}

type rawClaims struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Aud json.RawMessage `json:"aud"`
	Exp json.RawMessage `json:"exp"`
	Nbf json.RawMessage `json:"nbf"`
	K8s *struct {
		Namespace      string `json:"namespace"`
		ServiceAccount *struct {
			Name string `json:"name"`
			UID  string `json:"uid"`
		} `json:"serviceaccount"`
	} `json:"kubernetes.io"`
	LegacyNamespace string `json:"kubernetes.io/serviceaccount/namespace"`
	LegacyName      string `json:"kubernetes.io/serviceaccount/service-account.name"`
	LegacyUID       string `json:"kubernetes.io/serviceaccount/service-account.uid"`
}

// parseJWT splits and decodes a compact JWS without verifying it. Errors
// are *ParseError and never quote the token.
func parseJWT(s string) (*jwt, error) {
	if len(s) > maxJWTLen {
		return nil, &ParseError{Err: errTooLong}
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return nil, &ParseError{Err: errNotJWT}
	}
	hb, err := b64(parts[0])
	if err != nil {
		return nil, &ParseError{Part: "header", Err: errBadEncoding}
	}
	pb, err := b64(parts[1])
	if err != nil {
		return nil, &ParseError{Part: "payload", Err: errBadEncoding}
	}
	sig, err := b64(parts[2])
	if err != nil {
		return nil, &ParseError{Part: "signature", Err: errBadEncoding}
	}
	var h rawHeader
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, &ParseError{Part: "header", Err: errBadJSON}
	}
	if h.Alg == "" {
		return nil, &ParseError{Part: "header", Err: errors.New("no alg")}
	}
	var rc rawClaims
	dec := json.NewDecoder(bytes.NewReader(pb))
	dec.UseNumber()
	if err := dec.Decode(&rc); err != nil {
		return nil, &ParseError{Part: "payload", Err: errBadJSON}
	}
	c := claims{Issuer: rc.Iss, Subject: rc.Sub}
	if c.Audience, err = parseAudience(rc.Aud); err != nil {
		return nil, &ParseError{Part: "payload", Err: err}
	}
	if c.Expiry, err = parseNumericDate("exp", rc.Exp); err != nil {
		return nil, &ParseError{Part: "payload", Err: err}
	}
	if c.NotBefore, err = parseNumericDate("nbf", rc.Nbf); err != nil {
		return nil, &ParseError{Part: "payload", Err: err}
	}
	if rc.K8s != nil {
		c.Namespace = rc.K8s.Namespace
		if rc.K8s.ServiceAccount != nil {
			c.Name, c.UID = rc.K8s.ServiceAccount.Name, rc.K8s.ServiceAccount.UID
		}
	} else {
		c.Namespace, c.Name, c.UID = rc.LegacyNamespace, rc.LegacyName, rc.LegacyUID
	}
	return &jwt{alg: h.Alg, claims: c, signingInput: parts[0] + "." + parts[1], signature: sig}, nil
}

// b64 decodes base64url with or without padding.
func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func parseAudience(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, errors.New("aud must be a string or a list of strings")
	}
	return many, nil
}

func parseNumericDate(name string, raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return time.Time{}, errors.New(name + " must be a number")
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < 0 || f > 1e11 {
		return time.Time{}, errors.New(name + " is out of range")
	}
	return time.Unix(int64(f), 0), nil
}

// verify checks the token's signature with any of keys and its time
// claims against now. It returns errBadSignature when no key verifies.
func (t *jwt) verify(keys []crypto.PublicKey, now time.Time) error {
	h, ok := hashFor(t.alg)
	if !ok {
		return &ParseError{Part: "header", Err: errors.New("unsupported signing algorithm")}
	}
	hh := h.New()
	hh.Write([]byte(t.signingInput))
	digest := hh.Sum(nil)
	verified := false
	for _, k := range keys {
		switch k := k.(type) {
		case *rsa.PublicKey:
			switch t.alg[:2] {
			case "RS":
				verified = rsa.VerifyPKCS1v15(k, h, digest, t.signature) == nil
			case "PS":
				verified = rsa.VerifyPSS(k, h, digest, t.signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
			}
		case *ecdsa.PublicKey:
			if t.alg[:2] != "ES" {
				continue
			}
			size := (k.Curve.Params().BitSize + 7) / 8
			if len(t.signature) != 2*size {
				continue
			}
			r := new(big.Int).SetBytes(t.signature[:size])
			s := new(big.Int).SetBytes(t.signature[size:])
			verified = ecdsa.Verify(k, digest, r, s)
		}
		if verified {
			break
		}
	}
	if !verified {
		return errBadSignature
	}
	const skew = time.Minute
	if !t.claims.Expiry.IsZero() && now.After(t.claims.Expiry) {
		return errors.New("token has expired")
	}
	if !t.claims.NotBefore.IsZero() && now.Add(skew).Before(t.claims.NotBefore) {
		return errors.New("token is not valid yet")
	}
	return nil
}

func hashFor(alg string) (crypto.Hash, bool) {
	switch alg {
	case "RS256", "PS256", "ES256":
		return crypto.SHA256, true
	case "RS384", "PS384", "ES384":
		return crypto.SHA384, true
	case "RS512", "PS512", "ES512":
		return crypto.SHA512, true
	}
	return 0, false
}
