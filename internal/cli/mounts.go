package cli

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/coffer-dev/coffer/internal/audit"
)

// mountKind is "secrets" (sys/mounts) or "auth" (sys/auth).
type mountKind struct {
	noun, sys, what string
}

var (
	secretsKind = mountKind{"secrets", "sys/mounts", "secrets engine"}
	authKind    = mountKind{"auth", "sys/auth", "auth method"}
)

func newMountCmd(env *Env, k mountKind) *cobra.Command {
	cmd := &cobra.Command{Use: k.noun, Short: "Enable, disable, list and tune " + k.what + "s"}
	cmd.AddCommand(newMountEnableCmd(env, k), newMountDisableCmd(env, k), newMountListCmd(env, k), newMountTuneCmd(env, k))
	return cmd
}

func newMountEnableCmd(env *Env, k mountKind) *cobra.Command {
	var cf clientFlags
	var path, desc, defTTL, maxTTL string
	var opts []string
	var version int
	cmd := &cobra.Command{
		Use:   "enable [-path=P] TYPE",
		Short: "Enable a " + k.what + " (at TYPE/ unless -path is given)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.newClient(env)
			if err != nil {
				return err
			}
			typ := args[0]
			if path == "" {
				path = typ
			}
			path = strings.Trim(path, "/")
			body := map[string]any{"type": typ, "description": desc}
			o := map[string]string{}
			for _, kv := range opts {
				key, v, ok := strings.Cut(kv, "=")
				if !ok || key == "" {
					return usagef("invalid -options %q: want key=value", kv)
				}
				o[key] = v
			}
			if version > 0 {
				o["version"] = fmt.Sprint(version)
			}
			if len(o) > 0 {
				body["options"] = o
			}
			conf := map[string]any{}
			if defTTL != "" {
				conf["default_lease_ttl"] = defTTL
			}
			if maxTTL != "" {
				conf["max_lease_ttl"] = maxTTL
			}
			if len(conf) > 0 {
				body["config"] = conf
			}
			if _, err := c.Do(cmd.Context(), http.MethodPost, k.sys+"/"+path, body); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "Success! Enabled the %s %s at: %s/\n", typ, k.what, path)
			return nil
		},
	}
	addClientFlags(cmd, &cf)
	fl := cmd.Flags()
	fl.StringVar(&path, "path", "", "mount path (default: the type)")
	fl.StringVar(&desc, "description", "", "human-readable description")
	fl.StringArrayVar(&opts, "options", nil, "key=value option for the backend (repeatable)")
	if k.noun == "secrets" {
		fl.IntVar(&version, "version", 0, "KV version (1 or 2), a shortcut for -options=version=N")
	}
	fl.StringVar(&defTTL, "default-lease-ttl", "", "default lease TTL")
	fl.StringVar(&maxTTL, "max-lease-ttl", "", "maximum lease TTL")
	return cmd
}

func newMountDisableCmd(env *Env, k mountKind) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "disable PATH",
		Short: "Disable a " + k.what + " and delete all its data",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.newClient(env)
			if err != nil {
				return err
			}
			p := strings.Trim(args[0], "/")
			if _, err := c.Do(cmd.Context(), http.MethodDelete, k.sys+"/"+p, nil); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "Success! Disabled the %s (if it existed) at: %s/\n", k.what, p)
			return nil
		},
	}
	addClientFlags(cmd, &cf)
	return cmd
}

func newMountListCmd(env *Env, k mountKind) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List enabled " + k.what + "s",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := cf.outputFormat(env)
			if err != nil {
				return err
			}
			c, err := cf.newClient(env)
			if err != nil {
				return err
			}
			resp, err := c.Do(cmd.Context(), http.MethodGet, k.sys, nil)
			if err != nil {
				return err
			}
			d := resp.Data()
			if format != "table" {
				return printData(env.Stdout, format, d)
			}
			paths := make([]string, 0, len(d))
			for p := range d {
				paths = append(paths, p)
			}
			sort.Strings(paths)
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 4, ' ', 0)
			fmt.Fprintln(tw, "Path\tType\tAccessor\tVersion\tDescription")
			fmt.Fprintln(tw, "----\t----\t--------\t-------\t-----------")
			for _, p := range paths {
				m, _ := d[p].(map[string]any)
				ver := "n/a"
				if o, ok := m["options"].(map[string]any); ok && o["version"] != nil {
					ver = fmt.Sprint(o["version"])
				}
				fmt.Fprintf(tw, "%s\t%v\t%v\t%s\t%v\n", p, m["type"], m["accessor"], ver, m["description"])
			}
			return tw.Flush()
		},
	}
	addClientFlags(cmd, &cf)
	return cmd
}

