package database

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

const (
	// passwordLength and passwordAlphabet make Vault's default password
	// policy: 20 characters from [A-Za-z0-9-], with at least one
	// lowercase letter, one uppercase letter, one digit and one '-'.
	passwordLength   = 20
	passwordAlphabet = alnum + "-"

	passwordAuthPassword = "password"
	passwordAuthSCRAM    = "scram-sha-256"

	// scramIterations and scramSaltLen are PostgreSQL's own defaults
	// (scram_iterations, and the salt length of its verifiers).
	scramIterations = 4096
	scramSaltLen    = 16
)

// generatePassword returns a password that meets the default policy. None
// of its characters can close a quote or end a statement.
func generatePassword() (string, error) {
	for {
		p, err := randomFrom(passwordAlphabet, passwordLength)
		if err != nil {
			return "", fmt.Errorf("generate password: %w", err)
		}
		if strings.ContainsAny(p, "abcdefghijklmnopqrstuvwxyz") && strings.ContainsAny(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") &&
			strings.ContainsAny(p, "0123456789") && strings.Contains(p, "-") {
			return p, nil
		}
	}
}

// scramVerifier hashes password into the SCRAM-SHA-256 verifier that
// PostgreSQL stores (RFC 5802, RFC 7677):
//
//	SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>
//
// PostgreSQL stores a password given in this form as is, so with
// password_authentication=scram-sha-256 the plaintext never reaches the
// server, its statement log or its error log. The password must be ASCII
// without control characters, where SASLprep changes nothing (every
// password this engine generates is).
func scramVerifier(password string) (string, error) {
	salt := make([]byte, scramSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("scram salt: %w", err)
	}
	return scramVerifierWith(password, salt, scramIterations)
}

func scramVerifierWith(password string, salt []byte, iterations int) (string, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("scram: %w", err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return "SCRAM-SHA-256$" + strconv.Itoa(iterations) + ":" + b64(salt) + "$" + b64(storedKey[:]) + ":" + b64(serverKey), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// passwordSecret is what {{password}} becomes in statements: the
// password itself, or its SCRAM verifier.
func passwordSecret(auth, password string) (string, error) {
	if auth == passwordAuthSCRAM {
		return scramVerifier(password)
	}
	return password, nil
}
