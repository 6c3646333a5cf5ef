package sealedsecrets

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"time"
)

// Defaults of the Bitnami controller, kept so that keys made here look
// like its keys to every tool (kubeseal --fetch-cert, backups, recovery).
const (
	DefaultKeySize  = 4096
	DefaultValidFor = 10 * 365 * 24 * time.Hour
)

const redacted = "[REDACTED]"

// Key is a controller key pair: an RSA private key and the self-signed
// certificate kubeseal encrypts to. It cannot be compared with == and
// prints as [REDACTED] with every fmt verb, in JSON and in slog.
type Key struct {
	_    [0]func()
	priv *rsa.PrivateKey
	cert *x509.Certificate
}

// GenerateKey makes a key pair as the Bitnami controller does: an RSA key
// of bits bits and a self-signed CA certificate with a random 128-bit
// serial, key usage "encipher only", issuer and subject CN = cn, valid
// from now for validFor.
func GenerateKey(bits int, validFor time.Duration, cn string) (*Key, error) {
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, fmt.Errorf("sealedsecrets: generate RSA key: %w", err)
	}
	return SelfSign(priv, time.Now(), validFor, cn)
}

// SelfSign wraps priv with a new self-signed certificate valid from
// notBefore for validFor (see GenerateKey).
func SelfSign(priv *rsa.PrivateKey, notBefore time.Time, validFor time.Duration, cn string) (*Key, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("sealedsecrets: certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		Issuer:                pkix.Name{CommonName: cn},
		NotBefore:             notBefore.UTC(),
		NotAfter:              notBefore.Add(validFor).UTC(),
		KeyUsage:              x509.KeyUsageEncipherOnly,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, fmt.Errorf("sealedsecrets: self-sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("sealedsecrets: parse new certificate: %w", err)
	}
	return &Key{priv: priv, cert: cert}, nil
}

// ParseKeyPair reads a key pair as stored in a controller key Secret:
// tls.key (PEM, PKCS#1 "RSA PRIVATE KEY" or PKCS#8 "PRIVATE KEY") and
// tls.crt (PEM; the first certificate is used). The certificate must
// belong to the private key.
func ParseKeyPair(keyPEM, certPEM []byte) (*Key, error) {
	priv, err := ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	cert, err := ParseCertificatePEM(certPEM)
	if err != nil {
		return nil, err
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&priv.PublicKey) {
		return nil, errors.New("sealedsecrets: certificate does not match the private key")
	}
	return &Key{priv: priv, cert: cert}, nil
}

// ParsePrivateKeyPEM reads the first private key block of b (PKCS#1 or
// PKCS#8, RSA only). Errors never quote the input.
func ParsePrivateKeyPEM(b []byte) (*rsa.PrivateKey, error) {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil, errors.New("sealedsecrets: no PEM private key found")
		}
		switch block.Type {
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, errors.New("sealedsecrets: invalid PKCS#1 private key")
			}
			return k, nil
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, errors.New("sealedsecrets: invalid PKCS#8 private key")
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("sealedsecrets: private key: %w", ErrNotRSA)
			}
			return rk, nil
		}
	}
}

// ParseCertificatePEM returns the first certificate in b.
func ParseCertificatePEM(b []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil, errors.New("sealedsecrets: no PEM certificate found")
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("sealedsecrets: parse certificate: %w", err)
		}
		return c, nil
	}
}

// PublicKeyFromCertPEM returns the RSA key of the first certificate in b,
// as kubeseal does: a certificate past its NotAfter is refused.
func PublicKeyFromCertPEM(b []byte, now time.Time) (*rsa.PublicKey, error) {
	c, err := ParseCertificatePEM(b)
	if err != nil {
		return nil, err
	}
	pub, ok := c.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("sealedsecrets: certificate: %w", ErrNotRSA)
	}
	if now.After(c.NotAfter) {
		return nil, fmt.Errorf("sealedsecrets: %w on %s", ErrExpiredCert, c.NotAfter.Format("January 2, 2006"))
	}
	return pub, nil
}

// Public returns the public key.
func (k *Key) Public() *rsa.PublicKey { return &k.priv.PublicKey }

// Certificate returns the certificate.
func (k *Key) Certificate() *x509.Certificate { return k.cert }

// NotBefore is the certificate's start of validity. The Bitnami controller
// orders keys by it: the key with the latest NotBefore seals.
func (k *Key) NotBefore() time.Time { return k.cert.NotBefore }

// CertPEM returns the certificate, PEM encoded.
func (k *Key) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.cert.Raw})
}

// PrivateKeyPEM returns the private key as PKCS#1 PEM ("RSA PRIVATE
// KEY"), the encoding of tls.key in the controller's key Secrets.
func (k *Key) PrivateKeyPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.priv)})
}

// Fingerprint identifies the public key: "SHA256:" and the unpadded
// base64 of SHA-256 over the SSH wire encoding of the RSA public key, the
// form the Bitnami controller and ssh-keygen print.
func (k *Key) Fingerprint() string { return Fingerprint(k.Public()) }

// Fingerprint is Key.Fingerprint for a bare public key.
func Fingerprint(pub *rsa.PublicKey) string {
	var b bytes.Buffer
	writeSSHString(&b, []byte("ssh-rsa"))
	writeSSHString(&b, sshMPInt(big.NewInt(int64(pub.E))))
	writeSSHString(&b, sshMPInt(pub.N))
	sum := sha256.Sum256(b.Bytes())
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

func writeSSHString(b *bytes.Buffer, s []byte) {
	var n [4]byte
	n[0], n[1], n[2], n[3] = byte(len(s)>>24), byte(len(s)>>16), byte(len(s)>>8), byte(len(s))
	b.Write(n[:])
	b.Write(s)
}

// sshMPInt is the RFC 4251 mpint encoding of a non-negative integer.
func sshMPInt(x *big.Int) []byte {
	b := x.Bytes()
	if len(b) > 0 && b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return b
}

// Equal reports whether two keys hold the same private key.
func (k *Key) Equal(o *Key) bool {
	return k != nil && o != nil && k.priv.Equal(o.priv)
}

// String returns [REDACTED].
func (*Key) String() string { return redacted }

// GoString returns [REDACTED], for %#v.
func (*Key) GoString() string { return redacted }

// Format prints [REDACTED] whatever the verb.
func (*Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalJSON returns the JSON string "[REDACTED]".
func (*Key) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// LogValue implements slog.LogValuer.
func (*Key) LogValue() slog.Value { return slog.StringValue(redacted) }
