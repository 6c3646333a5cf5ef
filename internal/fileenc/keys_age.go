package fileenc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// encryptAge encrypts the data key (or a share) to an age recipient in the
// armored format sops stores in "enc".
func encryptAge(recipient string, secret []byte) (AgeKey, error) {
	r, err := parseAgeRecipient(recipient)
	if err != nil {
		return AgeKey{}, err
	}
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, r)
	if err != nil {
		return AgeKey{}, fmt.Errorf("age: %w", err)
	}
	if _, err := w.Write(secret); err != nil {
		return AgeKey{}, fmt.Errorf("age: %w", err)
	}
	if err := w.Close(); err != nil {
		return AgeKey{}, fmt.Errorf("age: %w", err)
	}
	if err := aw.Close(); err != nil {
		return AgeKey{}, fmt.Errorf("age: %w", err)
	}
	enc := buf.String()
	if !strings.HasSuffix(enc, "\n") {
		enc += "\n"
	}
	return AgeKey{Recipient: recipient, Enc: enc}, nil
}

func parseAgeRecipient(s string) (age.Recipient, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "ssh-") {
		return nil, fmt.Errorf("%w: age recipient %q: SSH keys are not supported, use an age X25519 key (age1...)", ErrUnsupported, truncate(s, 30))
	}
	r, err := age.ParseX25519Recipient(s)
	if err != nil {
		return nil, fmt.Errorf("invalid age recipient %q: %w", truncate(s, 70), err)
	}
	return r, nil
}

// ParseAgeRecipients checks a comma-separated list of age recipients and
// returns them.
func ParseAgeRecipients(list string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if _, err := parseAgeRecipient(s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// decryptAge opens an "enc" value with the identities.
func decryptAge(k AgeKey, ids []age.Identity) ([]byte, error) {
	if len(ids) == 0 {
		return nil, errors.New("no age identity found (set SOPS_AGE_KEY, SOPS_AGE_KEY_FILE or create ~/.config/sops/age/keys.txt)")
	}
	var src io.Reader = strings.NewReader(strings.TrimLeft(k.Enc, " \n"))
	if strings.HasPrefix(strings.TrimSpace(k.Enc), armor.Header) {
		src = armor.NewReader(src)
	}
	r, err := age.Decrypt(src, ids...)
	if err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	secret, err := io.ReadAll(io.LimitReader(r, 1024))
	if err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	return secret, nil
}

// AgeIdentityEnv is the environment the age identity lookup reads.
type AgeIdentityEnv struct {
	Getenv  func(string) string
	HomeDir func() (string, error)
}

// LoadAgeIdentities finds age identities as sops does, from every source
// that is set: SOPS_AGE_KEY (the keys themselves), SOPS_AGE_KEY_FILE, and
// the default file $XDG_CONFIG_HOME/sops/age/keys.txt
// (~/.config/sops/age/keys.txt when XDG_CONFIG_HOME is unset). Missing
// sources are skipped; a source that is set but unreadable or malformed
// is an error. It returns the identities and the places they came from.
func LoadAgeIdentities(env AgeIdentityEnv) ([]age.Identity, []string, error) {
	var ids []age.Identity
	var from []string
	add := func(src, text string) error {
		parsed, err := parseIdentities(text)
		if err != nil {
			return fmt.Errorf("age identities from %s: %w", src, err)
		}
		ids = append(ids, parsed...)
		from = append(from, src)
		return nil
	}
	if v := env.Getenv("SOPS_AGE_KEY"); v != "" {
		if err := add("SOPS_AGE_KEY", v); err != nil {
			return nil, nil, err
		}
	}
	if p := env.Getenv("SOPS_AGE_KEY_FILE"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, fmt.Errorf("SOPS_AGE_KEY_FILE: %w", err)
		}
		if err := add(p, string(b)); err != nil {
			return nil, nil, err
		}
	}
	if p := defaultAgeKeyFile(env); p != "" {
		b, err := os.ReadFile(p)
		switch {
		case err == nil:
			if err := add(p, string(b)); err != nil {
				return nil, nil, err
			}
		case !errors.Is(err, os.ErrNotExist):
			return nil, nil, fmt.Errorf("read %s: %w", p, err)
		}
	}
	return ids, from, nil
}

func defaultAgeKeyFile(env AgeIdentityEnv) string {
	dir := env.Getenv("XDG_CONFIG_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		if env.HomeDir == nil {
			return ""
		}
		home, err := env.HomeDir()
		if err != nil || home == "" {
			return ""
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "sops", "age", "keys.txt")
}

// parseIdentities reads X25519 identities, one per line, skipping
// comments and blank lines. Errors never include the key material.
func parseIdentities(text string) ([]age.Identity, error) {
	var ids []age.Identity
	sc := bufio.NewScanner(strings.NewReader(text))
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "AGE-PLUGIN-") {
			return nil, fmt.Errorf("%w: line %d is an age plugin identity", ErrUnsupported, line)
		}
		id, err := age.ParseX25519Identity(l)
		if err != nil {
			return nil, fmt.Errorf("line %d is not an age X25519 identity (AGE-SECRET-KEY-1...)", line)
		}
		ids = append(ids, id)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, errors.New("no identity found")
	}
	return ids, nil
}
