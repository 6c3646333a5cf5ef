package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coffer-dev/coffer/internal/fileenc"
)

// The `coffer file` commands read and write SOPS files (docs/sops.md):
// encrypt, decrypt, edit, set, unset, exec-env, exec-file, updatekeys,
// rotate, the git merge driver and diff textconv, and a generator for
// kustomize and Argo CD.

const maxFileSize = 256 << 20

func newFileCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "file",
		Short: "Encrypt, decrypt and edit SOPS files (YAML, JSON, dotenv, INI) with age keys or a Coffer transit key",
		Long: `Values-only encryption of YAML, JSON, dotenv, INI and binary files in the SOPS v3
format: keys stay readable, values are encrypted with AES-256-GCM, and the data key
is encrypted to age recipients and/or a transit key of a Coffer (or Vault) server.
Files are interchangeable with sops 3.x. See docs/sops.md.`,
	}
	cmd.AddCommand(
		newFileEncryptCmd(env), newFileDecryptCmd(env), newFileEditCmd(env),
		newFileSetCmd(env), newFileUnsetCmd(env),
		newFileExecEnvCmd(env), newFileExecFileCmd(env),
		newFileUpdateKeysCmd(env), newFileRotateCmd(env),
		newFileGitSetupCmd(env), newFileMergeDriverCmd(env), newFileTextconvCmd(env),
		newFileGenerateCmd(env),
	)
	return cmd
}

// formatFlags choose the input and output formats.
type formatFlags struct {
	inputType, outputType string
	filenameOverride      string
}

func (f *formatFlags) add(cmd *cobra.Command, output bool) {
	cmd.Flags().StringVar(&f.inputType, "input-type", "", "input format: yaml, json, dotenv, ini or binary (default: from the file extension)")
	if output {
		cmd.Flags().StringVar(&f.outputType, "output-type", "", "output format (default: the input format)")
	}
	cmd.Flags().StringVar(&f.filenameOverride, "filename-override", "", "use this file name for the format and the .sops.yaml rules (for stdin)")
}

// name is the file name rules and formats are chosen by.
func (f *formatFlags) name(path string) string {
	if f.filenameOverride != "" {
		return f.filenameOverride
	}
	return path
}

func (f *formatFlags) formats(path string) (in, out fileenc.Format, err error) {
	name := f.name(path)
	in = fileenc.FormatForPath(name)
	if f.inputType != "" {
		if in, err = fileenc.ParseFormat(f.inputType); err != nil {
			return "", "", &UsageError{Msg: err.Error()}
		}
	} else if isStdin(name) {
		return "", "", usagef("reading stdin needs --input-type or --filename-override")
	}
	out = in
	if f.outputType != "" {
		if out, err = fileenc.ParseFormat(f.outputType); err != nil {
			return "", "", &UsageError{Msg: err.Error()}
		}
	}
	return in, out, nil
}

func isStdin(path string) bool { return path == "" || path == "-" }

func readInput(env *Env, path string) ([]byte, error) {
	var r io.Reader
	if isStdin(path) {
		r = env.Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s is larger than %d MiB", displayName(path), maxFileSize>>20)
	}
	return data, nil
}

func displayName(path string) string {
	if isStdin(path) {
		return "stdin"
	}
	return path
}

// writeFileAtomic replaces path with data, mode 0600, through a temporary
// file in the same directory, so a failure never leaves a half-written
// file.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".coffer-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	ok = true
	return nil
}

// outputFlags choose where a result goes.
type outputFlags struct {
	inPlace bool
	output  string
}

func (o *outputFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&o.inPlace, "in-place", "i", false, "write the result back to the input file")
	cmd.Flags().StringVar(&o.output, "output", "", "write the result to this file (mode 0600) instead of stdout")
}

func (o *outputFlags) check(input string) error {
	if o.inPlace && o.output != "" {
		return usagef("--in-place and --output cannot be used together")
	}
	if o.inPlace && isStdin(input) {
		return usagef("--in-place needs a file, not stdin")
	}
	return nil
}

