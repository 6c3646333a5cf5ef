package cli

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// kvPath is a user's KV path resolved against its mount.
type kvPath struct {
	mount   string // "secret/"
	rel     string // "app/db"
	version int    // 1 or 2
}

// api returns the API path for a KV v2 sub-resource ("data", "metadata",
// "delete", ...) or, for KV v1, the plain path.
func (p kvPath) api(kind string) string {
	if p.version == 1 {
		return p.mount + p.rel
	}
	return p.mount + kind + "/" + p.rel
}

// resolveKV asks the server which mount serves path (as the Vault CLI does
// with sys/internal/ui/mounts) unless -mount was given.
func resolveKV(ctx context.Context, c *Client, mount, path string) (kvPath, error) {
	path = strings.Trim(path, "/")
	if mount != "" {
		mount = strings.Trim(mount, "/") + "/"
		path = mount + path
	}
	resp, err := c.Do(ctx, http.MethodGet, "sys/internal/ui/mounts/"+path, nil)
	if isNotFound(err) {
		// No mount information: assume KV v1 at the first segment, as the
		// Vault CLI does.
		m, rest, _ := strings.Cut(path, "/")
		return kvPath{mount: m + "/", rel: rest, version: 1}, nil
	}
	if err != nil {
		return kvPath{}, err
	}
	d := resp.Data()
	mp, _ := d["path"].(string)
	if mp == "" {
		return kvPath{}, fmt.Errorf("no KV mount serves %q", path)
	}
	if t, _ := d["type"].(string); t != "kv" {
		return kvPath{}, fmt.Errorf("%q is served by a %q mount, not kv", path, t)
	}
	v := 1
	if opts, ok := d["options"].(map[string]any); ok && fmt.Sprint(opts["version"]) == "2" {
		v = 2
	}
	rel := strings.Trim(strings.TrimPrefix(path+"/", mp), "/")
	return kvPath{mount: mp, rel: rel, version: v}, nil
}

type kvFlags struct {
	clientFlags
	mount string
	field string
}

func (f *kvFlags) add(cmd *cobra.Command) {
	addClientFlags(cmd, &f.clientFlags)
	cmd.Flags().StringVar(&f.mount, "mount", "", "the KV mount (otherwise the first part of PATH, looked up on the server)")
}

func newKVCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kv",
		Short: "Read and write secrets in KV v1 and v2 mounts",
	}
	meta := &cobra.Command{Use: "metadata", Short: "Read and write KV v2 metadata"}
	meta.AddCommand(newKVMetadataGetCmd(env), newKVMetadataPutCmd(env), newKVMetadataDeleteCmd(env))
	cmd.AddCommand(newKVPutCmd(env, false), newKVPutCmd(env, true), newKVGetCmd(env), newKVListCmd(env),
		newKVDeleteCmd(env), newKVVersionsCmd(env, "undelete"), newKVVersionsCmd(env, "destroy"), meta)
	return cmd
}

func newKVPutCmd(env *Env, patch bool) *cobra.Command {
	var f kvFlags
	cas := -1
	use, short := "put PATH key=value...", "Write a new version of a secret (replaces all its keys)"
	if patch {
		use, short = "patch PATH key=value...", "Change some keys of the latest version of a secret (KV v2)"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := f.outputFormat(env)
			if err != nil {
				return err
			}
			data, err := parseKVArgs(env, args[1:])
			if err != nil {
				return err
			}
			if len(data) == 0 {
				return usagef("no data to write")
			}
			c, err := f.newClient(env)
			if err != nil {
				return err
			}
			p, err := resolveKV(cmd.Context(), c, f.mount, args[0])
			if err != nil {
				return err
			}
			var resp *Response
			switch {
			case p.version == 1 && patch:
				return fmt.Errorf("kv patch needs a KV v2 mount; %s is KV v1", p.mount)
			case p.version == 1:
				resp, err = c.Do(cmd.Context(), http.MethodPut, p.api(""), data)
			default:
				body := map[string]any{"data": data}
				if cas >= 0 {
					body["options"] = map[string]any{"cas": cas}
				}
				method := http.MethodPut
				if patch {
					method = http.MethodPatch
				}
				resp, err = c.Do(cmd.Context(), method, p.api("data"), body)
			}
			if err != nil {
				return err
			}
			if p.version == 1 {
				fmt.Fprintf(env.Stdout, "Success! Data written to: %s\n", p.api(""))
				return nil
			}
			if f.field != "" || format != "table" {
				return printSecret(env, format, f.field, resp)
			}
			fmt.Fprintf(env.Stdout, "== Secret Path ==\n%s\n\n", p.api("data"))
			fmt.Fprintln(env.Stdout, "======= Metadata =======")
			return printTable(env.Stdout, resp.Data())
		},
	}
	f.add(cmd)
	cmd.Flags().IntVar(&cas, "cas", -1, "check-and-set: write only if the current version is this (0: only if absent)")
	cmd.Flags().StringVar(&f.field, "field", "", "print only this field of the response")
	return cmd
}

