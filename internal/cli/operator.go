package cli

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
)

func newStatusCmd(env *Env) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the seal status of the server (exit 2 when sealed)",
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
			resp, err := c.Do(cmd.Context(), http.MethodGet, "sys/seal-status", nil)
			if err != nil {
				return err
			}
			if err := printSealStatus(env, format, resp.Body); err != nil {
				return err
			}
			if sealed, _ := resp.Body["sealed"].(bool); sealed {
				return &ExitError{Code: 2}
			}
			return nil
		},
	}
	addClientFlags(cmd, &cf)
	return cmd
}

func printSealStatus(env *Env, format string, b map[string]any) error {
	if format != "table" {
		return printData(env.Stdout, format, b)
	}
	rows := [][2]string{
		{"Seal Type", formatValue(b["type"])},
		{"Recovery Seal", formatValue(b["recovery_seal"])},
		{"Initialized", formatValue(b["initialized"])},
		{"Sealed", formatValue(b["sealed"])},
		{"Total Shares", formatValue(b["n"])},
		{"Threshold", formatValue(b["t"])},
	}
	if sealed, _ := b["sealed"].(bool); sealed {
		rows = append(rows, [2]string{"Unseal Progress", fmt.Sprintf("%s/%s", formatValue(b["progress"]), formatValue(b["t"]))})
		rows = append(rows, [2]string{"Unseal Nonce", formatValue(b["nonce"])})
	}
	rows = append(rows,
		[2]string{"Version", formatValue(b["version"])},
		[2]string{"Storage Type", formatValue(b["storage_type"])},
		[2]string{"Cluster Name", formatValue(b["cluster_name"])},
		[2]string{"Cluster ID", formatValue(b["cluster_id"])},
		[2]string{"HA Enabled", "false"},
	)
	return printKV(env.Stdout, rows)
}

func newOperatorCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "operator",
		Short: "Initialize, unseal, seal and rotate the server's keys",
	}
	cmd.AddCommand(
		newOperatorInitCmd(env),
		newOperatorUnsealCmd(env),
		newOperatorSealCmd(env),
		newOperatorRotateCmd(env),
		newOperatorKeyStatusCmd(env),
		newOperatorSealKeyCmd(env),
	)
	return cmd
}

