package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coffer-dev/coffer/internal/fileenc"
)

// newFileTemplates are the starting contents of a file created by edit.
var newFileTemplates = map[fileenc.Format]string{
	fileenc.FormatYAML:   "# Put your secrets here; keys stay readable, values are encrypted.\nexample_key: example_value\n",
	fileenc.FormatJSON:   "{\n\t\"example_key\": \"example_value\"\n}\n",
	fileenc.FormatDotenv: "# Put your secrets here.\nEXAMPLE_KEY=example_value\n",
	fileenc.FormatINI:    "[example]\nkey = value\n",
	fileenc.FormatBinary: "",
}

func newFileEditCmd(env *Env) *cobra.Command {
	var ff formatFlags
	var kf keyFlags
	cmd := &cobra.Command{
		Use:   "edit [flags] FILE",
		Short: "Edit an encrypted file in $EDITOR (creates it when missing)",
		Long: `Decrypt FILE into a 0600 file in a private 0700 temporary directory, open it in
$VISUAL or $EDITOR (default vi), and encrypt the result back with the same data key:
unchanged values keep their ciphertext, so a diff shows only what you changed. An
invalid result reopens the editor with the error shown; quitting then, or saving
nothing new, leaves FILE untouched. The temporary directory is removed afterwards.
A missing FILE is created, encrypted to the keys of the flags or .sops.yaml.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if isStdin(path) {
				return usagef("edit needs a file, not stdin")
			}
			in, _, err := ff.formats(path)
			if err != nil {
				return err
			}
			return editFile(cmd.Context(), env, path, in, &kf)
		},
	}
	ff.add(cmd, false)
	kf.add(cmd)
	return cmd
}

func editFile(ctx context.Context, env *Env, path string, f fileenc.Format, kf *keyFlags) error {
	var o *fileenc.Opened
	var opts fileenc.EncryptOptions
	var original []byte
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		o, err = openData(ctx, env, path, data, f)
		if err != nil {
			return err
		}
		defer o.Close()
		if original, err = plainBytesOf(o, f); err != nil {
			return err
		}
	case errors.Is(err, os.ErrNotExist):
		if opts, err = kf.options(env, path); err != nil {
			return err
		}
		original = []byte(newFileTemplates[f])
	default:
		return err
	}
	dir, err := os.MkdirTemp("", "coffer-edit-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	tmp := filepath.Join(dir, filepath.Base(path))
	if err := os.WriteFile(tmp, original, 0o600); err != nil {
		return err
	}
	keys, err := fileKeys(env)
	if err != nil {
		return err
	}
	stdin := bufio.NewReader(env.Stdin)
	for {
		if err := runEditor(ctx, env, tmp); err != nil {
			return fmt.Errorf("%w; %s is unchanged", err, path)
		}
		edited, err := os.ReadFile(tmp)
		if err != nil {
			return err
		}
		if bytes.Equal(edited, original) {
			fmt.Fprintf(env.Stderr, "%s: no changes, file left as it was\n", path)
			return nil
		}
		enc, problem := sealEdited(ctx, keys, o, opts, edited, f)
		if problem == nil {
			out, err := enc.Emit(f)
			if err != nil {
				return err
			}
			return writeFileAtomic(path, out)
		}
		fmt.Fprintf(env.Stderr, "coffer: error: %v\n", problem)
		fmt.Fprintf(env.Stderr, "Press Enter to return to the editor, or type q and Enter to quit without saving: ")
		line, rerr := stdin.ReadString('\n')
		if rerr != nil || strings.EqualFold(strings.TrimSpace(line), "q") {
			fmt.Fprintln(env.Stderr)
			return fmt.Errorf("edit abandoned; %s is unchanged", path)
		}
	}
}

// sealEdited parses the edited plaintext and encrypts it; the error says
// what is wrong with the text (for the user to fix in the editor).
func sealEdited(ctx context.Context, keys *fileenc.Keys, o *fileenc.Opened, opts fileenc.EncryptOptions, edited []byte, f fileenc.Format) (*fileenc.Document, error) {
	doc, err := fileenc.ParsePlain(edited, f)
	if err != nil {
		return nil, fmt.Errorf("the edited file is not valid %s: %w", f, err)
	}
	if paths := doc.ConflictPaths(); len(paths) > 0 {
		return nil, fmt.Errorf("unresolved merge conflict markers at %s", strings.Join(paths, ", "))
	}
	if o == nil {
		if err := keys.Encrypt(ctx, doc, opts); err != nil {
			return nil, err
		}
		return doc, nil
	}
	return o.Seal(doc)
}

// runEditor opens file in $VISUAL or $EDITOR (through the shell, so the
// variable may carry arguments, as with sops).
func runEditor(ctx context.Context, env *Env, file string) error {
	editor := firstEnv(env, "VISUAL", "EDITOR")
	if editor == "" {
		editor = "vi"
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", editor+` "$1"`, "coffer-editor", file)
	cmd.Stdout, cmd.Stderr = env.Stdout, env.Stderr
	// Only a terminal (a real file) is handed to the editor: a piped stdin
	// carries the answers to our own prompts.
	if f, ok := env.Stdin.(*os.File); ok {
		cmd.Stdin = f
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("editor %q failed: %v", editor, err)
	}
	return nil
}