func (o *outputFlags) write(env *Env, input string, data []byte) error {
	switch {
	case o.inPlace:
		return writeFileAtomic(input, data)
	case o.output != "":
		return writeFileAtomic(o.output, data)
	}
	_, err := env.Stdout.Write(data)
	return err
}

// fileKeys gathers the means to decrypt data keys: age identities from
// SOPS_AGE_KEY, SOPS_AGE_KEY_FILE and the default keys file, and a
// transit client authenticated with COFFER_TOKEN, VAULT_TOKEN,
// ~/.coffer-token or ~/.vault-token.
func fileKeys(env *Env) (*fileenc.Keys, error) {
	ids, _, err := fileenc.LoadAgeIdentities(fileenc.AgeIdentityEnv{Getenv: env.Getenv, HomeDir: env.HomeDir})
	if err != nil {
		return nil, err
	}
	keys := &fileenc.Keys{AgeIdentities: ids}
	// Only the client's TLS settings and token matter here (each hc_vault
	// key names its server); a bad COFFER_ADDR must not block age keys.
	var cf clientFlags
	var hc *http.Client
	token := ""
	if c, err := cf.newClient(env); err == nil {
		hc, token = c.hc, c.token
	}
	if token == "" && env.HomeDir != nil {
		if home, err := env.HomeDir(); err == nil {
			if b, err := os.ReadFile(filepath.Join(home, ".vault-token")); err == nil {
				token = strings.TrimSpace(string(b))
			}
		}
	}
	if token != "" {
		keys.Vault = &fileenc.VaultClient{Token: token, HTTP: hc}
	}
	return keys, nil
}

// keyFlags choose the master keys and selectors of a new file.
type keyFlags struct {
	age, vault []string
	threshold  int
	config     string
	sel        fileenc.Selectors
}

func (k *keyFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&k.age, "age", nil, "age recipients, comma-separated (default $SOPS_AGE_RECIPIENTS, then .sops.yaml)")
	fl.StringArrayVar(&k.vault, "hc-vault-transit", nil, "transit key URIs https://host:port/v1/<engine>/keys/<name>, comma-separated; <engine>/keys/<name> uses $COFFER_ADDR or $VAULT_ADDR (default $SOPS_VAULT_URIS)")
	fl.IntVar(&k.threshold, "shamir-secret-sharing-threshold", 0, "key groups needed to decrypt when .sops.yaml defines several")
	fl.StringVar(&k.config, "config", "", "path to the .sops.yaml to use (default: searched from the file's directory upwards)")
	fl.StringVar(&k.sel.UnencryptedSuffix, "unencrypted-suffix", "", "leave keys with this suffix (and their subtrees) in clear text (default _unencrypted)")
	fl.StringVar(&k.sel.EncryptedSuffix, "encrypted-suffix", "", "encrypt only keys with this suffix")
	fl.StringVar(&k.sel.UnencryptedRegex, "unencrypted-regex", "", "leave keys matching this regex in clear text")
	fl.StringVar(&k.sel.EncryptedRegex, "encrypted-regex", "", "encrypt only keys matching this regex")
	fl.StringVar(&k.sel.UnencryptedCommentRegex, "unencrypted-comment-regex", "", "leave the item after a comment matching this regex in clear text")
	fl.StringVar(&k.sel.EncryptedCommentRegex, "encrypted-comment-regex", "", "encrypt only the item after a comment matching this regex")
	fl.BoolVar(&k.sel.MACOnlyEncrypted, "mac-only-encrypted", false, "leave clear-text values out of the MAC, so they can be edited without the keys")
}

