package sealedsecrets_test

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/coffer-dev/coffer/internal/sealedsecrets"
	"github.com/coffer-dev/coffer/internal/sealedsecrets/sealedsecretstest"
)

// The certificate looks like the Bitnami controller's.
func TestGenerateKeyCertificateShape(t *testing.T) {
	before := time.Now().Add(-time.Second)
	k, err := sealedsecrets.GenerateKey(2048, sealedsecrets.DefaultValidFor, "sealed-secrets")
	if err != nil {
		t.Fatal(err)
	}
	c := k.Certificate()
	if c.Subject.CommonName != "sealed-secrets" || c.Issuer.CommonName != "sealed-secrets" {
		t.Errorf("subject/issuer = %q/%q", c.Subject.CommonName, c.Issuer.CommonName)
	}
	if !c.IsCA || !c.BasicConstraintsValid {
		t.Error("certificate is not a CA with basic constraints")
	}
	if c.KeyUsage != x509.KeyUsageEncipherOnly {
		t.Errorf("KeyUsage = %v, want encipher only", c.KeyUsage)
	}
	if c.NotBefore.Before(before.Truncate(time.Second)) || c.NotAfter.Sub(c.NotBefore) != sealedsecrets.DefaultValidFor {
		t.Errorf("validity %v .. %v", c.NotBefore, c.NotAfter)
	}
	if c.SerialNumber.BitLen() > 128 || c.SerialNumber.Sign() <= 0 {
		t.Errorf("serial %v", c.SerialNumber)
	}
	// Key usage is "encipher only" (no cert sign), as Bitnami's, so check
	// the signature itself rather than the chain rules.
	if err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if k.Public().N.BitLen() != 2048 {
		t.Errorf("key size %d", k.Public().N.BitLen())
	}
	// The default size is Bitnami's.
	if sealedsecrets.DefaultKeySize != 4096 || sealedsecrets.DefaultValidFor != 10*365*24*time.Hour {
		t.Error("defaults differ from the Bitnami controller's")
	}
}

func TestKeyPEMRoundTrip(t *testing.T) {
	k := sealedsecretstest.Key(t, "key")
	if !strings.HasPrefix(string(k.PrivateKeyPEM()), "-----BEGIN RSA PRIVATE KEY-----") {
		t.Error("tls.key is not PKCS#1")
	}
	k2, err := sealedsecrets.ParseKeyPair(k.PrivateKeyPEM(), k.CertPEM())
	if err != nil {
		t.Fatal(err)
	}
	if !k.Equal(k2) {
		t.Error("round trip changed the key")
	}
	other := sealedsecretstest.Key(t, "key2")
	if _, err := sealedsecrets.ParseKeyPair(k.PrivateKeyPEM(), other.CertPEM()); err == nil {
		t.Error("ParseKeyPair accepted a certificate of another key")
	}
	for _, bad := range []string{"", "garbage", "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"} {
		if _, err := sealedsecrets.ParsePrivateKeyPEM([]byte(bad)); err == nil {
			t.Errorf("ParsePrivateKeyPEM(%q) succeeded", bad)
		} else if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("error quotes the input: %v", err)
		}
	}
}

func TestPublicKeyFromCertPEMRefusesExpired(t *testing.T) {
	k := sealedsecretstest.Key(t, "key2")
	if _, err := sealedsecrets.PublicKeyFromCertPEM(k.CertPEM(), time.Now()); err != nil {
		t.Fatal(err)
	}
	_, err := sealedsecrets.PublicKeyFromCertPEM(k.CertPEM(), time.Now().Add(11*365*24*time.Hour))
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired cert: %v", err)
	}
}

// The fingerprint matches ssh-keygen's (x/crypto/ssh computes it here).
func TestFingerprint(t *testing.T) {
	for _, name := range []string{"key", "key2"} {
		k := sealedsecretstest.Key(t, name)
		sp, err := ssh.NewPublicKey(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		if got, want := k.Fingerprint(), ssh.FingerprintSHA256(sp); got != want {
			t.Errorf("Fingerprint = %q, want %q", got, want)
		}
	}
}

func TestKeyIsRedacted(t *testing.T) {
	k := sealedsecretstest.Key(t, "key2")
	pemKey, _ := os.ReadFile(filepath.Join("testdata", "key2.pem"))
	body := strings.Split(string(pemKey), "\n")[1]
	var sb strings.Builder
	h := slog.NewTextHandler(&sb, nil)
	slog.New(h).Info("k", "key", k)
	js, _ := json.Marshal(map[string]any{"k": k})
	outs := []string{fmt.Sprint(k), fmt.Sprintf("%#v %v %x %s %+v", k, k, k, k, k), sb.String(), string(js)}
	for _, o := range outs {
		if strings.Contains(o, body[:20]) || strings.Contains(o, k.Public().N.String()[:20]) {
			t.Errorf("key material printed: %s", o)
		}
		if !strings.Contains(o, "[REDACTED]") {
			t.Errorf("output %q lacks [REDACTED]", o)
		}
	}
}
