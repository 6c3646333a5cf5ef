package cli

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
)

func newTokenCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Create, look up, renew and revoke tokens"}
	cmd.AddCommand(newTokenCreateCmd(env), newTokenLookupCmd(env), newTokenRenewCmd(env), newTokenRevokeCmd(env), newTokenCapabilitiesCmd(env))
	return cmd
}

func newTokenCreateCmd(env *Env) *cobra.Command {
	var cf clientFlags
	var field, ttl, explicitMax, period, displayName, id string
	var policies, meta []string
	var orphan, noDefault, renewable bool
	var uses int
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a child token of the current token (or an orphan)",
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
			body := map[string]any{}
			if len(policies) > 0 {
				body["policies"] = splitCommas(policies)
			}
			if ttl != "" {
				body["ttl"] = ttl
			}
			if explicitMax != "" {
				body["explicit_max_ttl"] = explicitMax
			}
			if period != "" {
				body["period"] = period
			}
			if displayName != "" {
				body["display_name"] = displayName
			}
			if id != "" {
				body["id"] = id
			}
			if uses > 0 {
				body["num_uses"] = uses
			}
			if noDefault {
				body["no_default_policy"] = true
			}
			if cmd.Flags().Changed("renewable") {
				body["renewable"] = renewable
			}
			if len(meta) > 0 {
				m := map[string]string{}
				for _, kv := range meta {
					k, v, ok := strings.Cut(kv, "=")
					if !ok || k == "" {
						return usagef("invalid -metadata %q: want key=value", kv)
					}
					m[k] = v
				}
				body["meta"] = m
			}
			path := "auth/token/create"
			if orphan {
				path = "auth/token/create-orphan"
			}
			resp, err := c.Do(cmd.Context(), http.MethodPost, path, body)
			if err != nil {
				return err
			}
			return printSecret(env, format, field, resp)
		},
	}
	addClientFlags(cmd, &cf)
	fl := cmd.Flags()
	fl.StringSliceVar(&policies, "policy", nil, "policy to attach (repeatable or comma-separated)")
	fl.StringArrayVar(&meta, "metadata", nil, "key=value metadata (repeatable)")
	fl.StringVar(&ttl, "ttl", "", "initial TTL (e.g. 1h)")
	fl.StringVar(&explicitMax, "explicit-max-ttl", "", "hard upper bound on the token's life")
	fl.StringVar(&period, "period", "", "make a periodic token (root only)")
	fl.StringVar(&displayName, "display-name", "", "name shown in audit logs")
	fl.StringVar(&id, "id", "", "choose the token value (root only)")
	fl.IntVar(&uses, "use-limit", 0, "number of uses before the token is revoked (0: unlimited)")
	fl.BoolVar(&orphan, "orphan", false, "create a token with no parent")
	fl.BoolVar(&noDefault, "no-default-policy", false, "do not attach the default policy")
	fl.BoolVar(&renewable, "renewable", true, "allow the token to be renewed")
	fl.StringVar(&field, "field", "", "print only this field (e.g. token)")
	return cmd
}

func splitCommas(in []string) []string {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func newTokenLookupCmd(env *Env) *cobra.Command {
	var cf clientFlags
	var accessor bool
	var field string
	cmd := &cobra.Command{
		Use:   "lookup [TOKEN | -accessor ACCESSOR]",
		Short: "Show a token's properties (the current token when none is given)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := cf.outputFormat(env)
			if err != nil {
				return err
			}
			c, err := cf.newClient(env)
			if err != nil {
				return err
			}
			var resp *Response
			switch {
			case len(args) == 0 && accessor:
				return usagef("-accessor needs an ACCESSOR argument")
			case len(args) == 0:
				resp, err = c.Do(cmd.Context(), http.MethodGet, "auth/token/lookup-self", nil)
			case accessor:
				resp, err = c.Do(cmd.Context(), http.MethodPost, "auth/token/lookup-accessor", map[string]any{"accessor": args[0]})
			default:
				resp, err = c.Do(cmd.Context(), http.MethodPost, "auth/token/lookup", map[string]any{"token": args[0]})
			}
			if err != nil {
				return err
			}
			return printSecret(env, format, field, resp)
		},
	}
	addClientFlags(cmd, &cf)
	cmd.Flags().BoolVar(&accessor, "accessor", false, "the argument is an accessor")
	cmd.Flags().StringVar(&field, "field", "", "print only this field")
	return cmd
}