func newOperatorInitCmd(env *Env) *cobra.Command {
	var cf clientFlags
	var shares, threshold, rshares, rthreshold int
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Initialize the server: create the unseal key shares and the root token",
		Long: `Initialize a new server. The unseal key is split into -key-shares shares, any
-key-threshold of which unseal the server. The shares and the initial root
token are printed once and never stored: distribute them to their holders.
With a static seal key (auto-unseal), recovery shares are printed instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := cf.outputFormat(env)
			if err != nil {
				return err
			}
			c, err := cf.newClient(env)
			if err != nil {
				return err
			}
			body := map[string]any{
				"secret_shares": shares, "secret_threshold": threshold,
				"recovery_shares": rshares, "recovery_threshold": rthreshold,
			}
			resp, err := c.Do(cmd.Context(), http.MethodPut, "sys/init", body)
			if err != nil {
				return err
			}
			if format != "table" {
				return printData(env.Stdout, format, resp.Body)
			}
			w := env.Stdout
			for i, k := range asStrings(resp.Body["keys_base64"]) {
				fmt.Fprintf(w, "Unseal Key %d: %s\n", i+1, k)
			}
			for i, k := range asStrings(resp.Body["recovery_keys_base64"]) {
				fmt.Fprintf(w, "Recovery Key %d: %s\n", i+1, k)
			}
			fmt.Fprintf(w, "\nInitial Root Token: %s\n\n", resp.Body["root_token"])
			if len(asStrings(resp.Body["keys_base64"])) > 0 {
				fmt.Fprintf(w, "Coffer initialized with %d key shares and a key threshold of %d. Please\n"+
					"securely distribute the key shares printed above. When the server is\n"+
					"re-sealed or restarted, run 'coffer operator unseal' %d times with\n"+
					"different shares to unseal it. The shares are not stored anywhere.\n", shares, threshold, threshold)
			} else {
				fmt.Fprintf(w, "Coffer initialized with %d recovery shares and a threshold of %d. The\n"+
					"server unseals itself with its static seal key; the recovery shares are\n"+
					"needed for recovery operations. They are not stored anywhere.\n", rshares, rthreshold)
			}
			return nil
		},
	}
	addClientFlags(cmd, &cf)
	fl := cmd.Flags()
	fl.IntVar(&shares, "key-shares", 5, "number of unseal key shares")
	fl.IntVar(&threshold, "key-threshold", 3, "number of shares needed to unseal")
	fl.IntVar(&rshares, "recovery-shares", 5, "number of recovery key shares (static seal)")
	fl.IntVar(&rthreshold, "recovery-threshold", 3, "number of recovery shares needed (static seal)")
	return cmd
}

func asStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func newOperatorUnsealCmd(env *Env) *cobra.Command {
	var cf clientFlags
	var reset bool
	cmd := &cobra.Command{
		Use:   "unseal [KEY]",
		Short: "Provide one unseal key share (read from stdin when not given)",
		Long: `Provide one unseal key share. Give the share as an argument or, better (it
stays out of shell history), on standard input. Run once per share until the
threshold is reached. -reset discards the shares given so far.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := cf.outputFormat(env)
			if err != nil {
				return err
			}
			c, err := cf.newClient(env)
			if err != nil {
				return err
			}
			body := map[string]any{"reset": true}
			if !reset {
				key := ""
				if len(args) == 1 {
					key = args[0]
				} else {
					fmt.Fprint(env.Stderr, "Unseal Key (will be hidden if typed on a terminal): ")
					line, err := bufio.NewReader(env.Stdin).ReadString('\n')
					if err != nil && line == "" {
						return errors.New("no unseal key given on standard input")
					}
					fmt.Fprintln(env.Stderr)
					key = strings.TrimSpace(line)
				}
				if key == "" {
					return usagef("missing unseal key")
				}
				body = map[string]any{"key": key}
			}
			resp, err := c.Do(cmd.Context(), http.MethodPut, "sys/unseal", body)
			if err != nil {
				return err
			}
			return printSealStatus(env, format, resp.Body)
		},
	}
	addClientFlags(cmd, &cf)
	cmd.Flags().BoolVar(&reset, "reset", false, "discard the unseal progress")
	return cmd
}

func newOperatorSealCmd(env *Env) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "seal",
		Short: "Seal the server: zero its keys in memory until the next unseal",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.newClient(env)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), http.MethodPut, "sys/seal", nil); err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, "Success! Coffer is sealed.")
			return nil
		},
	}
	addClientFlags(cmd, &cf)
	return cmd
}

func newOperatorRotateCmd(env *Env) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Add a new barrier encryption key term; old entries stay readable",
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
			if _, err := c.Do(cmd.Context(), http.MethodPut, "sys/rotate", nil); err != nil {
				return err
			}
			resp, err := c.Do(cmd.Context(), http.MethodGet, "sys/key-status", nil)
			if err != nil {
				return err
			}
			if format != "table" {
				return printData(env.Stdout, format, resp.Data())
			}
			d := resp.Data()
			fmt.Fprintln(env.Stdout, "Success! Rotated key")
			fmt.Fprintln(env.Stdout)
			return printKV(env.Stdout, [][2]string{
				{"Key Term", formatValue(d["term"])},
				{"Install Time", formatValue(d["install_time"])},
				{"Encryption Count", formatValue(d["encryptions"])},
			})
		},
	}
	addClientFlags(cmd, &cf)
	return cmd
}

func newOperatorKeyStatusCmd(env *Env) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "key-status",
		Short: "Show the active barrier key term",
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
			resp, err := c.Do(cmd.Context(), http.MethodGet, "sys/key-status", nil)
			if err != nil {
				return err
			}
			d := resp.Data()
			if format != "table" {
				return printData(env.Stdout, format, d)
			}
			return printKV(env.Stdout, [][2]string{
				{"Key Term", formatValue(d["term"])},
				{"Install Time", formatValue(d["install_time"])},
				{"Encryption Count", formatValue(d["encryptions"])},
			})
		},
	}
	addClientFlags(cmd, &cf)
	return cmd
}