func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// vaultURIs parses transit key URIs; a relative one ("transit/keys/k")
// is resolved against COFFER_ADDR or VAULT_ADDR.
func vaultURIs(env *Env, vals []string) ([]fileenc.VaultURI, error) {
	var out []fileenc.VaultURI
	for _, v := range splitList(vals) {
		if !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
			addr := firstEnv(env, "COFFER_ADDR", "VAULT_ADDR")
			if addr == "" {
				return nil, usagef("transit key %q has no address and neither COFFER_ADDR nor VAULT_ADDR is set", v)
			}
			v = strings.TrimRight(addr, "/") + "/v1/" + strings.TrimPrefix(strings.TrimPrefix(v, "/"), "v1/")
		}
		u, err := fileenc.ParseVaultURI(v)
		if err != nil {
			return nil, &UsageError{Msg: err.Error()}
		}
		out = append(out, u)
	}
	return out, nil
}

func (k *keyFlags) selectorsSet() bool {
	s := k.sel
	return s.UnencryptedSuffix != "" || s.EncryptedSuffix != "" || s.UnencryptedRegex != "" || s.EncryptedRegex != "" || s.UnencryptedCommentRegex != "" || s.EncryptedCommentRegex != ""
}

// loadConfig finds the .sops.yaml for file (nil when there is none).
func (k *keyFlags) loadConfig(file string) (*fileenc.Config, error) {
	if k.config != "" {
		return fileenc.LoadConfig(k.config)
	}
	dir := "."
	if !isStdin(file) {
		dir = filepath.Dir(file)
	}
	return fileenc.FindConfig(dir)
}

// options decides the keys and selectors for a new file: flags, then
// SOPS_AGE_RECIPIENTS / SOPS_VAULT_URIS, then the first matching
// creation rule of .sops.yaml.
func (k *keyFlags) options(env *Env, file string) (fileenc.EncryptOptions, error) {
	var opts fileenc.EncryptOptions
	ageList, vaultList := k.age, k.vault
	if len(ageList) == 0 && len(vaultList) == 0 {
		if v := env.Getenv("SOPS_AGE_RECIPIENTS"); v != "" {
			ageList = []string{v}
		}
		if v := env.Getenv("SOPS_VAULT_URIS"); v != "" {
			vaultList = []string{v}
		}
	}
	var rule *fileenc.CreationRule
	if len(ageList) == 0 && len(vaultList) == 0 || !k.selectorsSet() {
		cfg, err := k.loadConfig(file)
		if err != nil {
			return opts, err
		}
		if cfg != nil {
			r, err := cfg.Rule(file)
			if err != nil && (len(ageList) == 0 && len(vaultList) == 0) {
				return opts, err
			}
			rule = r
		}
	}
	if len(ageList) > 0 || len(vaultList) > 0 {
		ages, err := fileenc.ParseAgeRecipients(strings.Join(splitList(ageList), ","))
		if err != nil {
			return opts, &UsageError{Msg: err.Error()}
		}
		uris, err := vaultURIs(env, vaultList)
		if err != nil {
			return opts, err
		}
		opts.Groups = []fileenc.KeyGroupSpec{{Age: ages, Vault: uris}}
	} else if rule != nil {
		opts.Groups = rule.Groups
		opts.ShamirThreshold = rule.ShamirThreshold
	}
	if len(opts.Groups) == 0 {
		return opts, fileenc.ErrNoRecipients
	}
	switch {
	case k.selectorsSet():
		opts.Selectors = k.sel
	case rule != nil:
		opts.Selectors = rule.Selectors
		opts.Selectors.MACOnlyEncrypted = opts.Selectors.MACOnlyEncrypted || k.sel.MACOnlyEncrypted
	default:
		opts.Selectors.MACOnlyEncrypted = k.sel.MACOnlyEncrypted
	}
	if k.threshold != 0 {
		opts.ShamirThreshold = k.threshold
	}
	return opts, nil
}