func newTokenRenewCmd(env *Env) *cobra.Command {
	var cf clientFlags
	var increment, field string
	cmd := &cobra.Command{
		Use:   "renew [TOKEN]",
		Short: "Extend a token's TTL (the current token when none is given)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := cf.outputFormat(env)
			if err != nil {
				return err
			}
			c, err := cf.newClient(env)
			if err != nil {
				return err
			}
			body := map[string]any{}
			if increment != "" {
				body["increment"] = increment
			}
			path := "auth/token/renew-self"
			if len(args) == 1 {
				path = "auth/token/renew"
				body["token"] = args[0]
			}
			resp, err := c.Do(cmd.Context(), http.MethodPost, path, body)
			if err != nil {
				return err
			}
			return printSecret(env, format, field, resp)
		},
	}
	addClientFlags(cmd, &cf)
	cmd.Flags().StringVar(&increment, "increment", "", "requested TTL from now (e.g. 1h)")
	cmd.Flags().StringVar(&field, "field", "", "print only this field")
	return cmd
}

func newTokenRevokeCmd(env *Env) *cobra.Command {
	var cf clientFlags
	var accessor, self, orphanMode bool
	cmd := &cobra.Command{
		Use:   "revoke [TOKEN | -accessor ACCESSOR | -self]",
		Short: "Revoke a token and its children (and their leases)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.newClient(env)
			if err != nil {
				return err
			}
			var path string
			body := map[string]any{}
			switch {
			case self:
				if len(args) != 0 {
					return usagef("-self takes no argument")
				}
				path = "auth/token/revoke-self"
			case len(args) != 1:
				return usagef("missing TOKEN (or -self)")
			case accessor:
				path, body["accessor"] = "auth/token/revoke-accessor", args[0]
			case orphanMode:
				path, body["token"] = "auth/token/revoke-orphan", args[0]
			default:
				path, body["token"] = "auth/token/revoke", args[0]
			}
			if _, err := c.Do(cmd.Context(), http.MethodPost, path, body); err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, "Success! Revoked token (if it existed)")
			return nil
		},
	}
	addClientFlags(cmd, &cf)
	cmd.Flags().BoolVar(&accessor, "accessor", false, "the argument is an accessor")
	cmd.Flags().BoolVar(&self, "self", false, "revoke the current token")
	cmd.Flags().BoolVar(&orphanMode, "orphan", false, "revoke only this token; its children become orphans")
	return cmd
}

func newTokenCapabilitiesCmd(env *Env) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "capabilities [TOKEN] PATH",
		Short: "Show what a token (the current one by default) may do on a path",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := cf.outputFormat(env)
			if err != nil {
				return err
			}
			c, err := cf.newClient(env)
			if err != nil {
				return err
			}
			path, body := "sys/capabilities-self", map[string]any{"paths": []string{args[len(args)-1]}}
			if len(args) == 2 {
				path, body["token"] = "sys/capabilities", args[0]
			}
			resp, err := c.Do(cmd.Context(), http.MethodPost, path, body)
			if err != nil {
				return err
			}
			caps := asStrings(resp.Data()["capabilities"])
			if format != "table" {
				return printData(env.Stdout, format, caps)
			}
			fmt.Fprintln(env.Stdout, strings.Join(caps, ", "))
			return nil
		},
	}
	addClientFlags(cmd, &cf)
	return cmd
}
