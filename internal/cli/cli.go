// Package cli implements the coffer command line: every subcommand, noun
// first and verb second, one file per command group. Client commands talk to
// a server only over HTTP (client.go); `coffer server` wires the server
// together (server.go).
//
// Run is the whole CLI as a function, so tests drive it in-process.
// Exit codes: 0 ok, 1 failed, 2 usage. Errors print as "coffer: error: ..."
// on stderr; data goes to stdout.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
)

// Env is the environment a command sees; tests replace it.
type Env struct {
	Getenv func(string) string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// HomeDir returns the user's home directory (token helper file).
	HomeDir func() (string, error)
}

// UsageError makes Run exit with status 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// ExitError carries an explicit exit status with an already-printed error.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// ExitCode maps Run's error to the process exit status.
func ExitCode(err error) int {
	var ue *UsageError
	var ee *ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.Code
	case errors.As(err, &ue):
		return 2
	default:
		return 1
	}
}

// Run runs the coffer CLI with args (without the program name).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	env := &Env{Getenv: os.Getenv, Stdin: os.Stdin, Stdout: stdout, Stderr: stderr, HomeDir: os.UserHomeDir}
	return RunEnv(ctx, env, args)
}

// RunEnv is Run with an explicit environment.
func RunEnv(ctx context.Context, env *Env, args []string) error {
	root := newRoot(env)
	root.SetArgs(normalizeArgs(args))
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SetIn(env.Stdin)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return nil
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return err
	}
	var ue *UsageError
	if errors.As(err, &ue) || isCobraUsageError(err) {
		fmt.Fprintf(env.Stderr, "coffer: error: %v\n", err)
		fmt.Fprintf(env.Stderr, "hint: run 'coffer %s -help' for usage\n", commandPathOf(root, args))
		if ue == nil {
			err = &UsageError{Msg: err.Error()}
		}
		return err
	}
	fmt.Fprintf(env.Stderr, "coffer: error: %v\n", err)
	return err
}

func commandPathOf(root *cobra.Command, args []string) string {
	c, _, err := root.Find(normalizeArgs(args))
	if err != nil || c == nil {
		return ""
	}
	return strings.TrimPrefix(c.CommandPath(), root.Name()+" ")
}

// Cobra reports flag and argument errors as plain errors; these are usage
// errors for us.
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown flag", "unknown shorthand flag", "unknown command", "flag needs an argument", "invalid argument", "accepts ", "requires at least", "requires at most", "requires exactly", "bad flag syntax"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

var singleDashLong = regexp.MustCompile(`^-[a-zA-Z][a-zA-Z0-9_-]+(=.*)?$`)

// normalizeArgs lets Vault-style single-dash long flags (-dev, -format=json)
// work with cobra, which expects --dev. Arguments after "--" are untouched.
func normalizeArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			out = append(out, args[i:]...)
			break
		}
		if singleDashLong.MatchString(a) {
			a = "-" + a
		}
		out = append(out, a)
	}
	return out
}

func newRoot(env *Env) *cobra.Command {
	root := &cobra.Command{
		Use:           "coffer",
		Short:         "Coffer: the Kubernetes secrets management ladder in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
		CompletionOptions: cobra.CompletionOptions{
			DisableDescriptions: false,
		},
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &UsageError{Msg: err.Error()}
	})
	root.PersistentFlags().BoolP("help", "h", false, "show help")
	root.AddCommand(
		newVersionCmd(env),
		newServerCmd(env),
		newStatusCmd(env),
		newOperatorCmd(env),
		newReadCmd(env),
		newWriteCmd(env),
		newListCmd(env),
		newDeleteCmd(env),
		newKVCmd(env),
		newTokenCmd(env),
		newPolicyCmd(env),
		newMountCmd(env, secretsKind),
		newMountCmd(env, authKind),
		newAuditCmd(env),
		newLoginCmd(env),
		newLeaseCmd(env),
		newBenchCmd(env),
		newKMSPluginCmd(env),
		newControllerCmd(env),
		newSealCmd(env),
		newFileCmd(env),
	)
	return root
}