func newFileEncryptCmd(env *Env) *cobra.Command {
	var ff formatFlags
	var of outputFlags
	var kf keyFlags
	cmd := &cobra.Command{
		Use:   "encrypt [flags] FILE",
		Short: "Encrypt a plaintext file (stdout by default)",
		Long: `Encrypt the values of FILE ("-" for stdin) with a new data key, encrypted to the
master keys given by --age/--hc-vault-transit or by the first creation rule of the
nearest .sops.yaml that matches the file.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if err := of.check(path); err != nil {
				return err
			}
			in, out, err := ff.formats(path)
			if err != nil {
				return err
			}
			opts, err := kf.options(env, ff.name(path))
			if err != nil {
				return err
			}
			data, err := readInput(env, path)
			if err != nil {
				return err
			}
			doc, err := fileenc.ParsePlain(data, in)
			if err != nil {
				return fmt.Errorf("%s: %w", displayName(path), err)
			}
			keys, err := fileKeys(env)
			if err != nil {
				return err
			}
			if err := keys.Encrypt(cmd.Context(), doc, opts); err != nil {
				return fmt.Errorf("encrypt %s: %w", displayName(path), err)
			}
			enc, err := doc.Emit(out)
			if err != nil {
				return err
			}
			return of.write(env, path, enc)
		},
	}
	ff.add(cmd, true)
	of.add(cmd)
	kf.add(cmd)
	return cmd
}

// openFile reads, parses and decrypts an encrypted file.
func openFile(ctx context.Context, env *Env, path string, in fileenc.Format) (*fileenc.Opened, error) {
	data, err := readInput(env, path)
	if err != nil {
		return nil, err
	}
	return openData(ctx, env, path, data, in)
}

func openData(ctx context.Context, env *Env, path string, data []byte, in fileenc.Format) (*fileenc.Opened, error) {
	doc, err := fileenc.Parse(data, in)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", displayName(path), err)
	}
	keys, err := fileKeys(env)
	if err != nil {
		return nil, err
	}
	o, err := keys.Open(ctx, doc)
	if err != nil {
		return nil, fmt.Errorf("decrypt %s: %w", displayName(path), err)
	}
	return o, nil
}

// plainCopy returns the decrypted trees without metadata.
func plainCopy(o *fileenc.Opened) *fileenc.Document {
	d := o.Doc.Clone()
	d.Metadata = nil
	return d
}

func newFileDecryptCmd(env *Env) *cobra.Command {
	var ff formatFlags
	var of outputFlags
	var extract string
	cmd := &cobra.Command{
		Use:   "decrypt [flags] FILE",
		Short: "Decrypt a file (stdout by default); also the generator for kustomize and Argo CD",
		Long: `Decrypt FILE ("-" for stdin), check every value and the MAC, and print the plaintext.
Nothing is written when any value or the MAC fails to authenticate.
--extract '["a"]["b"]' prints one value (strings raw, other values in the output format).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if err := of.check(path); err != nil {
				return err
			}
			in, out, err := ff.formats(path)
			if err != nil {
				return err
			}
			var xpath []fileenc.PathElem
			if extract != "" {
				if xpath, err = fileenc.ParsePath(extract); err != nil {
					return &UsageError{Msg: err.Error()}
				}
			}
			o, err := openFile(cmd.Context(), env, path, in)
			if err != nil {
				return err
			}
			defer o.Close()
			plain := o.Doc
			plain.Metadata = nil
			var result []byte
			if xpath != nil {
				n, err := plain.Lookup(xpath)
				if err != nil {
					return err
				}
				result, err = fileenc.EmitValue(n, out)
				if err != nil {
					return err
				}
			} else if result, err = plain.Emit(out); err != nil {
				return err
			}
			return of.write(env, path, result)
		},
	}
	ff.add(cmd, true)
	of.add(cmd)
	cmd.Flags().StringVar(&extract, "extract", "", `print only the value at this path, e.g. '["db"]["password"]'`)
	return cmd
}

