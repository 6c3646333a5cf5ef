package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/coffer-dev/coffer/internal/version"
)

func newVersionCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this coffer binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rev := version.Revision()
			if rev != "" {
				rev = " (" + rev + ")"
			}
			fmt.Fprintf(env.Stdout, "Coffer v%s%s, %s %s/%s\n", version.Version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
