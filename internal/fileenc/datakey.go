package fileenc

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"filippo.io/age"

	"github.com/coffer-dev/coffer/internal/shamir"
)

// KeyGroupSpec names the master keys of one key group.
type KeyGroupSpec struct {
	Age   []string   // age X25519 recipients (age1...)
	Vault []VaultURI // transit keys
}

func (g KeyGroupSpec) empty() bool { return len(g.Age) == 0 && len(g.Vault) == 0 }

// Keys are the means to reach master keys: age identities to decrypt, and
// a transit client for hc_vault keys (nil: none).
type Keys struct {
	AgeIdentities []age.Identity
	Vault         *VaultClient
}

// newDataKey returns a fresh random 32-byte data key.
func newDataKey() ([]byte, error) {
	dk := make([]byte, keySize)
	if _, err := rand.Read(dk); err != nil {
		return nil, fmt.Errorf("read random data key: %w", err)
	}
	return dk, nil
}

// splitDataKey splits the data key into one share per key group, any
// threshold of which recover it. Shares are HashiCorp's (and sops')
// format: the y-values then the x-coordinate as the last byte, which is
// internal/shamir's format too.
func splitDataKey(dk []byte, groups, threshold int) ([][]byte, error) {
	if threshold < 2 || threshold > groups {
		return nil, fmt.Errorf("%w: shamir_threshold must be between 2 and the number of key groups (%d), got %d; to let any single group decrypt, put all the keys in one group", ErrInvalidKeyGroups, groups, threshold)
	}
	return shamir.Split(dk, groups, threshold)
}

func combineShares(shares [][]byte) ([]byte, error) {
	dk, err := shamir.Combine(shares)
	if err != nil {
		return nil, fmt.Errorf("combine key group shares: %w", err)
	}
	if len(dk) != keySize {
		return nil, fmt.Errorf("%w: recovered %d bytes", ErrBadDataKey, len(dk))
	}
	return dk, nil
}

// encryptGroups encrypts the data key to every master key: whole with one
// group, as Shamir shares with several.
func (k *Keys) encryptGroups(ctx context.Context, specs []KeyGroupSpec, threshold int, dk []byte) ([]KeyGroup, int, error) {
	if len(specs) == 0 {
		return nil, 0, ErrNoRecipients
	}
	for i, g := range specs {
		if g.empty() {
			if len(specs) == 1 {
				return nil, 0, ErrNoRecipients
			}
			return nil, 0, fmt.Errorf("%w: key group %d has no keys", ErrInvalidKeyGroups, i+1)
		}
	}
	secrets := [][]byte{dk}
	if len(specs) > 1 {
		if threshold == 0 {
			threshold = len(specs)
		}
		shares, err := splitDataKey(dk, len(specs), threshold)
		if err != nil {
			return nil, 0, err
		}
		secrets = shares
	} else {
		threshold = 0
	}
	groups := make([]KeyGroup, len(specs))
	for i, g := range specs {
		for _, r := range g.Age {
			ak, err := encryptAge(r, secrets[i])
			if err != nil {
				return nil, 0, err
			}
			groups[i].Age = append(groups[i].Age, ak)
		}
		for _, u := range g.Vault {
			if k.Vault == nil {
				return nil, 0, fmt.Errorf("transit key %s: no server token (set COFFER_TOKEN or VAULT_TOKEN, or log in)", u)
			}
			vk, err := k.Vault.Encrypt(ctx, u, secrets[i])
			if err != nil {
				return nil, 0, err
			}
			groups[i].Vault = append(groups[i].Vault, vk)
		}
	}
	return groups, threshold, nil
}

// decryptDataKey recovers the data key with whichever master keys are
// available. On failure the error lists every key tried and why it failed.
func (k *Keys) decryptDataKey(ctx context.Context, md *Metadata) ([]byte, error) {
	var failures []string
	if len(md.KeyGroups) == 1 {
		secret, fails := k.openGroup(ctx, &md.KeyGroups[0], keySize)
		if secret != nil {
			return secret, nil
		}
		return nil, keyError(append(failures, fails...), "")
	}
	threshold := md.ShamirThreshold
	if threshold == 0 {
		threshold = len(md.KeyGroups)
	}
	var shares [][]byte
	for i := range md.KeyGroups {
		share, fails := k.openGroup(ctx, &md.KeyGroups[i], keySize+1)
		for _, f := range fails {
			failures = append(failures, fmt.Sprintf("group %d: %s", i+1, f))
		}
		if share != nil {
			shares = append(shares, share)
			if len(shares) == threshold {
				return combineShares(shares)
			}
		}
	}
	return nil, keyError(failures, fmt.Sprintf("the key groups need %d shares, %d recovered", threshold, len(shares)))
}

func keyError(failures []string, summary string) error {
	var b strings.Builder
	if summary != "" {
		b.WriteString(": ")
		b.WriteString(summary)
	}
	for _, f := range failures {
		b.WriteString("\n  - ")
		b.WriteString(f)
	}
	return fmt.Errorf("%w%s", ErrNoKey, b.String())
}

// openGroup returns the first secret of the wanted size any key of the
// group gives, and the failures of the keys tried.
func (k *Keys) openGroup(ctx context.Context, g *KeyGroup, size int) ([]byte, []string) {
	var failures []string
	for _, ak := range g.Age {
		secret, err := decryptAge(ak, k.AgeIdentities)
		if err == nil && len(secret) != size {
			err = fmt.Errorf("decrypted %d bytes, want %d", len(secret), size)
		}
		if err == nil {
			return secret, nil
		}
		failures = append(failures, fmt.Sprintf("age %s: %v", ak.Recipient, err))
	}
	for _, vk := range g.Vault {
		var secret []byte
		var err error
		if k.Vault == nil {
			err = errors.New("no server token (set COFFER_TOKEN or VAULT_TOKEN, or log in)")
		} else {
			secret, err = k.Vault.Decrypt(ctx, vk)
		}
		if err == nil && len(secret) != size {
			err = fmt.Errorf("decrypted %d bytes, want %d", len(secret), size)
		}
		if err == nil {
			return secret, nil
		}
		failures = append(failures, fmt.Sprintf("hc_vault %s/v1/%s/keys/%s: %v", vk.VaultAddress, vk.EnginePath, vk.KeyName, err))
	}
	for _, o := range g.Other {
		failures = append(failures, fmt.Sprintf("%s: key type not supported by Coffer (use sops, or add an age or hc_vault key)", o.key))
	}
	return nil, failures
}
