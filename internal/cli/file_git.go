package cli

import (
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

// Git integration. `git diff` shows encrypted files decrypted through the
// textconv command, and the merge driver merges them by value instead of
// by line: it decrypts the three versions, merges the plaintext trees key
// by key and encrypts the result with the file's data key, so unchanged
// values keep their ciphertext. A value both sides changed becomes a
// string holding both versions between conflict markers, which encrypts
// like any other value: the merged file stays encrypted, git reports the
// conflict, and `coffer file edit` shows the markers to resolve (it
// refuses to save while any remain). Plaintext never reaches the working
// tree or the index.

// defaultGitPatterns are the file name patterns git-setup registers when
// none are given.
var defaultGitPatterns = []string{"*.sops.yaml", "*.sops.yml", "*.sops.json", "*.sops.env", "*.sops.ini", "*.enc.yaml", "*.enc.yml", "*.enc.json", "*.enc.env", "*.enc.ini"}

const (
	gitDiffDriver  = "sopsdiffer"
	gitMergeDriver = "sopsmerge"
)

func newFileGitSetupCmd(env *Env) *cobra.Command {
	var patterns []string
	var command string
	var dir string
	cmd := &cobra.Command{
		Use:   "git-setup [flags]",
		Short: "Register the diff textconv and merge driver for encrypted files in a git repository",
		Long: `Configure the repository (git config, local) with:
  diff.sopsdiffer.textconv = coffer file textconv
  merge.sopsmerge.driver   = coffer file merge-driver %O %A %B %P
and add "PATTERN diff=sopsdiffer merge=sopsmerge" lines to .gitattributes for each
--pattern (default: *.sops.* and *.enc.* YAML, JSON, dotenv and INI files).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(patterns) == 0 {
				patterns = defaultGitPatterns
			}
			top, err := gitOutput(cmd.Context(), dir, "rev-parse", "--show-toplevel")
			if err != nil {
				return fmt.Errorf("not in a git repository: %w", err)
			}
			top = strings.TrimSpace(top)
			settings := [][2]string{
				{"diff." + gitDiffDriver + ".textconv", command + " file textconv"},
				{"merge." + gitMergeDriver + ".name", "Coffer SOPS merge driver (decrypts, merges values, re-encrypts)"},
				{"merge." + gitMergeDriver + ".driver", command + " file merge-driver %O %A %B %P"},
			}
			for _, s := range settings {
				if _, err := gitOutput(cmd.Context(), top, "config", "--local", s[0], s[1]); err != nil {
					return err
				}
			}
			attrPath := filepath.Join(top, ".gitattributes")
			existing, err := os.ReadFile(attrPath)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			var add []string
			for _, p := range patterns {
				line := p + " diff=" + gitDiffDriver + " merge=" + gitMergeDriver
				if !hasLine(existing, line) {
					add = append(add, line)
				}
			}
			if len(add) > 0 {
				out := existing
				if len(out) > 0 && !bytes.HasSuffix(out, []byte("\n")) {
					out = append(out, '\n')
				}
				out = append(out, []byte(strings.Join(add, "\n")+"\n")...)
				if err := os.WriteFile(attrPath, out, 0o644); err != nil {
					return err
				}
			}
			fmt.Fprintf(env.Stdout, "git diff and merge drivers configured in %s; %d pattern(s) added to .gitattributes\n", top, len(add))
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&patterns, "pattern", nil, "gitattributes pattern of encrypted files (repeatable)")
	cmd.Flags().StringVar(&command, "command", "coffer", "how git should run coffer")
	cmd.Flags().StringVar(&dir, "dir", ".", "a directory inside the repository")
	return cmd
}

func hasLine(data []byte, line string) bool {
	for _, l := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

func gitOutput(ctx context.Context, dir string, args ...string) (string, error) {
	c := exec.CommandContext(ctx, "git", args...)
	c.Dir = dir
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func newFileTextconvCmd(env *Env) *cobra.Command {
	var ff formatFlags
	cmd := &cobra.Command{
		Use:   "textconv [flags] FILE",
		Short: "Print a file decrypted, for git diff (prints it unchanged when it cannot be decrypted)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			data, err := readInput(env, path)
			if err != nil {
				return err
			}
			// git hands textconv a temporary file without the original
			// name; sniff the format when the extension says nothing.
			in := fileenc.FormatForPath(ff.name(path))
			if ff.inputType != "" {
				if in, err = fileenc.ParseFormat(ff.inputType); err != nil {
					return &UsageError{Msg: err.Error()}
				}
			} else if in == fileenc.FormatBinary {
				in = sniffFormat(data)
			}
			o, err := openData(cmd.Context(), env, path, data, in)
			if err != nil {
				fmt.Fprintf(env.Stderr, "coffer: textconv: showing %s encrypted: %v\n", displayName(path), err)
				_, werr := env.Stdout.Write(data)
				return werr
			}
			defer o.Close()
			out, err := plainBytesOf(o, in)
			if err != nil {
				return err
			}
			_, err = env.Stdout.Write(out)
			return err
		},
	}
	ff.add(cmd, false)
	return cmd
}

// sniffFormat guesses an encrypted file's format from its content.
func sniffFormat(data []byte) fileenc.Format {
	t := bytes.TrimSpace(data)
	switch {
	case bytes.HasPrefix(t, []byte("{")):
		return fileenc.FormatJSON
	case bytes.Contains(data, []byte("\n[sops]\n")) || bytes.HasPrefix(t, []byte("[")):
		return fileenc.FormatINI
	case bytes.Contains(data, []byte("\nsops_mac=")) || bytes.HasPrefix(data, []byte("sops_")):
		return fileenc.FormatDotenv
	}
	return fileenc.FormatYAML
}

func newFileMergeDriverCmd(env *Env) *cobra.Command {
	var ff formatFlags
	cmd := &cobra.Command{
		Use:   "merge-driver [flags] BASE OURS THEIRS [PATH]",
		Short: "Git merge driver: merge encrypted files by value (%O %A %B %P)",
		Long: `Decrypt the common ancestor BASE, OURS and THEIRS, merge the plaintext trees key by
key, encrypt the result with OURS' data key and master keys (THEIRS' when only
their side changed the keys) and write it to OURS. Exit status 0 means merged; 1
means conflicts, which are left as marker strings inside encrypted values (see
docs/sops.md), or that a version could not be decrypted (OURS is then untouched).`,
		Args: cobra.RangeArgs(3, 4),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[1]
			if len(args) == 4 {
				name = args[3]
			}
			return mergeDriver(cmd.Context(), env, &ff, args[0], args[1], args[2], name)
		},
	}
	ff.add(cmd, false)
	return cmd
}

func mergeDriver(ctx context.Context, env *Env, ff *formatFlags, basePath, oursPath, theirsPath, name string) error {
	f := fileenc.FormatForPath(ff.name(name))
	if ff.inputType != "" {
		var err error
		if f, err = fileenc.ParseFormat(ff.inputType); err != nil {
			return &UsageError{Msg: err.Error()}
		}
	}
	keys, err := fileKeys(env)
	if err != nil {
		return err
	}
	open := func(path string, known *fileenc.Opened) (*fileenc.Opened, error) {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(data)) == 0 {
			return nil, nil // no common ancestor (added on both sides)
		}
		doc, err := fileenc.Parse(data, f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		// The three versions usually share a data key: try ours first.
		if known != nil {
			if o, err := fileenc.OpenWithDataKey(doc.Clone(), known.DataKey()); err == nil {
				o.Doc.Metadata = doc.Metadata
				return o, nil
			}
		}
		return keys.Open(ctx, doc)
	}
	ours, err := open(oursPath, nil)
	if err == nil && ours == nil {
		err = errors.New("our version is empty")
	}
	if err != nil {
		return mergeFailed(env, name, "our version", err)
	}
	defer ours.Close()
	theirs, err := open(theirsPath, ours)
	if err == nil && theirs == nil {
		err = errors.New("their version is empty")
	}
	if err != nil {
		return mergeFailed(env, name, "their version", err)
	}
	defer theirs.Close()
	base, err := open(basePath, ours)
	if err != nil {
		return mergeFailed(env, name, "the common ancestor", err)
	}
	var baseDoc *fileenc.Document
	if base != nil {
		defer base.Close()
		baseDoc = plainCopy(base)
	}
	merged, conflicts := fileenc.Merge3(baseDoc, plainCopy(ours), plainCopy(theirs))
	// Keep our keys, unless only their side changed them.
	sealer := ours
	if base != nil && fileenc.SameKeys(base.Doc.Metadata, ours.Doc.Metadata) && !fileenc.SameKeys(base.Doc.Metadata, theirs.Doc.Metadata) {
		sealer = theirs
	}
	enc, err := sealer.Seal(merged)
	if err != nil {
		return mergeFailed(env, name, "the merged result", err)
	}
	data, err := enc.Emit(f)
	if err != nil {
		return mergeFailed(env, name, "the merged result", err)
	}
	if err := writeFileAtomic(oursPath, data); err != nil {
		return err
	}
	if len(conflicts) > 0 {
		fmt.Fprintf(env.Stderr, "coffer: %s: merge conflicts at %s\n", name, strings.Join(conflicts, ", "))
		fmt.Fprintf(env.Stderr, "hint: run 'coffer file edit %s' to resolve the conflict markers, then git add it\n", name)
		return &ExitError{Code: 1}
	}
	return nil
}

func mergeFailed(env *Env, name, what string, err error) error {
	fmt.Fprintf(env.Stderr, "coffer: %s: cannot merge, %s does not decrypt: %v\n", name, what, err)
	fmt.Fprintf(env.Stderr, "hint: the file is left as our version; resolve it with 'coffer file edit %s'\n", name)
	return &ExitError{Code: 1}
}