func newMountTuneCmd(env *Env, k mountKind) *cobra.Command {
	var cf clientFlags
	var desc, defTTL, maxTTL string
	var opts []string
	cmd := &cobra.Command{
		Use:   "tune [flags] PATH",
		Short: "Change a mount's TTLs, description or options (e.g. -options=version=2 upgrades KV)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.newClient(env)
			if err != nil {
				return err
			}
			body := map[string]any{}
			if cmd.Flags().Changed("description") {
				body["description"] = desc
			}
			if defTTL != "" {
				body["default_lease_ttl"] = defTTL
			}
			if maxTTL != "" {
				body["max_lease_ttl"] = maxTTL
			}
			if len(opts) > 0 {
				o := map[string]string{}
				for _, kv := range opts {
					key, v, ok := strings.Cut(kv, "=")
					if !ok || key == "" {
						return usagef("invalid -options %q: want key=value", kv)
					}
					o[key] = v
				}
				body["options"] = o
			}
			if len(body) == 0 {
				return usagef("nothing to tune: give -description, -default-lease-ttl, -max-lease-ttl or -options")
			}
			p := strings.Trim(args[0], "/")
			if _, err := c.Do(cmd.Context(), http.MethodPost, k.sys+"/"+p+"/tune", body); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "Success! Tuned the %s at: %s/\n", k.what, p)
			return nil
		},
	}
	addClientFlags(cmd, &cf)
	fl := cmd.Flags()
	fl.StringVar(&desc, "description", "", "new description")
	fl.StringVar(&defTTL, "default-lease-ttl", "", "default lease TTL")
	fl.StringVar(&maxTTL, "max-lease-ttl", "", "maximum lease TTL")
	fl.StringArrayVar(&opts, "options", nil, "key=value option (repeatable)")
	return cmd
}

func newAuditCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Enable, disable and list audit devices; verify audit logs"}
	var cf clientFlags
	enable := &cobra.Command{
		Use:   "enable [-path=P] file file_path=PATH [fsync=true]",
		Short: "Enable a file audit device (its file must be under the server's audit directory)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, _ := cmd.Flags().GetString("path")
			desc, _ := cmd.Flags().GetString("description")
			if path == "" {
				path = args[0]
			}
			opts := map[string]string{}
			for _, kv := range args[1:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usagef("invalid option %q: want key=value", kv)
				}
				opts[k] = v
			}
			c, err := cf.newClient(env)
			if err != nil {
				return err
			}
			p := strings.Trim(path, "/")
			body := map[string]any{"type": args[0], "description": desc, "options": opts}
			if _, err := c.Do(cmd.Context(), http.MethodPut, "sys/audit/"+p, body); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "Success! Enabled the %s audit device at: %s/\n", args[0], p)
			return nil
		},
	}
	addClientFlags(enable, &cf)
	enable.Flags().String("path", "", "device path (default: the type)")
	enable.Flags().String("description", "", "description")

	var cf2 clientFlags
	disable := &cobra.Command{
		Use:   "disable PATH",
		Short: "Disable an audit device",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf2.newClient(env)
			if err != nil {
				return err
			}
			p := strings.Trim(args[0], "/")
			if _, err := c.Do(cmd.Context(), http.MethodDelete, "sys/audit/"+p, nil); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "Success! Disabled the audit device (if it existed) at: %s/\n", p)
			return nil
		},
	}
	addClientFlags(disable, &cf2)

	var cf3 clientFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List audit devices",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := cf3.outputFormat(env)
			if err != nil {
				return err
			}
			c, err := cf3.newClient(env)
			if err != nil {
				return err
			}
			resp, err := c.Do(cmd.Context(), http.MethodGet, "sys/audit", nil)
			if err != nil {
				return err
			}
			d := resp.Data()
			if format != "table" {
				return printData(env.Stdout, format, d)
			}
			if len(d) == 0 {
				fmt.Fprintln(env.Stdout, "No audit devices are enabled.")
				return nil
			}
			keys := sortedKeys(d)
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 4, ' ', 0)
			fmt.Fprintln(tw, "Path\tType\tFile\tDescription")
			fmt.Fprintln(tw, "----\t----\t----\t-----------")
			for _, p := range keys {
				m, _ := d[p].(map[string]any)
				o, _ := m["options"].(map[string]any)
				fmt.Fprintf(tw, "%s\t%v\t%v\t%v\n", p, m["type"], o["file_path"], m["description"])
			}
			return tw.Flush()
		},
	}
	addClientFlags(list, &cf3)

	verify := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check an audit log's hash chain offline; report the first broken line",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := audit.VerifyFile(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, res.String())
			return nil
		},
	}
	cmd.AddCommand(enable, disable, list, verify)
	return cmd
}