// valueArg reads set's value: the argument, or --value-file, or stdin.
func valueArg(env *Env, args []string, file string, stdin bool) ([]byte, error) {
	n := 0
	if len(args) == 3 {
		n++
	}
	if file != "" {
		n++
	}
	if stdin {
		n++
	}
	if n != 1 {
		return nil, usagef("give the value as the third argument, --value-file or --value-stdin (exactly one)")
	}
	switch {
	case file != "":
		return os.ReadFile(file)
	case stdin:
		return io.ReadAll(io.LimitReader(env.Stdin, maxFileSize))
	}
	return []byte(args[2]), nil
}

func newFileSetCmd(env *Env) *cobra.Command {
	var ff formatFlags
	var valueFile string
	var valueStdin bool
	cmd := &cobra.Command{
		Use:   `set [flags] FILE '["key"]["sub"]' VALUE`,
		Short: "Set one value of an encrypted file in place (VALUE is JSON)",
		Long: `Set the value at the path in FILE, which stays encrypted with its data key; missing
maps on the way are created. VALUE is JSON: '"a string"', 42, true, {"a": 1}.
Only the changed value gets a new ciphertext.`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if isStdin(path) {
				return usagef("set needs a file, not stdin")
			}
			xpath, err := fileenc.ParsePath(args[1])
			if err != nil {
				return &UsageError{Msg: err.Error()}
			}
			raw, err := valueArg(env, args, valueFile, valueStdin)
			if err != nil {
				return err
			}
			value, err := fileenc.ParseJSONValue(raw)
			if err != nil {
				return &UsageError{Msg: "VALUE must be JSON (quote strings: '\"text\"'): " + err.Error()}
			}
			in, _, err := ff.formats(path)
			if err != nil {
				return err
			}
			o, err := openFile(cmd.Context(), env, path, in)
			if err != nil {
				return err
			}
			defer o.Close()
			plain := plainCopy(o)
			if err := plain.Set(xpath, value); err != nil {
				return err
			}
			return sealAndWrite(o, plain, path, in)
		},
	}
	ff.add(cmd, false)
	cmd.Flags().StringVar(&valueFile, "value-file", "", "read the JSON value from this file")
	cmd.Flags().BoolVar(&valueStdin, "value-stdin", false, "read the JSON value from stdin")
	return cmd
}

func sealAndWrite(o *fileenc.Opened, plain *fileenc.Document, path string, f fileenc.Format) error {
	enc, err := o.Seal(plain)
	if err != nil {
		return err
	}
	data, err := enc.Emit(f)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data)
}

func newFileUnsetCmd(env *Env) *cobra.Command {
	var ff formatFlags
	cmd := &cobra.Command{
		Use:   `unset [flags] FILE '["key"]["sub"]'`,
		Short: "Remove one value from an encrypted file in place",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if isStdin(path) {
				return usagef("unset needs a file, not stdin")
			}
			xpath, err := fileenc.ParsePath(args[1])
			if err != nil {
				return &UsageError{Msg: err.Error()}
			}
			in, _, err := ff.formats(path)
			if err != nil {
				return err
			}
			o, err := openFile(cmd.Context(), env, path, in)
			if err != nil {
				return err
			}
			defer o.Close()
			plain := plainCopy(o)
			if err := plain.Unset(xpath); err != nil {
				return err
			}
			return sealAndWrite(o, plain, path, in)
		},
	}
	ff.add(cmd, false)
	return cmd
}

// describeKeys lists a file's master keys, one per line.
func describeKeys(specs []fileenc.KeyGroupSpec, threshold int) []string {
	var out []string
	for i, g := range specs {
		prefix := ""
		if len(specs) > 1 {
			prefix = fmt.Sprintf("group %d: ", i+1)
		}
		for _, a := range g.Age {
			out = append(out, prefix+"age "+a)
		}
		for _, v := range g.Vault {
			out = append(out, prefix+"hc_vault "+v.String())
		}
	}
	if len(specs) > 1 {
		out = append(out, fmt.Sprintf("shamir_threshold %d", threshold))
	}
	return out
}

