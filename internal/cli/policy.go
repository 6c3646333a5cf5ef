package cli

import (
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/spf13/cobra"

	"github.com/coffer-dev/coffer/internal/policy"
)

func newPolicyCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Write, read, list, delete and format ACL policies"}
	cmd.AddCommand(newPolicyWriteCmd(env), newPolicyReadCmd(env), newPolicyListCmd(env), newPolicyDeleteCmd(env), newPolicyFmtCmd(env))
	return cmd
}

func readPolicyFile(env *Env, name string) (string, error) {
	var b []byte
	var err error
	if name == "-" {
		b, err = io.ReadAll(io.LimitReader(env.Stdin, 1<<20))
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return "", fmt.Errorf("read policy: %w", err)
	}
	return string(b), nil
}

func newPolicyWriteCmd(env *Env) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "write NAME FILE|-",
		Short: "Upload a policy (checked locally first, with line numbers)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := readPolicyFile(env, args[1])
			if err != nil {
				return err
			}
			if _, err := policy.Parse(args[0], text); err != nil {
				return err
			}
			c, err := cf.newClient(env)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), http.MethodPut, "sys/policies/acl/"+args[0], map[string]any{"policy": text}); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "Success! Uploaded policy: %s\n", args[0])
			return nil
		},
	}
	addClientFlags(cmd, &cf)
	return cmd
}

func newPolicyReadCmd(env *Env) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "read NAME",
		Short: "Print a policy",
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
			resp, err := c.Do(cmd.Context(), http.MethodGet, "sys/policies/acl/"+args[0], nil)
			if isNotFound(err) {
				return fmt.Errorf("no policy named %q", args[0])
			}
			if err != nil {
				return err
			}
			if format != "table" {
				return printData(env.Stdout, format, resp.Data())
			}
			fmt.Fprint(env.Stdout, resp.Data()["policy"])
			if s, _ := resp.Data()["policy"].(string); s != "" && s[len(s)-1] != '\n' {
				fmt.Fprintln(env.Stdout)
			}
			return nil
		},
	}
	addClientFlags(cmd, &cf)
	return cmd
}

func newPolicyListCmd(env *Env) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List policy names",
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
			resp, err := c.Do(cmd.Context(), "LIST", "sys/policies/acl/", nil)
			if err != nil {
				return err
			}
			keys := asStrings(resp.Data()["keys"])
			if format != "table" {
				return printData(env.Stdout, format, keys)
			}
			for _, k := range keys {
				fmt.Fprintln(env.Stdout, k)
			}
			return nil
		},
	}
	addClientFlags(cmd, &cf)
	return cmd
}

func newPolicyDeleteCmd(env *Env) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a policy",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.newClient(env)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), http.MethodDelete, "sys/policies/acl/"+args[0], nil); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "Success! Deleted policy: %s\n", args[0])
			return nil
		},
	}
	addClientFlags(cmd, &cf)
	return cmd
}

func newPolicyFmtCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "fmt FILE",
		Short: "Check and canonically format a policy file in place (offline)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := readPolicyFile(env, args[0])
			if err != nil {
				return err
			}
			out, err := policy.Format(text)
			if err != nil {
				return err
			}
			if args[0] == "-" {
				_, err = io.WriteString(env.Stdout, out)
				return err
			}
			fi, err := os.Stat(args[0])
			if err != nil {
				return err
			}
			if err := os.WriteFile(args[0], []byte(out), fi.Mode().Perm()); err != nil {
				return fmt.Errorf("write policy: %w", err)
			}
			fmt.Fprintf(env.Stdout, "Success! Formatted policy: %s\n", args[0])
			return nil
		},
	}
}
