package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/coffer-dev/coffer/internal/fileenc"
)

func newFileExecEnvCmd(env *Env) *cobra.Command {
	var ff formatFlags
	var pristine bool
	cmd := &cobra.Command{
		Use:   "exec-env [flags] FILE COMMAND",
		Short: "Run COMMAND with the file's top-level values as environment variables",
		Long: `Decrypt FILE and run COMMAND through /bin/sh with every top-level value added to
its environment (nested values are refused). The secrets exist only in the child's
environment; its exit status becomes coffer's.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, _, err := ff.formats(args[0])
			if err != nil {
				return err
			}
			o, err := openFile(cmd.Context(), env, args[0], in)
			if err != nil {
				return err
			}
			defer o.Close()
			vars, err := envVars(o.Doc)
			if err != nil {
				return err
			}
			base := os.Environ()
			if pristine {
				base = nil
			}
			return runChild(cmd.Context(), env, args[1], nil, append(base, vars...))
		},
	}
	ff.add(cmd, false)
	cmd.Flags().BoolVar(&pristine, "pristine", false, "start COMMAND with only the file's variables, not coffer's environment")
	return cmd
}

// envVars turns the first document's top-level scalars into KEY=VALUE.
func envVars(doc *fileenc.Document) ([]string, error) {
	if len(doc.Branches) == 0 {
		return nil, nil
	}
	root := doc.Branches[0]
	var out []string
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i].Value, root.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf(`exec-env needs a flat file: ["%s"] holds a nested value`, k)
		}
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return nil, fmt.Errorf("exec-env: %q is not a valid variable name", k)
		}
		val := v.Value
		if v.ShortTag() == "!!null" {
			val = ""
		}
		if strings.ContainsRune(val, 0) {
			return nil, fmt.Errorf(`exec-env: ["%s"] contains a NUL byte`, k)
		}
		out = append(out, strings.TrimPrefix(k, "export ")+"="+val)
	}
	return out, nil
}

// runChild runs command through /bin/sh with extra arguments and the
// environment, and passes its exit status on.
func runChild(ctx context.Context, env *Env, command string, args []string, environ []string) error {
	c := exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", command, "coffer-exec"}, args...)...)
	c.Env = environ
	c.Stdin, c.Stdout, c.Stderr = env.Stdin, env.Stdout, env.Stderr
	err := c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if code < 0 {
			code = 1
		}
		return &ExitError{Code: code}
	}
	return err
}

func newFileExecFileCmd(env *Env) *cobra.Command {
	var ff formatFlags
	var filename string
	cmd := &cobra.Command{
		Use:   "exec-file [flags] FILE COMMAND",
		Short: "Run COMMAND with the decrypted file at the path {} stands for",
		Long: `Decrypt FILE into a 0600 file in a private 0700 temporary directory and run COMMAND
through /bin/sh with every "{}" replaced by that path (also in $COFFER_FILE). The
directory is removed when COMMAND ends; its exit status becomes coffer's.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, out, err := ff.formats(args[0])
			if err != nil {
				return err
			}
			o, err := openFile(cmd.Context(), env, args[0], in)
			if err != nil {
				return err
			}
			defer o.Close()
			data, err := plainBytesOf(o, out)
			if err != nil {
				return err
			}
			dir, err := os.MkdirTemp("", "coffer-exec-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			if err := os.Chmod(dir, 0o700); err != nil {
				return err
			}
			name := filename
			if name == "" {
				name = "tmp-file" + filepath.Ext(args[0])
			}
			if name != filepath.Base(name) || name == "." || name == ".." {
				return usagef("--filename must be a plain file name")
			}
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, data, 0o600); err != nil {
				return err
			}
			command := strings.ReplaceAll(args[1], "{}", shellQuote(p))
			return runChild(cmd.Context(), env, command, nil, append(os.Environ(), "COFFER_FILE="+p))
		},
	}
	ff.add(cmd, true)
	cmd.Flags().StringVar(&filename, "filename", "", "name of the decrypted file (default tmp-file with FILE's extension)")
	return cmd
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