// confirm asks a yes/no question on stderr and reads the answer.
func confirm(env *Env, question string) bool {
	fmt.Fprintf(env.Stderr, "%s [y/N] ", question)
	line, _ := bufio.NewReader(env.Stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}

func newFileUpdateKeysCmd(env *Env) *cobra.Command {
	var ff formatFlags
	var config string
	var yes bool
	cmd := &cobra.Command{
		Use:   "updatekeys [flags] FILE...",
		Short: "Re-encrypt files' data keys to the master keys .sops.yaml now names",
		Long: `For each FILE, compare its master keys with the matching creation rule of .sops.yaml
and, after confirmation (or with --yes), encrypt the same data key to the rule's keys.
Values keep their ciphertext; only the metadata changes.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kf := keyFlags{config: config}
			for _, path := range args {
				if isStdin(path) {
					return usagef("updatekeys needs files, not stdin")
				}
				if err := updateKeys(cmd.Context(), env, &ff, &kf, path, yes); err != nil {
					return err
				}
			}
			return nil
		},
	}
	ff.add(cmd, false)
	cmd.Flags().StringVar(&config, "config", "", "path to the .sops.yaml to use (default: searched from each file's directory upwards)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func updateKeys(ctx context.Context, env *Env, ff *formatFlags, kf *keyFlags, path string, yes bool) error {
	in, _, err := ff.formats(path)
	if err != nil {
		return err
	}
	cfg, err := kf.loadConfig(path)
	if err != nil {
		return err
	}
	if cfg == nil {
		return fmt.Errorf("%s: no .sops.yaml found", path)
	}
	rule, err := cfg.Rule(ff.name(path))
	if err != nil {
		return err
	}
	if len(rule.Groups) == 0 {
		return fmt.Errorf("%s: the creation rule of %s names no keys", path, cfg.Path)
	}
	data, err := readInput(env, path)
	if err != nil {
		return err
	}
	o, err := openData(ctx, env, path, data, in)
	if err != nil {
		return err
	}
	defer o.Close()
	current, err := o.Doc.Metadata.Specs()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	threshold := rule.ShamirThreshold
	if len(rule.Groups) > 1 && threshold == 0 {
		threshold = len(rule.Groups)
	}
	if len(rule.Groups) == 1 {
		threshold = 0
	}
	before, after := describeKeys(current, o.Doc.Metadata.ShamirThreshold), describeKeys(rule.Groups, threshold)
	if strings.Join(before, "\n") == strings.Join(after, "\n") {
		fmt.Fprintf(env.Stderr, "%s: keys already match %s\n", path, cfg.Path)
		return nil
	}
	fmt.Fprintf(env.Stderr, "%s: master keys change:\n", path)
	was := map[string]bool{}
	for _, k := range before {
		was[k] = true
	}
	now := map[string]bool{}
	for _, k := range after {
		now[k] = true
		if !was[k] {
			fmt.Fprintf(env.Stderr, "  + %s\n", k)
		}
	}
	for _, k := range before {
		if !now[k] {
			fmt.Fprintf(env.Stderr, "  - %s\n", k)
		}
	}
	if !yes && !confirm(env, "Update the keys of "+path+"?") {
		fmt.Fprintf(env.Stderr, "%s: unchanged\n", path)
		return nil
	}
	keys, err := fileKeys(env)
	if err != nil {
		return err
	}
	md, err := keys.UpdateKeys(ctx, o, rule.Groups, rule.ShamirThreshold)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	// The values and the MAC stay as they are: re-read the encrypted file
	// and swap its metadata.
	enc, err := fileenc.Parse(data, in)
	if err != nil {
		return err
	}
	enc.Metadata = md
	out, err := enc.Emit(in)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, out); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "%s: keys updated\n", path)
	return nil
}

func newFileRotateCmd(env *Env) *cobra.Command {
	var ff formatFlags
	var of outputFlags
	var addAge, rmAge, addVault, rmVault []string
	cmd := &cobra.Command{
		Use:   "rotate [flags] FILE",
		Short: "Re-encrypt a file with a new data key (optionally adding or removing master keys)",
		Long: `Decrypt FILE and encrypt every value again under a new data key, encrypted to the
file's master keys with --add-*/--rm-* applied (for files with one key group).
The result goes to stdout unless -i or --output is given.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if err := of.check(path); err != nil {
				return err
			}
			in, out, err := ff.formats(path)
			if err != nil {
				return err
			}
			o, err := openFile(cmd.Context(), env, path, in)
			if err != nil {
				return err
			}
			defer o.Close()
			specs, err := o.Doc.Metadata.Specs()
			if err != nil {
				return err
			}
			threshold := o.Doc.Metadata.ShamirThreshold
			if len(addAge)+len(rmAge)+len(addVault)+len(rmVault) > 0 {
				if len(specs) != 1 {
					return usagef("--add-*/--rm-* work on files with one key group; edit .sops.yaml and run updatekeys instead")
				}
				g, err := editGroup(env, specs[0], addAge, rmAge, addVault, rmVault)
				if err != nil {
					return err
				}
				specs = []fileenc.KeyGroupSpec{g}
			}
			keys, err := fileKeys(env)
			if err != nil {
				return err
			}
			enc, err := keys.Rotate(cmd.Context(), o, plainCopy(o), specs, threshold)
			if err != nil {
				return fmt.Errorf("rotate %s: %w", path, err)
			}
			data, err := enc.Emit(out)
			if err != nil {
				return err
			}
			return of.write(env, path, data)
		},
	}
	ff.add(cmd, true)
	of.add(cmd)
	fl := cmd.Flags()
	fl.StringArrayVar(&addAge, "add-age", nil, "age recipients to add, comma-separated")
	fl.StringArrayVar(&rmAge, "rm-age", nil, "age recipients to remove, comma-separated")
	fl.StringArrayVar(&addVault, "add-hc-vault-transit", nil, "transit key URIs to add")
	fl.StringArrayVar(&rmVault, "rm-hc-vault-transit", nil, "transit key URIs to remove")
	return cmd
}

