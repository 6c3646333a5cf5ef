// Command coffer is the single Coffer binary: server, CLI client, controller
// and tools. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/coffer-dev/coffer/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(cli.ExitCode(err))
}