func newKVGetCmd(env *Env) *cobra.Command {
	var f kvFlags
	var version int
	cmd := &cobra.Command{
		Use:   "get PATH",
		Short: "Read a secret (the latest version, or -version)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := f.outputFormat(env)
			if err != nil {
				return err
			}
			c, err := f.newClient(env)
			if err != nil {
				return err
			}
			p, err := resolveKV(cmd.Context(), c, f.mount, args[0])
			if err != nil {
				return err
			}
			path := p.api("data")
			if version > 0 && p.version == 2 {
				path += "?version=" + strconv.Itoa(version)
			}
			resp, err := c.Do(cmd.Context(), http.MethodGet, path, nil)
			if isNotFound(err) {
				if resp != nil && resp.Data() != nil {
					meta, _ := resp.Data()["metadata"].(map[string]any)
					if meta != nil && fmt.Sprint(meta["destroyed"]) == "true" {
						fmt.Fprintf(env.Stderr, "Version %v of %s is destroyed\n", meta["version"], args[0])
					} else {
						fmt.Fprintf(env.Stderr, "Version %v of %s is deleted\n", meta["version"], args[0])
					}
					return &ExitError{Code: 2}
				}
				return notFoundError(env, p.api("data"))
			}
			if err != nil {
				return err
			}
			if p.version == 1 {
				return printSecret(env, format, f.field, resp)
			}
			d := resp.Data()
			secret, _ := d["data"].(map[string]any)
			if f.field != "" {
				v, err := fieldValue(secret, f.field)
				if err != nil {
					return err
				}
				fmt.Fprintln(env.Stdout, v)
				return nil
			}
			if format != "table" {
				return printData(env.Stdout, format, resp.Body)
			}
			fmt.Fprintf(env.Stdout, "== Secret Path ==\n%s\n\n", p.api("data"))
			fmt.Fprintln(env.Stdout, "======= Metadata =======")
			meta, _ := d["metadata"].(map[string]any)
			if err := printTable(env.Stdout, meta); err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, "\n=== Data ===")
			return printTable(env.Stdout, secret)
		},
	}
	f.add(cmd)
	cmd.Flags().IntVar(&version, "version", 0, "read this version (KV v2)")
	cmd.Flags().StringVar(&f.field, "field", "", "print only this key's value, raw")
	return cmd
}

func newKVListCmd(env *Env) *cobra.Command {
	var f kvFlags
	cmd := &cobra.Command{
		Use:   "list PATH",
		Short: "List the secrets under a path",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := f.outputFormat(env)
			if err != nil {
				return err
			}
			c, err := f.newClient(env)
			if err != nil {
				return err
			}
			p, err := resolveKV(cmd.Context(), c, f.mount, args[0])
			if err != nil {
				return err
			}
			path := strings.TrimSuffix(p.api("metadata"), "/") + "/"
			resp, err := c.Do(cmd.Context(), "LIST", path, nil)
			if isNotFound(err) {
				return notFoundError(env, path)
			}
			if err != nil {
				return err
			}
			return printKeys(env, format, resp)
		},
	}
	f.add(cmd)
	return cmd
}