func editGroup(env *Env, g fileenc.KeyGroupSpec, addAge, rmAge, addVault, rmVault []string) (fileenc.KeyGroupSpec, error) {
	add, err := fileenc.ParseAgeRecipients(strings.Join(splitList(addAge), ","))
	if err != nil {
		return g, &UsageError{Msg: err.Error()}
	}
	rm := map[string]bool{}
	for _, r := range splitList(rmAge) {
		rm[r] = true
	}
	var out fileenc.KeyGroupSpec
	for _, a := range g.Age {
		if !rm[a] {
			out.Age = append(out.Age, a)
		}
	}
	for _, a := range add {
		if !contains(out.Age, a) {
			out.Age = append(out.Age, a)
		}
	}
	addV, err := vaultURIs(env, addVault)
	if err != nil {
		return g, err
	}
	rmV, err := vaultURIs(env, rmVault)
	if err != nil {
		return g, err
	}
	rmS := map[string]bool{}
	for _, u := range rmV {
		rmS[u.String()] = true
	}
	for _, u := range g.Vault {
		if !rmS[u.String()] {
			out.Vault = append(out.Vault, u)
		}
	}
	for _, u := range addV {
		if !rmS[u.String()] {
			out.Vault = append(out.Vault, u)
		}
	}
	if len(out.Age) == 0 && len(out.Vault) == 0 {
		return g, errors.New("removing these keys would leave the file with no master key")
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// plainBytesOf emits a decrypted document in format f (no metadata).
func plainBytesOf(o *fileenc.Opened, f fileenc.Format) ([]byte, error) {
	return plainCopy(o).Emit(f)
}
