package cli

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
)

func newLeaseCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "lease", Short: "Renew, revoke and look up leases of dynamic secrets"}

	var cf1 clientFlags
	var increment string
	renew := &cobra.Command{
		Use:   "renew [-increment=D] LEASE_ID",
		Short: "Extend a lease (bounded by its maximum TTL)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := cf1.outputFormat(env)
			if err != nil {
				return err
			}
			c, err := cf1.newClient(env)
			if err != nil {
				return err
			}
			body := map[string]any{"lease_id": args[0]}
			if increment != "" {
				body["increment"] = increment
			}
			resp, err := c.Do(cmd.Context(), http.MethodPut, "sys/leases/renew", body)
			if err != nil {
				return err
			}
			return printSecret(env, format, "", resp)
		},
	}
	addClientFlags(renew, &cf1)
	renew.Flags().StringVar(&increment, "increment", "", "requested TTL from now (e.g. 1h)")

	var cf2 clientFlags
	var prefix, force bool
	revoke := &cobra.Command{
		Use:   "revoke [-prefix [-force]] LEASE_ID|PREFIX",
		Short: "Revoke a lease now (or every lease under a prefix)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf2.newClient(env)
			if err != nil {
				return err
			}
			switch {
			case force && !prefix:
				return usagef("-force needs -prefix")
			case force:
				_, err = c.Do(cmd.Context(), http.MethodPut, "sys/leases/revoke-force/"+strings.Trim(args[0], "/"), nil)
			case prefix:
				_, err = c.Do(cmd.Context(), http.MethodPut, "sys/leases/revoke-prefix/"+strings.Trim(args[0], "/"), nil)
			default:
				_, err = c.Do(cmd.Context(), http.MethodPut, "sys/leases/revoke", map[string]any{"lease_id": args[0]})
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "Success! Revoked lease: %s\n", args[0])
			return nil
		},
	}
	addClientFlags(revoke, &cf2)
	revoke.Flags().BoolVar(&prefix, "prefix", false, "revoke every lease under the given prefix (sudo)")
	revoke.Flags().BoolVar(&force, "force", false, "with -prefix: delete the leases even if their secrets cannot be revoked (sudo)")

	var cf3 clientFlags
	var list bool
	lookup := &cobra.Command{
		Use:   "lookup LEASE_ID | -list PREFIX",
		Short: "Show a lease (or list the leases under a prefix)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := cf3.outputFormat(env)
			if err != nil {
				return err
			}
			c, err := cf3.newClient(env)
			if err != nil {
				return err
			}
			if list {
				resp, err := c.Do(cmd.Context(), "LIST", "sys/leases/lookup/"+strings.Trim(args[0], "/")+"/", nil)
				if isNotFound(err) {
					return notFoundError(env, args[0])
				}
				if err != nil {
					return err
				}
				return printKeys(env, format, resp)
			}
			resp, err := c.Do(cmd.Context(), http.MethodPut, "sys/leases/lookup", map[string]any{"lease_id": args[0]})
			if err != nil {
				return err
			}
			return printSecret(env, format, "", resp)
		},
	}
	addClientFlags(lookup, &cf3)
	lookup.Flags().BoolVar(&list, "list", false, "list the lease ids under the prefix (sudo)")
	cmd.AddCommand(renew, revoke, lookup)
	return cmd
}
