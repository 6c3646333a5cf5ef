package cli

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

// printSecret prints a response the way `vault read` does: lease fields,
// then the data keys; -field prints one raw value.
func printSecret(env *Env, format, field string, resp *Response) error {
	data := resp.Data()
	if field != "" {
		src := data
		if a, ok := resp.Body["auth"].(map[string]any); ok && a != nil {
			if _, ok := data[field]; !ok {
				src = a
				// The names the table shows for auth fields, as in Vault.
				alias := map[string]string{"token": "client_token", "token_accessor": "accessor",
					"token_duration": "lease_duration", "token_renewable": "renewable"}
				if f, ok := alias[field]; ok {
					field = f
				}
			}
		}
		v, err := fieldValue(src, field)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(env.Stdout, v)
		return err
	}
	if format != "table" {
		return printData(env.Stdout, format, resp.Body)
	}
	rows := [][2]string{}
	if a, ok := resp.Body["auth"].(map[string]any); ok && a != nil {
		rows = append(rows,
			[2]string{"token", formatValue(a["client_token"])},
			[2]string{"token_accessor", formatValue(a["accessor"])},
			[2]string{"token_duration", formatDuration(a["lease_duration"])},
			[2]string{"token_renewable", formatValue(a["renewable"])},
			[2]string{"token_policies", formatValue(a["token_policies"])},
			[2]string{"policies", formatValue(a["policies"])},
		)
		if m, ok := a["metadata"].(map[string]any); ok {
			keys := sortedKeys(m)
			for _, k := range keys {
				rows = append(rows, [2]string{"token_meta_" + k, formatValue(m[k])})
			}
		}
	}
	if id, _ := resp.Body["lease_id"].(string); id != "" {
		rows = append(rows,
			[2]string{"lease_id", id},
			[2]string{"lease_duration", formatDuration(resp.Body["lease_duration"])},
			[2]string{"lease_renewable", formatValue(resp.Body["renewable"])},
		)
	} else if d := resp.Body["lease_duration"]; d != nil && fmt.Sprint(d) != "0" {
		rows = append(rows, [2]string{"refresh_interval", formatDuration(d)})
	}
	for _, k := range sortedKeys(data) {
		rows = append(rows, [2]string{k, formatValue(data[k])})
	}
	if w, ok := resp.Body["warnings"].([]any); ok {
		for _, x := range w {
			fmt.Fprintf(env.Stderr, "WARNING! %v\n", x)
		}
	}
	return printKV(env.Stdout, rows)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// formatDuration prints seconds like Vault: "768h", "1h", "30m", "45s".
func formatDuration(v any) string {
	var n int64
	if _, err := fmt.Sscan(fmt.Sprint(v), &n); err != nil {
		return formatValue(v)
	}
	if n == 0 {
		return "∞"
	}
	d := n
	switch {
	case d%3600 == 0:
		return fmt.Sprintf("%dh", d/3600)
	case d%60 == 0 && d < 3600:
		return fmt.Sprintf("%dm", d/60)
	default:
		return fmt.Sprintf("%ds", d)
	}
}

func isNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// notFoundError is `vault read`'s "No value found" with exit status 2.
func notFoundError(env *Env, path string) error {
	fmt.Fprintf(env.Stderr, "No value found at %s\n", path)
	return &ExitError{Code: 2}
}

func newReadCmd(env *Env) *cobra.Command {
	var cf clientFlags
	var field string
	cmd := &cobra.Command{
		Use:   "read PATH [key=value...]",
		Short: "Read data at any API path",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := cf.outputFormat(env)
			if err != nil {
				return err
			}
			c, err := cf.newClient(env)
			if err != nil {
				return err
			}
			path := strings.Trim(args[0], "/")
			if len(args) > 1 {
				q, err := parseKVArgs(env, args[1:])
				if err != nil {
					return err
				}
				vals := make([]string, 0, len(q))
				for _, k := range sortedKeys(q) {
					vals = append(vals, urlQueryEscape(k)+"="+urlQueryEscape(fmt.Sprint(q[k])))
				}
				path += "?" + strings.Join(vals, "&")
			}
			resp, err := c.Do(cmd.Context(), http.MethodGet, path, nil)
			if isNotFound(err) && (resp == nil || resp.Data() == nil) {
				return notFoundError(env, args[0])
			}
			if err != nil {
				return err
			}
			return printSecret(env, format, field, resp)
		},
	}
	addClientFlags(cmd, &cf)
	cmd.Flags().StringVar(&field, "field", "", "print only this field, raw")
	return cmd
}

func newWriteCmd(env *Env) *cobra.Command {
	var cf clientFlags
	var field string
	var force bool
	cmd := &cobra.Command{
		Use:   "write PATH [key=value | key=@file | key=- | -]...",
		Short: "Write data to any API path",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := cf.outputFormat(env)
			if err != nil {
				return err
			}
			if len(args) == 1 && !force {
				return usagef("must supply data or use -force (-f) to write with an empty body")
			}
			body, err := parseKVArgs(env, args[1:])
			if err != nil {
				return err
			}
			c, err := cf.newClient(env)
			if err != nil {
				return err
			}
			resp, err := c.Do(cmd.Context(), http.MethodPut, strings.Trim(args[0], "/"), body)
			if err != nil {
				return err
			}
			if resp.Body == nil || (resp.Data() == nil && resp.Body["auth"] == nil) {
				fmt.Fprintf(env.Stdout, "Success! Data written to: %s\n", args[0])
				return nil
			}
			return printSecret(env, format, field, resp)
		},
	}
	addClientFlags(cmd, &cf)
	cmd.Flags().StringVar(&field, "field", "", "print only this field, raw")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "write even when no data is given (an empty body)")
	return cmd
}

func newListCmd(env *Env) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "list PATH",
		Short: "List the keys at any API path",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := cf.outputFormat(env)
			if err != nil {
				return err
			}
			c, err := cf.newClient(env)
			if err != nil {
				return err
			}
			resp, err := c.Do(cmd.Context(), "LIST", strings.Trim(args[0], "/")+"/", nil)
			if isNotFound(err) {
				return notFoundError(env, args[0])
			}
			if err != nil {
				return err
			}
			return printKeys(env, format, resp)
		},
	}
	addClientFlags(cmd, &cf)
	return cmd
}

func printKeys(env *Env, format string, resp *Response) error {
	keys := asStrings(resp.Data()["keys"])
	if format != "table" {
		return printData(env.Stdout, format, keys)
	}
	fmt.Fprintln(env.Stdout, "Keys")
	fmt.Fprintln(env.Stdout, "----")
	for _, k := range keys {
		fmt.Fprintln(env.Stdout, k)
	}
	return nil
}

func newDeleteCmd(env *Env) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "delete PATH",
		Short: "Delete data at any API path",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.newClient(env)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), http.MethodDelete, strings.Trim(args[0], "/"), nil); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "Success! Data deleted (if it existed) at: %s\n", args[0])
			return nil
		},
	}
	addClientFlags(cmd, &cf)
	return cmd
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