func parseVersions(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 {
			return nil, usagef("invalid -versions %q: want a comma-separated list of positive version numbers", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func newKVDeleteCmd(env *Env) *cobra.Command {
	var f kvFlags
	var versions string
	cmd := &cobra.Command{
		Use:   "delete PATH",
		Short: "Soft-delete the latest version of a secret, or -versions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			vs, err := parseVersions(versions)
			if err != nil {
				return err
			}
			c, err := f.newClient(env)
			if err != nil {
				return err
			}
			p, err := resolveKV(cmd.Context(), c, f.mount, args[0])
			if err != nil {
				return err
			}
			switch {
			case p.version == 1 || len(vs) == 0:
				_, err = c.Do(cmd.Context(), http.MethodDelete, p.api("data"), nil)
			default:
				_, err = c.Do(cmd.Context(), http.MethodPut, p.api("delete"), map[string]any{"versions": vs})
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "Success! Data deleted (if it existed) at: %s\n", p.api("data"))
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&versions, "versions", "", "comma-separated versions to delete (KV v2)")
	return cmd
}

func newKVVersionsCmd(env *Env, verb string) *cobra.Command {
	var f kvFlags
	var versions string
	short := "Restore soft-deleted versions of a secret"
	if verb == "destroy" {
		short = "Permanently remove versions of a secret"
	}
	cmd := &cobra.Command{
		Use:   verb + " -versions=N[,N...] PATH",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			vs, err := parseVersions(versions)
			if err != nil {
				return err
			}
			if len(vs) == 0 {
				return usagef("-versions is required")
			}
			c, err := f.newClient(env)
			if err != nil {
				return err
			}
			p, err := resolveKV(cmd.Context(), c, f.mount, args[0])
			if err != nil {
				return err
			}
			if p.version != 2 {
				return fmt.Errorf("kv %s needs a KV v2 mount; %s is KV v1", verb, p.mount)
			}
			if _, err := c.Do(cmd.Context(), http.MethodPut, p.api(verb), map[string]any{"versions": vs}); err != nil {
				return err
			}
			past := "undeleted"
			if verb == "destroy" {
				past = "destroyed"
			}
			fmt.Fprintf(env.Stdout, "Success! Data written to: %s (versions %s)\n", p.api(verb), past)
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&versions, "versions", "", "comma-separated versions")
	return cmd
}

func newKVMetadataGetCmd(env *Env) *cobra.Command {
	var f kvFlags
	cmd := &cobra.Command{
		Use:   "get PATH",
		Short: "Read a secret's metadata and version history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := f.outputFormat(env)
			if err != nil {
				return err
			}
			c, err := f.newClient(env)
			if err != nil {
				return err
			}
			p, err := resolveKV(cmd.Context(), c, f.mount, args[0])
			if err != nil {
				return err
			}
			if p.version != 2 {
				return fmt.Errorf("kv metadata needs a KV v2 mount; %s is KV v1", p.mount)
			}
			resp, err := c.Do(cmd.Context(), http.MethodGet, p.api("metadata"), nil)
			if isNotFound(err) {
				return notFoundError(env, p.api("metadata"))
			}
			if err != nil {
				return err
			}
			if format != "table" {
				return printData(env.Stdout, format, resp.Body)
			}
			d := resp.Data()
			versions, _ := d["versions"].(map[string]any)
			delete(d, "versions")
			fmt.Fprintf(env.Stdout, "=== Metadata Path ===\n%s\n\n========== Metadata ==========\n", p.api("metadata"))
			if err := printTable(env.Stdout, d); err != nil {
				return err
			}
			keys := sortedKeys(versions)
			sortNumeric(keys)
			for _, k := range keys {
				fmt.Fprintf(env.Stdout, "\n====== Version %s ======\n", k)
				v, _ := versions[k].(map[string]any)
				if err := printTable(env.Stdout, v); err != nil {
					return err
				}
			}
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func sortNumeric(keys []string) {
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0; j-- {
			a, _ := strconv.Atoi(keys[j-1])
			b, _ := strconv.Atoi(keys[j])
			if a <= b {
				break
			}
			keys[j-1], keys[j] = keys[j], keys[j-1]
		}
	}
}

func newKVMetadataPutCmd(env *Env) *cobra.Command {
	var f kvFlags
	var maxVersions int
	var casRequired bool
	var deleteAfter string
	var custom []string
	cmd := &cobra.Command{
		Use:   "put PATH",
		Short: "Set a secret's max_versions, cas_required, delete_version_after or custom_metadata",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{}
			if cmd.Flags().Changed("max-versions") {
				body["max_versions"] = maxVersions
			}
			if cmd.Flags().Changed("cas-required") {
				body["cas_required"] = casRequired
			}
			if cmd.Flags().Changed("delete-version-after") {
				body["delete_version_after"] = deleteAfter
			}
			if len(custom) > 0 {
				cm := map[string]any{}
				for _, kv := range custom {
					k, v, ok := strings.Cut(kv, "=")
					if !ok || k == "" {
						return usagef("invalid -custom-metadata %q: want key=value", kv)
					}
					cm[k] = v
				}
				body["custom_metadata"] = cm
			}
			c, err := f.newClient(env)
			if err != nil {
				return err
			}
			p, err := resolveKV(cmd.Context(), c, f.mount, args[0])
			if err != nil {
				return err
			}
			if p.version != 2 {
				return fmt.Errorf("kv metadata needs a KV v2 mount; %s is KV v1", p.mount)
			}
			if _, err := c.Do(cmd.Context(), http.MethodPut, p.api("metadata"), body); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "Success! Data written to: %s\n", p.api("metadata"))
			return nil
		},
	}
	f.add(cmd)
	fl := cmd.Flags()
	fl.IntVar(&maxVersions, "max-versions", 0, "versions to keep (0: the mount's setting)")
	fl.BoolVar(&casRequired, "cas-required", false, "require -cas on every write")
	fl.StringVar(&deleteAfter, "delete-version-after", "", "delete versions older than this (e.g. 720h)")
	fl.StringArrayVar(&custom, "custom-metadata", nil, "key=value to store as custom metadata (repeatable)")
	return cmd
}

func newKVMetadataDeleteCmd(env *Env) *cobra.Command {
	var f kvFlags
	cmd := &cobra.Command{
		Use:   "delete PATH",
		Short: "Delete a secret's metadata and every version",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.newClient(env)
			if err != nil {
				return err
			}
			p, err := resolveKV(cmd.Context(), c, f.mount, args[0])
			if err != nil {
				return err
			}
			if p.version != 2 {
				return fmt.Errorf("kv metadata needs a KV v2 mount; %s is KV v1", p.mount)
			}
			if _, err := c.Do(cmd.Context(), http.MethodDelete, p.api("metadata"), nil); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "Success! Data deleted (if it existed) at: %s\n", p.api("metadata"))
			return nil
		},
	}
	f.add(cmd)
	return cmd
}
