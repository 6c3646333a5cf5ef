package cli

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

func newOperatorSealKeyCmd(env *Env) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "generate-seal-key -out FILE",
		Short: "Write a new random static seal key (auto-unseal) to FILE, mode 0600",
		Long: `Write a new random 32-byte static seal key, base64 encoded, to FILE (created
with mode 0600, never overwritten). Point a server at it with

  seal "static" { key_file = "FILE" }

in the config file (or COFFER_SEAL_KEY_FILE) so it unseals itself at start.
Whoever can read FILE and the storage can read every secret: keep it on a
different volume from the storage, and back it up.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usagef("-out FILE is required")
			}
			if dir := filepath.Dir(out); dir != "." {
				if err := os.MkdirAll(dir, 0o700); err != nil {
					return fmt.Errorf("create directory: %w", err)
				}
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("%s already exists; refusing to overwrite a seal key", out)
			}
			if err != nil {
				return fmt.Errorf("create seal key file: %w", err)
			}
			defer f.Close()
			if err := f.Chmod(0o600); err != nil {
				return fmt.Errorf("chmod seal key file: %w", err)
			}
			key := make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return fmt.Errorf("generate key: %w", err)
			}
			defer clear(key)
			if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
				return fmt.Errorf("write seal key file: %w", err)
			}
			if err := f.Sync(); err != nil {
				return fmt.Errorf("sync seal key file: %w", err)
			}
			fmt.Fprintf(env.Stdout, "Success! Wrote a new static seal key to %s\n", out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to create")
	return cmd
}
